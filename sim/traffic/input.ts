/**
 * PacketInput: the one shape every traffic input (pcap, pcapng, synthetic,
 * live) presents to the engine. Synchronous so that a worker thread can pull
 * batches in a tight loop; the batch is filled in place and reused.
 */
import type { TupleBatch } from './batch.ts';

export interface IngestStats {
  /** Packets delivered in batches. */
  packets: number;
  /** Sum of their wire lengths. */
  bytes: number;
  /**
   * Records or packets not delivered, by reason: `non-ip`, `truncated-ip` (the
   * capture cut the IP header), `malformed`, `unresolved-fragment` (the
   * datagram never completed: the kernel's defrag drops these before any
   * hash), `duplicate-fragment` (a fragment wholly inside data the kernel
   * already queued: it alone is dropped), `bad-fragment` (one that made the
   * kernel discard its datagram: an overlap, a conflicting end; its
   * datagram's other fragments count as unresolved), `bad-record` (lenient mode skipped a damaged record), `before-window`.
   */
  skipped: Record<string, number>;
  /** Timestamp of the first and last delivered packet (seconds); NaN before any. */
  firstTs: number;
  lastTs: number;
  /** Delivered packets whose L4 header the capture cut (F.TRUNCATED). */
  truncated: number;
  /** Delivered packets that were fragments, carrying their datagram's L4 fields (F.FRAGMENT). */
  fragments: number;
  /**
   * Capture records read without a timestamp (pcapng simple packet blocks):
   * time-based state takes them as arriving with no time passed since the
   * previous packet (see `untimedNote`).
   */
  untimed: number;
}

export interface PacketInput {
  /**
   * Fills `batch` from index 0 (up to its capacity), sets `batch.count` and
   * returns it; 0 means the source is exhausted. Internal buffers are reused,
   * nothing is allocated per packet.
   */
  fill(batch: TupleBatch): number;
  readonly stats: IngestStats;
  /** Releases file descriptors; safe to call twice. */
  close(): void;
}

export function newStats(): IngestStats {
  return { packets: 0, bytes: 0, skipped: {}, firstTs: NaN, lastTs: NaN, truncated: 0, fragments: 0, untimed: 0 };
}

/** Adds `n` to a skip reason. */
export function countSkip(stats: IngestStats, reason: string, n = 1): void {
  stats.skipped[reason] = (stats.skipped[reason] ?? 0) + n;
}

/** Counts of the last laneSums call: [truncated, fragments]. */
const sums = new Float64Array(2);

/**
 * Sum of wire lengths over slots [from, to), with the truncated and fragment
 * counts left in `sums`. A separate function from accountBatch because the
 * loop written inside it was measured (CPU profile, snaplen-96 bench capture)
 * at ~10 ns a packet, over a quarter of the reader's time, against ~1.6 ns
 * now: V8 compiled it on-stack while the property writes after the loop had
 * no type feedback yet, that code deoptimised at the loop's exit on every
 * batch (--trace-deopt), and most iterations ran unoptimised.
 */
function laneSums(wl: Uint32Array, fl: Uint8Array, from: number, to: number): number {
  let bytes = 0, trunc = 0, frag = 0;
  for (let i = from; i < to; i++) {
    bytes += wl[i]!;
    const f = fl[i]!;
    trunc += (f >>> 6) & 1;
    frag += (f >>> 1) & 1;
  }
  sums[0] = trunc;
  sums[1] = frag;
  return bytes;
}

/** Adds, over batch slots [from, to): wire bytes to into[0], truncated packets to into[1], fragments to into[2]. */
export function sumLanes(b: TupleBatch, from: number, to: number, into: Float64Array): void {
  if (to <= from) return;
  into[0] = into[0]! + laneSums(b.wirelen, b.flags, from, to);
  into[1] = into[1]! + sums[0]!;
  into[2] = into[2]! + sums[1]!;
}

/** Updates stats for batch slots [from, to), whose sumLanes totals are in `totals`. */
export function accountSums(stats: IngestStats, b: TupleBatch, from: number, to: number, totals: Float64Array): void {
  if (to <= from) return;
  stats.packets += to - from;
  stats.bytes += totals[0]!;
  stats.truncated += totals[1]!;
  stats.fragments += totals[2]!;
  if (Number.isNaN(stats.firstTs)) stats.firstTs = b.ts[from]!;
  stats.lastTs = b.ts[to - 1]!;
}

const scratch = new Float64Array(3);

/** Updates packets/bytes/first/last/truncated/fragments for batch slots [from, to). */
export function accountBatch(stats: IngestStats, b: TupleBatch, from: number, to: number): void {
  scratch.fill(0);
  sumLanes(b, from, to, scratch);
  accountSums(stats, b, from, to, scratch);
}

/**
 * What the tools do with `untimed` packets the capture gave no time, for a
 * warning, or null when there were none.
 */
export function untimedNote(untimed: number): string | null {
  if (!untimed) return null;
  return `${untimed} packets have no timestamp (pcapng simple packet blocks): they print with an empty ts, and ` +
    'timeouts (conntrack, flows, fragment reassembly) and --from/--to take them as arriving with no time passed since ' +
    'the packet before (at time 0 before any timed packet)';
}

/** One line for humans: "12 non-ip, 3 malformed". */
export function describeSkipped(stats: IngestStats): string {
  const parts = Object.entries(stats.skipped).filter(([, n]) => n > 0).map(([k, n]) => `${n} ${k}`);
  return parts.length ? parts.join(', ') : 'nothing';
}
