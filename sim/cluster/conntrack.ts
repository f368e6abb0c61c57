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
 * The flow table is open addressing over typed arrays (no per-packet objects),
 * keyed by the direction-normalised 5-tuple: a packet flagged REPLY is stored
 * under its original direction, so both directions share one entry.
 */
import { F, FAMILY_IPV6, type TupleBatch } from '../traffic/batch.ts';
import { mix32 } from '../hash/mix.ts';

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

const KEY_LANES = 10;

/** Direction-normalised flow hash of packet i: the same for both directions of a flow. Use it to route flows to workers. */
export function flowHash(b: TupleBatch, i: number): number {
  const reply = (b.flags[i]! & F.REPLY) !== 0;
  let h = Math.imul(b.proto[i]! + 1, 0x9e3779b1);
  const cport = reply ? b.dport[i]! : b.sport[i]!;
  const sport = reply ? b.sport[i]! : b.dport[i]!;
  if (b.family[i] === FAMILY_IPV6) {
    const c = reply ? b.daddr6 : b.saddr6;
    const s = reply ? b.saddr6 : b.daddr6;
    const j = i << 2;
    for (let k = 0; k < 4; k++) {
      h = mix32(h, c[j + k]!);
      h = mix32(h, s[j + k]!);
    }
  } else {
    h = mix32(h, reply ? b.daddr[i]! : b.saddr[i]!);
    h = mix32(h, reply ? b.saddr[i]! : b.daddr[i]!);
  }
  h = mix32(h, ((cport << 16) | sport) >>> 0);
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  return h >>> 0;
}


/**
 * Flow table with `runs` independent value lanes (one per simulated timeline,
 * e.g. one per policy under --compare-policies).
 */
export class FlowTable {
  private cap: number;
  private keys: Uint32Array;
  private used: Uint8Array;
  /** The flowHash each slot was inserted with, so a grow can re-place it where lookups will probe. */
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

  /** The slot of packet i's flow (created UNSEEN when new). `h` is flowHash(b, i). */
  slot(b: TupleBatch, i: number, h: number): number {
    if ((this.size + 1) * 2 > this.cap) this.grow();
    const reply = (b.flags[i]! & F.REPLY) !== 0;
    const v6 = b.family[i] === FAMILY_IPV6;
    const j = i << 2;
    const cA = reply ? b.daddr6 : b.saddr6, sA = reply ? b.saddr6 : b.daddr6;
    const k0 = b.proto[i]! | (b.family[i]! << 8);
    const c0 = v6 ? cA[j]! : reply ? b.daddr[i]! : b.saddr[i]!;
    const s0 = v6 ? sA[j]! : reply ? b.saddr[i]! : b.daddr[i]!;
    const c1 = v6 ? cA[j + 1]! : 0, c2 = v6 ? cA[j + 2]! : 0, c3 = v6 ? cA[j + 3]! : 0;
    const s1 = v6 ? sA[j + 1]! : 0, s2 = v6 ? sA[j + 2]! : 0, s3 = v6 ? sA[j + 3]! : 0;
    const ports = (((reply ? b.dport[i]! : b.sport[i]!) << 16) | (reply ? b.sport[i]! : b.dport[i]!)) >>> 0;
    const mask = this.cap - 1;
    const K = this.keys;
    for (let p = h & mask; ; p = (p + 1) & mask) {
      if (!this.used[p]) {
        this.used[p] = 1;
        this.hashes[p] = h;
        const o = p * KEY_LANES;
        K[o] = k0; K[o + 1] = c0; K[o + 2] = c1; K[o + 3] = c2; K[o + 4] = c3;
        K[o + 5] = s0; K[o + 6] = s1; K[o + 7] = s2; K[o + 8] = s3; K[o + 9] = ports;
        this.size++;
        return p;
      }
      const o = p * KEY_LANES;
      if (K[o] === k0 && K[o + 1] === c0 && K[o + 5] === s0 && K[o + 9] === ports && K[o + 2] === c1 && K[o + 3] === c2 && K[o + 4] === c3 && K[o + 6] === s1 && K[o + 7] === s2 && K[o + 8] === s3) return p;
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
