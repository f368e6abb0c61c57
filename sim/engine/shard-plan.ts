/**
 * Which shares a run (or one shard of a run split across machines) reads, and
 * where each sits in its stream. One plan for both: a single run is the plan
 * with one shard, so a merge of shards joins the same streams in the same
 * order as the single run does (merge.ts joins connections cut by any share
 * edge, whatever machine read each side).
 *
 * Several capture files are one capture cut in pieces, given in time order
 * (rotated files from `tcpdump -C` / `-G`): one stream, file after file, so a
 * connection running from one file into the next is one connection. A shard
 * takes a block of whole files, or, for a single file, one byte range of it
 * (the byte-range split the workers already use, traffic/share-plan.ts).
 * Every machine computes the same plan from the same argument list: in file
 * mode it never opens a file outside its own block (the files stay where
 * they were captured).
 */
import { UsageError } from '../core/errors.ts';
import { planShares } from '../traffic/share-plan.ts';
import { planInputShares } from './inputs.ts';
import type { SimTask, InputSpec } from './task.ts';

/** Shard `index` (0-based) of `count`. */
export interface ShardSpec {
  index: number;
  count: number;
}

/** One share to run: its input and its place in its stream. */
export interface PlannedShare {
  input: InputSpec;
  chain: SimTask['chain'];
}

/** How the inputs are dealt to shards: blocks of whole files, byte ranges of one file, flows of a generator, or not split. */
export type ShardMode = 'files' | 'bytes' | 'flows' | 'whole';

export interface ShardWork {
  shares: PlannedShare[];
  mode: ShardMode;
  /** Inputs (indices into the run's inputs) whose file this shard reports in the result's header: each file is reported by exactly one shard. */
  reports: number[];
  /** The byte range a 'bytes' shard reads (absent when the file has fewer ranges than shards: the shard reads nothing). */
  range?: { start: number; end: number };
  /**
   * What precedes this shard's first share in its stream (earlier files, or the
   * file's earlier byte ranges), in order: read only for the conntrack model's
   * state at the shard's start (run.ts startStates), never counted.
   */
  before?: InputSpec[];
}

/**
 * Share numbers of one stream: file f's k-th worker share is f * STRIDE + k,
 * so the order is file order, then byte order, whatever the worker count
 * (at most 256 workers, run.ts).
 */
const STRIDE = 1 << 16;

/** Parses `--shard I/N` (I counted from 0, as JOB_COMPLETION_INDEX and GNU parallel's `{%}-1` are). */
export function parseShard(text: string): ShardSpec {
  const m = /^\s*(\d+)\s*\/\s*(\d+)\s*$/.exec(text);
  if (!m) throw new UsageError(`--shard '${text}': expected I/N, e.g. 0/4 (shard I of N, I counted from 0)`);
  const index = Number(m[1]), count = Number(m[2]);
  if (count < 1 || count > 1_000_000) throw new UsageError(`--shard '${text}': N must be in 1..1000000`);
  if (index >= count) throw new UsageError(`--shard '${text}': I must be in 0..${count - 1}`);
  return { index, count };
}

/**
 * The shares of shard `shard` (default: the whole run as one shard), each
 * input split further into at most `workers` shares where it can be.
 * `weights` (one per worker): a single capture's byte ranges in those
 * proportions (engine/share-weights.ts); other inputs split evenly.
 */
export function planRun(inputs: InputSpec[], workers: number, shard: ShardSpec = { index: 0, count: 1 }, weights?: readonly number[]): ShardWork {
  const { index: I, count: N } = shard;
  const w = Math.max(1, workers);
  const kinds = new Set(inputs.map((s) => s.kind));
  if (kinds.size > 1) throw new UsageError(`one kind of input per run (got ${[...kinds].join(' and ')})`);
  const kind = inputs[0]?.kind;
  if (kind === 'pcap') {
    const F = inputs.length;
    if (N > 1 && F === 1) return byteShard(inputs[0]!, shard);
    if (F < N) throw new UsageError(`--shard ${I}/${N}: ${F} capture files make at most ${F} shards (one file can be split into byte ranges: give it alone)`);
    // A block of consecutive files: lo..hi-1 (balanced by count; the plan never reads a file to size it).
    const lo = Math.floor((I * F) / N), hi = Math.floor(((I + 1) * F) / N);
    const shares: PlannedShare[] = [];
    for (let f = lo; f < hi; f++) {
      const parts = planInputShares(inputs[f]!, w, F === 1 && weights?.length === w ? weights : undefined);
      parts.forEach((input, k) => shares.push({ input, chain: { input: 0, share: f * STRIDE + k, first: f === 0 && k === 0, last: f === F - 1 && k === parts.length - 1 } }));
    }
    return { shares, mode: N > 1 ? 'files' : 'whole', reports: range(lo, hi), ...(lo > 0 ? { before: inputs.slice(0, lo) } : {}) };
  }
  if (kind === 'synthetic') {
    // A generator deals whole connections to shares (inputs.ts): a shard is every N-th of them.
    if (N > 1) {
      if (inputs.length !== 1) throw new UsageError(`--shard: one synthetic scenario at a time`);
      const input = planInputShares(inputs[0]!, N)[I]!;
      return { shares: [{ input, chain: { input: 0, share: I, first: true, last: true } }], mode: 'flows', reports: [] };
    }
    const shares = inputs.flatMap((s, input) => planInputShares(s, w).map((part, share) => ({ input: part, chain: { input, share, first: true, last: true } })));
    return { shares, mode: 'whole', reports: [] };
  }
  if (N > 1) throw new UsageError(`--shard ${I}/${N}: ${kind ?? 'this'} input cannot be split between machines (captures and synthetic scenarios can)`);
  const shares = inputs.flatMap((s, input) => planInputShares(s, w).map((part, share, all) => ({ input: part, chain: { input, share, first: share === 0, last: share === all.length - 1 } })));
  return { shares, mode: 'whole', reports: inputs.map((_, i) => i) };
}

/** Shard I of N over one capture: the I-th of N record-aligned byte ranges, read as one share. */
function byteShard(spec: InputSpec & { kind: 'pcap' }, { index: I, count: N }: ShardSpec): ShardWork {
  if (spec.limit !== undefined) throw new UsageError(`--shard: a packet limit counts from the start of the file, so the file cannot be split`);
  const ranges = planShares(spec.path, N);
  if (ranges.length === 1 && ranges[0]!.end === Number.MAX_SAFE_INTEGER) {
    throw new UsageError(`--shard ${I}/${N}: ${spec.path} cannot be split into byte ranges (compressed or not a regular file): rotate captures into files instead (tcpdump -C / -G)`);
  }
  // A small file yields fewer ranges than shards: the shards past them read nothing.
  const r = ranges[I];
  const shares: PlannedShare[] = r ? [{ input: { ...spec, start: r.start, end: r.end }, chain: { input: 0, share: I, first: I === 0, last: I === ranges.length - 1 } }] : [];
  const before = r ? ranges.slice(0, I).map((q) => ({ ...spec, start: q.start, end: q.end })) : [];
  return { shares, mode: 'bytes', reports: I === 0 ? [0] : [], ...(r ? { range: r } : {}), ...(before.length ? { before } : {}) };
}

const range = (lo: number, hi: number): number[] => Array.from({ length: hi - lo }, (_, i) => lo + i);
