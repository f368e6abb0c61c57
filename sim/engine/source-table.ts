/**
 * Exact packets and bytes per (configuration, node, source address): what the
 * heaviest sources per node are picked from. Exact counting needs one counter
 * per distinct source, so on a capture with millions of sources this table
 * would be the one part of a run that grows with the capture. Given a spill
 * directory and a budget, it keeps at most `budget` entries in memory: when
 * full, it writes them to a file sorted by key (a *run*) and starts over.
 * source-merge.ts later merges the runs of every worker by key, which sums
 * each source exactly (as the external sort of `sort | uniq -c` would), so
 * the answer is the same with or without spilling, and memory stays flat.
 *
 * Run file: records of 48 bytes, native byte order (the runs never leave
 * the machine that wrote them): 7 key words and a pad word (u32), then
 * packets and bytes (f64), sorted by the key words as unsigned numbers.
 */
import { closeSync, openSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { threadId } from 'node:worker_threads';
import { fmix32, mix32 } from '../hash/mix.ts';

/** Key words of a source counter: [config, node, family, a0, a1, a2, a3] (IPv4: a0, the rest 0). */
export const SRC_KW = 7;

/** Exact per-source counters as columns; `runs` are files holding more of them (sorted; see above). */
export interface SourceCounts {
  count: number;
  keys: Uint32Array;
  /** [packets, bytes] per entry. */
  vals: Float64Array;
  /** Spilled runs: paths of files of sorted records (empty when everything fit in memory). */
  runs: string[];
}

/** Where and when a source table spills. */
export interface SourceSpill {
  /** A directory the run owns (created and removed by engine/run.ts). */
  dir: string;
  /** Entries held in memory before a spill. */
  budget: number;
}

/**
 * Default budget: 2^18 entries, about 14 MB of table per worker. The
 * bench's 5M-packet capture (134k sources) never spills; a capture with
 * millions of sources spills a few runs per worker.
 */
export const DEFAULT_SOURCE_BUDGET = 1 << 18;

/** Run record layout (see the module comment). */
export const RUN_U32 = 12, RUN_BYTES = 48;
const WRITE_CHUNK = 4096;

let runSeq = 0;

/** An open-addressing table of SourceCounts, spilling sorted runs past its budget. */
export class SourceTable {
  count = 0;
  keys: Uint32Array;
  vals: Float64Array;
  readonly runs: string[] = [];
  private slots: Int32Array;
  private mask: number;
  private readonly spill: SourceSpill | null;

  constructor(cap = 1 << 12, spill: SourceSpill | null = null) {
    this.spill = spill;
    if (spill) while (cap > 16 && cap > spill.budget) cap >>= 1;
    this.keys = new Uint32Array(cap * SRC_KW);
    this.vals = new Float64Array(cap * 2);
    this.slots = new Int32Array(cap * 2).fill(-1);
    this.mask = cap * 2 - 1;
  }

  add(k: Uint32Array, ko: number, pk: number, by: number): void {
    let h = 0x2f1a8b3c;
    for (let w = 0; w < SRC_KW; w++) h = mix32(h, k[ko + w]!);
    let s = fmix32(h) & this.mask;
    const keys = this.keys;
    for (;;) {
      const idx = this.slots[s]!;
      if (idx < 0) break;
      const o = idx * SRC_KW;
      let eq = true;
      for (let w = 0; w < SRC_KW; w++) if (keys[o + w] !== k[ko + w]) { eq = false; break; }
      if (eq) { this.vals[idx * 2] = this.vals[idx * 2]! + pk; this.vals[idx * 2 + 1] = this.vals[idx * 2 + 1]! + by; return; }
      s = (s + 1) & this.mask;
    }
    if (this.spill && this.count >= this.spill.budget) { this.spillRun(); this.add(k, ko, pk, by); return; }
    if ((this.count + 1) * SRC_KW > this.keys.length) { this.grow(); this.add(k, ko, pk, by); return; }
    const idx = this.count++;
    for (let w = 0; w < SRC_KW; w++) keys[idx * SRC_KW + w] = k[ko + w]!;
    this.vals[idx * 2] = pk;
    this.vals[idx * 2 + 1] = by;
    this.slots[s] = idx;
  }

  private grow(): void {
    const n = this.count, oldK = this.keys, oldV = this.vals;
    const cap = (oldK.length / SRC_KW) * 2;
    this.keys = new Uint32Array(cap * SRC_KW);
    this.vals = new Float64Array(cap * 2);
    this.slots = new Int32Array(cap * 2).fill(-1);
    this.mask = cap * 2 - 1;
    this.count = 0;
    for (let i = 0; i < n; i++) this.add(oldK, i * SRC_KW, oldV[i * 2]!, oldV[i * 2 + 1]!);
  }

  /** Writes every entry to a new run file, sorted by key, and empties the table (its arrays stay). */
  private spillRun(): void {
    const path = join(this.spill!.dir, `sources-${process.pid}-${threadId}-${runSeq++}.run`);
    writeRun(path, { count: this.count, keys: this.keys, vals: this.vals, runs: [] });
    this.runs.push(path);
    this.count = 0;
    this.slots.fill(-1);
  }

  columns(): SourceCounts {
    return { count: this.count, keys: this.keys.slice(0, this.count * SRC_KW), vals: this.vals.slice(0, this.count * 2), runs: [...this.runs] };
  }
}

/** A fresh source table sized for `expected` entries (no spill: the caller holds that many already). */
export function newSourceTable(expected = 0): SourceTable {
  let cap = 1 << 12;
  while (cap < expected) cap <<= 1;
  return new SourceTable(cap);
}

/** Order of two keys (word by word, unsigned): negative, 0 or positive. */
export function compareKeys(a: Uint32Array, ao: number, b: Uint32Array, bo: number): number {
  for (let w = 0; w < SRC_KW; w++) {
    const x = a[ao + w]!, y = b[bo + w]!;
    if (x !== y) return x < y ? -1 : 1;
  }
  return 0;
}

/** Entry indices of `src`'s in-memory columns in key order. */
export function sortedOrder(src: SourceCounts): Int32Array {
  const order = new Int32Array(src.count);
  for (let i = 0; i < order.length; i++) order[i] = i;
  const k = src.keys;
  return order.sort((i, j) => compareKeys(k, i * SRC_KW, k, j * SRC_KW));
}

/** Writes the in-memory entries of `src` as one run file, sorted by key. */
export function writeRun(path: string, src: SourceCounts): void {
  const order = sortedOrder(src);
  const buf = new ArrayBuffer(WRITE_CHUNK * RUN_BYTES), u = new Uint32Array(buf), f = new Float64Array(buf), bytes = new Uint8Array(buf);
  const fd = openSync(path, 'wx');
  try {
    let n = 0;
    for (let r = 0; r < order.length; r++) {
      const i = order[r]!;
      for (let w = 0; w < SRC_KW; w++) u[n * RUN_U32 + w] = src.keys[i * SRC_KW + w]!;
      u[n * RUN_U32 + SRC_KW] = 0;
      f[n * 6 + 4] = src.vals[i * 2]!;
      f[n * 6 + 5] = src.vals[i * 2 + 1]!;
      if (++n === WRITE_CHUNK) { writeAll(fd, bytes, n * RUN_BYTES); n = 0; }
    }
    if (n) writeAll(fd, bytes, n * RUN_BYTES);
  } finally {
    closeSync(fd);
  }
}

function writeAll(fd: number, bytes: Uint8Array, len: number): void {
  let off = 0;
  while (off < len) off += writeSync(fd, bytes, off, len - off);
}
