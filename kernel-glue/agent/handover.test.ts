/**
 * The agent and the failover model agree on a voluntary leave: the same owner-set steps, from the same
 * code (sim/cluster/handover.ts). Three agent cores run on an event-driven clock as the daemon wires them
 * (daemon.ts, owner-sync.ts): periodic beats at phase + k x interval, every beat delivered after `delivery`,
 * a kernel change taking `apply` (one at a time), an announcement beat right after every change, and a
 * reconcile on every beat received. Their kernel changes are compared with `handoverSteps`, and with the
 * failover model's timeline for the same scenario (buildTimeline).
 */
import { describe, expect, it } from 'vitest';
import { AgentCore, numbersOf } from './core.ts';
import { clusterModel } from '../../sim/cluster/ownership.ts';
import { handoverSteps, handoverWindow, HANDOVER_MODES, parseHandover, defaultLeaveTimeout, orphanGrace, safetyNetActs, type HandoverMode, type HandoverStep } from '../../sim/cluster/handover.ts';
import { parseScenario } from '../../sim/cluster/scenario.ts';
import { buildTimeline, segmentAt } from '../../sim/cluster/heartbeat.ts';
import { scenarioYaml } from '../../sim/cluster/test-helpers.ts';
import { FailoverSchema, type ClusterConfig } from '../../sim/core/cluster-config.ts';
import type { BeatBody } from './protocol.ts';

const I = 0.2, DEAD = 3;

function config(): ClusterConfig {
  return {
    cluster: { ip: '192.0.2.10', interface: 'eth0', mac: '01:00:5e:00:00:20', backend: 'nft', seed: 1, total_nodes: 3, endian: 'little' },
    nodes: [1, 2, 3].map((k) => ({ name: `node${k}`, owns: [k], host: 'local' as const, address: `10.0.0.${k}` })),
  } as ClusterConfig;
}

interface Ev { t: number; seq: number; run: () => void }

/** The daemon's wiring of three cores on one event queue. */
class Cluster {
  t = 0;
  private q: Ev[] = [];
  private seq = 0;
  readonly cores: AgentCore[];
  private readonly busy = [false, false, false];
  readonly up = [true, true, true];
  /** Kernel changes: time, node, new mask. */
  readonly changes: { t: number; node: number; from: number; to: number }[] = [];
  constructor(mode: HandoverMode, readonly delivery: number, readonly apply: number, readonly phase: number[]) {
    const c = config();
    this.cores = [0, 1, 2].map((i) => new AgentCore({ model: clusterModel(c), policy: { policy: 'lowest', failback: 'immediate', stable_s: 0 }, self: i, interval_s: I, dead_after: DEAD, takeover_delay_s: 0, leave_timeout_s: defaultLeaveTimeout(I, DEAD), handover: mode, t0: 0, inc: i + 1 }));
    for (let i = 0; i < 3; i++) {
      this.at(phase[i]!, () => this.periodic(i));
      this.at(0.01, () => this.tick(i));
    }
  }
  at(t: number, run: () => void): void {
    this.q.push({ t, seq: this.seq++, run });
    this.q.sort((a, b) => a.t - b.t || a.seq - b.seq);
  }
  private send(i: number): void {
    if (!this.up[i]) return;
    const b: BeatBody = this.cores[i]!.beat(1e9 + this.t, this.t);
    for (let j = 0; j < 3; j++) if (j !== i) this.at(this.t + this.delivery, () => this.up[j] && (this.cores[j]!.onBeat(b, this.t), this.reconcile(j)));
  }
  private periodic(i: number): void {
    this.send(i);
    if (this.up[i]) this.at(this.t + I, () => this.periodic(i));
  }
  private tick(i: number): void {
    if (!this.up[i]) return;
    this.cores[i]!.tick(this.t);
    this.reconcile(i);
    this.at(this.t + 0.01, () => this.tick(i));
  }
  reconcile(i: number): void {
    const core = this.cores[i]!;
    if (this.busy[i] || !this.up[i]) return;
    const r = core.reconcile(this.t);
    if (r.want === core.owned) return;
    this.busy[i] = true;
    this.at(this.t + this.apply, () => {
      this.changes.push({ t: this.t, node: i, from: core.owned, to: r.want });
      core.setOwned(r.want);
      this.busy[i] = false;
      this.send(i); // owner-sync announces every change
      if (core.leftCluster) this.up[i] = false; // the daemon stops after its final beats
      else this.reconcile(i);
    });
  }
  /** What the daemon does on SIGTERM: the core starts the leave and a beat goes out at once. */
  leave(i: number): void {
    this.cores[i]!.startLeave(this.t, 'test');
    this.send(i);
  }
  run(until: number): void {
    while (this.q.length && this.q[0]!.t <= until + 1e-12) {
      const e = this.q.shift()!;
      this.t = e.t;
      e.run();
    }
    this.t = until;
  }
}

/** Kernel changes after `from` as handover steps (added / removed buckets per change). */
const asSteps = (ch: Cluster['changes'], from: number): Omit<HandoverStep, 'why'>[] =>
  ch.filter((c) => c.t >= from).map((c) => ({ t: +c.t.toFixed(9), node: c.node, add: (c.to & ~c.from) >>> 0, remove: (c.from & ~c.to) >>> 0 }));

describe('handover sequence (sim/cluster/handover.ts)', () => {
  const tm = (readyAt: number | null) => ({ apply_s: 0.03, delivery_s: 0.005, grace_s: orphanGrace(0, I), leave_timeout_s: 5, readyAt: () => readyAt });
  it('release-first: the old owner releases one update after the new owner is ready, the new owner adds one delivery and one update later: a gap, nobody holds the bucket', () => {
    const s = handoverSteps(10, [{ from: 2, to: 0, buckets: 0b100 }], 'release-first', tm(10.2));
    expect(s.map(({ t, node, add, remove }) => [+t.toFixed(9), node, add, remove])).toEqual([[10.23, 2, 0, 0b100], [10.265, 0, 0b100, 0]]);
    const w = handoverWindow(s, { from: 2, to: 0, buckets: 0b100 });
    expect(w.gap_s).toBeCloseTo(0.035, 9);
    expect(w.overlap_s).toBe(0);
  });
  it('add-first: the new owner adds on hearing the leave, the old releases on seeing the claim: an overlap of the same length', () => {
    const s = handoverSteps(10, [{ from: 2, to: 0, buckets: 0b100 }], 'add-first', tm(null));
    expect(s.map(({ t, node, add, remove }) => [+t.toFixed(9), node, add, remove])).toEqual([[10.035, 0, 0b100, 0], [10.07, 2, 0, 0b100]]);
    const w = handoverWindow(s, { from: 2, to: 0, buckets: 0b100 });
    expect(w.overlap_s).toBeCloseTo(0.035, 9);
    expect(w.gap_s).toBe(0);
  });
  it('release-first with a new owner that never shows itself ready: the old owner releases at its leave timeout', () => {
    const s = handoverSteps(10, [{ from: 2, to: 0, buckets: 0b100 }], 'release-first', tm(null));
    expect(s[0]).toMatchObject({ node: 2, remove: 0b100, why: 'leave timeout without the new owner ready' });
    expect(s[0]!.t).toBeCloseTo(15.03, 9);
  });
  it('the safety net acts in a gap only when one kernel update outlasts the grace', () => {
    expect(safetyNetActs({ apply_s: 0.03, delivery_s: 0.005, grace_s: orphanGrace(0, I) })).toBe(false);
    expect(safetyNetActs({ apply_s: 0.5, delivery_s: 0.005, grace_s: orphanGrace(0, I) })).toBe(true);
  });
});

describe('the agent core and the failover model take the same steps for a leave', () => {
  for (const mode of HANDOVER_MODES) {
    for (const [delivery, apply, phase] of [[0, 0.03, [0, 0, 0]], [0.004, 0.05, [0.013, 0.11, 0.07]], [0.02, 0.011, [0.19, 0.05, 0.001]]] as [number, number, number[]][]) {
      it(`${mode}, delivery ${delivery} s, kernel update ${apply} s, beat phases ${phase.join('/')}`, () => {
        const c = new Cluster(mode, delivery, apply, phase);
        c.run(2.005);
        expect(c.cores.map((x) => numbersOf(x.owned))).toEqual([[1], [2], [3]]);
        const t0 = c.t;
        c.leave(2);
        c.run(t0 + 6);
        expect(c.cores.map((x, i) => (c.up[i] ? numbersOf(x.owned) : null))).toEqual([[1, 3], [2], null]);
        // The new owner (node1) is ready when its first periodic beat sent after it heard the leave reaches node3.
        const readyAt = (to: number, heardAt: number): number => {
          const k = Math.floor((heardAt - phase[to]!) / I + 1e-9) + 1;
          return phase[to]! + k * I + delivery;
        };
        const want = handoverSteps(t0, [{ from: 2, to: 0, buckets: 0b100 }], mode, { apply_s: apply, delivery_s: delivery, grace_s: orphanGrace(0, I), leave_timeout_s: defaultLeaveTimeout(I, DEAD), readyAt });
        const got = asSteps(c.changes, t0);
        expect(got.map((x) => [x.node, x.add, x.remove])).toEqual(want.map((x) => [x.node, x.add, x.remove]));
        got.forEach((x, k) => expect(x.t).toBeCloseTo(want[k]!.t, 6));
      });
    }
  }

  for (const mode of HANDOVER_MODES) {
    it(`${mode}: the failover model's timeline for the same leave holds the same owner sets at the same times`, () => {
      // The model's beats are at k x interval with jitter 0 (delivery 0): phases 0, as in the first case above.
      const apply = 0.03, tLeave = 2.005;
      const sc = parseScenario(scenarioYaml(3, `events:\n  - { at: ${tLeave}s, leave: node3 }\nhandover: ${mode}`, `{ interval_s: ${I}, dead_after: ${DEAD}, takeover_delay_s: 0, jitter_s: 0, apply_s: ${apply} }`), 't.yaml');
      const tl = buildTimeline(sc);
      const c = new Cluster(mode, 0, apply, [0, 0, 0]);
      c.run(tLeave);
      c.leave(2);
      c.run(tLeave + 6);
      // Replay the agents' kernel changes and compare with the model's per-node masks right after each one.
      const masks = [1, 2, 4];
      for (const ch of c.changes.filter((x) => x.t >= tLeave)) {
        masks[ch.node] = ch.to;
        const s = segmentAt(tl, ch.t + 1e-9);
        expect(Array.from(tl.nodeMasks.subarray(s * 3, s * 3 + 3)), `at ${ch.t}`).toEqual(masks);
      }
      expect(c.changes.filter((x) => x.t >= tLeave)).toHaveLength(2);
    });
  }
});

describe('one vocabulary', () => {
  it('the orders are the agent\'s words; glue move\'s old spelling remove-first is an alias of release-first; anything else is refused', () => {
    expect(parseHandover('release-first')).toBe('release-first');
    expect(parseHandover('add-first')).toBe('add-first');
    expect(parseHandover('remove-first')).toBe('release-first');
    expect(parseHandover('remove')).toBeNull();
    // The config schema (sim/core, below sim/cluster) lists the same modes.
    expect(FailoverSchema.shape.handover.removeDefault().options).toEqual([...HANDOVER_MODES]);
  });
});
