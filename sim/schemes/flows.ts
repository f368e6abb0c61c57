/**
 * Folds a packet stream into flows for the scheme comparison: one
 * representative packet per flow (a TupleBatch, so the kernel selectors can
 * run on it unchanged) plus packets and bytes per flow.
 *
 * A flow is (family, proto, saddr, daddr, sport, dport): the same packets
 * every scheme here sends to one node. The table is open addressing over
 * typed arrays (no per-packet objects).
 */
import { copySlot, createBatch, FAMILY_IPV6, type TupleBatch } from '../traffic/batch.ts';
import { jhash2 } from '../hash/lookup3.ts';

export interface FlowSet {
  /** One packet per flow (the flow's first packet); `flows.count` = number of flows. */
  flows: TupleBatch;
  packets: Float64Array;
  bytes: Float64Array;
  totalPackets: number;
  totalBytes: number;
}


/**
 * Accumulates flows from batches; `add` consumes a batch at once (batches may
 * be reused by their source). Directed on purpose, unlike the connection key
 * of cluster/conn-key.ts: a scheme maps the 5-tuple of each packet as it
 * arrives, so the two directions of a connection are two flows here, and
 * there is no timeout (the comparison weighs whole flows over the run).
 */
export class DirectedFlowTable {
  private cap = 1 << 14;
  private slots = new Int32Array(this.cap * 2).fill(-1);
  private mask = this.cap * 2 - 1;
  private hashes = new Int32Array(this.cap);
  private batch = createBatch(this.cap);
  private pk = new Float64Array(this.cap);
  private by = new Float64Array(this.cap);
  private n = 0;
  private totalPackets = 0;
  private totalBytes = 0;
  private readonly key = new Uint32Array(12);

  private hashOf(b: TupleBatch, i: number): number {
    const k = this.key;
    k[0] = (b.family[i]! << 8) | b.proto[i]!;
    k[1] = b.saddr[i]!;
    k[2] = b.daddr[i]!;
    k[3] = (b.sport[i]! << 16) | b.dport[i]!;
    if (b.family[i] === FAMILY_IPV6) {
      for (let j = 0; j < 4; j++) { k[4 + j] = b.saddr6[(i << 2) + j]!; k[8 + j] = b.daddr6[(i << 2) + j]!; }
      return jhash2(k, 12, 0x5eed) | 0;
    }
    return jhash2(k, 4, 0x5eed) | 0;
  }

  private same(b: TupleBatch, i: number, f: number): boolean {
    const t = this.batch;
    if (t.family[f] !== b.family[i] || t.proto[f] !== b.proto[i] || t.saddr[f] !== b.saddr[i] || t.daddr[f] !== b.daddr[i]
      || t.sport[f] !== b.sport[i] || t.dport[f] !== b.dport[i]) return false;
    if (b.family[i] !== FAMILY_IPV6) return true;
    for (let j = 0; j < 4; j++) {
      if (t.saddr6[(f << 2) + j] !== b.saddr6[(i << 2) + j] || t.daddr6[(f << 2) + j] !== b.daddr6[(i << 2) + j]) return false;
    }
    return true;
  }

  private grow(): void {
    const cap = this.cap * 2;
    const nb = createBatch(cap);
    for (let f = 0; f < this.n; f++) copySlot(this.batch, f, nb, f);
    const pk = new Float64Array(cap); pk.set(this.pk);
    const by = new Float64Array(cap); by.set(this.by);
    const hs = new Int32Array(cap); hs.set(this.hashes);
    this.batch = nb; this.pk = pk; this.by = by; this.hashes = hs; this.cap = cap;
    this.slots = new Int32Array(cap * 2).fill(-1);
    this.mask = cap * 2 - 1;
    for (let f = 0; f < this.n; f++) {
      let s = hs[f]! & this.mask;
      while (this.slots[s] !== -1) s = (s + 1) & this.mask;
      this.slots[s] = f;
    }
  }

  add(b: TupleBatch): void {
    for (let i = 0; i < b.count; i++) {
      const h = this.hashOf(b, i);
      let s = h & this.mask;
      let f = this.slots[s]!;
      while (f !== -1 && !(this.hashes[f] === h && this.same(b, i, f))) {
        s = (s + 1) & this.mask;
        f = this.slots[s]!;
      }
      if (f === -1) {
        if (this.n === this.cap) {
          this.grow();
          i--; // place it again in the grown table
          continue;
        }
        f = this.n++;
        copySlot(b, i, this.batch, f);
        this.hashes[f] = h;
        this.slots[s] = f;
      }
      this.pk[f]! += 1;
      this.by[f]! += b.wirelen[i]!;
      this.totalPackets++;
      this.totalBytes += b.wirelen[i]!;
    }
  }

  result(): FlowSet {
    this.batch.count = this.n;
    return { flows: this.batch, packets: this.pk.subarray(0, this.n), bytes: this.by.subarray(0, this.n), totalPackets: this.totalPackets, totalBytes: this.totalBytes };
  }
}

/** Reads a whole stream (sync or async batches) into a FlowSet. */
export async function collectFlows(source: Iterable<TupleBatch> | AsyncIterable<TupleBatch>): Promise<FlowSet> {
  const t = new DirectedFlowTable();
  for await (const b of source) t.add(b);
  return t.result();
}
