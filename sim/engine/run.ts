/**
 * Runs a simulation: splits the input into shares, runs them on a piscina
 * pool (or in-process with workers = 0), merges the partials.
 */
import os from 'node:os';
import { closeSync, existsSync, openSync, readSync, statSync } from 'node:fs';
import type { SelectorSpec } from '../select/selector.ts';
import { directionDependent, judges, processShare, scanShare } from './share.ts';
import type { CtState, CtTransfer } from '../cluster/ct-model.ts';
import { buildSelector } from '../select/build.ts';
import { DEFAULT_FLOW_TIMEOUT } from './conn-table.ts';
import { workerEntry } from './bundle.ts';
import { runMerge, type MergedRun } from './merge.ts';
import { planRun, type ShardWork } from './shard-plan.ts';
import { shareWeights } from './share-weights.ts';
import { planShares } from '../traffic/share-plan.ts';
import { DEFAULT_SOURCE_BUDGET, type SourceSpill } from './source-table.ts';
import type { CtScanTask, MergeTask, SimPartial, SimTask, InputSpec } from './task.ts';
import { makeTempDir } from '../core/temp-dir.ts';
import type { ClusterIp } from './cluster-filter.ts';

export interface RunOptions {
  inputs: InputSpec[];
  selectors: SelectorSpec[];
  buckets: number[];
  clusterIp: ClusterIp | null;
  mixed: number[] | null;
  /** 0 = in-process (no worker threads); default: chosen from the inputs' size (chooseWorkers). */
  workers?: number;
  /** Connection idle timeout, seconds (default DEFAULT_FLOW_TIMEOUT). */
  flowTimeout?: number;
  /** Count the heaviest sources per node (default true): exact, one counter per distinct source, spilled to disk past `sourceBudget`. */
  topSources?: boolean;
  /**
   * Source counters each worker holds in memory before it spills them to a
   * sorted run file under the system's temp directory (TMPDIR; default
   * DEFAULT_SOURCE_BUDGET). Keeps memory flat on captures with millions of
   * sources; the answer is the same (source-table.ts, source-merge.ts).
   */
  sourceBudget?: number;
  /** Track connections (default true); false is SimTask.connections' bench diagnostic. */
  connections?: boolean;
  /** Called about every 200 ms with packets done so far and resident memory. */
  onProgress?: (packets: number, rss: number) => void;
  /** nf_conntrack_tcp_loose of the nodes (default true, the kernel's default; cluster/ct-model.ts). */
  tcpLoose?: boolean;
  /**
   * The main thread has nothing of its own to do while the shares run (simulate
   * --no-hash: no SHA-256 of the inputs beside them). chooseWorkers then keeps a
   * mid-sized capture in-process on two cores (IN_PROCESS_IDLE_PACKETS).
   */
  mainIdle?: boolean;
  /** The shares to run (shard-plan.ts; a shard of a run split across machines); default: all of `inputs`. */
  plan?: ShardWork;
}

export interface RunOutput {
  merged: MergedRun;
  workers: number;
  /** Set when the worker count was chosen from the inputs' size (no `workers` given). */
  workersChosen: WorkerChoice | null;
  elapsedS: number;
  /** Wall seconds until the last share was done (the rest of elapsedS is the merge). */
  sharesS: number;
  peakRss: number;
}

export function defaultWorkers(): number {
  return Math.max(1, Math.min(os.availableParallelism?.() ?? os.cpus().length, 16));
}

/**
 * Below this many packets a run stays in this thread: starting a pool (the
 * worker bundle's check, one isolate per worker, each compiling the hot loops
 * anew) and merging partials costs more than a second core gives back.
 * Measured on the 2-core bench machine (2026-12-07, loaded): 100k full-size
 * packets in-process 0.68-1.03 s against 0.96-1.08 s on one worker and
 * 1.76-1.86 s on two (bench/suites/simulate.ts measures each size).
 * Not higher: at 1M packets in-process costs about the CPU of one worker
 * (2026-12-07, load 6-7: 1.18-1.28 s against 1.17-1.35 s, `--no-hash`), but
 * an in-process run keeps the main thread, so simulate's SHA-256 of the
 * capture runs after it instead of beside it (with the hash: 4.6-7.9 s wall
 * against 3.9 s on one worker).
 */
export const IN_PROCESS_PACKETS = 500_000;

/**
 * On two cores or fewer, a capture cut into byte ranges runs on one worker
 * (see chooseWorkers), so nothing runs beside it but the main thread's own
 * work. When the main thread has none (`mainIdle`: no SHA-256 of the capture),
 * the run stays in-process up to this many packets: the worker's start (its
 * isolate, the bundle, the merge's own warm-up) costs more than it gives.
 * Measured on the 2-vCPU bench machine (2026-12-07 07:50 UTC, quiet,
 * `simulate --no-hash --json`, 1M full-size packets): 0.67-0.68 s in-process
 * against 0.78-0.83 s on one worker; at 5M 2.07 s against 2.10 s. Not higher:
 * an in-process run cannot draw its progress line (the loop holds the thread),
 * and 2M packets take about a second and a half.
 */
export const IN_PROCESS_IDLE_PACKETS = 2_000_000;

/** The worker count chosen for a run's inputs when none is given, and the packet estimate it came from. */
export interface WorkerChoice {
  workers: number;
  /** Packets the inputs were estimated to hold. */
  packets: number;
  /** Why fewer workers than cores, when that is the choice. */
  why?: string;
}

/**
 * Chooses the worker count from the inputs' size: in-process under
 * IN_PROCESS_PACKETS, else one worker per CPU (defaultWorkers), except one
 * worker for a capture cut into byte ranges (`byteRanges`: simulate's shares)
 * on two cores or fewer (see below). `cores` defaults to defaultWorkers().
 * A capture's packets are estimated from its size and the records in its first MiB.
 */
export function chooseWorkers(inputs: InputSpec[], o: { cores?: number; byteRanges?: boolean; mainIdle?: boolean } = {}): WorkerChoice {
  const cores = o.cores ?? defaultWorkers();
  let packets = 0;
  for (const s of inputs) packets += estimatePackets(s);
  if (packets < IN_PROCESS_PACKETS) return { workers: 0, packets };
  // A capture cut into byte ranges carries each connection's conntrack state across the cut with
  // a first pass over the earlier range (startStates below). On two cores that pass costs more than
  // the second core gives, even with the first range counting beside it and the later one cut
  // smaller (share-weights.ts): measured on this project's 2-vCPU machine, 2026-12-07 06:10 UTC,
  // quiet, `simulate --pcap` of 5M packets 2.5-3.8 s on one worker against 2.6-3.6 s on two, of 1M
  // 0.9-1.3 s against 1.2-1.3 s (the two vCPUs share the memory bandwidth the page-cache copies
  // need: our C job gains only 1.15-1.43 from its second thread there). With more cores the
  // ranges' first passes run side by side and the split wins.
  if (o.byteRanges && cores <= 2 && inputs.some((s) => s.kind === 'pcap' && judges(s))) {
    if (o.mainIdle && packets < IN_PROCESS_IDLE_PACKETS) return { workers: 0, packets, why: 'one thread does the work either way, and starting a worker costs more than it gives when nothing runs beside it' };
    return { workers: 1, packets, why: 'two workers would carry conntrack state across their edge with a first pass over the earlier half, which costs more than a second core gives' };
  }
  return { workers: cores, packets };
}

/** About how many packets an input holds (cheap: at most one MiB read). */
function estimatePackets(s: InputSpec): number {
  switch (s.kind) {
    case 'synthetic':
      return s.packets ?? (s.params?.flows ?? 2000) * 20;
    case 'csv':
      // one tuple a line, ~40 bytes a line
      return statSync(s.path).size / 40;
    case 'pcap': {
      if (s.path === '-') return Infinity;
      const size = statSync(s.path).size;
      if (s.limit !== undefined) return s.limit;
      return size / averageRecordBytes(s.path);
    }
  }
}

/**
 * Mean bytes a record (header included) of a classic pcap, from its first MiB
 * and the MiB after its middle record boundary (planShares resynchronises
 * there): a capture's start is often unlike the rest (connections opening).
 * pcapng, gzip and the like: 1000.
 */
function averageRecordBytes(path: string): number {
  const buf = Buffer.alloc(1 << 20);
  const fd = openSync(path, 'r');
  try {
    const n = readSync(fd, buf, 0, 24, 0);
    if (n < 24) return 1000;
    const magic = buf.readUInt32LE(0);
    const le = magic === 0xa1b2c3d4 || magic === 0xa1b23c4d;
    const be = magic === 0xd4c3b2a1 || magic === 0x4d3cb2a1;
    if (!le && !be) return 1000;
    let offsets = [24];
    try {
      offsets = [24, ...planShares(path, 2).slice(1).map((r) => r.start)];
    } catch { /* one sample */ }
    let bytes = 0, records = 0;
    for (const at of offsets) {
      const got = readSync(fd, buf, 0, buf.length, at);
      let pos = 0;
      while (pos + 16 <= got) {
        const incl = le ? buf.readUInt32LE(pos + 8) : buf.readUInt32BE(pos + 8);
        if (incl > 262144 || pos + 16 + incl > got) break;
        pos += 16 + incl;
        records++;
      }
      bytes += pos;
    }
    return records > 0 ? bytes / records : 1000;
  } finally {
    closeSync(fd);
  }
}

export async function runSimulation(o: RunOptions): Promise<RunOutput> {
  const r = await runShares(o, (run, parts, task) => run<MergeTask, MergedRun>(task, runMerge, transferables(parts)));
  return { merged: r.out, workers: r.workers, workersChosen: r.workersChosen, elapsedS: r.elapsedS, sharesS: r.sharesS, peakRss: r.peakRss };
}

/** What runShares' `finish` is given: the pool, the shares' partials, and the merge task over them. */
export type FinishShares<X> = (run: PoolRun, parts: SimPartial[], merge: MergeTask) => Promise<X>;

/**
 * Runs the planned shares, then `finish` on the pool while the shares'
 * spilled source runs still exist (the merge, or a shard's partial file).
 */
export async function runShares<X>(o: RunOptions, finish: FinishShares<X>): Promise<{ out: X; workers: number; workersChosen: WorkerChoice | null; elapsedS: number; sharesS: number; peakRss: number }> {
  const t0 = performance.now();
  // No worker count given: chosen from the inputs' size (a shard's plan was cut for defaultWorkers).
  const auto = o.workers === undefined && !o.plan ? chooseWorkers(o.inputs, { byteRanges: true, mainIdle: o.mainIdle ?? false }) : null;
  const workers = auto ? auto.workers : o.workers ?? defaultWorkers();
  const flowTimeout = o.flowTimeout ?? DEFAULT_FLOW_TIMEOUT;
  // Each share knows its place in its stream: byte ranges of a capture, and rotated files, are one stream cut in pieces.
  // One capture cut for several workers, its conntrack state carried across the cuts: the later
  // ranges are smaller by their wait for the first pass over the earlier ones (share-weights.ts).
  const carries = workers > 1 && o.inputs.length === 1 && o.inputs[0]!.kind === 'pcap' && judges(o.inputs[0]!);
  const plan = o.plan ?? planRun(o.inputs, workers, undefined, carries ? shareWeights(workers) : undefined);
  const shares = plan.shares;
  const topSources = o.topSources ?? true;
  // The runs live in a directory of this run's own, removed when it ends (whatever happened,
  // Ctrl-C included: temp-dir.ts).
  const spillDir = topSources && (o.connections ?? true) ? makeTempDir('clusterip-sim-sources-') : null;
  const spill: SourceSpill | null = spillDir ? { dir: spillDir.path, budget: o.sourceBudget ?? DEFAULT_SOURCE_BUDGET } : null;
  const progressBuf = new SharedArrayBuffer(8 * Math.max(1, shares.length));
  const progress = new Float64Array(progressBuf);
  const tasks: SimTask[] = shares.map(({ input, chain }, slot) => ({ input, chain, flowTimeout, topSources, sourceSpill: spill, connections: o.connections ?? true, selectors: o.selectors, clusterIp: o.clusterIp, mixed: o.mixed, tcpLoose: o.tcpLoose ?? true, progress: { buffer: progressBuf, slot } }));
  let peakRss = process.memoryUsage().rss;
  const tick = (): void => {
    const rss = process.memoryUsage().rss;
    if (rss > peakRss) peakRss = rss;
    let done = 0;
    for (let i = 0; i < progress.length; i++) done += progress[i]!;
    o.onProgress?.(done, rss);
  };
  const timer = setInterval(tick, 200);
  const dirDep = o.selectors.map((s) => directionDependent(buildSelector(s)));
  const sink = { selectors: o.selectors, buckets: o.buckets, dirDep, mixed: o.mixed, sources: topSources, spill };
  let out: X;
  let sharesS = 0;
  try {
    out = await onPool(workers, tasks.length, async (pooled) => {
      const run = process.env.CLUSTERIP_SIM_DEBUG ? timed(pooled, t0) : pooled;
      // One thread: the shares run one after another, in stream order, so each share's end state is the
      // next one's start state and no first pass is needed (only over a shard's earlier files).
      const inOrder = workers <= 1;
      let parts: SimPartial[];
      if (inOrder) {
        await startStates(run, tasks, plan.before ?? [], true, () => {});
        parts = await runInOrder(run, tasks);
      } else {
        // Each share counts as soon as its start state is known: the first share of a stream at once,
        // beside the first passes over it (share-weights.ts sized the later shares for that wait).
        const running = new Map<SimTask, Promise<SimPartial>>();
        await startStates(run, tasks, plan.before ?? [], false, (t) => running.set(t, run<SimTask, SimPartial>(t, processShare)));
        parts = await Promise.all(tasks.map((t) => running.get(t)!));
      }
      sharesS = (performance.now() - t0) / 1000;
      clearInterval(timer);
      tick();
      // The merge runs in a worker too: its code is already compiled there (the main thread would run
      // the join and the source tables cold), and the partials move to it without a copy.
      return finish(run, parts, { kind: 'merge', parts, sink, flowTimeout, clusterIp: o.clusterIp });
    });
  } finally {
    clearInterval(timer);
    spillDir?.remove();
  }
  const rss = process.memoryUsage().rss;
  if (rss > peakRss) peakRss = rss;
  return { out, workers, workersChosen: auto, elapsedS: (performance.now() - t0) / 1000, sharesS, peakRss };
}

/**
 * Conntrack state across share boundaries: a connection's first packets may
 * sit in an earlier share than the rest, and its packets' verdicts depend on
 * them. Each share but the last of a stream is first scanned for what it does
 * to the conntrack model's table (ct-model.ts Judge.transfer, in parallel);
 * each share's counting pass composes the transfers before it, in stream
 * order, into its start state: every verdict equals a single pass.
 * Costs one more read of those shares; only runs cut in several shares on
 * several threads pay it (`inOrder`, one thread: only a shard's earlier files
 * are scanned; runInOrder carries the state from share to share).
 *
 * `ready(task)` is called for each task once its start state is set (at once
 * for a task that needs none), in stream order, so the caller can start its
 * counting pass while the later first passes still run; it returns when
 * every task has been made ready.
 */
async function startStates(run: PoolRun, tasks: SimTask[], before: InputSpec[], inOrder: boolean, ready: (t: SimTask) => void): Promise<void> {
  const chains = new Map<number, SimTask[]>();
  for (const t of tasks) if (judges(t.input)) chains.set(t.chain.input, [...(chains.get(t.chain.input) ?? []), t]);
  if (inOrder) {
    // runInOrder passes each share's end state on: only the first share of a chain needs one composed (a shard's lead).
    for (const [k, chain] of chains) {
      chain.sort((a, b) => a.chain.share - b.chain.share);
      chains.set(k, chain.slice(0, 1));
      for (let j = 0; j + 1 < chain.length; j++) chain[j]!.wantCtEnd = true;
    }
  }
  // A shard of a run split across machines (shard-plan.ts `before`): what precedes its block, where this machine can read it.
  const readable = before.every((s) => s.kind !== 'pcap' || s.path === '-' || existsSync(s.path));
  if (!readable) process.stderr.write('simulate: the capture files before this shard\'s block are not on this machine, so the conntrack state at its start is not read: connections running into the shard are judged from their first packet in it, which may differ from a single run\n');
  const waiting = new Set<SimTask>();
  const work: { chain: SimTask[]; lead: number; scans: Promise<CtTransfer>[] }[] = [];
  for (const chain of chains.values()) {
    chain.sort((a, b) => a.chain.share - b.chain.share);
    const lead = chain[0]!.chain.input === 0 && readable ? before : [];
    if (chain.length + lead.length < 2) continue;
    // A stream's first share, without a lead, starts from the empty table: it counts beside the first passes.
    for (const t of lead.length ? chain : chain.slice(1)) waiting.add(t);
    work.push({ chain, lead: lead.length, scans: [] });
  }
  // The shares that need no start state are handed on before any first pass is queued (the pool runs tasks in order).
  for (const t of tasks) if (!waiting.has(t)) ready(t);
  for (const w of work) {
    const { chain, lead } = w, t0 = chain[0]!;
    const scan = (input: InputSpec, first: boolean): Promise<CtTransfer> =>
      run<CtScanTask, CtTransfer>({ kind: 'ct-scan', input, chain: { ...t0.chain, first }, flowTimeout: t0.flowTimeout, tcpLoose: t0.tcpLoose ?? true }, scanShare);
    w.scans = [...before.slice(0, lead).map((s, k) => scan(s, k === 0)), ...chain.slice(0, -1).map((t) => scan(t.input, t.chain.first))];
  }
  for (const { chain, lead, scans } of work) {
    const transfers: CtTransfer[] = [];
    for (let k = 0; k < scans.length; k++) {
      transfers.push(await scans[k]!);
      const t = chain[k + 1 - lead];
      if (!t) continue;
      // The share composes its start state itself, in its worker (one table built once, not here and there).
      t.ctCompose = transfers.slice();
      ready(t);
    }
  }
}

/**
 * Runs the shares one after another in stream order (one thread, so nothing is lost): a share that
 * asked for its end state (startStates) hands it to the next share of its stream as its start state,
 * the state a single pass would have there. The end states are dropped before the merge.
 */
async function runInOrder(run: PoolRun, tasks: SimTask[]): Promise<SimPartial[]> {
  const order = tasks.map((_, j) => j).sort((a, b) => tasks[a]!.chain.input - tasks[b]!.chain.input || tasks[a]!.chain.share - tasks[b]!.chain.share);
  const parts: SimPartial[] = new Array(tasks.length);
  let end: { input: number; state: CtState } | null = null;
  for (const j of order) {
    const t = tasks[j]!;
    if (end && end.input === t.chain.input) t.ctStart = end.state;
    const p = await run<SimTask, SimPartial>(t, processShare);
    end = p.ctEnd ? { input: t.chain.input, state: p.ctEnd } : null;
    delete p.ctEnd;
    parts[j] = p;
  }
  return parts;
}

/**
 * Runs tasks on a piscina pool of `workers` threads (each task is one large
 * share, never single packets), or in this thread when workers = 0.
 */
export async function runTasks<T, R>(tasks: T[], workers: number, inProcess: (t: T) => R): Promise<R[]> {
  return onPool(workers, tasks.length, (run) => Promise.all(tasks.map((t) => run<T, R>(t, inProcess))));
}

/** Runs a task on the pool (transferring `transfer`), or calls `inProcess` when there is no pool. */
export type PoolRun = <T, R>(task: T, inProcess: (t: T) => R, transfer?: ArrayBuffer[]) => Promise<R>;

/**
 * Gives `body` a way to run tasks on a piscina pool of `workers` threads
 * (the worker entry dispatches on the task's shape), or in this thread when
 * workers = 0; the pool lives as long as `body`.
 */
export async function onPool<X>(workers: number, tasks: number, body: (run: PoolRun) => Promise<X>): Promise<X> {
  if (workers === 0) return body(async (t, inProcess) => inProcess(t));
  // The prebuilt bundle (checked fresh, rebuilt if not) starts a worker far faster than tsx (bundle.ts).
  // piscina loads only when there is a pool: an in-process run (small inputs) skips its modules.
  const [{ filename, execArgv }, { Piscina }] = await Promise.all([workerEntry(), import('piscina')]);
  const pool = new Piscina({ filename, execArgv, minThreads: Math.max(1, Math.min(workers, tasks)), maxThreads: workers, idleTimeout: 1000 });
  try {
    return await body((t, _inProcess, transfer) => pool.run(t, transfer ? { transferList: transfer } : undefined));
  } finally {
    await pool.destroy();
  }
}

/**
 * A PoolRun that writes each task's start and end (seconds since `t0`) to
 * stderr: CLUSTERIP_SIM_DEBUG's timeline of a run (which share waited for
 * which first pass, how long the merge took).
 */
function timed(run: PoolRun, t0: number): PoolRun {
  const at = (): string => ((performance.now() - t0) / 1000).toFixed(3);
  return async (task, inProcess, transfer) => {
    const t = task as { kind?: string; chain?: SimTask['chain'] };
    const name = `${t.kind ?? 'count'}${t.chain ? ` share ${t.chain.share} of stream ${t.chain.input}` : ''}`;
    const start = at();
    const r = await run(task, inProcess, transfer);
    process.stderr.write(`timeline: ${name}: ${start} -> ${at()} s\n`);
    return r;
  };
}

/** Every distinct ArrayBuffer under `v` (plain objects, arrays, typed arrays). */
function transferables(v: unknown): ArrayBuffer[] {
  const out = new Set<ArrayBuffer>();
  collectBuffers(v, out);
  return [...out];
}

/**
 * The walk behind transferables. It fills one set and copies it out once: a copy per level (as
 * before) was quadratic, 3.9 of 13 s of an in-run merge over 1,000 rotated files (issue 21).
 */
function collectBuffers(v: unknown, out: Set<ArrayBuffer>): void {
  if (ArrayBuffer.isView(v)) {
    if (v.buffer instanceof ArrayBuffer) out.add(v.buffer);
  } else if (Array.isArray(v)) for (const x of v) collectBuffers(x, out);
  else if (v && typeof v === 'object') for (const x of Object.values(v)) collectBuffers(x, out);
}
