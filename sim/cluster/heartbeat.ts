/**
 * The heartbeat detection model and the ownership timeline it produces.
 *
 * Every node sends a beat every `interval_s` at times k * interval_s (k >= 0)
 * while it is up; a beat from i reaches j after a seeded jitter in
 * [0, jitter_s) if the link i -> j works. Node j declares i dead when it has
 * heard nothing from i for `dead_after * interval_s`, and hears i again at its
 * next beat (a changed incarnation = i restarted). Each survivor decides on its
 * own with the policy functions (policies.ts) and applies its own owner set to
 * its kernel `takeover_delay_s` after deciding. Nothing is global: partitions
 * and heartbeat loss give each side its own view, hence split brain.
 *
 * Conventions (so totals can be computed by hand):
 * - An event at time t acts right after the beats scheduled at exactly t: a
 *   node crashing at 10 s still sent its 10 s beat; a partition at 10 s still
 *   lets the 10 s beat through. So a crash at 10 s with beats every 1 s and
 *   dead_after 3 is detected at 13 s (+ jitter), applied at 13 s + takeover delay.
 * - A crashed node accepts nothing from its crash time on (packets with ts >= t).
 * - A voluntary leave is a planned handover, timed by handover.ts (the rules
 *   the agent runs): release-first, the leaver releases each bucket when the
 *   new owner's next beat (sent after it heard the leave) arrives, plus one
 *   kernel update (`apply_s`); the new owner adds it one announcement delivery
 *   (mean jitter, jitter_s / 2) plus one update later: a gap. add-first, the
 *   new owner adds on hearing the leave, the leaver releases on seeing the
 *   claim: an overlap of the same length. The leaver accepts packets until
 *   its last release (it stops beating at the leave, but survivors already
 *   heard it leave, so nobody waits for its death).
 * - A restarted node owns nothing until it has heard a beat from another node;
 *   it then adopts that node's view and the failback mode decides.
 * - The state before t = 0 is the config's; beats start at t = 0.
 */
import type { FailoverEvent } from '../core/result.ts';
import type { Scenario } from './scenario.ts';
import type { ScenarioEvent } from './events.ts';
import { firstFault } from './events.ts';
import { adoptView, allNodes, decide, initialState, type AgentEvent, type AgentState, type Measurements, type PolicyConfig } from './policies.ts';
import { bucketBit, formatBuckets, ownersPerBucket, popcount32 } from './ownership.ts';
import { defaultLeaveTimeout, handoverSteps, orphanGrace, type HandoverMode, type HandoverTiming } from './handover.ts';

const EPS = 1e-9;

/** The ownership of every bucket over time, a function of the scenario only. */
export interface OwnershipTimeline {
  names: string[];
  buckets: number;
  policy: PolicyConfig;
  /** Segment s covers [starts[s], starts[s+1]); starts[0] = -Infinity. Seconds from the traffic start. */
  starts: Float64Array;
  /** owners[s * buckets + b]: node-index mask of the nodes accepting bucket b during segment s. */
  owners: Uint32Array;
  /** nodeMasks[s * nodes + n]: node n's bucket mask during segment s (0 while it is down). */
  nodeMasks: Uint32Array;
  /** Node-index mask of the nodes whose conntrack table is gone from segment s on (they went down at its start). */
  wiped: Uint32Array;
  /** Time of the first crash, leave, partition or heartbeat loss (null: none). */
  first_fault: number | null;
  /** When every bucket had exactly one live owner again after the first fault (null: never within the scenario). */
  recovered_at: number | null;
  /**
   * The end of the last violation (a failback or a later fault can open new ones): from here on the
   * ownership no longer changes. The load phases are before the first fault, during [first fault,
   * settled), and after.
   */
  settled_at: number | null;
  /** Moments where some bucket had no owner or several. */
  windows: ViolationWindow[];
  /** Scenario events, detections and owner-set changes, in time order. */
  events: FailoverEvent[];
}

export interface ViolationWindow {
  from_s: number;
  /** Infinity: still open at the end of the scenario. */
  to_s: number;
  /** Kernel node numbers (1-based) of the buckets orphaned / doubly owned at some point in the window. */
  orphaned: number[];
  doubled: number[];
}

/** Deterministic jitter in [0, 1) from (seed, sender, receiver, beat): no sequential PRNG state. */
export function jitterUnit(seed: number, from: number, to: number, k: number): number {
  let h = Math.imul(seed ^ 0x9e3779b9, 0x85ebca6b) ^ Math.imul(from + 1, 0xc2b2ae35) ^ Math.imul(to + 1, 0x27d4eb2f) ^ Math.imul(k, 0x165667b1);
  h ^= h >>> 16; h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13; h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return (h >>> 0) / 4294967296;
}

interface Incarnation { inc: number; up: number; down: number }
interface Arrival { a: number; inc: number }
interface Transition { t: number; kind: 'dead' | 'alive'; restarted: boolean; node: number }

/** Scenario facts that do not depend on any decision: who is up, which links work, when beats arrive. */
class World {
  readonly n: number;
  readonly I: number;
  readonly D: number;
  readonly horizon: number;
  readonly lives: Incarnation[][];
  private readonly partitions: { t: number; group: number[] | null }[] = [];
  private readonly losses: ScenarioEvent[];
  private readonly trains = new Map<number, BeatTrain>();

  constructor(readonly sc: Scenario, private readonly exhaustive = false) {
    const hb = sc.heartbeat;
    this.n = sc.model.names.length;
    this.I = hb.interval_s;
    this.D = hb.dead_after * hb.interval_s;
    let last = 0;
    for (const e of sc.events) last = Math.max(last, e.t + (e.kind === 'heartbeat-loss' ? e.for_s : 0));
    this.horizon = last + this.D + 2 * this.I + hb.jitter_s + hb.takeover_delay_s + (sc.policy.failback === 'stable' ? sc.policy.stable_s : 0) + 1;
    this.lives = sc.model.names.map(() => [{ inc: 0, up: -Infinity, down: Infinity }]);
    for (const e of sc.events) {
      if (e.kind === 'crash' || e.kind === 'leave') this.lives[e.node]!.at(-1)!.down = e.t;
      else if (e.kind === 'rejoin') {
        const l = this.lives[e.node]!;
        l.push({ inc: l.length, up: e.t, down: Infinity });
      } else if (e.kind === 'partition') {
        const g = new Array<number>(this.n).fill(0);
        e.groups.forEach((grp, gi) => grp.forEach((x) => (g[x] = gi)));
        this.partitions.push({ t: e.t, group: g });
      } else if (e.kind === 'heal') this.partitions.push({ t: e.t, group: null });
    }
    this.losses = sc.events.filter((e) => e.kind === 'heartbeat-loss');
  }

  /** The incarnation of `node` that is up at t, or null. Up on [up, down). */
  lifeAt(node: number, t: number): Incarnation | null {
    for (const l of this.lives[node]!) if (t >= l.up && t < l.down) return l;
    return null;
  }

  /** Does a beat sent by i at time s reach j? (Events at exactly s act after the beat.) */
  linkUp(i: number, j: number, s: number): boolean {
    let g: number[] | null = null;
    for (const p of this.partitions) if (p.t < s - EPS) g = p.group;
    if (g && g[i] !== g[j]) return false;
    for (const e of this.losses) {
      if (e.kind === 'heartbeat-loss' && e.node === i && e.to === j && s > e.t + EPS && s <= e.t + e.for_s + EPS) return false;
    }
    return true;
  }

  /**
   * The beats from i that reach j, as runs of consecutive beat numbers (a run
   * ends where i goes down or the link fails), so that long scenarios with
   * many nodes cost O(runs), not O(beats).
   */
  beats(i: number, j: number): BeatTrain {
    const key = i * 64 + j;
    let tr = this.trains.get(key);
    if (tr) return tr;
    const { I } = this;
    const end = this.horizon + this.D + 2 * I;
    const runs: BeatRun[] = [];
    // Link state can only change at these times; check the beats around each.
    const bounds: number[] = [];
    for (const p of this.partitions) bounds.push(p.t);
    for (const e of this.losses) if (e.kind === 'heartbeat-loss' && e.node === i && e.to === j) bounds.push(e.t, e.t + e.for_s);
    for (const l of this.lives[i]!) {
      const k0 = Math.max(0, Math.ceil(l.up / I - EPS));
      const k1 = Math.floor(Math.min(l.down, end) / I + EPS);
      if (k1 < k0) continue;
      const checks = new Set<number>([k0]);
      if (this.exhaustive) for (let k = k0 + 1; k <= k1; k++) checks.add(k);
      else for (const b of bounds) {
        const kb = Math.floor(b / I + EPS);
        for (let k = kb - 1; k <= kb + 1; k++) if (k > k0 && k <= k1) checks.add(k);
      }
      const cs = [...checks].sort((a, b) => a - b);
      cs.forEach((c, m) => {
        const last = m + 1 < cs.length ? cs[m + 1]! - 1 : k1;
        if (!this.linkUp(i, j, c * I)) return;
        const prev = runs.at(-1);
        if (prev && prev.inc === l.inc && prev.k1 === c - 1) prev.k1 = last;
        else runs.push({ k0: c, k1: last, inc: l.inc });
      });
    }
    tr = new BeatTrain(runs, I, this.sc.heartbeat.jitter_s, this.sc.heartbeat.seed, i, j, this.exhaustive ? -Infinity : this.D);
    this.trains.set(key, tr);
    return tr;
  }
}

interface BeatRun { k0: number; k1: number; inc: number }

/**
 * The beats from one node at another. Beat k is sent at k * I and arrives
 * after a jitter in [0, jitter_s). When jitter_s < I and I + jitter_s <= D,
 * arrivals are in beat order and no gap inside a run can reach dead-after, so
 * only each run's first and last arrival matter (the fast path). Otherwise
 * every arrival is listed and sorted.
 */
class BeatTrain {
  readonly fast: boolean;
  private list: Arrival[] | null = null;
  constructor(readonly runs: BeatRun[], private readonly I: number, private readonly jit: number, private readonly seed: number, private readonly from: number, private readonly to: number, D: number) {
    this.fast = jit < I && I + jit <= D + EPS;
  }

  arrival(k: number): number {
    return k * this.I + (this.jit > 0 ? this.jit * jitterUnit(this.seed, this.from, this.to, k) : 0);
  }

  /** Every arrival in time order (slow path). */
  all(): Arrival[] {
    if (this.list) return this.list;
    const out: Arrival[] = [];
    for (const r of this.runs) for (let k = r.k0; k <= r.k1; k++) out.push({ a: this.arrival(k), inc: r.inc });
    out.sort((x, y) => x.a - y.a);
    return (this.list = out);
  }

  /** First and last beat numbers of run r arriving in [from, to), or null (fast path only). */
  span(r: BeatRun, from: number, to: number): [number, number] | null {
    let ka = Math.max(r.k0, Math.ceil((from - this.jit) / this.I - EPS) - 1);
    while (ka <= r.k1 && this.arrival(ka) < from - EPS) ka++;
    let kb = Math.min(r.k1, Math.floor(to / this.I + EPS) + 1);
    while (kb >= ka && this.arrival(kb) >= to) kb--;
    return ka <= kb ? [ka, kb] : null;
  }

  /** The first arrival at or after t (and before `before`), or null. */
  firstFrom(t: number, before = Infinity): number | null {
    if (!this.fast) {
      const b = this.all().find((x) => x.a >= t - EPS);
      return b && b.a < before ? b.a : null;
    }
    for (const r of this.runs) {
      const sp = this.span(r, t, before);
      if (sp) return this.arrival(sp[0]);
    }
    return null;
  }

  /** The incarnation of the last beat that arrived by time t (0 if none). */
  incBy(t: number): number {
    let inc = 0;
    if (!this.fast) {
      for (const b of this.all()) {
        if (b.a > t + EPS) break;
        inc = b.inc;
      }
      return inc;
    }
    for (const r of this.runs) {
      if (this.arrival(r.k0) > t + EPS) break;
      inc = r.inc;
    }
    return inc;
  }
}

/**
 * What j concludes about i from i's beats between `from` and `to`, starting
 * from a belief (alive or not, last heard, known incarnation).
 */
function perceive(tr: BeatTrain, node: number, from: number, to: number, alive: boolean, lastHeard: number, knownInc: number, D: number): Transition[] {
  const out: Transition[] = [];
  const hear = (a: number, inc: number): void => {
    if (alive && a > lastHeard + D + EPS) {
      out.push({ t: lastHeard + D, kind: 'dead', restarted: false, node });
      alive = false;
    }
    // knownInc < 0: a node we never heard before (we restarted alone); its first beat is not a restart.
    if (!alive) {
      out.push({ t: a, kind: 'alive', restarted: knownInc >= 0 && inc !== knownInc, node });
      alive = true;
    } else if (knownInc >= 0 && inc !== knownInc) {
      // Restarted faster than dead-after: it lost its buckets all the same.
      out.push({ t: a, kind: 'dead', restarted: false, node }, { t: a, kind: 'alive', restarted: true, node });
    }
    lastHeard = a;
    knownInc = inc;
  };
  if (tr.fast) {
    for (const r of tr.runs) {
      const sp = tr.span(r, from, to);
      if (!sp) continue;
      hear(tr.arrival(sp[0]), r.inc);
      // The beats in between arrive less than dead-after apart: nothing to conclude from them.
      lastHeard = tr.arrival(sp[1]);
    }
  } else {
    for (const { a, inc } of tr.all()) {
      if (a < from - EPS) continue;
      if (a >= to) break;
      hear(a, inc);
    }
  }
  if (alive && lastHeard + D < to) out.push({ t: lastHeard + D, kind: 'dead', restarted: false, node });
  return out;
}

interface QEvent {
  t: number;
  seq: number;
  j: number;
  inc: number;
  kind: 'dead' | 'alive' | 'leave' | 'failback' | 'tick' | 'adopt';
  node: number;
  restarted: boolean;
}

/** Binary min-heap on (t, seq). */
class Heap {
  private a: QEvent[] = [];
  push(e: QEvent): void {
    const a = this.a;
    a.push(e);
    let i = a.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (less(a[p]!, a[i]!)) break;
      [a[p], a[i]] = [a[i]!, a[p]!];
      i = p;
    }
  }
  pop(): QEvent | undefined {
    const a = this.a;
    if (!a.length) return undefined;
    const top = a[0]!;
    const last = a.pop()!;
    if (a.length) {
      a[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1, r = l + 1;
        let m = i;
        if (l < a.length && less(a[l]!, a[m]!)) m = l;
        if (r < a.length && less(a[r]!, a[m]!)) m = r;
        if (m === i) break;
        [a[m], a[i]] = [a[i]!, a[m]!];
        i = m;
      }
    }
    return top;
  }
}
const less = (x: QEvent, y: QEvent): boolean => x.t < y.t || (x.t === y.t && x.seq < y.seq);

/** apply: the node's whole mask; clear: remove these buckets (a leaver's handover release). */
interface MaskOp { t: number; seq: number; inc: number; type: 'down' | 'up' | 'apply' | 'clear'; mask: number }

/**
 * Runs every node's controller through the scenario and returns the
 * ownership timeline. `meas` feeds least-loaded (traffic measured before the
 * first fault); `policy` overrides the scenario's (for --compare-policies);
 * `exhaustiveBeats` walks every beat instead of runs (a cross-check for tests).
 * Four steps: the controllers' decisions (runControllers), each node's kernel
 * mask over time (maskChanges), the ownership segments and violation windows
 * (segmentsOf), and when the cluster recovered (recoveryOf).
 */
export function buildTimeline(sc: Scenario, policy: PolicyConfig = sc.policy, meas?: Measurements, opts: { exhaustiveBeats?: boolean; handover?: HandoverMode } = {}): OwnershipTimeline {
  const { ops, events } = runControllers(sc, policy, meas, opts.exhaustiveBeats, opts.handover ?? sc.handover);
  const changes = maskChanges(ops, sc.model.home, sc.model.names, events);
  const sg = segmentsOf(changes, sc.model.names.length, sc.model.buckets);
  const r = recoveryOf(firstFault(sc.events), sg.windows);
  events.sort((a, b) => a.t - b.t);
  return { names: sc.model.names, buckets: sc.model.buckets, policy, ...sg, first_fault: r.firstFault, recovered_at: r.recovered, settled_at: r.settled, events };
}

/**
 * The controllers of every node, driven by heartbeats and the scenario's
 * events in time order: the events to log, and per node the operations on
 * its kernel mask (down, up, apply) in decision order.
 */
function runControllers(sc: Scenario, policy: PolicyConfig, meas: Measurements | undefined, exhaustiveBeats: boolean | undefined, handover: HandoverMode): { ops: MaskOp[][]; events: FailoverEvent[] } {
  const w = new World(sc, exhaustiveBeats);
  const { n, D } = w;
  const m = sc.model;
  const delay = sc.heartbeat.takeover_delay_s;
  const names = m.names;
  const events: FailoverEvent[] = [];
  const heap = new Heap();
  let seq = 0;
  const push = (e: Omit<QEvent, 'seq'>): void => heap.push({ ...e, seq: seq++ });
  const pushTransitions = (j: number, inc: number, tr: Transition[]): void => {
    for (const x of tr) push({ t: x.t, j, inc, kind: x.kind, node: x.node, restarted: x.restarted });
  };

  // Scenario events: logged, and the ones nodes react to without heartbeats queued.
  for (const e of sc.events) {
    events.push(scenarioEventLog(e, names));
    if (e.kind === 'leave') {
      for (let j = 0; j < n; j++) {
        const life = j === e.node ? null : w.lifeAt(j, e.t);
        if (life && w.linkUp(e.node, j, e.t + 2 * EPS)) push({ t: e.t, j, inc: life.inc, kind: 'leave', node: e.node, restarted: false });
      }
    } else if (e.kind === 'failback') {
      for (let j = 0; j < n; j++) {
        const life = w.lifeAt(j, e.t);
        if (life) push({ t: e.t, j, inc: life.inc, kind: 'failback', node: e.node, restarted: false });
      }
    }
  }

  // First incarnations: everyone starts alive, heard at t = 0, incarnation 0.
  const ops: MaskOp[][] = names.map(() => []);
  const states: (AgentState | null)[] = names.map(() => null);
  // Which incarnation each state belongs to: a restarted node has no view until it adopts one.
  const stateInc: number[] = names.map(() => 0);
  const init = initialState(m, policy, meas);
  // A leaving node's kernel keeps accepting until its handover releases the buckets (handover.ts): its
  // 'down' waits for its last release (collected below), never past its next start.
  const leaves = new Map<string, { node: number; t: number; releases: number[] }>();
  for (const e of sc.events) if (e.kind === 'leave') leaves.set(`${e.node}@${e.t}`, { node: e.node, t: e.t, releases: [] });
  const downOps: { j: number; l: Incarnation; next: number }[] = [];
  for (let j = 0; j < n; j++) {
    const l0 = w.lives[j]![0]!;
    states[j] = init;
    ops[j]!.push({ t: -Infinity, seq: -1, inc: 0, type: 'up', mask: init.owners[j]! });
    for (let i = 0; i < n; i++) if (i !== j) pushTransitions(j, 0, perceive(w.beats(i, j), i, 0, Math.min(l0.down, w.horizon), true, 0, 0, D));
    w.lives[j]!.forEach((l, li) => {
      if (l.down !== Infinity) downOps.push({ j, l, next: w.lives[j]![li + 1]?.up ?? Infinity });
    });
    for (const l of w.lives[j]!) {
      if (l.inc > 0) {
        ops[j]!.push({ t: l.up, seq: seq++, inc: l.inc, type: 'up', mask: 0 });
        // Adoption: the first beat heard from anyone after the restart.
        let best: { a: number; from: number } | null = null;
        for (let i = 0; i < n; i++) {
          if (i === j) continue;
          const a = w.beats(i, j).firstFrom(l.up, l.down);
          if (a !== null && (!best || a < best.a)) best = { a, from: i };
        }
        if (best && best.a <= l.up + D) push({ t: best.a, j, inc: l.inc, kind: 'adopt', node: best.from, restarted: true });
        else if (l.up + D < Math.min(l.down, w.horizon)) push({ t: l.up + D, j, inc: l.inc, kind: 'adopt', node: -1, restarted: true });
      }
    }
  }

  // Last incarnation each observer heard from each node (for adoption).
  const heardInc = (obs: number, i: number, t: number): number => w.beats(i, obs).incBy(t);

  const ticks = new Set<string>();
  for (let e = heap.pop(); e; e = heap.pop()) {
    const life = w.lifeAt(e.j, e.t);
    if (!life || life.inc !== e.inc) continue;
    // A restarted node has no view (and decides nothing) until it adopts one.
    if (e.kind !== 'adopt' && stateInc[e.j] !== e.inc) continue;
    const j = e.j;
    let st = states[j]!;
    let changed = false;
    let wake: number | null = null;
    const step = (ev: AgentEvent): void => {
      const d = decide(m, policy, st, ev, meas);
      st = d.state;
      changed ||= d.changed;
      wake = d.wake_at;
    };
    if (e.kind === 'adopt') {
      const from = e.node >= 0 ? states[e.node] : null;
      const fromOk = e.node >= 0 && from !== null && w.lifeAt(e.node, e.t)?.inc === stateInc[e.node];
      if (fromOk) events.push({ t: e.t, kind: 'detected', node: names[j], detail: `${names[j]} (restarted) hears ${names[e.node]!} and adopts its view` });
      else events.push({ t: e.t, kind: 'detected', node: names[j], detail: `${names[j]} (restarted) hears no settled peer within dead-after and believes it is alone` });
      const d = adoptView(m, policy, j, e.t, fromOk ? from! : null, meas);
      st = d.state;
      wake = d.wake_at;
      changed = true;
      for (let i = 0; i < n; i++) {
        if (i === j) continue;
        const alive = ((st.alive >>> i) & 1) === 1;
        const known = fromOk ? heardInc(e.node, i, e.t) : -1;
        pushTransitions(j, e.inc, perceive(w.beats(i, j), i, e.t, Math.min(life.down, w.horizon), alive, e.t, known, D));
      }
    } else if (e.kind === 'tick') {
      step({ kind: 'tick', t: e.t });
    } else {
      const alive = ((st.alive >>> e.node) & 1) === 1;
      if (e.kind === 'dead' && alive) events.push({ t: e.t, kind: 'detected', node: names[j], detail: `${names[j]} declares ${names[e.node]} dead (no heartbeat for ${fmt(D)} s)` });
      if (e.kind === 'alive' && !alive) events.push({ t: e.t, kind: 'detected', node: names[j], detail: `${names[j]} hears ${names[e.node]} again${e.restarted ? ' (restarted)' : ' (it never went down)'}` });
      step(e.kind === 'alive' ? { kind: 'alive', node: e.node, t: e.t, restarted: e.restarted } : { kind: e.kind, node: e.node, t: e.t });
    }
    const before = states[j]!;
    states[j] = st;
    stateInc[j] = e.inc;
    if (changed && e.kind === 'leave') {
      // The planned handover from the leaver to this node, timed as the agent runs it (handover.ts).
      const lv = leaves.get(`${e.node}@${e.t}`);
      const leaverMask = before.owners[e.node]!;
      const gained = (st.owners[j]! & ~before.owners[j]! & leaverMask) >>> 0;
      const steps = handoverSteps(e.t, [{ from: e.node, to: j, buckets: gained }], handover, handoverTiming(w, e.node));
      let addAt = e.t;
      for (const x of steps) {
        if (x.node === j && x.add) addAt = Math.max(addAt, x.t);
        else if (x.node === e.node && x.remove) {
          ops[e.node]!.push({ t: x.t, seq: seq++, inc: w.lifeAt(e.node, e.t - EPS)?.inc ?? 0, type: 'clear', mask: x.remove });
          lv?.releases.push(x.t);
        }
      }
      ops[j]!.push({ t: addAt, seq: seq++, inc: e.inc, type: 'apply', mask: st.owners[j]! });
    } else if (changed) ops[j]!.push({ t: e.t + delay, seq: seq++, inc: e.inc, type: 'apply', mask: st.owners[j]! });
    if (wake !== null) {
      const key = `${j}@${wake}`;
      if (!ticks.has(key)) {
        ticks.add(key);
        push({ t: wake, j, inc: e.inc, kind: 'tick', node: -1, restarted: false });
      }
    }
  }

  // Down: at the end of life, or, for a leave, once its handover released everything (the leave timeout at the latest).
  for (const { j, l, next } of downOps) {
    const lv = leaves.get(`${j}@${l.down}`);
    // Nobody heard the leave: nobody takes over, and the leaver lets go at its timeout (either order).
    const t = lv && lv.releases.length ? Math.min(Math.max(l.down, ...lv.releases), next) : lv && !leaverHeard(w, j, l.down) ? Math.min(l.down + leaveTimeout(sc) + sc.heartbeat.apply_s, next) : l.down;
    ops[j]!.push({ t, seq: seq++, inc: l.inc, type: 'down', mask: 0 });
  }

  return { ops, events };
}

const leaveTimeout = (sc: Scenario): number => defaultLeaveTimeout(sc.heartbeat.interval_s, sc.heartbeat.dead_after);

/** Does any node that is up hear the leaver's announcement? (If none does, nobody takes over: it waits out its timeout.) */
function leaverHeard(w: World, node: number, t: number): boolean {
  for (let j = 0; j < w.n; j++) if (j !== node && w.lifeAt(j, t) && w.linkUp(node, j, t + 2 * EPS)) return true;
  return false;
}

/**
 * The timing facts of a handover from `leaver` in this scenario: a beat's delivery is the mean jitter,
 * a kernel update `apply_s`, and the new owner is ready when its first periodic beat sent after it heard
 * the leave reaches the leaver (beats at k x interval, as everywhere in this model).
 */
function handoverTiming(w: World, leaver: number): HandoverTiming {
  const hb = w.sc.heartbeat;
  const I = hb.interval_s;
  const timeout = defaultLeaveTimeout(I, hb.dead_after);
  return {
    apply_s: hb.apply_s,
    delivery_s: hb.jitter_s / 2,
    grace_s: orphanGrace(hb.takeover_delay_s, I),
    leave_timeout_s: timeout,
    readyAt: (to, heardAt) => {
      // A beat sent at exactly heardAt went out before the node heard the leave (events act after beats).
      for (let k = Math.floor(heardAt / I + EPS) + 1; k * I <= heardAt + timeout + I; k++) {
        if (w.lifeAt(to, k * I) && w.linkUp(to, leaver, k * I)) return w.beats(to, leaver).arrival(k);
      }
      return null;
    },
  };
}

/** Each node's kernel mask over time: decisions apply in decision order, only within the incarnation that made them. Mask changes are logged to `events`. */
function maskChanges(ops: MaskOp[][], home: number[], names: string[], events: FailoverEvent[]): MaskChange[] {
  const n = names.length;
  const changes: { t: number; node: number; mask: number; down: boolean }[] = [];
  for (let j = 0; j < n; j++) {
    // A handover's release at the moment the leaver goes down is still logged: clear before down.
    const order = { clear: -1, down: 0, up: 1, apply: 2 } as const;
    const list = ops[j]!.sort((a, b) => a.t - b.t || order[a.type] - order[b.type] || a.seq - b.seq);
    let inc = -1, lastSeq = -Infinity, mask = 0;
    for (const op of list) {
      if (op.type === 'down') {
        inc = -1;
        changes.push({ t: op.t, node: j, mask: 0, down: true });
        mask = 0;
      } else if (op.type === 'up') {
        inc = op.inc;
        lastSeq = op.seq;
        mask = op.mask;
        changes.push({ t: op.t, node: j, mask, down: false });
      } else if (op.inc === inc && (op.seq > lastSeq || op.type !== 'apply')) {
        // A later decision overrides an earlier one; a handover release acts on what is there when it runs.
        if (op.type === 'apply') lastSeq = op.seq;
        const next = op.type === 'clear' ? (mask & ~op.mask) >>> 0 : op.mask;
        if (next !== mask) {
          const prev = mask;
          mask = next;
          changes.push({ t: op.t, node: j, mask, down: false });
          events.push(op.type === 'clear' ? { t: op.t, kind: 'leave', node: names[j], detail: `${names[j]} releases ${formatBuckets(prev & ~mask)} (handover; now owns ${formatBuckets(mask) || 'nothing'})` } : maskChangeLog(op.t, j, prev, mask, home, names));
        }
      }
    }
  }

  return changes;
}

/** Ownership per segment (one per distinct change time) and the windows where a bucket had no owner or several. */
function segmentsOf(changes: MaskChange[], n: number, B: number): Pick<OwnershipTimeline, 'starts' | 'owners' | 'nodeMasks' | 'wiped' | 'windows'> {
  changes.sort((a, b) => a.t - b.t || a.node - b.node);
  const times: number[] = [];
  for (const c of changes) if (!times.length || times.at(-1)! !== c.t) times.push(c.t);
  const S = times.length;
  const starts = new Float64Array(times);
  const owners = new Uint32Array(S * B);
  const nodeMasks = new Uint32Array(S * n);
  const wiped = new Uint32Array(S);
  const cur = new Array<number>(n).fill(0);
  let ci = 0;
  const windows: ViolationWindow[] = [];
  let open: ViolationWindow | null = null;
  let orph = 0, dbl = 0;
  for (let s = 0; s < S; s++) {
    while (ci < changes.length && changes[ci]!.t === times[s]) {
      const c = changes[ci++]!;
      cur[c.node] = c.mask;
      if (c.down) wiped[s] = (wiped[s]! | bucketBit(c.node)) >>> 0;
    }
    for (let j = 0; j < n; j++) nodeMasks[s * n + j] = cur[j]!;
    const per = ownersPerBucket(cur, B);
    let o = 0, d = 0;
    for (let b = 0; b < B; b++) {
      owners[s * B + b] = per[b]!;
      const c = popcount32(per[b]!);
      if (c === 0) o = (o | bucketBit(b)) >>> 0;
      else if (c > 1) d = (d | bucketBit(b)) >>> 0;
    }
    if (o || d) {
      if (!open) {
        open = { from_s: starts[s]!, to_s: Infinity, orphaned: [], doubled: [] };
        orph = 0; dbl = 0;
      }
      orph |= o; dbl |= d;
    } else if (open) {
      open.to_s = starts[s]!;
      finishWindow(open, orph, dbl);
      windows.push(open);
      open = null;
    }
  }
  if (open) {
    finishWindow(open, orph, dbl);
    windows.push(open);
  }

  return { starts, owners, nodeMasks, wiped, windows };
}

/**
 * Recovery: the end of the first violation after the first fault (the
 * outage). Settled: the end of the last one (later windows come from
 * failback or further faults).
 */
function recoveryOf(firstFault: number | null, windows: ViolationWindow[]): { firstFault: number | null; recovered: number | null; settled: number | null } {
  let recovered: number | null = firstFault;
  let settled: number | null = firstFault;
  if (firstFault !== null) {
    let first = true;
    for (const win of windows) {
      if (win.to_s <= firstFault) continue;
      const end = win.to_s === Infinity ? null : Math.max(firstFault, win.to_s);
      if (first) recovered = end;
      settled = end;
      first = false;
    }
  }
  return { firstFault, recovered, settled };
}

interface MaskChange { t: number; node: number; mask: number; down: boolean }

function finishWindow(w: ViolationWindow, orph: number, dbl: number): void {
  for (let b = 0; b < 32; b++) {
    if ((orph >>> b) & 1) w.orphaned.push(b + 1);
    if ((dbl >>> b) & 1) w.doubled.push(b + 1);
  }
}

const fmt = (x: number): string => String(Math.round(x * 1e6) / 1e6);

function scenarioEventLog(e: ScenarioEvent, names: string[]): FailoverEvent {
  switch (e.kind) {
    case 'crash': return { t: e.t, kind: 'crash', node: names[e.node], detail: `${names[e.node]} crashes (no handover; its conntrack table is lost)` };
    case 'leave': return { t: e.t, kind: 'leave', node: names[e.node], detail: `${names[e.node]} leaves and hands its buckets over` };
    case 'rejoin': return { t: e.t, kind: 'rejoin', node: names[e.node], detail: `${names[e.node]} starts again with no buckets` };
    case 'failback': return { t: e.t, kind: 'failback', node: names[e.node], detail: `operator: give ${names[e.node]} its buckets back` };
    case 'partition': return { t: e.t, kind: 'partition', detail: `heartbeat network splits: ${e.groups.map((g) => `[${g.map((x) => names[x]).join(', ')}]`).join(' ')}` };
    case 'heal': return { t: e.t, kind: 'heal', detail: 'heartbeat network heals' };
    case 'heartbeat-loss': return { t: e.t, kind: 'heartbeat-loss', node: names[e.node], detail: `beats from ${names[e.node]} do not reach ${names[e.to]} for ${fmt(e.for_s)} s` };
  }
}

function maskChangeLog(t: number, node: number, prev: number, mask: number, home: number[], names: string[]): FailoverEvent {
  const added = (mask & ~prev) >>> 0;
  const removed = (prev & ~mask) >>> 0;
  let homeMask = 0;
  home.forEach((h, b) => { if (h === node) homeMask = (homeMask | bucketBit(b)) >>> 0; });
  const parts: string[] = [];
  if (added) parts.push(`takes ${formatBuckets(added)}`);
  if (removed) parts.push(`releases ${formatBuckets(removed)}`);
  const kind = added & ~homeMask ? 'takeover' : 'failback';
  return { t, kind, node: names[node], detail: `${names[node]} ${parts.join(', ')} (now owns ${formatBuckets(mask) || 'nothing'})` };
}

/** The segment index covering time t (binary search). */
export function segmentAt(tl: OwnershipTimeline, t: number): number {
  const s = tl.starts;
  let lo = 0, hi = s.length - 1;
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if (s[mid]! <= t) lo = mid;
    else hi = mid - 1;
  }
  return lo;
}

export { allNodes };
