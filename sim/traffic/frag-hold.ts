/**
 * Fragments held until their datagram is decided, for inputs that cannot
 * keep packet order behind a waiting fragment (a live link; the merge's
 * replay of carried fragments). Each fragment goes through the one
 * reassembler (defrag.ts): when its datagram completes, every held fragment
 * of it is delivered with the datagram's L4 lanes, then the completing one,
 * marked L4.COMPLETES (the datagram is counted there, batch.ts); when the
 * datagram is given up (the kernel's timeout, a killing overlap, memory, end
 * of input) its held fragments are counted as `unresolved-fragment`. The
 * capture reader keeps order instead (a ring, capture.ts): every packet after
 * a waiting fragment waits too.
 */
import { copySlot, createBatch, L4, type TupleBatch } from './batch.ts';
import { Defrag, FRAG_DROPPED, FRAG_RESOLVED, type DefragLimits } from './defrag.ts';

export class FragmentHold {
  private readonly defrag: Defrag;
  private readonly hold: TupleBatch;
  private readonly slotOf: Int32Array;
  private held = 0;

  /**
   * `deliver(b, j)`: slot j of b is a fragment ready to count (copy it before
   * the next call); `skip(reason)`: one fragment is dropped, by reason.
   */
  constructor(
    private readonly deliver: (b: TupleBatch, j: number) => void,
    private readonly skip: (reason: string) => void,
    capacity = 16384,
    limits: DefragLimits = {},
  ) {
    this.defrag = new Defrag(limits);
    this.hold = createBatch(capacity);
    this.slotOf = new Int32Array(capacity);
    this.defrag.onResolve = (s) => this.release(s, true);
    this.defrag.onDrop = (s) => this.release(s, false);
  }

  /** Fragments waiting now. */
  get waiting(): number {
    return this.held;
  }

  /**
   * The fragment just decoded into slot i of b (decode.ts `fragInfo`, its
   * data in `src`), arrived at `ts`: delivered (with what it completes),
   * held, or dropped.
   */
  add(b: TupleBatch, i: number, ts: number, src: Uint8Array): void {
    const r = this.defrag.add(b, i, ts, src), slot = r >>> 2, verdict = r & 3;
    if (verdict === FRAG_DROPPED) { this.skip(this.defrag.dropReason); return; }
    if (verdict === FRAG_RESOLVED) {
      // Its held fragments went out in onResolve; this one completes the datagram.
      this.defrag.apply(slot, b, i);
      b.l4flags[i] = b.l4flags[i]! | L4.COMPLETES;
      this.deliver(b, i);
      return;
    }
    // No room to wait: the kernel's frag memory limit drops too.
    if (this.held === this.hold.capacity) { this.skip('unresolved-fragment'); return; }
    copySlot(b, i, this.hold, this.held);
    this.slotOf[this.held++] = slot;
  }

  /** Gives up the datagrams older than the kernel's timeout at `now` (the reassembly timer). */
  expire(now: number): void {
    this.defrag.expire(now);
  }

  /** End of input: every waiting datagram is given up. */
  dropAll(): void {
    this.defrag.dropAll();
  }

  /** Takes datagram `slot`'s held fragments out: delivered with its L4 lanes, or counted as unresolved. */
  private release(slot: number, complete: boolean): void {
    const hold = this.hold, slotOf = this.slotOf;
    let w = 0;
    for (let h = 0; h < this.held; h++) {
      if (slotOf[h] === slot) {
        if (complete) { this.defrag.apply(slot, hold, h); this.deliver(hold, h); } else this.skip('unresolved-fragment');
        continue;
      }
      if (w !== h) { copySlot(hold, h, hold, w); slotOf[w] = slotOf[h]!; }
      w++;
    }
    this.held = w;
  }
}
