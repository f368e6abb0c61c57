/**
 * The planned handover (a voluntary leave; a bucket moved on purpose): the one
 * description both the heartbeat agent (kernel-glue/agent/core.ts, which acts
 * on these rules as beats arrive) and the failover model (heartbeat.ts, which
 * turns them into timed owner-set steps) use, so a simulated leave costs what
 * the agent's leave costs.
 *
 * Two orders, one vocabulary (`failover.handover` in the config, `glue move
 * --order`):
 *  - `release-first` (default): the old owner releases a bucket once the new
 *    owner's beat shows it sees the same cluster (it will take the bucket);
 *    the new owner adds the bucket when it sees the release. Between the two
 *    kernel updates nobody holds the bucket (a gap): its packets are dropped
 *    by every node, a client's SYN is retransmitted (Linux: after 1 s).
 *  - `add-first`: the new owner adds the bucket as soon as it hears of the
 *    leave; the old owner releases it once it sees the claim. Between the two
 *    updates both hold it (an overlap): every packet is accepted twice, both
 *    nodes answer a SYN, and the client resets the connection.
 * Either way the window lasts one beat delivery plus one kernel update: the
 * second node acts on the first node's announcement, sent right after its
 * kernel change (kernel-glue/agent/owner-sync.ts announces every change).
 * Ownership is per packet and takes effect at once (kernel-semantics §4.2,
 * §10 item 4), so the owner sets the kernels hold are the whole truth.
 *
 * The safety nets, both deterministic: a bucket no live node holds for longer
 * than the grace (`orphanGrace`) is claimed by the lowest live, established,
 * non-leaving node (`orphanClaimer`); a leaving node that never sees the new
 * owner ready releases after its leave timeout.
 *
 * Old spelling: `glue move --order remove-first` is `release-first`
 * (accepted as an alias, see `parseHandover`).
 */

export const HANDOVER_MODES = ['release-first', 'add-first'] as const;
export type HandoverMode = (typeof HANDOVER_MODES)[number];
/** Spellings accepted for scripts written before the vocabulary was unified. */
export const HANDOVER_ALIASES: Readonly<Record<string, HandoverMode>> = { 'remove-first': 'release-first' };

/** A mode or an alias as written by a user; null when it is neither. */
export function parseHandover(s: string): HandoverMode | null {
  if ((HANDOVER_MODES as readonly string[]).includes(s)) return s as HandoverMode;
  return HANDOVER_ALIASES[s] ?? null;
}

/**
 * May a node add a bucket the policy gives it? `release-first` waits while
 * another live node's kernel still holds it; `add-first` adds at once.
 */
export function mayAdd(mode: HandoverMode, heldByOtherLive: boolean): boolean {
  return mode === 'add-first' || !heldByOtherLive;
}

export interface ReleaseFacts {
  /** The new owner's kernel holds the bucket (its beat claims it). */
  acked: boolean;
  /** The new owner is live, established, not leaving, and its view agrees with ours. */
  ready: boolean;
  /** We are leaving and the leave timeout has passed. */
  expired: boolean;
}

/** May the old owner release a bucket the policy gave to another node? */
export function mayRelease(mode: HandoverMode, f: ReleaseFacts): boolean {
  return f.acked || (mode === 'release-first' && f.ready) || f.expired;
}

/** How long a bucket may stay without any live holder before the safety net claims it. */
export function orphanGrace(takeover_delay_s: number, interval_s: number): number {
  return takeover_delay_s + 2 * interval_s;
}

/** Default leave timeout of the agent: how long a leaving node waits for its buckets' new owners. */
export function defaultLeaveTimeout(interval_s: number, dead_after: number): number {
  return Math.max(5, 4 * dead_after * interval_s);
}

/**
 * The node that claims an orphaned bucket: the lowest node index among the
 * candidates (live, established, not leaving), or -1.
 */
export function orphanClaimer(candidates: number): number {
  return candidates === 0 ? -1 : 31 - Math.clz32(candidates & -candidates);
}

/** The timing facts of one handover. Times in seconds. */
export interface HandoverTiming {
  /** One kernel owner-set update: from the decision to the kernel holding the new set. */
  apply_s: number;
  /** One beat's transit (an announcement sent right after a kernel change). */
  delivery_s: number;
  /** Safety-net grace (orphanGrace). */
  grace_s: number;
  /** The leaving node's timeout (defaultLeaveTimeout). */
  leave_timeout_s: number;
  /**
   * release-first: when the first beat of `newOwner` that shows the agreed view (sent after it heard
   * the leave at `heardAt`) reaches the old owner; null when none does.
   */
  readyAt: (newOwner: number, heardAt: number) => number | null;
}

/** Buckets moving from one node to another. */
export interface HandoverMove {
  from: number;
  to: number;
  /** Bucket mask (bit b = kernel node number b+1). */
  buckets: number;
}

/** One kernel owner-set change. */
export interface HandoverStep {
  t: number;
  node: number;
  add: number;
  remove: number;
  why: string;
}

/**
 * The timed kernel changes of a handover that starts at t0 (the old owner
 * announces it): per move, the old owner's release and the new owner's add in
 * the mode's order, or the old owner's release at its leave timeout when the
 * new owner never shows itself ready. Steps sorted by time.
 *
 * The orphan safety net never acts inside a handover that runs: the new owner
 * adds one delivery plus one update after the release, and the grace is at
 * least two intervals (`safetyNetActs` says whether it would, for given
 * timing facts). It is the agent's answer to views that disagree, which the
 * failover model does not produce.
 */
export function handoverSteps(t0: number, moves: readonly HandoverMove[], mode: HandoverMode, tm: HandoverTiming): HandoverStep[] {
  const out: HandoverStep[] = [];
  const { apply_s: A, delivery_s: L } = tm;
  for (const mv of moves) {
    if (!mv.buckets) continue;
    // The new owner hears the announcement of the leave one delivery after it was sent.
    const heard = t0 + L;
    if (mode === 'add-first') {
      const add = heard + A;
      // The old owner sees the claim in the announcement sent right after the add.
      const release = Math.min(add + L + A, t0 + tm.leave_timeout_s + A);
      out.push({ t: add, node: mv.to, add: mv.buckets, remove: 0, why: 'add-first: takes the buckets on hearing the leave' });
      out.push({ t: release, node: mv.from, add: 0, remove: mv.buckets, why: release < add + L + A ? 'leave timeout' : 'add-first: releases on seeing the claim' });
      continue;
    }
    const ready = tm.readyAt(mv.to, heard);
    const timedOut = ready === null || ready > t0 + tm.leave_timeout_s;
    const release = (timedOut ? t0 + tm.leave_timeout_s : ready!) + A;
    out.push({ t: release, node: mv.from, add: 0, remove: mv.buckets, why: timedOut ? 'leave timeout without the new owner ready' : 'release-first: releases once the new owner is ready' });
    // The new owner adds when the old owner's release announcement arrives (it holds the same view).
    out.push({ t: release + L + A, node: mv.to, add: mv.buckets, remove: 0, why: 'release-first: takes the buckets on seeing the release' });
  }
  return out.sort((a, b) => a.t - b.t || a.node - b.node);
}

/** Would the orphan safety net claim a bucket during a release-first gap with these timing facts? */
export function safetyNetActs(tm: Pick<HandoverTiming, 'apply_s' | 'delivery_s' | 'grace_s'>): boolean {
  // The claimer sees the orphan when the release announcement arrives, the new owner adds one update later.
  return tm.grace_s < tm.apply_s;
}

/** Per move: the gap (release-first: nobody holds the buckets) or overlap (add-first: two hold them), seconds. */
export function handoverWindow(steps: readonly HandoverStep[], mv: HandoverMove): { gap_s: number; overlap_s: number } {
  const rel = steps.find((s) => s.node === mv.from && s.remove & mv.buckets);
  const add = steps.find((s) => s.node === mv.to && s.add & mv.buckets);
  if (!rel || !add) return { gap_s: 0, overlap_s: 0 };
  return { gap_s: Math.max(0, add.t - rel.t), overlap_s: Math.max(0, rel.t - add.t) };
}
