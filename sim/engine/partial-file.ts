/**
 * A shard's partial result on disk: what `simulate --shard I/N --partial OUT`
 * writes and `merge` reads. It holds the shard's share partials exactly as
 * the pool hands them to merge.ts (per-configuration counters, the
 * connections open at the shares' edges, the exact source counters behind
 * the heaviest sources, the seed band's loads), so a merge of every shard's
 * partial is the merge a single run does.
 *
 * Layout (all integers little-endian):
 *   bytes 0-7    magic "CIPSPART"
 *   bytes 8-11   format version (u32)
 *   bytes 12-15  header length H (u32)
 *   H bytes      header, JSON (UTF-8): tool, shard, plan, job, files, body length and SHA-256
 *   the body     gzip of: skeleton length S (u32), skeleton JSON, then each typed array's bytes (8-aligned)
 * The skeleton is the partials' plain data with every typed array replaced
 * by {"$a": type, "o": offset, "n": length} and every non-finite number by
 * {"$n": "Infinity"}, so new fields of SimPartial travel without format code
 * (a change of their meaning still bumps PARTIAL_FORMAT).
 *
 * Checked on read: magic, format version, the tool version that wrote it,
 * the body's length and hash; merge-partials.ts checks that a set of
 * partials is one job and one shard plan.
 */
import { createHash } from 'node:crypto';
import { closeSync, openSync, readFileSync, writeSync } from 'node:fs';
import { gunzipSync, gzipSync } from 'node:zlib';
import { DataError } from '../core/errors.ts';
import { TOOL, VERSION } from '../core/version.ts';
import type { InputFile } from '../core/result.ts';
import { RUN_BYTES, RUN_U32, SRC_KW, newSourceTable, type SourceCounts } from './source-table.ts';
import type { ShardMode, ShardSpec } from './shard-plan.ts';
import type { SelectorSpec } from '../select/selector.ts';
import { buildSelector } from '../select/build.ts';
import { directionDependent } from './share.ts';
import { mergePartials, type MergedRun } from './merge.ts';
import type { SimPartial } from './task.ts';
import type { SplitPass } from './frag-split.ts';
import { formatClusterIp, type ClusterIp } from './cluster-filter.ts';

/**
 * Bumped whenever what a partial holds changes meaning. 2: shares carry the
 * fragments whose datagram they could not finish (SimPartial.carry) instead
 * of counting them as unresolved; a format-1 partial would lose them. 3: the
 * conntrack model's verdicts (cluster/ct-model.ts) are in the counts, and its
 * counts in SimPartial.ct; a format-2 shard counted INVALID packets on a node.
 */
export const PARTIAL_FORMAT = 3;
const MAGIC = 'CIPSPART';
const PRELUDE = 16;

/** The plan every shard of one run shares: how the inputs were dealt, and which inputs. */
export interface PartialPlan {
  count: number;
  mode: ShardMode;
  /** The inputs as given on every machine (paths; for one file split by bytes, with its size). */
  inputs: string[];
}

/** What a partial says about itself, readable without decompressing the body. */
export interface PartialHeader {
  format: number;
  tool: { name: string; version: string };
  shard: ShardSpec;
  plan: PartialPlan;
  /** Everything that shapes the result besides the traffic (configurations, cluster IP, timeout, ...): JSON, the same on every shard. */
  job: unknown;
  /** The input files this shard reports in the result's header (input index, then the file as the result lists it). */
  files: { input: number; file: InputFile }[];
  /** Byte range read, for a shard of one file split by bytes. */
  range?: { start: number; end: number };
  /** The split-datagram pass over this shard's stretch (frag-split.ts), when the job counts one and the shard saw fragments. */
  split?: SplitPass;
  body: { bytes: number; sha256: string };
}

/** A partial as read: its header and the shares' partials. */
export interface PartialFile {
  path: string;
  header: PartialHeader;
  parts: SimPartial[];
}

const ARRAYS = { Float64Array, Float32Array, Int32Array, Uint32Array, Int16Array, Uint16Array, Int8Array, Uint8Array } as const;
type ArrayName = keyof typeof ARRAYS;
type Typed = InstanceType<(typeof ARRAYS)[ArrayName]>;

/** Source counters of spilled runs (files under the run's temp directory) folded into memory: a partial must not point at another machine's files. */
export function foldSourceRuns(parts: SimPartial[]): SimPartial[] {
  return parts.map((p) => {
    const s = p.summary.sources;
    if (s.runs.length === 0) return p;
    const t = newSourceTable(s.count);
    for (let i = 0; i < s.count; i++) t.add(s.keys, i * SRC_KW, s.vals[i * 2]!, s.vals[i * 2 + 1]!);
    for (const path of s.runs) {
      const b = readFileSync(path);
      const u = new Uint32Array(b.buffer, b.byteOffset, b.byteLength >>> 2), f = new Float64Array(b.buffer, b.byteOffset, b.byteLength >>> 3);
      for (let r = 0; r < b.byteLength / RUN_BYTES; r++) t.add(u, r * RUN_U32, f[r * 6 + 4]!, f[r * 6 + 5]!);
    }
    const sources: SourceCounts = t.columns();
    return { ...p, summary: { ...p.summary, sources } };
  });
}

/** Writes a partial (the parts must have no spilled runs: foldSourceRuns). Returns the bytes written. */
export function writePartial(path: string, h: Omit<PartialHeader, 'format' | 'tool' | 'body'>, parts: SimPartial[]): number {
  const blobs: Typed[] = [];
  let at = 0;
  const skeleton = JSON.stringify(parts, (_k, v: unknown) => {
    if (ArrayBuffer.isView(v) && !(v instanceof DataView)) {
      const a = v as Typed, name = a.constructor.name as ArrayName;
      if (!(name in ARRAYS)) throw new Error(`partial: cannot store a ${name}`);
      const o = at;
      blobs.push(a);
      at += (a.byteLength + 7) & ~7;
      return { $a: name, o, n: a.length };
    }
    if (typeof v === 'number' && !Number.isFinite(v)) return { $n: String(v) };
    return v;
  });
  const sk = Buffer.from(skeleton, 'utf8');
  const raw = Buffer.alloc(4 + sk.length + ((8 - ((4 + sk.length) & 7)) & 7) + at);
  raw.writeUInt32LE(sk.length, 0);
  sk.copy(raw, 4);
  const base = raw.length - at;
  let o = base;
  for (const a of blobs) {
    // Little-endian on every machine we run on (x86-64, arm64); the reader checks the byte order it was written in.
    Buffer.from(a.buffer, a.byteOffset, a.byteLength).copy(raw, o);
    o += (a.byteLength + 7) & ~7;
  }
  const body = gzipSync(raw, { level: 6 });
  const header: PartialHeader = { format: PARTIAL_FORMAT, tool: TOOL, ...h, body: { bytes: body.length, sha256: createHash('sha256').update(body).digest('hex') } };
  const hj = Buffer.from(JSON.stringify({ ...header, littleEndian: LITTLE }), 'utf8');
  const pre = Buffer.alloc(PRELUDE);
  pre.write(MAGIC, 0, 'latin1');
  pre.writeUInt32LE(PARTIAL_FORMAT, 8);
  pre.writeUInt32LE(hj.length, 12);
  // '-': standard output, for engines that collect each job's output (GNU parallel --results).
  const fd = path === '-' ? 1 : openSync(path, 'w');
  try {
    for (const b of [pre, hj, body]) for (let off = 0; off < b.length; ) off += writeAllOnce(fd, b, off);
  } finally {
    if (fd !== 1) closeSync(fd);
  }
  return PRELUDE + hj.length + body.length;
}

/** One write of what is left from `off` (a pipe may take less, or be full for a moment: EAGAIN is retried). */
function writeAllOnce(fd: number, b: Buffer, off: number): number {
  try {
    return writeSync(fd, b, off, b.length - off);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EAGAIN') return 0;
    throw e;
  }
}

const LITTLE = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/** Reads the header only (refuses what is not a partial of this format and tool version, naming the file and byte). */
export function readPartialHeader(path: string, bytes = readFileSync(path)): PartialHeader {
  if (bytes.length < PRELUDE || bytes.toString('latin1', 0, 8) !== MAGIC) throw new DataError(`${path}: byte 0`, `not a clusterip-sim partial (write one with \`simulate --shard I/N --partial ${path}\`)`);
  const format = bytes.readUInt32LE(8);
  if (format !== PARTIAL_FORMAT) throw new DataError(`${path}: byte 8`, `partial format ${format}, this clusterip-sim ${VERSION} reads format ${PARTIAL_FORMAT}: rerun the shard with this version`);
  const hl = bytes.readUInt32LE(12);
  if (PRELUDE + hl > bytes.length) throw new DataError(`${path}: byte ${bytes.length}`, `partial is cut short inside its header (${bytes.length - PRELUDE} of ${hl} bytes)`);
  let h: PartialHeader & { littleEndian?: boolean };
  try {
    h = JSON.parse(bytes.toString('utf8', PRELUDE, PRELUDE + hl)) as PartialHeader & { littleEndian?: boolean };
  } catch (e) {
    throw new DataError(`${path}: byte ${PRELUDE}`, `partial header is not JSON (${e instanceof Error ? e.message : String(e)})`);
  }
  if (h.tool?.version !== VERSION) throw new DataError(`${path}: header tool.version`, `written by clusterip-sim ${h.tool?.version ?? '?'}, this is ${VERSION}: every shard and the merge must run one version`);
  if (h.littleEndian !== LITTLE) throw new DataError(`${path}: header littleEndian`, `written on a ${h.littleEndian ? 'little' : 'big'}-endian machine, read on a ${LITTLE ? 'little' : 'big'}-endian one`);
  return h;
}

/** Reads and checks a whole partial. */
export function readPartial(path: string): PartialFile {
  const bytes = readFileSync(path);
  const header = readPartialHeader(path, bytes);
  const at = PRELUDE + bytes.readUInt32LE(12);
  const body = bytes.subarray(at);
  if (body.length !== header.body.bytes) throw new DataError(`${path}: byte ${bytes.length}`, `partial body is ${body.length} bytes, its header says ${header.body.bytes} (cut short or appended to)`);
  if (createHash('sha256').update(body).digest('hex') !== header.body.sha256) throw new DataError(`${path}: byte ${at}`, `partial body does not match its SHA-256 (damaged in transit?)`);
  let raw: Buffer;
  try {
    raw = gunzipSync(body);
  } catch (e) {
    throw new DataError(`${path}: byte ${at}`, `partial body does not decompress (${e instanceof Error ? e.message : String(e)})`);
  }
  const sl = raw.readUInt32LE(0);
  const base = 4 + sl + ((8 - ((4 + sl) & 7)) & 7);
  // One aligned copy of the array bytes: every typed array is a view into it.
  const store = new ArrayBuffer(raw.length - base);
  new Uint8Array(store).set(raw.subarray(base));
  const parts = JSON.parse(raw.toString('utf8', 4, 4 + sl), (_k, v: unknown) => {
    if (v && typeof v === 'object' && '$a' in v) {
      const d = v as { $a: ArrayName; o: number; n: number };
      const C = ARRAYS[d.$a];
      if (!C || d.o + d.n * C.BYTES_PER_ELEMENT > store.byteLength) throw new DataError(`${path}: byte ${at}`, `partial body names an array outside it`);
      return new C(store, d.o, d.n);
    }
    if (v && typeof v === 'object' && '$n' in v) return Number((v as { $n: string }).$n);
    return v;
  }) as SimPartial[];
  return { path, header, parts };
}

/** What of a partial's `job` the merge itself reads (the command line's job has more: ids, names, input kind). */
export interface MergeJob {
  configs: { spec: SelectorSpec }[];
  mixed: number[] | null;
  flowTimeout: number;
  topSources: boolean;
  clusterIp: ClusterIp | null;
}

/** The merge of every shard's partials: what the single run's merge gives (merge.ts, in this thread). */
export function mergePartialSet(set: PartialSet): MergedRun {
  const job = set.header.job as MergeJob;
  const specs = job.configs.map((c) => c.spec);
  const selectors = specs.map((s) => buildSelector(s));
  const sink = { selectors: specs, buckets: selectors.map((s) => s.buckets), dirDep: selectors.map(directionDependent), mixed: job.mixed, sources: job.topSources, spill: null };
  return mergePartials(set.parts, sink, job.flowTimeout, job.clusterIp);
}

/** Every shard's partial, in shard order, checked to be one run: one job, one plan, each shard once. */
export interface PartialSet {
  header: PartialHeader;
  /** The shares' partials of every shard. */
  parts: SimPartial[];
  /** The input files, in input order, as the single run lists them. */
  files: InputFile[];
  /** Every shard's split-datagram pass, in shard order (stream order): joinSplitPasses. */
  splits: SplitPass[];
}

/**
 * Reads partials and checks that they are the shards of one run: the same
 * job (configurations, cluster IP, timeout, ...) and the same shard plan,
 * every shard 0..N-1 exactly once. Errors name the file and what differs.
 */
export function readPartialSet(paths: string[]): PartialSet {
  if (paths.length === 0) throw new DataError('merge', 'no partials given');
  const byShard = new Map<number, PartialFile>();
  let first: PartialFile | null = null;
  for (const path of paths) {
    const p = readPartial(path);
    if (!first) first = p;
    else {
      const a = first.header, b = p.header;
      const job = firstDifference(a.job, b.job, 'job');
      if (job) throw new DataError(`${path}: header ${job}`, `another configuration than ${first.path} (${describe(job, a.job, b.job)}): partials of different runs do not merge`);
      const pa = { ...a.plan, count: a.shard.count }, pb = { ...b.plan, count: b.shard.count };
      const plan = firstDifference(pa, pb, 'plan');
      if (plan) throw new DataError(`${path}: header ${plan}`, `another shard plan than ${first.path} (${describe(plan, pa, pb)}): every shard must run with the same inputs and the same N`);
    }
    const prev = byShard.get(p.header.shard.index);
    if (prev) throw new DataError(`${path}: header shard`, `shard ${p.header.shard.index}/${p.header.shard.count} again (also ${prev.path})`);
    byShard.set(p.header.shard.index, p);
  }
  const N = first!.header.shard.count;
  const missing = Array.from({ length: N }, (_, i) => i).filter((i) => !byShard.has(i));
  if (missing.length) throw new DataError('merge', `${missing.length} of ${N} shards missing: ${missing.slice(0, 20).map((i) => `${i}/${N}`).join(', ')}${missing.length > 20 ? ', ...' : ''} (the run is all of them)`);
  const ordered = [...byShard.keys()].sort((x, y) => x - y).map((i) => byShard.get(i)!);
  // Byte ranges of one file must tile it: a shard read with another file of the same name would not.
  const ranges = ordered.filter((p) => p.header.range);
  for (let i = 1; i < ranges.length; i++) {
    if (ranges[i]!.header.range!.start !== ranges[i - 1]!.header.range!.end) throw new DataError(`${ranges[i]!.path}: header range`, `starts at byte ${ranges[i]!.header.range!.start}, but ${ranges[i - 1]!.path} ends at ${ranges[i - 1]!.header.range!.end}: the shards read different files`);
  }
  const files = ordered.flatMap((p) => p.header.files).sort((x, y) => x.input - y.input).map((f) => f.file);
  const splits = ordered.flatMap((p) => (p.header.split ? [p.header.split] : []));
  return { header: first!.header, parts: ordered.flatMap((p) => p.parts), files, splits };
}

/** The path (dotted keys) of the first place two JSON values differ, or null. */
function firstDifference(a: unknown, b: unknown, at: string): string | null {
  if (a === b) return null;
  if (a && b && typeof a === 'object' && typeof b === 'object') {
    const keys = [...new Set([...Object.keys(a), ...Object.keys(b)])];
    for (const k of keys) {
      const d = firstDifference((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k], `${at}.${k}`);
      if (d) return d;
    }
    return null;
  }
  return at;
}

function describe(path: string, a: unknown, b: unknown): string {
  // The cluster address in its text form, not its numbers (an IPv6 one differs lane by lane).
  if (path.startsWith('job.clusterIp')) {
    const ip = (j: unknown): string => {
      const c = (j as { clusterIp?: ClusterIp | null } | undefined)?.clusterIp;
      return c === null || c === undefined ? 'none' : formatClusterIp(c);
    };
    return `cluster address ${ip(b)} here, ${ip(a)} there`;
  }
  const get = (v: unknown): unknown => path.split('.').slice(1).reduce<unknown>((x, k) => (x && typeof x === 'object' ? (x as Record<string, unknown>)[k] : undefined), v);
  return `${path}: ${JSON.stringify(get(b))} here, ${JSON.stringify(get(a))} there`;
}
