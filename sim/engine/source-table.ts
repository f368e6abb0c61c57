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

/**
 * An open-addressing table of SourceCounts, spilling sorted runs past its budget.
 *
 * Layout, for the cache: an add is a random access (one per direction flow
 * and configuration, over up to 2^18 entries: several MB, past L2). Each
 * entry is one record in the run file's layout (7 key words, the key's hash
 * in the pad word, packets and bytes as f64: 48 bytes, so key and counters
 * share a cache line or two), found through a slot array of [hash, entry + 1]
 * pairs that a probe compares before reading any record. The former layout
 * (slots of indices, then key words and counters in two more arrays) read
 * three lines per add.
 */
export class SourceTable {
  count = 0;
  readonly runs: string[] = [];
  /** Records: RUN_U32 words each, as u32 (key words, hash) and f64 (lanes 4 and 5: packets, bytes) over one buffer. */
  private ru: Uint32Array;
  private rf: Float64Array;
  /** [key hash, entry + 1] per slot; entry + 1 = 0 is empty. Twice as many slots as records: at most half full. */
  private slots: Int32Array;
  private mask: number;
  private readonly spill: SourceSpill | null;

  constructor(cap = 1 << 12, spill: SourceSpill | null = null) {
    this.spill = spill;
    if (spill) while (cap > 16 && cap > spill.budget) cap >>= 1;
    const buf = new ArrayBuffer(cap * RUN_BYTES);
    this.ru = new Uint32Array(buf);
    this.rf = new Float64Array(buf);
    this.slots = new Int32Array(cap * 4);
    this.mask = cap * 2 - 1;
  }

  /** Records the table has room for. */
  private get capacity(): number {
    return this.ru.length / RUN_U32;
  }

  add(k: Uint32Array, ko: number, pk: number, by: number): void {
    let h = 0x2f1a8b3c;
    for (let w = 0; w < SRC_KW; w++) h = mix32(h, k[ko + w]!);
    h = fmix32(h);
    const ru = this.ru, sl = this.slots, mask = this.mask;
    let s = h & mask;
    for (;;) {
      const x = sl[2 * s + 1]!;
      if (x === 0) break;
      if (sl[2 * s] === h) {
        const o = (x - 1) * RUN_U32;
        let eq = true;
        for (let w = 0; w < SRC_KW; w++) if (ru[o + w] !== k[ko + w]) { eq = false; break; }
        if (eq) {
          const f = (x - 1) * (RUN_U32 / 2) + 4, rf = this.rf;
          rf[f] = rf[f]! + pk;
          rf[f + 1] = rf[f + 1]! + by;
          return;
        }
      }
      s = (s + 1) & mask;
    }
    if (this.spill && this.count >= this.spill.budget) { this.spillRun(); this.add(k, ko, pk, by); return; }
    if (this.count + 1 > this.capacity) { this.grow(); this.add(k, ko, pk, by); return; }
    const idx = this.count++, o = idx * RUN_U32;
    for (let w = 0; w < SRC_KW; w++) ru[o + w] = k[ko + w]!;
    ru[o + SRC_KW] = h;
    this.rf[idx * (RUN_U32 / 2) + 4] = pk;
    this.rf[idx * (RUN_U32 / 2) + 5] = by;
    sl[2 * s] = h;
    sl[2 * s + 1] = idx + 1;
  }

  /** Twice the records and slots; the records are copied in order, the slots refilled from the stored hashes. */
  private grow(): void {
    const cap = this.capacity * 2, buf = new ArrayBuffer(cap * RUN_BYTES);
    const ru = new Uint32Array(buf);
    ru.set(this.ru);
    this.ru = ru;
    this.rf = new Float64Array(buf);
    this.slots = new Int32Array(cap * 4);
    this.mask = cap * 2 - 1;
    this.fillSlots();
  }

  /** Slots for records 0 .. count-1, from the hashes they hold. */
  private fillSlots(): void {
    const sl = this.slots, mask = this.mask, ru = this.ru;
    for (let i = 0; i < this.count; i++) {
      const h = ru[i * RUN_U32 + SRC_KW]! | 0;
      let s = h & mask;
      while (sl[2 * s + 1] !== 0) s = (s + 1) & mask;
      sl[2 * s] = h;
      sl[2 * s + 1] = i + 1;
    }
  }

  /** Writes every entry to a new run file, sorted by key, and empties the table (its arrays stay). */
  private spillRun(): void {
    const path = join(this.spill!.dir, `sources-${process.pid}-${threadId}-${runSeq++}.run`);
    writeRun(path, this.columns());
    this.runs.push(path);
    this.count = 0;
    this.slots.fill(0);
  }

  /** The entries as columns (copies), with the runs spilled so far. */
  columns(): SourceCounts {
    const n = this.count, keys = new Uint32Array(n * SRC_KW), vals = new Float64Array(n * 2), ru = this.ru, rf = this.rf;
    for (let i = 0; i < n; i++) {
      for (let w = 0; w < SRC_KW; w++) keys[i * SRC_KW + w] = ru[i * RUN_U32 + w]!;
      vals[i * 2] = rf[i * (RUN_U32 / 2) + 4]!;
      vals[i * 2 + 1] = rf[i * (RUN_U32 / 2) + 5]!;
    }
    return { count: n, keys, vals, runs: [...this.runs] };
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
