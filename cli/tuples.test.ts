/**
 * `tuples` and `gen` as a user runs them: CSV that matches tshark, stdin,
 * JSON, the skipped summary, exit codes and byte offsets on damaged input.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tsharkRows } from '../test/tshark.ts';

const root = resolve(import.meta.dirname, '..');
let dir = '';
beforeAll(() => { dir = mkdtempSync(join(tmpdir(), 'tuples-cli-')); });
afterAll(() => { rmSync(dir, { recursive: true, force: true }); });

function cli(args: string[], input?: Buffer): { code: number; out: string; err: string } {
  const r = spawnSync(process.execPath, ['--import', 'tsx', join(root, 'cli/main.ts'), ...args], { cwd: root, input, encoding: 'utf8', maxBuffer: 1 << 28 });
  return { code: r.status ?? -1, out: r.stdout, err: r.stderr };
}

describe('clusterip-sim gen + tuples', () => {
  it('gen writes a pcap; tuples prints the CSV tshark agrees with, and a summary on stderr', () => {
    const f = join(dir, 'z.pcap');
    const g = cli(['gen', 'default', '--out', f, '--packets', '2500', '--seed', '4']);
    expect(g.code).toBe(0);
    expect(g.err).toMatch(/wrote 2500 packets/);
    const t = cli(['tuples', f]);
    expect(t.code).toBe(0);
    const lines = t.out.trim().split('\n');
    expect(lines[0]).toBe('ts,proto,saddr,sport,daddr,dport,wirelen,l4_id');
    expect(lines).toHaveLength(2501);
    const ts = tsharkRows(f);
    for (let i = 0; i < ts.length; i++) {
      const [time, proto, sa, sp, da, dp, len, id] = lines[i + 1]!.split(',');
      const x = ts[i]!;
      expect(`${time}000`).toBe(x.ts);
      expect([Number(proto), sa, sp === '' ? null : Number(sp), da, dp === '' ? null : Number(dp), Number(len)]).toEqual([x.proto, x.src, x.sport, x.dst, x.dport, x.len]);
      // ICMP echo: identifier/sequence in l4_id, as tshark's icmp.ident/icmp.seq, and no ports.
      if (x.l4id !== null) expect(id).toBe(x.l4id);
    }
    expect(t.err).toMatch(/2500 IP packets .*skipped: nothing/);
  });

  it('reads stdin, --limit, --json', () => {
    const f = join(dir, 's.pcap');
    expect(cli(['gen', 'synflood', '--out', f, '--packets', '300']).code).toBe(0);
    const t = cli(['tuples', '-', '--limit', '10'], readFileSync(f));
    expect(t.code).toBe(0);
    expect(t.out.trim().split('\n')).toHaveLength(11);
    const j = cli(['tuples', f, '--json', '--limit', '5']);
    const doc = JSON.parse(j.out) as { packets: { proto: number; dport: number }[]; stats: { packets: number } };
    expect(doc.packets).toHaveLength(5);
    expect(doc.packets.every((p) => p.proto === 6 && p.dport === 80)).toBe(true);
    expect(doc.stats.packets).toBe(5);
  });

  it('a damaged capture: exit 1 naming file and byte offset; --lenient skips and counts', () => {
    const f = join(dir, 'c.pcap');
    expect(cli(['gen', 'nat', '--out', f, '--packets', '50']).code).toBe(0);
    const d = readFileSync(f);
    writeFileSync(join(dir, 'cut.pcap'), d.subarray(0, d.length - 7));
    const bad = cli(['tuples', join(dir, 'cut.pcap')]);
    expect(bad.code).toBe(1);
    expect(bad.err).toMatch(/cut\.pcap: byte \d+: file ends inside a record/);
    expect(bad.err).toMatch(/the CSV above is complete up to there: \d+ packets/);
    // --json: no half document on stdout, only the error.
    const badJson = cli(['tuples', '--json', join(dir, 'cut.pcap')]);
    expect(badJson.code).toBe(1);
    expect(badJson.out).toBe('');
    expect(badJson.err).toMatch(/cut\.pcap: byte \d+/);
    const goodJson = cli(['tuples', '--json', f]);
    expect(goodJson.code).toBe(0);
    expect((JSON.parse(goodJson.out) as { packets: unknown[] }).packets).toHaveLength(50);
    const len = cli(['tuples', '--lenient', join(dir, 'cut.pcap')]);
    expect(len.code).toBe(0);
    expect(len.out.trim().split('\n')).toHaveLength(50);
    expect(len.err).toMatch(/skipped: 1 bad-record/);
    expect(cli(['tuples', join(dir, 'missing.pcap')]).code).toBe(1);
    // tcpdump's short options: -r FILE -c N read the same packets as FILE --limit N.
    const short = cli(['tuples', '-r', f, '-c', '7']);
    expect(short.code).toBe(0);
    expect(short.out).toBe(cli(['tuples', f, '--limit', '7']).out);
    expect(short.out.trim().split('\n')).toHaveLength(8);
    expect(cli(['tuples', f, '-r', f]).code).toBe(2);
    expect(cli(['tuples', f, '--limit', 'x']).code).toBe(2);
    expect(cli(['gen', 'nope', '--out', join(dir, 'x.pcap')]).code).toBe(2);
  });
});
