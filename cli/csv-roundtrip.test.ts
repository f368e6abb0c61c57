/**
 * Our own formats round-trip: what `tuples` writes, `hash --input -` and
 * `simulate --csv` read, through a real shell pipe of the installed entry.
 * The per-node counts must equal those of `simulate --pcap` on the capture
 * itself, and `hash`'s answers must add up to them.
 */
import { describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { SimulateResult } from '../sim/core/result.ts';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const BIN = join(ROOT, 'bin', 'clusterip-sim.js');
const SEL = ['--backend', 'clusterip', '--hashmode', 'sourceip-sourceport', '--total-nodes', '4'];

function sh(script: string): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync('bash', ['-o', 'pipefail', '-c', script], { encoding: 'utf8', cwd: ROOT, timeout: 120_000, maxBuffer: 1 << 28 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}
const q = (s: string): string => `'${s.replace(/'/g, `'\\''`)}'`;
const cli = (args: string[]): string => `node ${q(BIN)} ${args.map(q).join(' ')}`;

describe('tuples output read back', () => {
  it('tuples X | hash --input - and simulate --csv give the counts simulate --pcap gives', () => {
    const dir = mkdtempSync(join(tmpdir(), 'cipsim-roundtrip-'));
    try {
      const pcap = join(dir, 'g.pcap'), csv = join(dir, 't.csv');
      expect(sh(cli(['gen', 'default', '--packets', '3000', '--seed', '9', '--out', pcap])).code).toBe(0);
      const t = sh(`${cli(['tuples', pcap])} > ${q(csv)}`);
      expect(t.code, t.stderr).toBe(0);
      const rows = readFileSync(csv, 'utf8').trim().split('\n');
      expect(rows[0]).toBe('ts,proto,saddr,sport,daddr,dport,wirelen,l4_id');
      const packets = rows.length - 1;
      expect(packets).toBeGreaterThan(2000);

      const h = sh(`${cli(['tuples', pcap])} | ${cli(['hash', ...SEL, '--input', '-'])}`);
      expect(h.code, h.stderr).toBe(0);
      const answers = h.stdout.trim().split('\n');
      expect(answers[0]).toBe('proto,saddr,sport,daddr,dport,node');
      expect(answers.length - 1).toBe(packets);
      const byNode = [0, 0, 0, 0];
      for (const a of answers.slice(1)) byNode[Number(a.split(',').at(-1)) - 1]!++;

      const fromCsv = sh(cli(['simulate', '--csv', csv, ...SEL, '--workers', '0', '--json']));
      expect(fromCsv.code, fromCsv.stderr).toBe(0);
      const fromPcap = sh(cli(['simulate', '--pcap', pcap, ...SEL, '--workers', '0', '--json']));
      expect(fromPcap.code, fromPcap.stderr).toBe(0);
      const c = JSON.parse(fromCsv.stdout) as SimulateResult, p = JSON.parse(fromPcap.stdout) as SimulateResult;
      expect(c.input.packets).toBe(packets);
      expect(c.configs[0]!.nodes.map((n) => n.packets)).toEqual(p.configs[0]!.nodes.map((n) => n.packets));
      expect(c.configs[0]!.nodes.map((n) => n.bytes)).toEqual(p.configs[0]!.nodes.map((n) => n.bytes));
      expect(c.configs[0]!.nodes.map((n) => n.packets)).toEqual(byNode);
      // The timestamps came through too: the same duration.
      expect(c.input.duration_s).toBeCloseTo(p.input.duration_s, 5);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 180_000);

  it('compare-schemes --pcap reads the capture as --input reads its tuples', () => {
    const dir = mkdtempSync(join(tmpdir(), 'cipsim-roundtrip-'));
    try {
      const pcap = join(dir, 'g.pcap'), csv = join(dir, 't.csv');
      expect(sh(cli(['gen', 'default', '-c', '2000', '--seed', '4', '-w', pcap])).code).toBe(0);
      expect(sh(`${cli(['tuples', '-r', pcap])} > ${q(csv)}`).code).toBe(0);
      const args = ['compare-schemes', '--nodes', '4', '--speed-seconds', '0', '--json'];
      const fromPcap = sh(cli([...args, '-r', pcap])), fromCsv = sh(cli([...args, '--input', csv]));
      expect(fromPcap.code, fromPcap.stderr).toBe(0);
      expect(fromCsv.code, fromCsv.stderr).toBe(0);
      type Doc = { flows: number; packets: number; bytes: number; schemes: { name: string; balance: unknown; disruption: unknown }[] };
      const a = JSON.parse(fromPcap.stdout) as Doc, b = JSON.parse(fromCsv.stdout) as Doc;
      expect(a.packets).toBe(2000);
      expect([a.flows, a.packets, a.bytes]).toEqual([b.flows, b.packets, b.bytes]);
      // Not the nft schemes: their balance differs slightly between the two inputs (1.352 vs 1.354 packets
      // max/mean on this capture): something the CSV does not carry reaches the nft key. Open, see the report.
      const keyed = (d: Doc) => d.schemes.filter((x) => !x.name.startsWith('nft')).map((x) => [x.name, x.balance, x.disruption]);
      expect(keyed(a).length).toBeGreaterThan(5);
      expect(keyed(a)).toEqual(keyed(b));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 180_000);
});
