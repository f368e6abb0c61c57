import { describe, expect, it } from 'vitest';
import { parseScenario, type Scenario } from './scenario.ts';
import { buildTimeline } from './heartbeat.ts';
import { BucketMeter, FailoverEvaluator, mergeFailoverPartials, summarizeRun, type FailoverPartial } from './timeline.ts';
import { connectionHash } from './conn-key.ts';
import { runFailoverParallel } from '../engine/failover-run.ts';
import type { FailoverResult } from '../core/result.ts';
import { buildSelector } from '../select/build.ts';
import { selectorSpecOf } from '../select/from-config.ts';
import { createBatch, F, L4, PROTO } from '../traffic/batch.ts';
import { replayInput, scenarioYaml, steadyTraffic, type CollectedTraffic, type SteadyParams } from './test-helpers.ts';

const SERVER = 0xc000020a;

/** The one failover driver (engine/failover-run.ts), in-process, over the flow generator. */
function runFailover(sc: Scenario, { seed, ...params }: SteadyParams, comparePolicies = false): Promise<FailoverResult> {
  return runFailoverParallel(sc, { input: { kind: 'synthetic', name: 'steady', seed, params }, summary: { kind: 'synthetic', files: [], skipped: {} }, workers: 0, comparePolicies });
}

/** The bucket of every generated packet, straight from the selector (not from the code under test). */
function bucketsOf(sc: Scenario, g: CollectedTraffic): Int32Array {
  const sel = buildSelector(selectorSpecOf(sc.config));
  const out = new Int32Array(g.count);
  const b = createBatch(g.count);
  replayInput(g).fill(b);
  sel.select(b, out);
  return out;
}

function evaluate(sc: Scenario, g: CollectedTraffic, parts = 1, capacity = 4096): FailoverPartial {
  const sel = buildSelector(selectorSpecOf(sc.config));
  const tl = buildTimeline(sc);
  // Route each flow to one partition by its flow hash, keeping packet order.
  const hb = createBatch(g.count);
  replayInput(g).fill(hb);
  const partOf = new Int32Array(g.count);
  for (let j = 0; j < g.count; j++) partOf[j] = connectionHash(hb, j) % parts;
  const partials: FailoverPartial[] = [];
  for (let p = 0; p < parts; p++) {
    const ev = new FailoverEvaluator([tl], sel, { t0: 0, bin_s: 1, conntrack: sc.conntrack }, capacity);
    const src = replayInput(g, (j) => partOf[j] === p);
    const batch = createBatch(capacity);
    while (src.fill(batch) > 0) ev.add(batch);
    partials.push(ev.partial());
  }
  return mergeFailoverPartials(partials);
}

interface FlowPkts { idx: number[] }
function flowsOf(g: CollectedTraffic): Map<number, FlowPkts> {
  const m = new Map<number, FlowPkts>();
  for (let j = 0; j < g.count; j++) {
    const f = g.flow[j]!;
    if (!m.has(f)) m.set(f, { idx: [] });
    m.get(f)!.idx.push(j);
  }
  return m;
}
const isTcp = (g: CollectedTraffic, j: number): boolean => g.proto[j] === 6;
const isSyn = (g: CollectedTraffic, j: number): boolean => (g.flags[j]! & (F.SYN | F.ACK)) === F.SYN;

describe('2-node cluster, 1000 flows, node2 crashes at 10 s, dead after 3 x 1 s, takeover delay 0.5 s', () => {
  const sc = parseScenario(scenarioYaml(2, 'events:\n  - { at: 10s, crash: node2 }'), 't.yaml');
  const g = steadyTraffic({ flows: 1000, duration_s: 30, seed: 42, tcp_share: 0.7, server: SERVER });
  const bk = bucketsOf(sc, g);
  const T1 = 10, T2 = 13.5; // crash, takeover (13 s detection + 0.5 s delay)
  const part = evaluate(sc, g);
  const r = part.runs[0]!;

  it('loses exactly the packets of bucket 2 in [10 s, 13.5 s)', () => {
    let lost = 0;
    for (let j = 0; j < g.count; j++) if (bk[j] === 1 && g.ts[j]! >= T1 && g.ts[j]! < T2) lost++;
    expect(lost).toBeGreaterThan(100);
    expect(r.lost).toBe(lost);
    expect(r.duplicated).toBe(0);
  });

  it('breaks exactly the TCP connections of bucket 2 opened before the crash that send again after the takeover', () => {
    let broken = 0, afterBreak = 0, conns = 0;
    for (const { idx } of flowsOf(g).values()) {
      const j0 = idx[0]!;
      if (!isTcp(g, j0)) continue;
      conns++;
      // Established on node2: its first packet (a SYN, or mid-stream for a connection open at t = 0) came before the crash.
      if (bk[j0] !== 1 || g.ts[j0]! >= T1) continue;
      const k = idx.findIndex((j) => g.ts[j]! >= T2);
      if (k < 0) continue;
      broken++;
      afterBreak += idx.length - k - 1; // the first packet reaches node1 (and is reset), the rest are never answered
    }
    expect(broken).toBeGreaterThan(10);
    // Both kinds of established connection are in the traffic: opened by a SYN, and already open at t = 0.
    const firsts = [...flowsOf(g).values()].map(({ idx }) => idx[0]!).filter((j) => isTcp(g, j) && g.ts[j]! < T1);
    expect(firsts.filter((j) => isSyn(g, j)).length).toBeGreaterThan(10);
    expect(firsts.filter((j) => !isSyn(g, j)).length).toBeGreaterThan(10);
    expect(r.broken).toBe(broken);
    expect(r.after_break).toBe(afterBreak);
    expect(r.connections).toBe(conns);
  });

  it('puts the load on the right node in each phase', () => {
    const tl = buildTimeline(sc);
    const s = summarizeRun(part, 0, tl);
    const brokenAfter = new Set<number>();
    for (const { idx } of flowsOf(g).values()) {
      const j0 = idx[0]!;
      if (!isTcp(g, j0) || bk[j0] !== 1 || g.ts[j0]! >= T1) continue;
      const k = idx.findIndex((j) => g.ts[j]! >= T2);
      for (let q = k + 1; k >= 0 && q < idx.length; q++) brokenAfter.add(idx[q]!);
    }
    const exp = [[0, 0], [0, 0], [0, 0]];
    for (let j = 0; j < g.count; j++) {
      const t = g.ts[j]!;
      if (t < T1) exp[0]![bk[j]!]!++;
      else if (t < T2) { if (bk[j] === 0) exp[1]![0]!++; }
      else if (!brokenAfter.has(j)) exp[2]![0]!++;
    }
    expect(s.phases.map((p) => p.per_node.map((x) => x.packets))).toEqual(exp);
    expect(s.phases.map((p) => [p.phase, p.from_s <= T1, p.to_s])).toEqual([['before', true, T1], ['during', true, T2], ['after', false, part.max_t]]);
    expect(s.totals.recovery_s).toBe(3.5);
    // after the takeover node1 carries everything
    expect(s.phases[2]!.per_node[0]!.share).toBe(1);
  });

  it('nf_conntrack_tcp_loose=0: the first packet after the move is INVALID on the new node (lost) instead of reset', () => {
    const strict = parseScenario(scenarioYaml(2, 'conntrack: { tcp_loose: false }\nevents:\n  - { at: 10s, crash: node2 }'), 't.yaml');
    const p = evaluate(strict, g).runs[0]!;
    expect(p.broken).toBe(r.broken);
    expect(p.lost).toBe(r.lost + r.broken);
    expect(p.after_break).toBe(r.after_break);
  });

  it('measures per-bucket traffic before the first fault for least-loaded', () => {
    const meter = new BucketMeter(buildSelector(selectorSpecOf(sc.config)), 0, 10, 1000);
    const src = replayInput(g);
    const b = createBatch(1000);
    while (src.fill(b) > 0) meter.add(b);
    const exp = [0, 0];
    for (let j = 0; j < g.count; j++) if (g.ts[j]! < 10) exp[bk[j]!]!++;
    expect(meter.measurements().bucket_load).toEqual(exp);
  });

  it('state sync (conntrackd) keeps every moved TCP connection', () => {
    const synced = parseScenario(scenarioYaml(2, 'conntrack: { state_sync: true }\nevents:\n  - { at: 10s, crash: node2 }'), 't.yaml');
    const p = evaluate(synced, g).runs[0]!;
    expect(p.broken).toBe(0);
    expect(p.lost).toBe(r.lost);
  });

  it('gives the same result for 1, 2 and 3 flow-hash partitions and any batch size', () => {
    const strip = (p: FailoverPartial): unknown => JSON.parse(JSON.stringify(p));
    const one = strip(part);
    expect(strip(evaluate(sc, g, 2))).toEqual(one);
    expect(strip(evaluate(sc, g, 3, 777))).toEqual(one);
    expect(strip(mergeFailoverPartials([evaluate(sc, g, 1, 100)]))).toEqual(one);
  });
});

describe('other events, exactly', () => {
  const g = steadyTraffic({ flows: 600, duration_s: 30, seed: 7, tcp_share: 0.6, server: SERVER });

  it('leave: nothing lost or duplicated; the moved bucket\'s open TCP connections break', () => {
    const sc = parseScenario(scenarioYaml(3, 'events:\n  - { at: 10s, leave: node3 }'), 't.yaml');
    const bk = bucketsOf(sc, g);
    const r = evaluate(sc, g).runs[0]!;
    let broken = 0;
    for (const { idx } of flowsOf(g).values()) {
      const j0 = idx[0]!;
      if (isTcp(g, j0) && bk[j0] === 2 && g.ts[j0]! < 10 && idx.some((j) => g.ts[j]! >= 10)) broken++;
    }
    expect(r.lost).toBe(0);
    expect(r.duplicated).toBe(0);
    expect(r.broken).toBe(broken);
    expect(broken).toBeGreaterThan(0);
  });

  // A SYN two nodes accept is answered twice and the client's connection is reset (timeline.ts): its later
  // packets are never sent (after_break), not duplicated.
  const pureSyn = (j: number): boolean => g.proto[j] === PROTO.TCP && (g.flags[j]! & (F.SYN | F.ACK)) === F.SYN;
  /** Expected sums when packets `inWindow` are accepted twice: per flow, everything after a doubly accepted SYN is after_break. */
  const doubled = (inWindow: (j: number) => boolean): { duplicated: number; after_break: number; broken: number } => {
    const e = { duplicated: 0, after_break: 0, broken: 0 };
    for (const { idx } of flowsOf(g).values()) {
      let reset = false;
      for (const j of idx) {
        if (reset) { e.after_break++; continue; }
        if (!inWindow(j)) continue;
        e.duplicated++;
        if (pureSyn(j)) { reset = true; e.broken++; }
      }
    }
    return e;
  };
  it('partition: every packet between 13.5 s and 21.5 s is duplicated (or belongs to a connection reset by its doubly answered SYN), none lost', () => {
    const sc = parseScenario(scenarioYaml(3, 'conntrack: { state_sync: true }\nevents:\n  - { at: 10s, partition: [[node1, node2], [node3]] }\n  - { at: 20s, heal: true }'), 't.yaml');
    const r = evaluate(sc, g).runs[0]!;
    const e = doubled((j) => g.ts[j]! >= 13.5 && g.ts[j]! < 21.5);
    expect(e.broken).toBeGreaterThan(0);
    expect({ duplicated: r.duplicated, after_break: r.after_break, broken: r.broken }).toEqual(e);
    expect(r.lost).toBe(0);
  });

  it('heartbeat loss: bucket 1 duplicated between 13.5 s and 16.5 s', () => {
    const sc = parseScenario(scenarioYaml(3, 'conntrack: { state_sync: true }\nevents:\n  - { at: 10s, heartbeat-loss: { from: node1, to: node2, for: 5s } }'), 't.yaml');
    const bk = bucketsOf(sc, g);
    const r = evaluate(sc, g).runs[0]!;
    const e = doubled((j) => bk[j] === 0 && g.ts[j]! >= 13.5 && g.ts[j]! < 16.5);
    expect({ duplicated: r.duplicated, after_break: r.after_break, broken: r.broken }).toEqual(e);
    expect(r.lost).toBe(0);
  });

  it('rejoin with immediate failback: lost only in the outage; connections opened on the takeover node break on failback', () => {
    const sc = parseScenario(scenarioYaml(2, 'events:\n  - { at: 8s, crash: node2 }\n  - { at: 20s, rejoin: node2 }'), 't.yaml');
    const bk = bucketsOf(sc, g);
    const r = evaluate(sc, g).runs[0]!;
    let lost = 0, broken = 0;
    for (let j = 0; j < g.count; j++) if (bk[j] === 1 && g.ts[j]! >= 8 && g.ts[j]! < 11.5) lost++;
    for (const { idx } of flowsOf(g).values()) {
      const j0 = idx[0]!;
      if (!isTcp(g, j0) || bk[j0] !== 1) continue;
      // Established on node2 before the crash and still talking after the takeover at 11.5 s,
      // or established on node1 (SYN, or a retried SYN, in [8, 20.5)) and still talking after the failback at 20.5 s.
      const holderBefore = g.ts[j0]! < 8;
      const firstOnNode1 = idx.find((j) => g.ts[j]! >= 11.5);
      if (firstOnNode1 === undefined) continue;
      if (holderBefore) broken++; // its next packet lands on node1, or on the restarted node2 with an empty table
      else if (g.ts[firstOnNode1]! < 20.5 && idx.some((j) => g.ts[j]! >= 20.5)) broken++; // opened on node1, moved back
    }
    expect(r.lost).toBe(lost);
    expect(r.broken).toBe(broken);
  });

  it('INVALID packets are dropped by every node and counted apart', () => {
    const sc = parseScenario(scenarioYaml(2, 'events: []'), 't.yaml');
    const sel = buildSelector(selectorSpecOf(sc.config));
    const ev = new FailoverEvaluator([buildTimeline(sc)], sel, { t0: 0, bin_s: 1, conntrack: sc.conntrack });
    const b = createBatch(64);
    replayInput(g).fill(b);
    for (let i = 0; i < 10; i++) b.l4flags[i] = b.l4flags[i]! | L4.CT_INVALID;
    ev.add(b);
    const p = ev.partial();
    expect(p.invalid).toBe(10);
    expect(p.runs[0]!.lost).toBe(0);
    expect(p.runs[0]!.phase_packets.reduce((a, x) => a + x, 0)).toBe(54);
  });
});

describe('each policy on 4 nodes x 2 buckets, node2 crashes at 10 s (state sync on, so load is just packets)', () => {
  const y = (policy: string): string => `name: t
cluster:
  cluster: { ip: 192.0.2.10, backend: clusterip, hashmode: sourceip-sourceport, total_nodes: 8 }
  nodes:
    - { name: node1, owns: [1, 2] }
    - { name: node2, owns: [3, 4] }
    - { name: node3, owns: [5, 6] }
    - { name: node4, owns: [7, 8] }
heartbeat: { interval_s: 1, dead_after: 3, takeover_delay_s: 0.5 }
conntrack: { state_sync: true }
policy: ${policy}
events:
  - { at: 10s, crash: node2 }
`;
  const params = { flows: 800, duration_s: 30, seed: 11, tcp_share: 0.8, server: SERVER };
  const g = steadyTraffic(params);
  const bk = bucketsOf(parseScenario(y('lowest'), 't.yaml'), g);
  // Measured before the fault, per bucket.
  const L = new Array<number>(8).fill(0);
  for (let j = 0; j < g.count; j++) if (g.ts[j]! < 10) L[bk[j]!]!++;
  // Hand-made owner of each bucket after the takeover, per policy (buckets 2 and 3 are node2's).
  const home = [0, 0, 1, 1, 2, 2, 3, 3];
  const leastLoaded = (): number[] => {
    const load = [L[0]! + L[1]!, Infinity, L[4]! + L[5]!, L[6]! + L[7]!];
    const own = [...home];
    for (const b of L[2]! >= L[3]! ? [2, 3] : [3, 2]) {
      const to = load.indexOf(Math.min(...load));
      own[b] = to;
      load[to]! += L[b]!;
    }
    return own;
  };
  const expected: Record<string, number[]> = {
    lowest: [0, 0, 0, 0, 2, 2, 3, 3],
    spread: [0, 0, 0, 2, 2, 2, 3, 3],
    backup: [0, 0, 2, 2, 2, 2, 3, 3],
    'least-loaded': leastLoaded(),
  };
  for (const [policy, owner] of Object.entries(expected)) {
    it(`${policy}: the load after the takeover lands exactly where the policy says`, async () => {
      const sc = parseScenario(y(policy), 't.yaml');
      const res = await runFailover(sc, params);
      const after = [0, 0, 0, 0];
      let lost = 0;
      for (let j = 0; j < g.count; j++) {
        const t = g.ts[j]!, b = bk[j]!;
        if (t >= 13.5) after[owner[b]!]!++;
        else if (t >= 10 && home[b] === 1) lost++;
      }
      expect(res.phases[2]!.per_node.map((x) => x.packets)).toEqual(after);
      expect(res.totals.lost_packets).toBe(lost);
      expect(res.totals.broken_connections).toBe(0);
      expect(res.totals.duplicated_packets).toBe(0);
    });
  }
});

describe('runFailover and compare', () => {
  it('least-loaded measures before the failure; policies differ only in where the buckets go', async () => {
    const y = `name: t
cluster:
  cluster: { ip: 192.0.2.10, backend: clusterip, hashmode: sourceip-sourceport, total_nodes: 8 }
  nodes:
    - { name: node1, owns: [1, 2] }
    - { name: node2, owns: [3, 4] }
    - { name: node3, owns: [5, 6] }
    - { name: node4, owns: [7, 8] }
heartbeat: { interval_s: 1, dead_after: 3, takeover_delay_s: 0.5 }
events:
  - { at: 10s, crash: node2 }
`;
    const sc = parseScenario(y, 't.yaml');
    const res = await runFailover(sc, { flows: 800, duration_s: 30, seed: 3, tcp_share: 0.8, server: SERVER }, true);
    expect(res.compare!.map((c) => c.policy)).toEqual(['lowest', 'least-loaded', 'spread', 'backup']);
    const lowest = res.compare![0]!;
    for (const c of res.compare!) {
      expect(c.lost_packets).toBe(lowest.lost_packets);
      expect(c.broken_connections).toBe(lowest.broken_connections);
    }
    // lowest piles both buckets on node1; spread gives one to node1 and one to node3
    const after = res.phases[2]!.per_node.map((x) => x.share);
    expect(after[0]).toBeGreaterThan(0.4);
    const spread = res.compare!.find((c) => c.policy === 'spread')!;
    expect(spread.max_node_share).toBeLessThan(lowest.max_node_share);
    expect(res.totals.lost_packets).toBe(lowest.lost_packets);
    expect(res.timeline.per_node.length).toBe(4);
    expect(res.timeline.lost.reduce((a, x) => a + x, 0)).toBe(res.totals.lost_packets);
  });
});
