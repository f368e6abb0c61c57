/**
 * Takeover and failback policies: PURE functions of (state, event,
 * measurements) -> new state with new owner sets. No I/O, no timers, no
 * clocks: time comes in with the event, and a policy that needs to wake up
 * later (failback after a stable period) says when in `wake_at`. The
 * simulator's timeline and the kernel-glue heartbeat agent call these same
 * functions, so what was simulated is what the agent does.
 *
 * The assignment itself is stateless: the owner sets are a function of the
 * config ("home" of each bucket), the set of nodes eligible to own buckets and
 * the measurements. Two nodes with the same view therefore always agree, and
 * a split brain heals as soon as the views agree again. Buckets whose home
 * node is eligible stay at home; only orphaned buckets move, so a failure
 * moves exactly the failed node's buckets (the connections on them break,
 * kernel-semantics §10 item 4), nothing else.
 */
import { bucketBit, type ClusterModel, type OwnerSets } from './ownership.ts';

export const POLICIES = ['lowest', 'least-loaded', 'spread', 'backup'] as const;
export type PolicyName = (typeof POLICIES)[number];
export const FAILBACKS = ['immediate', 'stable', 'manual'] as const;
export type FailbackMode = (typeof FAILBACKS)[number];

export interface PolicyConfig {
  /**
   * lowest: every orphaned bucket goes to the lowest surviving node (config order);
   * least-loaded: orphaned buckets, heaviest first, each to the survivor with the least measured load;
   * spread: orphaned buckets, one at a time, each to the survivor owning the fewest buckets;
   * backup: each failed node's buckets go to the first surviving node of its backup list (then lowest).
   */
  policy: PolicyName;
  /**
   * What happens when a node comes back after a crash or a leave (a restarted
   * node): immediate: it gets its home buckets back at once; stable: after it
   * has been heard for `stable_s` without interruption; manual: only on an
   * operator's `failback` event. A node that was only unreachable (partition,
   * heartbeat loss) and never restarted is reinstated at once in every mode:
   * that is what resolves a split brain when the partition heals.
   */
  failback: FailbackMode;
  stable_s: number;
  /** For `backup`: per node index, the ordered node indexes that take over its buckets (missing or empty: the next nodes in config order). */
  backup?: number[][];
}

export interface Measurements {
  /** Measured traffic per bucket (packets), e.g. from the time before the failure. */
  bucket_load: number[];
}

/** What one node believes about the cluster. Plain data; treat as immutable. */
export interface AgentState {
  /** Node-index mask of the nodes this node hears (itself included). */
  alive: number;
  /** Node-index mask of the nodes allowed to own buckets. */
  eligible: number;
  /** Per node index: when it was heard again after a restart and awaits a stable failback (null: not waiting). */
  waiting_since: (number | null)[];
  /** Owner sets every node should have, per node index. */
  owners: OwnerSets;
}

export type AgentEvent =
  /** Heartbeats from `node` stopped for dead-after intervals. */
  | { kind: 'dead'; node: number; t: number }
  /** `node` announced a voluntary leave and hands its buckets over. */
  | { kind: 'leave'; node: number; t: number }
  /** `node` is heard again; `restarted` when its incarnation changed (it crashed or left, and lost its buckets). */
  | { kind: 'alive'; node: number; t: number; restarted: boolean }
  /** An operator gives `node` its buckets back (failback: manual). */
  | { kind: 'failback'; node: number; t: number }
  /** Time passed (the caller honours `wake_at`). */
  | { kind: 'tick'; t: number };

export interface Decision {
  state: AgentState;
  /** True when any owner set changed. */
  changed: boolean;
  /** When to call `decide` again with a tick (stable failback), or null. */
  wake_at: number | null;
}

const EPS = 1e-9;

/** The state every node starts in: everyone alive and eligible, owner sets from the config. */
export function initialState(m: ClusterModel, p: PolicyConfig, meas?: Measurements): AgentState {
  const all = allNodes(m.names.length);
  return { alive: all, eligible: all, waiting_since: m.names.map(() => null), owners: assignOwners(m, p, all, meas) };
}

export function allNodes(n: number): number {
  return n >= 32 ? 0xffffffff : ((1 << n) - 1) >>> 0;
}

/**
 * The owner sets for a set of eligible nodes (node-index mask). Buckets whose
 * home is eligible stay; the others are placed by the policy. With no eligible
 * node every bucket is orphaned.
 */
export function assignOwners(m: ClusterModel, p: PolicyConfig, eligible: number, meas?: Measurements): OwnerSets {
  const n = m.names.length;
  const sets = new Array<number>(n).fill(0);
  const elig: number[] = [];
  for (let i = 0; i < n; i++) if ((eligible >>> i) & 1) elig.push(i);
  const orphans: number[] = [];
  for (let b = 0; b < m.buckets; b++) {
    const h = m.home[b]!;
    if (h >= 0 && (eligible >>> h) & 1) sets[h] = (sets[h]! | bucketBit(b)) >>> 0;
    else orphans.push(b);
  }
  if (!elig.length || !orphans.length) return sets;
  const give = (node: number, b: number): void => void (sets[node] = (sets[node]! | bucketBit(b)) >>> 0);
  switch (p.policy) {
    case 'lowest':
      for (const b of orphans) give(elig[0]!, b);
      break;
    case 'backup':
      for (const b of orphans) {
        const h = m.home[b]!;
        const named = h >= 0 ? p.backup?.[h] : undefined;
        const list = h < 0 ? [] : named && named.length ? named : defaultBackup(h, n);
        const to = list.find((x) => (eligible >>> x) & 1);
        give(to ?? elig[0]!, b);
      }
      break;
    case 'least-loaded':
    case 'spread': {
      // Greedy: heaviest orphan first, each to the currently lightest eligible node
      // (ties: lower bucket, lower node index), so the result is deterministic.
      const w = (b: number): number => (p.policy === 'spread' ? 1 : (meas?.bucket_load[b] ?? 0));
      const load = new Array<number>(n).fill(0);
      for (let b = 0; b < m.buckets; b++) {
        const h = m.home[b]!;
        if (h >= 0 && (eligible >>> h) & 1) load[h]! += w(b);
      }
      const order = [...orphans].sort((a, b) => w(b) - w(a) || a - b);
      for (const b of order) {
        let best = elig[0]!;
        for (const x of elig) if (load[x]! < load[best]!) best = x;
        give(best, b);
        load[best]! += w(b);
      }
      break;
    }
  }
  return sets;
}

/** The backup list used when the config names none: the next nodes in config order, wrapping. */
export function defaultBackup(node: number, n: number): number[] {
  const out: number[] = [];
  for (let k = 1; k < n; k++) out.push((node + k) % n);
  return out;
}

/**
 * One step of a node's controller: applies an event to its state and returns
 * the new state with the owner sets everyone should have. The caller applies
 * its own share (`state.owners[self]`) to the kernel.
 */
export function decide(m: ClusterModel, p: PolicyConfig, s: AgentState, e: AgentEvent, meas?: Measurements): Decision {
  const bit = e.kind === 'tick' ? 0 : bucketBit(e.node);
  let alive = s.alive;
  let eligible = s.eligible;
  const waiting = [...s.waiting_since];
  switch (e.kind) {
    case 'dead':
    case 'leave':
      alive = (alive & ~bit) >>> 0;
      eligible = (eligible & ~bit) >>> 0;
      waiting[e.node] = null;
      break;
    case 'alive':
      alive = (alive | bit) >>> 0;
      if (!e.restarted || p.failback === 'immediate') {
        eligible = (eligible | bit) >>> 0;
        waiting[e.node] = null;
      } else if (p.failback === 'stable' && !((eligible >>> e.node) & 1)) {
        if (waiting[e.node] == null) waiting[e.node] = e.t;
      }
      break;
    case 'failback':
      if ((alive >>> e.node) & 1) {
        eligible = (eligible | bit) >>> 0;
        waiting[e.node] = null;
      }
      break;
    case 'tick':
      break;
  }
  // Stable failback: nodes heard without interruption for stable_s become eligible.
  let wake: number | null = null;
  for (let i = 0; i < waiting.length; i++) {
    const w = waiting[i];
    if (w == null) continue;
    if (!((alive >>> i) & 1)) { waiting[i] = null; continue; }
    if (e.t + EPS >= w + p.stable_s) {
      eligible = (eligible | bucketBit(i)) >>> 0;
      waiting[i] = null;
    } else if (wake === null || w + p.stable_s < wake) wake = w + p.stable_s;
  }
  const owners = eligible === s.eligible ? s.owners : assignOwners(m, p, eligible, meas);
  const changed = owners.some((x, i) => x !== s.owners[i]);
  return { state: { alive, eligible, waiting_since: waiting, owners }, changed, wake_at: wake };
}

/**
 * A restarted node's first decision. It owns nothing and knows nothing until it
 * hears a peer; it then adopts that peer's view (`peer`, carried in the beat)
 * and treats itself as a restarted node coming back, so the failback mode
 * applies to it exactly as the peers apply it. With `peer` null (it heard
 * nobody for dead-after) it believes it is alone and takes every bucket: on
 * the wrong side of a partition, that is a split brain.
 */
export function adoptView(m: ClusterModel, p: PolicyConfig, self: number, t: number, peer: AgentState | null, meas?: Measurements): Decision {
  const me = bucketBit(self);
  let st: AgentState = peer ?? { alive: me, eligible: me, waiting_since: m.names.map(() => null), owners: assignOwners(m, p, me, meas) };
  st = decide(m, p, st, { kind: 'dead', node: self, t }, meas).state;
  return decide(m, p, st, { kind: 'alive', node: self, t, restarted: true }, meas);
}
