/**
 * Keeps the kernel's owner set where the core wants it: one change at a time
 * through kernel-glue (actions.ts), the kernel read back after each change
 * (the read-back is what beats claim), and a periodic read-back that notices
 * changes made outside the agent.
 */
import { AgentCore, numbersOf, type LogRecord } from './core.ts';
import type { OwnershipActions } from './actions.ts';
import type { KernelView } from '../backends/shared/backend.ts';

export interface OwnerSyncOptions {
  core: AgentCore;
  actions: OwnershipActions;
  now: () => number;
  emit: (r: LogRecord) => void;
  /** Emits what the core logged. */
  flush: () => void;
  /** After a change: tell the peers at once (a claim is what lets them release: make-before-break). */
  announce: () => void;
  /** Every bucket released after a leave: the agent may stop. */
  onLeft: () => void;
  /** Every successful read of the kernel (the metrics keep its counters). */
  onRead?: (v: KernelView) => void;
}

export class OwnerSync {
  /** A kernel command is in flight (a change or a read-back): never two at once. */
  private busy = false;
  private stopped = false;

  constructor(private readonly o: OwnerSyncOptions) {}

  stop(): void {
    this.stopped = true;
  }

  /** Applies what the core wants now, if it differs from what the kernel has. */
  async reconcile(): Promise<void> {
    const { core, actions, emit } = this.o;
    if (this.busy || this.stopped) return;
    const r = core.reconcile(this.o.now());
    this.o.flush();
    if (r.want === core.owned) {
      if (core.leftCluster) this.o.onLeft();
      return;
    }
    this.busy = true;
    const from = numbersOf(core.owned), to = numbersOf(r.want);
    const started = this.o.now();
    try {
      await actions.set(from, to);
      const back = await actions.read();
      core.setOwned(maskOfNums(back.owned), back.load);
      this.o.onRead?.(back);
      for (const a of r.added) emit({ event: addedEvent(a.cause), bucket: a.bucket, cause: a.cause });
      for (const x of r.removed) emit({ event: core.leaving ? 'leave-release' : 'release', bucket: x.bucket, cause: x.cause });
      emit({ event: 'applied', from, to, kernel: back.owned, took_ms: +((this.o.now() - started) * 1000).toFixed(1) });
      this.o.announce();
    } catch (e) {
      emit({ event: 'apply-error', from, to, error: (e as Error).message });
      try {
        const back = await actions.read();
        core.setOwned(maskOfNums(back.owned), back.load);
      } catch { /* keep the last known set */ }
    } finally {
      this.busy = false;
    }
    if (core.leftCluster) this.o.onLeft();
  }

  /** Reads the kernel's owner set: our claims stay the kernel's truth even if someone else changed it. */
  readBack(): void {
    const { core, emit } = this.o;
    if (this.busy || this.stopped) return;
    this.busy = true;
    this.o.actions.read().then((b) => {
      const m = maskOfNums(b.owned);
      if (m !== core.owned) emit({ event: 'kernel-changed', was: numbersOf(core.owned), now: b.owned, note: 'owner set changed outside the agent' });
      core.setOwned(m, b.load);
      this.o.onRead?.(b);
    }, (e: Error) => emit({ event: 'read-error', error: e.message })).finally(() => (this.busy = false));
  }
}

/** The log event for a bucket the core added, by its cause. */
function addedEvent(cause: string): string {
  if (cause === 'takeover') return 'takeover';
  if (cause.startsWith('orphan')) return 'orphan-claim';
  if (cause === 'leave') return 'leave-takeover';
  if (cause === 'failback' || cause === 'rejoin') return 'failback';
  return 'claim';
}

/** Node numbers 1..32 -> the core's bit mask (bit k-1 for node number k). */
export function maskOfNums(nums: readonly number[]): number {
  let m = 0;
  for (const k of nums) if (k >= 1 && k <= 32) m = (m | (1 << (k - 1))) >>> 0;
  return m;
}
