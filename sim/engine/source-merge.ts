/**
 * Merges the source counters of every share (and of merge.ts's join
 * correction) into what the analysis picks the heaviest sources from.
 *
 * When nothing was spilled and the pieces fit the budget together, they are
 * summed in one table, as before spilling existed. Otherwise every piece
 * becomes a stream sorted by key (its in-memory columns sorted here, its runs
 * as written) and the streams are merged by key, so each source's counts are
 * summed exactly however many runs and shares it was spread over. As the
 * merged sources come out, a buffer of them is cut down from time to time to
 * the heaviest TOP_SOURCES of every node (analysis/top-sources.ts, the order
 * the analysis uses): the cut keeps the top of everything seen so far, so the
 * last cut is the top of all. Memory: the pieces' in-memory columns (each at
 * most the budget), one read buffer per run, and that buffer.
 */
import { closeSync, openSync, readSync } from 'node:fs';
import { RUN_BYTES, RUN_U32, SRC_KW, compareKeys, newSourceTable, sortedOrder, type SourceCounts } from './source-table.ts';
import { TOP_SOURCES, topSourceIndices } from './top-sources.ts';

const READ_RECORDS = 4096;
const OUT_CHUNK = 1 << 16;

/**
 * The sum of `pieces`: every source when that fits `budget` and nothing was
 * spilled; otherwise only the heaviest sources of each node of each
 * configuration (`buckets[c]` nodes), which is all the analysis reads.
 */
export function mergeSources(pieces: SourceCounts[], buckets: number[], budget: number): SourceCounts {
  const total = pieces.reduce((n, p) => n + p.count, 0);
  if (pieces.every((p) => p.runs.length === 0) && total <= budget) {
    const t = newSourceTable(total);
    for (const p of pieces) for (let i = 0; i < p.count; i++) t.add(p.keys, i * SRC_KW, p.vals[i * 2]!, p.vals[i * 2 + 1]!);
    return t.columns();
  }
  const streams: KeyStream[] = [];
  try {
    for (const p of pieces) {
      if (p.count) streams.push(new ColumnStream(p));
      for (const path of p.runs) streams.push(new RunStream(path));
    }
    return mergeStreams(streams, buckets);
  } finally {
    for (const s of streams) s.close();
  }
}

/** A source of records in key order: `keys`/`at` name the current record, `vals[2 * vat]` its packets and bytes. */
interface KeyStream {
  keys: Uint32Array;
  at: number;
  vals: Float64Array;
  vat: number;
  /** Moves to the next record; false at the end. */
  next(): boolean;
  close(): void;
}

/** In-memory columns, read in key order. */
class ColumnStream implements KeyStream {
  keys: Uint32Array;
  vals: Float64Array;
  at = 0;
  vat = 0;
  private readonly order: Int32Array;
  private i = -1;
  constructor(src: SourceCounts) {
    this.keys = src.keys;
    this.vals = src.vals;
    this.order = sortedOrder(src);
  }
  next(): boolean {
    if (++this.i >= this.order.length) return false;
    const e = this.order[this.i]!;
    this.at = e * SRC_KW;
    this.vat = e;
    return true;
  }
  close(): void {}
}

/** A run file, read in chunks (source-table.ts wrote it sorted). */
class RunStream implements KeyStream {
  keys: Uint32Array;
  vals: Float64Array;
  at = 0;
  vat = 0;
  private readonly bytes: Uint8Array;
  private readonly fd: number;
  private n = 0;
  private i = 0;
  private pos = 0;
  constructor(private readonly path: string) {
    const buf = new ArrayBuffer(READ_RECORDS * RUN_BYTES);
    this.bytes = new Uint8Array(buf);
    this.keys = new Uint32Array(buf);
    this.vals = new Float64Array(buf);
    this.fd = openSync(path, 'r');
  }
  next(): boolean {
    if (++this.i >= this.n) {
      let got = 0;
      // A short read can end mid-record; read on until whole records (or the end) are in.
      for (;;) {
        const k = readSync(this.fd, this.bytes, got, this.bytes.length - got, this.pos + got);
        got += k;
        if (k === 0 || got % RUN_BYTES === 0) break;
      }
      if (got % RUN_BYTES !== 0) throw new Error(`${this.path}: source run cut at byte ${this.pos + got} (records are ${RUN_BYTES} bytes)`);
      this.pos += got;
      this.n = got / RUN_BYTES;
      this.i = 0;
      if (this.n === 0) return false;
    }
    this.at = this.i * RUN_U32;
    // The two f64 of record i sit after its 12 u32 words: f64 index 6i + 4.
    this.vat = this.i * 3 + 2;
    return true;
  }
  close(): void {
    closeSync(this.fd);
  }
}

/** k-way merge by key (a binary heap of streams), summing equal keys, keeping the heaviest per node. */
function mergeStreams(streams: KeyStream[], buckets: number[]): SourceCounts {
  const heap = streams.filter((s) => s.next());
  const less = (a: KeyStream, b: KeyStream): boolean => compareKeys(a.keys, a.at, b.keys, b.at) < 0;
  const down = (i: number): void => {
    for (;;) {
      const l = 2 * i + 1, r = l + 1;
      let m = i;
      if (l < heap.length && less(heap[l]!, heap[m]!)) m = l;
      if (r < heap.length && less(heap[r]!, heap[m]!)) m = r;
      if (m === i) return;
      [heap[i], heap[m]] = [heap[m]!, heap[i]!];
      i = m;
    }
  };
  for (let i = (heap.length >> 1) - 1; i >= 0; i--) down(i);
  // Room for at least twice what a cut keeps (TOP_SOURCES a node), so every cut frees room.
  const cap = Math.max(OUT_CHUNK, 2 * TOP_SOURCES * buckets.reduce((a, n) => a + n, 0));
  let out: SourceCounts = { count: 0, keys: new Uint32Array(cap * SRC_KW), vals: new Float64Array(cap * 2), runs: [] };
  const key = new Uint32Array(SRC_KW);
  while (heap.length) {
    const top = heap[0]!;
    for (let w = 0; w < SRC_KW; w++) key[w] = top.keys[top.at + w]!;
    let pk = 0, by = 0;
    // Every record with this key, from every stream (records of one key are adjacent in each).
    while (heap.length && compareKeys(heap[0]!.keys, heap[0]!.at, key, 0) === 0) {
      const s = heap[0]!;
      pk += s.vals[s.vat * 2]!;
      by += s.vals[s.vat * 2 + 1]!;
      if (!s.next()) { heap[0] = heap[heap.length - 1]!; heap.pop(); }
      down(0);
    }
    if (!(pk > 0)) continue;
    if (out.count === cap) out = keepHeaviest(out, buckets);
    const n = out.count++;
    out.keys.set(key, n * SRC_KW);
    out.vals[n * 2] = pk;
    out.vals[n * 2 + 1] = by;
  }
  const last = keepHeaviest(out, buckets);
  return { count: last.count, keys: last.keys.slice(0, last.count * SRC_KW), vals: last.vals.slice(0, last.count * 2), runs: [] };
}

/** `src` cut down to the heaviest sources of each node of each configuration, in the same arrays. */
function keepHeaviest(src: SourceCounts, buckets: number[]): SourceCounts {
  const keep: number[] = [];
  buckets.forEach((N, c) => { for (const idx of topSourceIndices(src, c, N)) keep.push(...idx); });
  keep.sort((a, b) => a - b);
  // Ascending indices: each kept entry moves down (or stays), never over one not yet moved.
  keep.forEach((e, n) => {
    src.keys.copyWithin(n * SRC_KW, e * SRC_KW, (e + 1) * SRC_KW);
    src.vals[n * 2] = src.vals[e * 2]!;
    src.vals[n * 2 + 1] = src.vals[e * 2 + 1]!;
  });
  src.count = keep.length;
  return src;
}
