/**
 * Fragments carried across a share edge. A share reads a byte range (or a
 * file) of one capture; a datagram whose fragments lie on both sides of an
 * edge is complete in neither share. Instead of dropping such fragments as
 * `unresolved-fragment`, a share hands every fragment its reassembly left
 * unresolved (and every one that killed a datagram of those) to the merge, in
 * capture order: the decoded lanes, the fragment's place in its datagram
 * (identification, offset, length, more-fragments, where the L4 header
 * starts) and its first data bytes (the L4 header the hash reads). The merge
 * replays the carried fragments of every share of a stream, in stream order,
 * through the same reassembler (defrag.ts, held by frag-hold.ts): what completes there is what a
 * single pass over the whole capture completes, with the same kernel rules
 * and timeouts.
 *
 * What is not carried (and so may still differ from one pass, in the skip
 * counts only): a fragment a share dropped alone as a duplicate, or one that
 * killed a datagram the moment it arrived, while a datagram with its key was
 * pending in the share before.
 */
import { copySlot, createBatch, viewBatch, BYTES_PER_PACKET, type TupleBatch } from './batch.ts';
import { FragmentHold } from './frag-hold.ts';
import { fragInfo } from './decode.ts';
import { accountBatch, countSkip, newStats, type IngestStats } from './input.ts';

/** Data bytes kept per fragment: the reassembler reads no more (defrag.ts PREFIX). */
export const CARRY_DATA = 64;
/** Words of `info` per fragment: id, offset, dataWire, dataCap, l4rel + 1, l4proto | more << 8 | v6 << 9. */
const INFO = 6;

/** A share's carried fragments, plain typed arrays (they travel to the merge thread and into partial files). */
export interface CarriedFragments {
  count: number;
  /** The fragments' batch lanes: a TupleBatch buffer of `capacity` slots (batch.ts layout). */
  capacity: number;
  lanes: Uint8Array;
  info: Uint32Array;
  data: Uint8Array;
}

/** Writes the fragment just decoded (decode.ts `fragInfo`, its data in `buf`) to entry `at` of info/data arrays. */
export function noteFragment(info: Uint32Array, data: Uint8Array, at: number, buf: Uint8Array): void {
  const o = at * INFO, n = Math.min(CARRY_DATA, fragInfo.dataCap);
  info[o] = fragInfo.id >>> 0;
  info[o + 1] = fragInfo.offset;
  info[o + 2] = fragInfo.dataWire;
  info[o + 3] = Math.max(0, fragInfo.dataCap);
  info[o + 4] = fragInfo.l4rel + 1;
  info[o + 5] = fragInfo.l4proto | (fragInfo.more ? 0x100 : 0) | (fragInfo.v6 ? 0x200 : 0);
  for (let k = 0; k < n; k++) data[at * CARRY_DATA + k] = buf[fragInfo.data + k]!;
}

/** Sets decode.ts `fragInfo` from entry `at` (its data at `dataAt * CARRY_DATA` of the data array it is read from). */
function loadFragment(info: Uint32Array, at: number, dataAt: number): void {
  const o = at * INFO, f = info[o + 5]!;
  fragInfo.id = info[o]!;
  fragInfo.offset = info[o + 1]!;
  fragInfo.dataWire = info[o + 2]!;
  fragInfo.dataCap = Math.min(CARRY_DATA, info[o + 3]!);
  fragInfo.l4rel = info[o + 4]! - 1;
  fragInfo.l4proto = f & 0xff;
  fragInfo.more = (f & 0x100) !== 0;
  fragInfo.v6 = (f & 0x200) !== 0;
  fragInfo.data = dataAt * CARRY_DATA;
}

/** Collects a share's carried fragments (the capture reader's ring hands them over in capture order). */
export class FragmentCarry {
  private b: TupleBatch = createBatch(64);
  private info = new Uint32Array(64 * INFO);
  private data = new Uint8Array(64 * CARRY_DATA);
  count = 0;

  /** Appends slot i of `src` with entry `at` of the (info, data) arrays noteFragment wrote. */
  push(src: TupleBatch, i: number, info: Uint32Array, data: Uint8Array, at: number): void {
    if (this.count === this.b.capacity) this.grow();
    const k = this.count++;
    copySlot(src, i, this.b, k);
    this.info.set(info.subarray(at * INFO, at * INFO + INFO), k * INFO);
    this.data.set(data.subarray(at * CARRY_DATA, at * CARRY_DATA + CARRY_DATA), k * CARRY_DATA);
  }

  private grow(): void {
    const cap = this.b.capacity * 2, nb = createBatch(cap);
    for (let k = 0; k < this.count; k++) copySlot(this.b, k, nb, k);
    this.b = nb;
    const ni = new Uint32Array(cap * INFO); ni.set(this.info); this.info = ni;
    const nd = new Uint8Array(cap * CARRY_DATA); nd.set(this.data); this.data = nd;
  }

  /** The collected fragments (null when none), as plain arrays. */
  result(): CarriedFragments | null {
    if (this.count === 0) return null;
    const cap = this.b.capacity;
    return {
      count: this.count,
      capacity: cap,
      lanes: new Uint8Array(this.b.buffer, 0, BYTES_PER_PACKET * cap).slice(),
      info: this.info.slice(0, this.count * INFO),
      data: this.data.slice(0, this.count * CARRY_DATA),
    };
  }
}

/** What the replay of carried fragments delivers: the completed datagrams' fragments, and where each completed. */
export interface CarryReplay {
  /** Delivered fragments (slots 0..count-1), in the order their datagrams completed, each with its datagram's L4 lanes, the completing one marked L4.COMPLETES. */
  batch: TupleBatch;
  /** Per delivered fragment: the index (into the replay's list of carried sets) of the set holding its datagram's completing fragment. */
  group: Int32Array;
  /** Ingest counts of the replay: delivered packets, and the carried fragments that stay unresolved, duplicate or bad. */
  stats: IngestStats;
}

/**
 * Replays carried sets (every share of one stream, in stream order) through
 * one reassembler, as the single pass would have met them: fragments wait
 * for their datagram, which completes, is killed, or times out (frag-hold.ts).
 */
export function replayCarried(sets: readonly CarriedFragments[]): CarryReplay {
  const total = sets.reduce((n, s) => n + s.count, 0);
  const stats = newStats();
  const out = createBatch(Math.max(1, total)), group = new Int32Array(total);
  let n = 0, completing = 0;
  const hold = new FragmentHold((b, j) => { copySlot(b, j, out, n); group[n++] = completing; }, (reason) => countSkip(stats, reason),
    Math.max(1, total), { entries: Math.max(4096, total) });
  const one = createBatch(1);
  sets.forEach((s, si) => {
    const src = viewBatch(toShared(s.lanes), s.capacity, s.count);
    completing = si;
    for (let j = 0; j < s.count; j++) {
      copySlot(src, j, one, 0);
      loadFragment(s.info, j, 0);
      hold.add(one, 0, one.ts[0]!, s.data.subarray(j * CARRY_DATA, (j + 1) * CARRY_DATA));
    }
  });
  hold.dropAll();
  out.count = n;
  accountBatch(stats, out, 0, n);
  return { batch: out, group, stats };
}

function toShared(bytes: Uint8Array): SharedArrayBuffer {
  const sab = new SharedArrayBuffer(bytes.byteLength);
  new Uint8Array(sab).set(bytes);
  return sab;
}
