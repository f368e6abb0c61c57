import { describe, expect, it } from 'vitest';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { runCli } from '../test/cli.ts';
import { openCapture } from '../sim/traffic/capture.ts';
import { createBatch } from '../sim/traffic/batch.ts';
import { fileDir } from '../test/tmp.ts';

const dir = fileDir('replay-cli-');
const cfg = join(dir, 'c.yaml');
writeFileSync(cfg, 'cluster:\n  ip: 10.200.0.100\n  backend: nft\n  total_nodes: 2\nnodes:\n  - { name: a, owns: [1] }\n  - { name: b, owns: [2] }\n');

describe('replay command line', () => {
  it('refuses contradictory or missing options with exit 2', async () => {
    const mix = join(dir, 'm.pcap');
    expect((await runCli(['gen', 'default', '--packets', '50', '--out', mix])).code).toBe(0);
    const base = ['replay', '--pcap', mix, '--config', cfg];
    const both = await runCli([...base, '--via', 'lo', '--pps', '10', '--mbps', '1']);
    expect(both.code).toBe(2);
    expect(both.stderr).toMatch(/one of --pps, --mbps, --multiplier, --topspeed/);
    const none = await runCli(base);
    expect(none.code).toBe(2);
    expect(none.stderr).toMatch(/--via IFACE is required/);
    const bad = await runCli([...base, '--via', 'lo', '--pps', '-3']);
    expect(bad.code).toBe(2);
    expect((await runCli([...base, '--out', join(dir, 'x.pcap'), '--verify'])).code).toBe(2);
  });

  it('--out writes the rewritten capture: every IPv4 packet to the cluster IP, sources kept', async () => {
    const mix = join(dir, 'm2.pcap');
    await runCli(['gen', 'default', '--packets', '300', '--seed', '3', '--out', mix]);
    const out = join(dir, 'rw.pcap');
    const r = await runCli(['replay', '--pcap', mix, '--config', cfg, '--out', out, '--json']);
    expect(r.code, r.stderr).toBe(0);
    const rep = JSON.parse(r.stdout) as { rewrite: { records: number; frames: number } };
    const read = (p: string): { s: number[]; d: number[] } => {
      const src = openCapture(p);
      const b = createBatch(4096);
      const s: number[] = [], d: number[] = [];
      while (src.fill(b) > 0) for (let i = 0; i < b.count; i++) if (b.family[i] === 4) { s.push(b.saddr[i]! >>> 0); d.push(b.daddr[i]! >>> 0); }
      src.close();
      return { s, d };
    };
    const before = read(mix), after = read(out);
    expect(rep.rewrite.frames).toBe(before.s.length);
    expect(after.s).toEqual(before.s);
    expect(new Set(after.d)).toEqual(new Set([0x0ac80064]));
  });
});
