/**
 * The per-flow conntrack model of a failover: which nodes hold a connection's
 * conntrack entry, and what happens when its packets reach a node that does not.
 *
 * Kernel facts (kernel-semantics §4.2, §5.3, §10 items 4 and 11):
 * - The decision is per packet: an owner-set change takes effect on the next
 *   packet of every flow, established or not. The mark CLUSTERIP writes at NEW
 *   is not consulted, so nothing here looks at it.
 * - Takeover is stateless: a node that gets a bucket accepts the packets of
 *   established TCP connections it has no socket for, and answers them with
 *   RST (nf_conntrack_tcp_loose=1 picks the packet up first). With
 *   tcp_loose=0 the packet is INVALID on that node and dropped; the
 *   connection stalls. Either way the connection is broken, unless conntrack
 *   state is synchronised (conntrackd-style `state_sync`).
 * - A SYN creates a NEW entry wherever it is accepted: new connections after a
 *   move are fine. UDP and other protocols simply move with their bucket.
 * - Conntrack-INVALID packets are dropped by every node (the selectors give
 *   them NO_BUCKET); they are counted apart from packets lost to a failover.
 * - A node that crashes or leaves loses its conntrack table.
 *
 * The holder table is open addressing over typed arrays (no per-packet
 * objects), keyed by the connection key (cluster/conn-key.ts, the same words
 * engine/conn-table.ts counts connections by): both directions of a
 * connection share one entry whatever the capture's direction flags say.
 *
 * Why a table of its own next to engine/conn-table.ts: this one keeps, per
 * connection and per simulated timeline, which nodes hold its conntrack entry
 * and its failover state, for the whole run (a failover run is short and its
 * state must survive idle gaps); ConnTable counts packets and bytes per
 * direction with an idle timeout and ends entries to a sink, so that a
 * capture of any length runs in flat memory and merges across shares.
 */
import type { TupleBatch } from '../traffic/batch.ts';
import { CONN_KEY_WORDS_V6, connKey, connKeyWords } from './conn-key.ts';
import { fmix32, mix32 } from '../hash/mix.ts';

/** Flow states (one per flow and timeline). */
export const FS = {
  /** Never seen. */
  UNSEEN: 0,
  /** A SYN was sent but no node accepted it yet (the client retries). */
  PENDING: 1,
  /** Established on the nodes in `holders`. */
  OPEN: 2,
  /** Reset (or stalled) by a node without its entry; later packets are never answered. */
  BROKEN: 3,
  /** Closed by a RST from the client. */
  CLOSED: 4,
} as const;

const KEY_LANES = CONN_KEY_WORDS_V6;

/**
 * Conntrack holders per connection, with `runs` independent value lanes (one
 * per simulated timeline, e.g. one per policy under --compare-policies).
 */
export class HolderTable {
  private cap: number;
  private keys: Uint32Array;
  private used: Uint8Array;
  /** The key hash each slot was inserted with, so a grow can re-place it where lookups will probe. */
  private hashes: Uint32Array;
  size = 0;
  /** Per slot and run: node-index mask of the nodes holding the conntrack entry. */
  holders: Uint32Array;
  /** Per slot and run: the ownership segment of the flow's previous packet (to apply conntrack wipes in between). */
  lastSeg: Int32Array;
  /** Per slot and run: an FS value. */
  state: Uint8Array;

  constructor(readonly runs: number, initialCapacity = 1 << 12) {
    this.cap = initialCapacity;
    this.keys = new Uint32Array(this.cap * KEY_LANES);
    this.used = new Uint8Array(this.cap);
    this.hashes = new Uint32Array(this.cap);
    this.holders = new Uint32Array(this.cap * runs);
    this.lastSeg = new Int32Array(this.cap * runs);
    this.state = new Uint8Array(this.cap * runs);
  }

  private readonly k = new Uint32Array(KEY_LANES);

  /** The slot of packet i's connection (created UNSEEN when new). */
  slot(b: TupleBatch, i: number): number {
    if ((this.size + 1) * 2 > this.cap) this.grow();
    const k = this.k;
    connKey(b, i, k);
    const kw = connKeyWords(b, i);
    // IPv4 keys use 4 of the 10 lanes; the rest stay zero so one compare serves both families.
    for (let w = kw; w < KEY_LANES; w++) k[w] = 0;
    let h = 0x9747b28c;
    for (let w = 0; w < kw; w++) h = mix32(h, k[w]!);
    h = fmix32(h) >>> 0;
    const mask = this.cap - 1;
    const K = this.keys;
    for (let p = h & mask; ; p = (p + 1) & mask) {
      const o = p * KEY_LANES;
      if (!this.used[p]) {
        this.used[p] = 1;
        this.hashes[p] = h;
        K.set(k, o);
        this.size++;
        return p;
      }
      if (this.hashes[p] !== h) continue;
      let same = true;
      for (let w = 0; w < KEY_LANES; w++) if (K[o + w] !== k[w]) { same = false; break; }
      if (same) return p;
    }
  }

  private grow(): void {
    const old = { cap: this.cap, keys: this.keys, used: this.used, hashes: this.hashes, holders: this.holders, lastSeg: this.lastSeg, state: this.state };
    const R = this.runs;
    this.cap *= 2;
    this.keys = new Uint32Array(this.cap * KEY_LANES);
    this.used = new Uint8Array(this.cap);
    this.hashes = new Uint32Array(this.cap);
    this.holders = new Uint32Array(this.cap * R);
    this.lastSeg = new Int32Array(this.cap * R);
    this.state = new Uint8Array(this.cap * R);
    const mask = this.cap - 1;
    for (let q = 0; q < old.cap; q++) {
      if (!old.used[q]) continue;
      const o = q * KEY_LANES;
      const h = old.hashes[q]!;
      let p = h & mask;
      while (this.used[p]) p = (p + 1) & mask;
      this.used[p] = 1;
      this.hashes[p] = h;
      this.keys.set(old.keys.subarray(o, o + KEY_LANES), p * KEY_LANES);
      for (let r = 0; r < R; r++) {
        this.holders[p * R + r] = old.holders[q * R + r]!;
        this.lastSeg[p * R + r] = old.lastSeg[q * R + r]!;
        this.state[p * R + r] = old.state[q * R + r]!;
      }
    }
  }
}
