/**
 * The agent core on an injected clock and a simulated network: kernels apply
 * the wanted owner set at once, beats go out every interval, links can be
 * cut. Checks detection timing, agreement between survivors (every policy),
 * make-before-break handovers (no moment without an owner), rejoin per
 * failback mode, and partitions.
 */
import { describe, expect, it } from 'vitest';
import { AgentCore, numbersOf, type Handover, type LogRecord } from './core.ts';
import { clusterModel } from '../../sim/cluster/ownership.ts';
import { POLICIES, FAILBACKS, type PolicyConfig } from '../../sim/cluster/policies.ts';
import { FailoverSchema, type ClusterConfig } from '../../sim/core/cluster-config.ts';
import { policyOf } from './daemon.ts';

const I = 0.2, D = 3, TICK = 0.04;

function config(nodes: number, buckets = nodes): ClusterConfig {
  const owns: number[][] = Array.from({ length: nodes }, () => []);
  for (let k = 1; k <= buckets; k++) owns[(k - 1) % nodes]!.push(k);
  return {
    cluster: { ip: '192.0.2.10', interface: 'eth0', mac: '01:00:5e:00:00:20', backend: 'nft', seed: 1, total_nodes: buckets, endian: 'little' },
    nodes: owns.map((o, i) => ({ name: `node${i + 1}`, owns: o, host: 'local' as const, address: `10.0.0.${i + 1}` })),
  } as ClusterConfig;
}

interface Node {
  core: AgentCore;
  up: boolean;
  logs: LogRecord[];
  nextBeat: number;
}

/** A cluster of cores on one clock. `link(i, j)` says whether i's beats reach j. */
class Sim {
  t = 0;
  nodes: Node[] = [];
  link: (i: number, j: number) => boolean = () => true;
  /** Time (s) during which some bucket had no live owner, and with several. */
  orphanTime = 0;
  dupTime = 0;
  constructor(readonly c: ClusterConfig, readonly p: PolicyConfig, readonly o: { takeover_delay_s?: number; leave_timeout_s?: number; handover?: Handover } = {}) {
    for (let i = 0; i < c.nodes.length; i++) this.start(i);
  }
  start(i: number): void {
    const core = new AgentCore({ model: clusterModel(this.c), policy: this.p, self: i, interval_s: I, dead_after: D, takeover_delay_s: this.o.takeover_delay_s ?? 0, leave_timeout_s: this.o.leave_timeout_s ?? 2, handover: this.o.handover, t0: this.t, inc: Math.round(this.t * 1000) + 1 });
    this.nodes[i] = { core, up: true, logs: this.nodes[i]?.logs ?? [], nextBeat: this.t };
  }
  /** Crash: the node stops (its kernel takes nothing from now on). */
  crash(i: number): void {
    this.nodes[i]!.up = false;
  }
  /** Marks whether the kernels, as they are right now, leave a bucket unowned or doubly owned. */
  private check(v: { orphan: boolean; dup: boolean }): void {
    const per = new Array<number>(this.c.cluster.total_nodes).fill(0);
    for (const n of this.nodes) if (n.up) for (const k of numbersOf(n.core.owned)) per[k - 1]!++;
    if (per.some((x) => x === 0)) v.orphan = true;
    if (per.some((x) => x > 1)) v.dup = true;
  }
  run(until: number): void {
    while (this.t < until - 1e-9) {
      this.t = +(this.t + TICK).toFixed(6);
      // A tick counts as orphaned / doubled when that held after any node's step within it.
      const v = { orphan: false, dup: false };
      for (const [i, n] of this.nodes.entries()) {
        if (!n.up) continue;
        const send = (): void => {
          const b = n.core.beat(1e9 + this.t, this.t);
          for (const [j, m] of this.nodes.entries()) if (j !== i && m.up && this.link(i, j)) m.core.onBeat(b, this.t);
        };
        if (this.t + 1e-9 >= n.nextBeat) {
          n.nextBeat += I;
          send();
        }
        n.core.tick(this.t);
        const r = n.core.reconcile(this.t);
        const changed = r.want !== n.core.owned;
        n.core.setOwned(r.want);
        if (changed) send(); // as the daemon does: peers learn of a claim or release at once
        if (n.core.leftCluster) n.up = false;
        n.logs.push(...n.core.drainLog().map((x) => ({ ...x, t: this.t })));
        this.check(v);
      }
      if (this.t > 1 && v.orphan) this.orphanTime += TICK;
      if (this.t > 1 && v.dup) this.dupTime += TICK;
    }
  }
  owned(): number[][] {
    return this.nodes.map((n) => (n.up ? numbersOf(n.core.owned) : []));
  }
  events(i: number, ev: string): LogRecord[] {
    return this.nodes[i]!.logs.filter((l) => l.event === ev);
  }
}

const pol = (policy: PolicyConfig['policy'], failback: PolicyConfig['failback'] = 'immediate', stable_s = 2): PolicyConfig => ({ policy, failback, stable_s });

describe('start-up', () => {
  it('nodes started together establish the config\'s owner sets (cold start) and agree', () => {
    const s = new Sim(config(3), pol('lowest'));
    s.run(1.5);
    expect(s.owned()).toEqual([[1], [2], [3]]);
    // The first to finish its window forms the cluster; the others may already hear it established and join.
    const modes = [0, 1, 2].map((i) => s.events(i, 'established')[0]!.mode);
    expect(modes[0]).toBe('cold-start');
    for (let i = 1; i < 3; i++) expect(JSON.stringify(s.nodes[i]!.core.state)).toBe(JSON.stringify(s.nodes[0]!.core.state));
    expect(s.orphanTime).toBe(0);
  });
});

describe('failure detector (injected clock)', () => {
  it('declares a silent peer dead after dead_after intervals, not before, and survivors take over', () => {
    const s = new Sim(config(3), pol('lowest'));
    s.run(2);
    const lastBeat = 2 - 1e-9; // node3 beats at multiples of I; its last one went out at t=2.0 (before the crash below)
    s.crash(2);
    s.run(2.5);
    expect(s.events(0, 'dead')).toHaveLength(0); // 0.5 s < 3 x 0.2 s
    s.run(4);
    for (const i of [0, 1]) {
      const d = s.events(i, 'dead');
      expect(d).toHaveLength(1);
      expect(d[0]!.peer).toBe('node3');
      const at = d[0]!.t as number;
      // Dead strictly after 0.6 s of silence, at the first tick after it.
      expect(at).toBeGreaterThan(lastBeat + D * I);
      expect(at).toBeLessThanOrEqual(lastBeat + D * I + TICK + 1e-6);
      expect(s.events(i, 'beat-loss')[0]!.t as number).toBeLessThan(at);
    }
    expect(s.owned()).toEqual([[1, 3], [2], []]);
  });

  it('honours the takeover delay', () => {
    const s = new Sim(config(2), pol('lowest'), { takeover_delay_s: 0.5 });
    s.run(2);
    s.crash(1);
    s.run(2.7);
    expect(s.owned()[0]).toEqual([1]); // dead at ~2.64 s, takeover not before ~3.14 s
    s.run(3.1);
    expect(s.owned()[0]).toEqual([1]);
    s.run(3.3);
    expect(s.owned()[0]).toEqual([1, 2]);
  });
});

describe('determinism across survivors', () => {
  for (const policy of POLICIES) {
    it(`${policy}: every survivor computes the same owner sets, each applies its share, nothing orphaned or doubled after recovery`, () => {
      const p: PolicyConfig = { ...pol(policy), backup: policy === 'backup' ? [[2, 3, 1], [3, 0, 2], [1, 0, 3], [0, 1, 2]] : undefined };
      const s = new Sim(config(4, 8), p);
      s.run(2);
      s.crash(1);
      s.run(4);
      const views = [0, 2, 3].map((i) => JSON.stringify(s.nodes[i]!.core.state!.owners));
      expect(new Set(views).size).toBe(1);
      const owned = s.owned();
      const all = owned.flat().sort((a, b) => a - b);
      expect(all).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
      expect(owned[1]).toEqual([]);
      // Only node2's buckets (2 and 6) moved.
      expect(owned[0]).toEqual(expect.arrayContaining([1, 5]));
      expect(owned[2]).toEqual(expect.arrayContaining([3, 7]));
      expect(owned[3]).toEqual(expect.arrayContaining([4, 8]));
      if (policy === 'lowest') expect(owned[0]).toEqual([1, 2, 5, 6]);
      if (policy === 'backup') expect(owned[3]).toEqual([2, 4, 6, 8]);
      if (policy === 'spread') expect(owned.map((o) => o.length).sort()).toEqual([0, 2, 3, 3]);
    });
  }
});

describe('voluntary leave', () => {
  it('release-first (default): the leaver releases once the taker agrees, the taker adds on the release; no overlap, a gap of at most one tick', () => {
    const s = new Sim(config(3), pol('lowest'));
    s.run(2);
    s.nodes[1]!.core.startLeave(s.t, 'test');
    s.run(3);
    expect(s.nodes[1]!.up).toBe(false);
    expect(s.owned()).toEqual([[1, 2], [], [3]]);
    expect(s.events(1, 'leave')[0]).toMatchObject({ reason: 'test' });
    expect(s.dupTime).toBe(0);
    expect(s.orphanTime).toBeGreaterThan(0);
    expect(s.orphanTime).toBeLessThanOrEqual(TICK + 1e-9);
    expect(s.events(0, 'dead')).toHaveLength(0);
  });

  it('add-first: the taker claims first, the leaver releases on the claim; no gap, an overlap of at most one tick', () => {
    const s = new Sim(config(3), pol('lowest'), { handover: 'add-first' });
    s.run(2);
    s.nodes[1]!.core.startLeave(s.t, 'test');
    s.run(3);
    expect(s.nodes[1]!.up).toBe(false);
    expect(s.owned()).toEqual([[1, 2], [], [3]]);
    expect(s.orphanTime).toBe(0);
    expect(s.dupTime).toBeGreaterThan(0);
    expect(s.dupTime).toBeLessThanOrEqual(TICK + 1e-9);
  });

  it('the last node standing gives up after the leave timeout', () => {
    const s = new Sim(config(1), pol('lowest'), { leave_timeout_s: 0.5 });
    s.run(1);
    s.nodes[0]!.core.startLeave(s.t, 'test');
    s.run(1.4);
    expect(s.nodes[0]!.up).toBe(true);
    s.run(1.6);
    expect(s.nodes[0]!.up).toBe(false);
  });
});

describe('rejoin and failback', () => {
  for (const fb of FAILBACKS) {
    it(`failback ${fb}`, () => {
      const s = new Sim(config(3), pol('lowest', fb, 2));
      s.run(2);
      s.crash(1);
      s.run(3);
      expect(s.owned()).toEqual([[1, 2], [], [3]]);
      s.start(1); // new incarnation, empty kernel
      s.run(4);
      if (fb === 'immediate') expect(s.owned()).toEqual([[1], [2], [3]]);
      else expect(s.owned()).toEqual([[1, 2], [], [3]]);
      s.run(5.5);
      if (fb === 'stable') expect(s.owned()).toEqual([[1], [2], [3]]);
      if (fb === 'manual') {
        expect(s.owned()).toEqual([[1, 2], [], [3]]);
        s.nodes[1]!.core.requestFailback(s.t);
        s.run(6.5);
        expect(s.owned()).toEqual([[1], [2], [3]]);
      }
      expect(s.events(0, 'rejoin')[0]).toMatchObject({ peer: 'node2', restarted: true });
      // Only the crash's detection window, plus at most one tick of release-first handover gap.
      expect(s.orphanTime).toBeLessThanOrEqual(D * I + 2 * TICK + 1e-9);
      expect(s.dupTime).toBe(0);
    });
  }
});

describe('join', () => {
  it('a restarted node adds nothing while a live node of its adopted view has not been heard (its claims are unknown)', () => {
    const s = new Sim(config(3), pol('lowest'));
    s.run(2);
    s.crash(1);
    s.run(3); // node1 holds 1 and 2
    s.link = (i, j) => !(i === 0 && j === 1); // node2 does not hear node1 yet
    s.start(1);
    s.run(3.45); // joined at ~3.24 through node3's view; node1 unheard for less than dead_after intervals
    expect(s.events(1, 'established').at(-1)).toMatchObject({ mode: 'join', view_from: 'node3' });
    expect(s.owned()[1]).toEqual([]); // taking 2 now could duplicate it: node1 may still hold it
    s.link = () => true;
    s.run(4.3);
    expect(s.owned()).toEqual([[1], [2], [3]]);
    expect(s.dupTime).toBe(0);
  });
});

describe('partition', () => {
  it('each side keeps every bucket owned; the heal reports the duplicates and resolves them to the policy owner', () => {
    const s = new Sim(config(3), pol('lowest'));
    s.run(2);
    const side = [0, 1, 1];
    s.link = (i, j) => side[i] === side[j];
    s.run(4);
    expect(s.owned()).toEqual([[1, 2, 3], [2, 1], [3]].map((x) => x.sort()));
    s.link = () => true;
    s.run(5);
    expect(s.owned()).toEqual([[1], [2], [3]]);
    const dup = s.events(1, 'duplicate');
    expect(dup.length).toBeGreaterThan(0);
    expect(s.events(1, 'duplicates-resolved').length).toBeGreaterThan(0);
    for (const i of [0, 1, 2]) expect(s.events(i, 'rejoin').every((r) => r.restarted === false)).toBe(true);
    expect(s.orphanTime).toBeLessThanOrEqual(D * I + TICK + 1e-9);
  });
});

describe('config', () => {
  it('policyOf resolves the backup map to node indexes and names a wrong node', () => {
    const c = config(3);
    expect(policyOf(c)).toEqual({ policy: 'lowest', failback: 'immediate', stable_s: 10, backup: undefined });
    c.failover = { policy: 'backup', failback: 'stable', stable_s: 5, handover: 'release-first', backup: { node1: ['node3', 'node2'] } };
    expect(policyOf(c)).toEqual({ policy: 'backup', failback: 'stable', stable_s: 5, backup: [[2, 1], [], []] });
    c.failover.backup = { node1: ['node7'] };
    expect(() => policyOf(c)).toThrow(/failover\.backup\.node1\[0\]: no node named 'node7'/);
  });

  it('the failover section lists exactly the policies and failback modes of sim/cluster', () => {
    expect(FailoverSchema.shape.policy.unwrap().options).toEqual([...POLICIES]);
    expect(FailoverSchema.shape.failback.unwrap().options).toEqual([...FAILBACKS]);
  });
});
