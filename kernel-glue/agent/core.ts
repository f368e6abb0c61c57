/**
 * The agent's brain, free of I/O and clocks: authenticated beats and time go
 * in, "the owner set my kernel should have now", beats to send and log
 * records come out. The daemon (daemon.ts) feeds it real sockets and timers;
 * the unit tests feed it an injected clock and a simulated network.
 *
 * Decisions are made by the failover model's own policy code
 * (sim/cluster/policies.ts `decide`/`assignOwners`): every node runs the same
 * pure function over the same view (which nodes it hears, which are
 * eligible), so survivors agree on the new owner sets without talking to each
 * other. Each node then changes only its OWN kernel owner set:
 *
 *  - it ADDS the buckets the policy gives it (after `takeover_delay_s` when
 *    the cause is a dead node; at once for a handover);
 *  - a planned handover (leave, failback) is acknowledged through beats:
 *    with `release-first` (default) the old owner releases once the new
 *    owner's beat shows the same view, and the new owner adds the bucket when
 *    it sees the release (a gap of a few ms: a SYN is retransmitted, nothing
 *    breaks); with `add-first` the new owner adds first and the old owner
 *    releases once the new owner claims it (no gap, but an overlap in which
 *    both nodes answer a SYN, which resets the client's connection: measured
 *    in agent.kernel.test.ts). A bucket held by a node we consider dead is
 *    taken without waiting; a leaving node stops waiting after
 *    `leave_timeout_s`.
 *
 * Safety nets, both deterministic: a bucket that no live node claims for
 * longer than the grace period is claimed by the lowest live node (covers
 * views that disagree, e.g. least-loaded with different measurements); a
 * bucket claimed by several live nodes is reported as duplicate and resolved
 * by the rule above (the policy's owner keeps it, the others release it once
 * it claims it). Kernel facts behind this: ownership is per packet and takes
 * effect at once (kernel-semantics §4.2, §10 item 4), so the owner sets the
 * kernels hold are the whole truth about who answers.
 */
import { adoptView, assignOwners, decide, type AgentEvent, type AgentState, type Measurements, type PolicyConfig } from '../../sim/cluster/policies.ts';
import { bitsOf, bucketBit, type ClusterModel } from '../../sim/cluster/ownership.ts';
import { PROTOCOL_VERSION, type BeatBody, type BeatView, type Health } from './protocol.ts';
import { mayAdd, mayRelease, orphanClaimer, orphanGrace, type HandoverMode } from '../../sim/cluster/handover.ts';

export interface CoreOptions {
  model: ClusterModel;
  policy: PolicyConfig;
  /** This node's index in the config. */
  self: number;
  interval_s: number;
  /** A peer is dead after this many intervals without a beat. */
  dead_after: number;
  takeover_delay_s: number;
  /** How long a leaving node waits for the takeover acknowledgement. */
  leave_timeout_s: number;
  /** Start-up listening window (default dead_after intervals). */
  startup_s?: number;
  /** Start time on the injected (monotonic) clock, seconds. */
  t0: number;
  /** Incarnation (start time in ms since the epoch). */
  inc: number;
  /**
   * Planned handovers (leave, failback): `release-first` (default): the old owner releases once the new
   * owner's view agrees, the new owner adds on seeing the release: a gap of one beat delivery plus one
   * kernel update, in which a SYN is dropped and retransmitted. `add-first`: the new owner adds, the old
   * one releases once it sees the claim: no gap, but both nodes answer new connections during the overlap,
   * and the client's connection is reset (measured in agent.kernel.test.ts).
   */
  handover?: Handover;
}

/** The handover order (sim/cluster/handover.ts holds its rules, shared with the failover model). */
export type Handover = HandoverMode;

/** One structured log record (the daemon adds time and node). */
export interface LogRecord {
  event: string;
  [k: string]: unknown;
}

interface Peer {
  inc: number | null;
  lastHeard: number;
  /** Bucket mask (bit b = node number b+1) the peer's kernel holds, from its latest beat. */
  claims: number;
  /** The peer's policy state from its latest beat, times on our clock; null while it is starting up. */
  view: AgentState | null;
  /** The incarnation the peer last heard from us (from its view). */
  knowsOurInc: number;
  /** We have had a beat from it since we started, so `claims` is what its kernel holds (not just unknown). */
  claimsKnown: boolean;
  leaving: boolean;
  fb: number;
  lossLogged: boolean;
  /** The incarnation that announced a leave: its later beats do not make it alive again. */
  leftInc: number | null;
}

/** What to do with the kernel now. */
export interface Reconcile {
  /** The bucket mask the kernel should hold. */
  want: number;
  added: { bucket: number; cause: string }[];
  removed: { bucket: number; cause: string }[];
}

const maskOf = (nums: readonly number[], buckets: number): number => {
  let m = 0;
  for (const k of nums) if (Number.isInteger(k) && k >= 1 && k <= buckets) m = (m | bucketBit(k - 1)) >>> 0;
  return m;
};
export const numbersOf = (mask: number): number[] => bitsOf(mask).map((b) => b + 1);

export class AgentCore {
  readonly m: ClusterModel;
  readonly p: PolicyConfig;
  readonly self: number;
  readonly inc: number;
  state: AgentState | null = null;
  /** What this node's kernel holds (bucket mask), as last read back. */
  owned = 0;
  leaving = false;
  health: Health = 'ok';
  fb = 0;
  private seq = 0;
  private readonly peers: Peer[];
  private readonly o: Required<CoreOptions>;
  private wakeAt: number | null = null;
  private leaveDeadline = Infinity;
  /** Per bucket: not before this time may we add it (takeover delay). */
  private readonly notBefore: number[];
  /** Per bucket: why we were last given it. */
  private readonly cause: string[];
  private readonly orphanSince: (number | null)[];
  private readonly meas: Measurements;
  private lastDup = '';
  private lastOrphan = '';
  private logs: LogRecord[] = [];

  constructor(opts: CoreOptions) {
    this.o = { ...opts, startup_s: opts.startup_s ?? opts.dead_after * opts.interval_s, handover: opts.handover ?? 'release-first' };
    this.m = opts.model;
    this.p = opts.policy;
    this.self = opts.self;
    this.inc = opts.inc;
    const n = this.m.names.length, nb = this.m.buckets;
    this.peers = this.m.names.map(() => ({ inc: null, lastHeard: -Infinity, claims: 0, view: null, knowsOurInc: 0, claimsKnown: false, leaving: false, fb: 0, lossLogged: false, leftInc: null }));
    this.notBefore = new Array<number>(nb).fill(0);
    this.cause = new Array<string>(nb).fill('start');
    this.orphanSince = new Array<number | null>(nb).fill(null);
    this.meas = { bucket_load: new Array<number>(nb).fill(0) };
    void n;
  }

  get name(): string {
    return this.m.names[this.self]!;
  }
  get established(): boolean {
    return this.state !== null;
  }
  /** The leave is complete: nothing left in our kernel. */
  get leftCluster(): boolean {
    return this.leaving && this.owned === 0;
  }
  private log(r: LogRecord): void {
    this.logs.push(r);
  }
  /** Log records produced since the last call. */
  drainLog(): LogRecord[] {
    const l = this.logs;
    this.logs = [];
    return l;
  }
  private names(mask: number): string[] {
    return bitsOf(mask).filter((i) => i < this.m.names.length).map((i) => this.m.names[i]!);
  }
  private ownersView(s: AgentState): Record<string, number[]> {
    const out: Record<string, number[]> = {};
    s.owners.forEach((mask, i) => (out[this.m.names[i]!] = numbersOf(mask)));
    return out;
  }

  /** The kernel's owner set as read back (and, optionally, its per-bucket packet counters by node number). */
  setOwned(mask: number, loadByNumber?: Record<number, number>): void {
    this.owned = mask >>> 0;
    if (loadByNumber) for (const [k, v] of Object.entries(loadByNumber)) if (Number(k) >= 1 && Number(k) <= this.m.buckets) this.meas.bucket_load[Number(k) - 1] = v;
  }

  /** The next beat to send. `wall` is seconds since the epoch, `t` our (monotonic) clock. */
  beat(wall: number, t: number): BeatBody {
    const owned = numbersOf(this.owned);
    const s = this.state;
    const view: BeatView | null = s
      ? { alive: s.alive, eligible: s.eligible, owners: [...s.owners], waiting_ago: s.waiting_since.map((w) => (w === null ? null : Math.max(0, +(t - w).toFixed(4)))), incs: this.peers.map((p, i) => (i === this.self ? this.inc : (p.inc ?? 0))) }
      : null;
    return {
      v: PROTOCOL_VERSION,
      node: this.name,
      inc: this.inc,
      seq: ++this.seq,
      ts: wall,
      owned,
      health: this.leaving ? 'leaving' : this.health,
      leaving: this.leaving,
      view,
      fb: this.fb,
      load: owned.map((k) => this.meas.bucket_load[k - 1] ?? 0),
    };
  }

  private apply(e: AgentEvent, t: number, cause: string): void {
    const s = this.state!;
    const d = decide(this.m, this.p, s, e, this.meas);
    this.wakeAt = d.wake_at;
    if (d.changed) {
      const before = s.owners[this.self]!, after = d.state.owners[this.self]!;
      const gained = (after & ~before) >>> 0;
      for (const b of bitsOf(gained)) {
        this.notBefore[b] = cause === 'takeover' ? t + this.o.takeover_delay_s : t;
        this.cause[b] = cause;
      }
      this.log({ event: 'decision', cause, trigger: e.kind, about: e.kind === 'tick' ? null : this.m.names[e.node], owners: this.ownersView(d.state), mine_before: numbersOf(before), mine_after: numbersOf(after), eligible: this.names(d.state.eligible), alive: this.names(d.state.alive) });
    }
    this.state = d.state;
  }

  /** An authenticated, fresh beat from a peer, received at time t. */
  onBeat(b: BeatBody, t: number): void {
    const i = this.m.names.indexOf(b.node);
    if (i < 0 || i === this.self) return;
    const p = this.peers[i]!;
    const knownInc = p.inc;
    const newInc = knownInc !== null && b.inc !== knownInc;
    const fbBefore = newInc ? b.fb : p.fb;
    if (p.lossLogged) this.log({ event: 'beat-resumed', peer: b.node, silent_s: +(t - p.lastHeard).toFixed(3) });
    const v = b.view;
    const view: AgentState | null = v && v.owners.length === this.m.names.length && v.waiting_ago.length === this.m.names.length
      ? { alive: v.alive >>> 0, eligible: v.eligible >>> 0, owners: v.owners.map((x) => x >>> 0), waiting_since: v.waiting_ago.map((a) => (a === null ? null : t - a)) }
      : null;
    Object.assign(p, { inc: b.inc, lastHeard: t, claims: maskOf(b.owned, this.m.buckets), view, knowsOurInc: v?.incs[this.self] ?? 0, claimsKnown: true, leaving: b.leaving, fb: b.fb, lossLogged: false });
    b.owned.forEach((k, j) => {
      if (k >= 1 && k <= this.m.buckets && b.load[j] !== undefined) this.meas.bucket_load[k - 1] = b.load[j]!;
    });
    if (newInc) p.leftInc = null;
    if (!this.state) {
      // Starting up: the first established peer's view is adopted at once (the failover model's join).
      if (view && !b.leaving) this.join(i, t);
      return;
    }
    const alive = ((this.state.alive >>> i) & 1) === 1;
    if (b.leaving) {
      if (p.leftInc !== b.inc) {
        p.leftInc = b.inc;
        this.log({ event: 'leave', peer: b.node, owned: b.owned, note: 'peer announced a voluntary leave; taking over its buckets' });
        if (alive) this.apply({ kind: 'leave', node: i, t }, t, 'leave');
      }
      return;
    }
    if (p.leftInc === b.inc) return;
    if (!alive) {
      // A node we never knew that is already established was cut off from us (partition), not restarted.
      const restarted = knownInc === null ? view === null : newInc;
      this.log({ event: 'rejoin', peer: b.node, restarted, incarnation: b.inc, failback: this.p.failback });
      this.apply({ kind: 'alive', node: i, t, restarted }, t, 'failback');
    } else if (newInc) {
      // Restarted faster than dead-after: treated as a death and a restart, as the failover model does
      // (sim/cluster/heartbeat.ts), so the failback mode decides when it gets its buckets back.
      this.log({ event: 'restart', peer: b.node, incarnation: b.inc, previous: knownInc });
      this.apply({ kind: 'dead', node: i, t }, t, 'takeover');
      this.apply({ kind: 'alive', node: i, t, restarted: true }, t, 'failback');
    }
    if (b.fb > fbBefore) {
      this.log({ event: 'failback-request', peer: b.node, count: b.fb });
      this.apply({ kind: 'failback', node: i, t }, t, 'failback');
    }
  }

  /** Operator asked (SIGUSR1) for this node to get its buckets back (failback: manual). */
  requestFailback(t: number): void {
    this.fb++;
    this.log({ event: 'failback-request', peer: this.name, count: this.fb, note: 'announced in our beats; every node applies it' });
    if (this.state) this.apply({ kind: 'failback', node: this.self, t }, t, 'failback');
  }

  /** Voluntary leave (failing health command or SIGTERM). */
  startLeave(t: number, reason: string): void {
    if (this.leaving) return;
    this.leaving = true;
    this.leaveDeadline = t + (this.state ? this.o.leave_timeout_s : 0);
    this.log({ event: 'leave', peer: this.name, reason, owned: numbersOf(this.owned), timeout_s: this.o.leave_timeout_s, note: 'announcing the leave; buckets are released as their new owners claim them' });
    if (this.state) this.apply({ kind: 'leave', node: this.self, t }, t, 'leave');
  }

  /**
   * We (re)started into a running cluster: adopt the view of the established peer we heard first and
   * come back as a restarted node, so the failback mode applies to us exactly as our peers apply it
   * (sim/cluster/policies.ts adoptView, the same function the failover model runs).
   */
  private join(from: number, t: number): void {
    const peer = this.peers[from]!;
    // A peer that already heard this incarnation of ours has applied our (re)start to its view (or counted
    // us in while the cluster formed): that view is ours as it is. Otherwise we come back as restarted.
    const known = peer.knowsOurInc === this.inc;
    const d = known ? decide(this.m, this.p, peer.view!, { kind: 'tick', t }, this.meas) : adoptView(this.m, this.p, this.self, t, peer.view, this.meas);
    this.state = d.state;
    this.wakeAt = d.wake_at;
    // Nodes the adopted view holds alive: heard "now" until the detector learns otherwise.
    this.peers.forEach((p, i) => {
      if (i !== this.self && (d.state.alive >>> i) & 1 && p.lastHeard < this.o.t0) p.lastHeard = t;
    });
    this.log({ event: 'established', mode: 'join', view_from: this.m.names[from], knew_us: known, alive: this.names(d.state.alive), eligible: this.names(d.state.eligible), owners: this.ownersView(d.state), failback: this.p.failback });
    for (const b of bitsOf(d.state.owners[this.self]!)) this.cause[b] = 'rejoin';
    if (this.leaving) this.apply({ kind: 'leave', node: this.self, t }, t, 'leave');
  }

  /**
   * No established peer within the start-up window: the cluster is forming (every node heard in the
   * window is eligible), or we are alone (then we take every bucket: on the wrong side of a partition
   * that is a split brain, reported and resolved when it heals).
   */
  private coldStart(t: number): void {
    let heard = 0;
    this.peers.forEach((p, i) => {
      if (i !== this.self && p.lastHeard >= this.o.t0 && !p.leaving) heard = (heard | bucketBit(i)) >>> 0;
    });
    const alive = (heard | bucketBit(this.self)) >>> 0;
    this.state = { alive, eligible: alive, waiting_since: this.m.names.map(() => null), owners: assignOwners(this.m, this.p, alive, this.meas) };
    this.log({ event: 'established', mode: heard ? 'cold-start' : 'alone', alive: this.names(alive), owners: this.ownersView(this.state), note: heard ? 'no established peer heard: every node heard in the start-up window is eligible' : 'no peer heard within dead_after intervals: taking every bucket' });
    for (const b of bitsOf(this.state.owners[this.self]!)) this.cause[b] = 'start';
    if (this.leaving) this.apply({ kind: 'leave', node: this.self, t }, t, 'leave');
  }

  /**
   * Time passes: start-up window, failure detection, stable-failback wake-ups. `detect` false skips
   * declaring peers dead this time (the daemon's loop stalled: beats may sit unread in the socket).
   */
  tick(t: number, detect = true): void {
    if (!this.state) {
      if (t + 1e-9 >= this.o.t0 + this.o.startup_s) this.coldStart(t);
      return;
    }
    const iv = this.o.interval_s, limit = this.o.dead_after * iv;
    this.peers.forEach((p, i) => {
      if (i === this.self || !((this.state!.alive >>> i) & 1)) return;
      const silent = t - p.lastHeard;
      if (silent > limit && detect) {
        this.log({ event: 'dead', peer: this.m.names[i], silent_s: +silent.toFixed(3), missed_beats: Math.floor(silent / iv), dead_after: this.o.dead_after, claimed: numbersOf(p.claims) });
        this.apply({ kind: 'dead', node: i, t }, t, 'takeover');
      } else if (silent > 1.5 * iv && !p.lossLogged) {
        p.lossLogged = true;
        this.log({ event: 'beat-loss', peer: this.m.names[i], silent_s: +silent.toFixed(3), missed_beats: Math.floor(silent / iv) });
      }
    });
    if (this.wakeAt !== null && t + 1e-9 >= this.wakeAt) this.apply({ kind: 'tick', t }, t, 'failback');
  }

  /**
   * Live nodes' claims (ours = our kernel), per bucket as a node-index mask. Live = heard within
   * dead_after intervals: a leaving node is no longer eligible but its kernel still answers until it
   * releases, and a restarting node's kernel may hold buckets before it decides anything.
   */
  private claimants(t: number): number[] {
    const out = new Array<number>(this.m.buckets).fill(0);
    const limit = this.o.dead_after * this.o.interval_s;
    for (let i = 0; i < this.m.names.length; i++) {
      const c = i === this.self ? this.owned : t - this.peers[i]!.lastHeard <= limit ? this.peers[i]!.claims : 0;
      for (const b of bitsOf(c)) if (b < out.length) out[b] = (out[b]! | bucketBit(i)) >>> 0;
    }
    return out;
  }

  /**
   * What our kernel should hold at time t, with the reason for every change.
   * The caller applies `want` (when it differs from `owned`) and reports the
   * read-back through setOwned.
   */
  reconcile(t: number): Reconcile {
    const res: Reconcile = { want: this.owned, added: [], removed: [] };
    const s = this.state;
    if (!s) {
      // Leaving before we ever decided anything: just drop what we have.
      if (this.leaving && this.owned) for (const b of bitsOf(this.owned)) res.removed.push({ bucket: b + 1, cause: 'leave (not established)' });
      if (this.leaving) res.want = 0;
      return res;
    }
    const target = s.owners[this.self]!;
    const claim = this.claimants(t);
    let want = this.owned;
    const releaseFirst = this.o.handover === 'release-first';
    const selfBit = bucketBit(this.self);
    // release-first after a join: a live node we have not heard yet may hold anything; wait for its beat
    // (at most one interval; if it never comes the detector declares it dead).
    const unknownClaims = releaseFirst && this.peers.some((p, i) => i !== this.self && (s.alive >>> i) & 1 && !p.claimsKnown);
    for (const b of bitsOf((target & ~this.owned) >>> 0)) {
      if (t + 1e-9 < this.notBefore[b]!) continue;
      if (unknownClaims) continue;
      // release-first: a live node still holds it, so wait for its release (it follows in its next beat).
      if (!mayAdd(this.o.handover, ((claim[b]! & ~selfBit) >>> 0) !== 0)) continue;
      want = (want | bucketBit(b)) >>> 0;
      res.added.push({ bucket: b + 1, cause: this.cause[b]! });
    }
    for (const b of bitsOf((this.owned & ~target) >>> 0)) {
      const newOwner = s.owners.findIndex((mask, i) => i !== this.self && (mask >>> b) & 1);
      const acked = newOwner >= 0 && ((claim[b]! >>> newOwner) & 1) === 1;
      // release-first: the new owner is live, established, and its view (eligible nodes) equals ours, so it
      // computes the same owner sets and takes the bucket as soon as it sees our release.
      const np = newOwner >= 0 ? this.peers[newOwner]! : null;
      const ready = np !== null && np.view !== null && ((s.alive >>> newOwner) & 1) === 1 && !np.leaving && np.view.eligible === s.eligible;
      const expired = this.leaving && t >= this.leaveDeadline;
      if (mayRelease(this.o.handover, { acked, ready, expired })) {
        want = (want & ~bucketBit(b)) >>> 0;
        res.removed.push({ bucket: b + 1, cause: acked ? `claimed by ${this.m.names[newOwner]}` : ready && releaseFirst ? `handed to ${this.m.names[newOwner]} (its view agrees; it takes the bucket on our release)` : `leave timeout (${this.o.leave_timeout_s} s) without takeover acknowledgement` });
      }
    }
    // Orphans and duplicates, as the live nodes' kernels have them.
    const grace = orphanGrace(this.o.takeover_delay_s, this.o.interval_s);
    const orphans: number[] = [], dups: string[] = [];
    let candidates = 0;
    for (let i = 0; i < this.m.names.length; i++) {
      if ((s.alive >>> i) & 1 && (i === this.self ? !this.leaving : this.peers[i]!.view !== null && !this.peers[i]!.leaving)) candidates = (candidates | bucketBit(i)) >>> 0;
    }
    const lowest = orphanClaimer(candidates);
    for (let b = 0; b < this.m.buckets; b++) {
      const c = claim[b]!;
      if (c === 0) {
        orphans.push(b + 1);
        this.orphanSince[b] ??= t;
        if (lowest === this.self && t - this.orphanSince[b]! > grace && !((want >>> b) & 1)) {
          want = (want | bucketBit(b)) >>> 0;
          res.added.push({ bucket: b + 1, cause: `orphan-claim (no live node held it for ${(t - this.orphanSince[b]!).toFixed(2)} s; lowest live node claims it)` });
        }
      } else {
        this.orphanSince[b] = null;
        if (c & (c - 1)) dups.push(`${b + 1}:${this.names(c).join('+')}`);
      }
    }
    const o = orphans.join(','), d = dups.join(' ');
    if (o !== this.lastOrphan) this.log({ event: o ? 'orphaned' : 'orphans-resolved', buckets: orphans, note: o ? 'no live node accepts these node numbers: their packets are dropped' : undefined });
    if (d !== this.lastDup) {
      this.log({ event: d ? 'duplicate' : 'duplicates-resolved', buckets: dups, keeper: d ? Object.fromEntries(dups.map((x) => { const b = Number(x.split(':')[0]) - 1; const k = s.owners.findIndex((mk) => (mk >>> b) & 1); return [b + 1, k >= 0 ? this.m.names[k] : null]; })) : undefined, note: d ? 'several live nodes accept these node numbers (packets duplicated); the policy owner keeps each, the others release it once the keeper claims it' : undefined });
    }
    this.lastOrphan = o;
    this.lastDup = d;
    res.want = want;
    return res;
  }
}
