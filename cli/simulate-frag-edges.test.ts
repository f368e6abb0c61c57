/**
 * Issue 17 item 4: the worker count does not change the answer when fragment
 * trains straddle the edges between workers' byte ranges. The capture
 * (test/frag-edges.ts) spreads every datagram's fragments over its
 * neighbours' records, in order, reversed, shuffled, with duplicates, killing
 * overlaps and lost fragments, so every edge cuts trains; a share carries what
 * it cannot finish to the merge (sim/traffic/frag-carry.ts), which completes
 * the datagrams as one pass does. Before that, --workers 2 and 3 lost 2 and
 * 14 fragments of this capture as `unresolved-fragment` (and the per-node
 * packets, frames, bytes and connections with them).
 */
import { afterAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCli } from '../test/cli.ts';
import { buildFragEdges, EDGE_DST, EDGE_PORTS as PORTS, EDGE_SEL as FRAG_SEL } from '../test/frag-edges.ts';
import type { SimulateResult } from '../sim/core/result.ts';
import { planShares } from '../sim/traffic/share-plan.ts';
import { processShare } from '../sim/engine/share.ts';
import { replayCarried } from '../sim/traffic/frag-carry.ts';

const dir = mkdtempSync(join(tmpdir(), 'cipsim-fragedge-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const { path: capture } = buildFragEdges(dir);


function comparable(stdout: string): Partial<SimulateResult> {
  const j = JSON.parse(stdout) as Partial<SimulateResult>;
  delete j.generated_at;
  delete j.run;
  return j;
}

describe('simulate over fragment trains cut by every worker edge', () => {
  it('the fixture cuts datagrams at every edge of 3 shares: each edge completes some only when both sides meet', () => {
    const ranges = planShares(capture, 3);
    expect(ranges.length).toBe(3);
    const parts = ranges.map((r, share) => processShare({
      input: { kind: 'pcap', path: capture, start: r.start, end: r.end }, chain: { input: 0, share, first: share === 0, last: share === 2 },
      selectors: [{ backend: 'nft', expr: PORTS, kernel: '6.18', endian: 'little' }], clusterIp: null, mixed: null, flowTimeout: 3,
    }));
    const replay = replayCarried(parts.map((p) => p.carry!));
    // Datagrams completed by the replay, by the share holding their completing fragment: the 2nd and 3rd (the two edges).
    const perShare = [0, 1, 2].map((g) => Array.from(replay.group.subarray(0, replay.batch.count)).filter((x) => x === g).length);
    expect(perShare[0]).toBe(0);
    expect(perShare[1]).toBeGreaterThan(0);
    expect(perShare[2]).toBeGreaterThan(0);
  });

  it('gives the same JSON (timings aside) for 0, 1, 2 and 3 workers, with the split-datagram warning', async () => {
    const out: Partial<SimulateResult>[] = [];
    for (const w of [0, 1, 2, 3]) {
      const r = await runCli(['simulate', '--pcap', capture, ...FRAG_SEL, '--json', '--workers', String(w)]);
      expect(r.code, r.stderr).toBe(0);
      out.push(comparable(r.stdout));
    }
    // What the capture holds, in the words of the result: each kind of fragment fate, and the warning.
    const skipped = (out[0]!.input as unknown as { skipped: Record<string, number> }).skipped;
    expect(skipped['duplicate-fragment']).toBeGreaterThan(0);
    expect(skipped['bad-fragment']).toBeGreaterThan(0);
    expect(skipped['unresolved-fragment']).toBeGreaterThan(0);
    expect(out[0]!.warnings?.some((w) => /fragmented datagrams would be split/.test(w))).toBe(true);
    for (const w of [1, 2, 3]) expect(out[w], `--workers ${w}`).toEqual(out[0]);
  }, 240_000);

  it('--no-conntrack (nothing defragments, nothing carried): 0 and 3 workers and a merge of 3 shards give the same JSON', async () => {
    const sel = ['--backend', 'nft', '--nft', PORTS, '--no-conntrack', '--cluster-ip', EDGE_DST, '--flow-timeout', '3'];
    const one = async (args: string[]): Promise<string> => {
      const r = await runCli(args);
      expect(r.code, r.stderr).toBe(0);
      return r.stdout;
    };
    const w0 = comparable(await one(['simulate', '--pcap', capture, ...sel, '--json', '--workers', '0']));
    expect(comparable(await one(['simulate', '--pcap', capture, ...sel, '--json', '--workers', '3']))).toEqual(w0);
    const parts = [0, 1, 2].map((i) => join(dir, `noct-${i}.part`));
    for (const [i, p] of parts.entries()) await one(['simulate', '--pcap', capture, ...sel, '--shard', `${i}/3`, '--partial', p]);
    expect(comparable(await one(['merge', ...parts, '--json']))).toEqual(w0);
  }, 240_000);
});
