/**
 * simulate: the main job end to end on a capture (decode, flows, selectors,
 * merge, analysis) with 1 and 2 workers, in wall time, against in the same
 * run: ingest only (our reader, one thread), our C reader (bench/native/
 * pcap_ingest.c, one thread), tcpdump, and the C reference of the whole job
 * (bench/native/pcap_sim.c: the same decode, hash, connections, sources and
 * band, on 1 and 2 threads reading the same byte ranges as our workers).
 * Goals (issue 4, 2-core machine):
 * 2 workers >= 1.5x the C reader, >= 50x tcpdump, scaling 1 -> 2 >= 1.8.
 * A second case runs the CLI in fresh processes on captures of three sizes
 * and reports their peak memory: the connections stay flat as the capture
 * grows past the flow timeout; the exact heaviest sources spill to disk past
 * their budget (engine/source-table.ts).
 *
 * The runs alternate round by round so that a burst of load from the shared
 * machine hits every contender.
 */
import { spawnSync } from 'node:child_process';
import { statSync } from 'node:fs';
import { Worker } from 'node:worker_threads';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { plan, summarize, type Suite } from '../harness/harness.ts';
import { buildNative, ensureCapture, native, oursInChild, tcpdump } from './ingest.ts';
import { buildNativeSim, captureRanges, nativeSimulate } from './native-sim.ts';
import { simulateSizes } from './simulate-sizes.ts';
import { runSimulation } from '../../sim/engine/run.ts';
import { analyse } from '../../sim/analysis/distribution.ts';
import { buildSelector } from '../../sim/select/build.ts';
import { directionDependent } from '../../sim/engine/share.ts';
import type { SelectorSpec } from '../../sim/select/selector.ts';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const SPEC: SelectorSpec = { backend: 'clusterip', hashmode: 'sourceip-sourceport', totalNodes: 4, hashInit: 0, kernel: '6.1', endian: 'little' };

/** Packets per wall second of one whole simulation (pool start, shares, merge, analysis). */
async function simulateOnce(file: string, workers: number, connections = true): Promise<{ pps: number; packets: number }> {
  const sel = buildSelector(SPEC);
  const t0 = performance.now();
  const run = await runSimulation({ inputs: [{ kind: 'pcap', path: file }], selectors: [SPEC], buckets: [sel.buckets], clusterIp: null, mixed: null, workers, connections });
  analyse(run.merged, [sel], { ids: ['A'], dirDep: [directionDependent(sel)] });
  const s = (performance.now() - t0) / 1000;
  return { pps: run.merged.ingest.packets / s, packets: run.merged.ingest.packets };
}

/**
 * Packets per wall second of `threads` threads that read their byte ranges of
 * `file` into a 1 MiB buffer and do nothing else: the memory-bandwidth ceiling
 * of any reader that copies the file out of the page cache (ours, C's read(2),
 * tcpdump's).
 */
async function readOnly(file: string, threads: number, packets: number): Promise<number> {
  const size = statSync(file).size;
  const code = `
    const { readSync, openSync, closeSync } = require('node:fs');
    const { workerData, parentPort } = require('node:worker_threads');
    const [f, a, b] = workerData;
    const fd = openSync(f, 'r'), buf = Buffer.allocUnsafe(1 << 20);
    let pos = a, sum = 0;
    while (pos < b) { const n = readSync(fd, buf, 0, Math.min(buf.length, b - pos), pos); if (n <= 0) break; pos += n; sum += buf[0]; }
    closeSync(fd);
    parentPort.postMessage(sum);`;
  const t0 = performance.now();
  await Promise.all(Array.from({ length: threads }, (_, i) => new Promise((res, rej) => {
    const w = new Worker(code, { eval: true, workerData: [file, Math.floor((i * size) / threads), Math.floor(((i + 1) * size) / threads)] });
    w.once('message', res);
    w.once('error', rej);
  })));
  return packets / ((performance.now() - t0) / 1000);
}

/** Peak resident memory of a fresh `simulate` process over `file`. */
function peakRss(file: string, workers: number, sources: boolean): number {
  const r = spawnSync(process.execPath, ['bin/clusterip-sim.js', 'simulate', '--pcap', file, '--backend', 'clusterip', '--hashmode', 'sourceip-sourceport', '--total-nodes', '4', '--workers', String(workers), '--no-hash', '--json', ...(sources ? [] : ['--no-top-sources'])], { cwd: ROOT, encoding: 'utf8', maxBuffer: 1 << 28 });
  if (r.status !== 0) throw new Error(`simulate failed: ${r.stderr}`);
  return (JSON.parse(r.stdout) as { run: { peak_rss_bytes: number } }).run.peak_rss_bytes;
}

export const simulateSuite: Suite = {
  name: 'simulate',
  description: 'simulate end to end on a pcap, 1 and 2 workers, vs ingest only, our C reader and tcpdump; peak memory as the capture grows',
  async run(ctx) {
    // First the command line at every size against the C job run the same way (simulate-sizes.ts;
    // --quick leaves it to that suite's own quick run).
    if (!ctx.quick) await simulateSizes(ctx);
    const packets = ctx.quick ? 100_000 : 5_000_000;
    const { repeats, warmup } = plan(ctx);
    const file = ensureCapture(ctx, packets, 262144);
    const exe = buildNative(ctx);
    const simExe = buildNativeSim(ctx.workDir);
    const ranges = [captureRanges(file, 1), captureRanges(file, 2)] as const;
    const cSim = (threads: 1 | 2): number => { const r = nativeSimulate(simExe, file, threads === 1 ? ranges[0] : ranges[1]); return r.packets / r.seconds[0]!; };
    const cs1: number[] = [], cs2: number[] = [];
    const one: number[] = [], two: number[] = [], ing: number[] = [], c: number[] = [], ceil: number[] = [], flat1: number[] = [], flat2: number[] = [];
    for (let r = -warmup; r < repeats; r++) {
      const a = (await simulateOnce(file, 1)).pps;
      const b = (await simulateOnce(file, 2)).pps;
      const i = oursInChild(file).wall;
      const n = native(exe, file);
      const k = await readOnly(file, 2, packets);
      const f1 = (await simulateOnce(file, 1, false)).pps;
      const f2 = (await simulateOnce(file, 2, false)).pps;
      const n1 = cSim(1), n2 = cSim(2);
      if (r < 0) continue;
      cs1.push(n1); cs2.push(n2);
      one.push(a); two.push(b); ing.push(i); c.push(n); ceil.push(k); flat1.push(f1); flat2.push(f2);
      ctx.log(`round ${r + 1}/${repeats}: 1 worker ${(a / 1e6).toFixed(2)} M/s, 2 workers ${(b / 1e6).toFixed(2)} M/s, ingest ${(i / 1e6).toFixed(2)} M/s, C ${(n / 1e6).toFixed(2)} M/s, 2 threads only reading ${(k / 1e6).toFixed(2)} M/s, no connections 1/2 workers ${(f1 / 1e6).toFixed(2)}/${(f2 / 1e6).toFixed(2)} M/s, C whole job 1/2 threads ${(n1 / 1e6).toFixed(2)}/${(n2 / 1e6).toFixed(2)} M/s`);
    }
    const s1 = summarize(one), s2 = summarize(two), si = summarize(ing), sc = summarize(c), sk = summarize(ceil);
    const sf1 = summarize(flat1), sf2 = summarize(flat2), sn1 = summarize(cs1), sn2 = summarize(cs2);
    const td = ctx.quick ? undefined : tcpdump(file, packets);
    for (const [workers, s, cs] of [[1, s1, sn1], [2, s2, sn2]] as const) {
      ctx.emit({
        suite: 'simulate',
        case: `end to end, ${workers} worker${workers > 1 ? 's' : ''}, ${packets} packets`,
        ops_per_s: s.median,
        spread: s.spread,
        native_ops_per_s: sc.median,
        ratio: s.median / sc.median,
        ingest_ops_per_s: si.median,
        ratio_ingest: s.median / si.median,
        scaling: workers === 2 ? s2.median / s1.median : 1,
        ...(td ? { tcpdump_ops_per_s: td, ratio_tcpdump: s.median / td } : {}),
        native_sim_ops_per_s: cs.median,
        ratio_native_sim: s.median / cs.median,
      });
    }
    // The same job in C on as many threads: what a careful native implementation reaches on this
    // machine, against the C reader (the yardstick) and in scaling.
    for (const [threads, s] of [[1, sn1], [2, sn2]] as const) {
      ctx.emit({
        suite: 'simulate',
        case: `C reference of the whole job, ${threads} thread${threads > 1 ? 's' : ''}, ${packets} packets`,
        ops_per_s: s.median,
        spread: s.spread,
        native_ops_per_s: sc.median,
        ratio: s.median / sc.median,
        scaling: threads === 2 ? sn2.median / sn1.median : 1,
      });
    }
    // What connection tracking costs: the same runs with per-packet counts only (no flows, connections,
    // sources, band or migrations; the engine's bench diagnostic, not a CLI mode).
    for (const [workers, s] of [[1, sf1], [2, sf2]] as const) {
      ctx.emit({
        suite: 'simulate',
        case: `diagnostic: per-packet counts only, no connection tracking, ${workers} worker${workers > 1 ? 's' : ''}, ${packets} packets`,
        ops_per_s: s.median,
        spread: s.spread,
        native_ops_per_s: sc.median,
        ratio: s.median / sc.median,
        scaling: workers === 2 ? sf2.median / sf1.median : 1,
        ratio_full_job: s.median / (workers === 2 ? s2 : s1).median,
      });
    }
    // The ceiling: two threads that only read their halves of the file (no decoding at all). Copying
    // the file out of the page cache is memory-bandwidth bound; nothing that reads it can beat this.
    ctx.emit({
      suite: 'simulate',
      case: `ceiling: 2 threads only reading their byte ranges, ${packets} packets`,
      ops_per_s: sk.median,
      spread: sk.spread,
      native_ops_per_s: sc.median,
      ratio: sk.median / sc.median,
      ratio_simulate_2_workers: s2.median / sk.median,
    });
    // Memory: the same traffic generator at 1, 4 and 8 times the bench's packet count, each size in a
    // fresh process, with one and with two workers, with and without the heaviest sources. The
    // generator starts connections at a steady rate, so a longer capture is the same traffic for
    // longer (5M packets: 281 s; 40M: 883 s). The connection table holds what was active within the
    // flow timeout (120 s): once each worker's stretch is well past that, it stops growing. The exact
    // heaviest sources keep one counter per distinct source address, in memory up to a budget and
    // spilled to sorted runs on disk past it (--no-top-sources leaves them out). Captures are cut at
    // snaplen 96: memory does not depend on payload, and a 40M-packet full-size capture would not
    // fit the page cache. Growth is measured between the two largest.
    const sizes = [packets, packets * 4, packets * 8];
    const files = sizes.map((n) => ensureCapture(ctx, n, 96));
    for (const workers of [1, 2]) {
      for (const sources of [true, false]) {
        const rss = files.map((f) => peakRss(f, workers, sources));
        ctx.emit({
          suite: 'simulate',
          case: `peak memory, ${workers} worker${workers > 1 ? 's' : ''}${sources ? '' : ', --no-top-sources'}, ${sizes.join(' / ')} packets`,
          ops_per_s: workers === 1 ? s1.median : s2.median,
          spread: 0, // one fresh process per size: a single measurement
          packets: sizes,
          peak_rss: rss,
          memory_growth: rss[2]! / rss[1]!,
        });
      }
    }
  },
};
