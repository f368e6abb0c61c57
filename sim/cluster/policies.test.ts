import { describe, expect, it } from 'vitest';
import { assignOwners, decide, initialState, type AgentState, type PolicyConfig } from './policies.ts';
import { checkOwnership, homeSets, popcount32, type ClusterModel } from './ownership.ts';

// 4 nodes, 8 buckets, node i owns buckets 2i and 2i+1 (kernel node numbers 2i+1, 2i+2).
const m: ClusterModel = { names: ['n1', 'n2', 'n3', 'n4'], buckets: 8, home: [0, 0, 1, 1, 2, 2, 3, 3] };
const P = (policy: PolicyConfig['policy'], extra: Partial<PolicyConfig> = {}): PolicyConfig => ({ policy, failback: 'immediate', stable_s: 10, ...extra });
const ALL = 0b1111;
const without = (...nodes: number[]): number => nodes.reduce((a, n) => a & ~(1 << n), ALL);

describe('assignOwners (pure, stateless)', () => {
  it('keeps home buckets with every node eligible', () => {
    for (const p of ['lowest', 'least-loaded', 'spread', 'backup'] as const) expect(assignOwners(m, P(p), ALL)).toEqual(homeSets(m));
  });
  it('lowest: every orphaned bucket goes to the lowest surviving node', () => {
    expect(assignOwners(m, P('lowest'), without(1))).toEqual([0b00001111, 0, 0b00110000, 0b11000000]);
    expect(assignOwners(m, P('lowest'), without(0, 1))).toEqual([0, 0, 0b00111111, 0b11000000]);
  });
  it('spread: orphans one at a time to the survivor owning the fewest buckets', () => {
    // n2 dies: buckets 2 and 3 go to n1 (2 buckets, lowest index) then n3 (n1 now has 3).
    expect(assignOwners(m, P('spread'), without(1))).toEqual([0b00000111, 0, 0b00111000, 0b11000000]);
  });
  it('least-loaded: heaviest orphan first, to the node with the least measured load', () => {
    const meas = { bucket_load: [10, 10, 50, 5, 1, 1, 30, 30] };
    // loads: n1 20, n3 2, n4 60. Bucket 2 (50) -> n3 (2 -> 52); bucket 3 (5) -> n1 (20 -> 25).
    expect(assignOwners(m, P('least-loaded'), without(1), meas)).toEqual([0b00001011, 0, 0b00110100, 0b11000000]);
  });
  it('backup: the first surviving node of the backup list, then the lowest', () => {
    const backup = [[1], [3, 2], [0], [0]];
    expect(assignOwners(m, P('backup', { backup }), without(1))).toEqual([0b11, 0, 0b110000, 0b11001100]);
    expect(assignOwners(m, P('backup', { backup }), without(1, 3))).toEqual([0b11000011, 0, 0b111100, 0]);
    // default backup: the next node in order (also for a node the map leaves out)
    expect(assignOwners(m, P('backup'), without(3))).toEqual([0b11000011, 0b1100, 0b110000, 0]);
    expect(assignOwners(m, P('backup', { backup: [[1], [], [], []] }), without(2))).toEqual([0b11, 0b1100, 0, 0b11110000]);
  });
  it('leaves every bucket orphaned when nobody is eligible', () => {
    expect(assignOwners(m, P('lowest'), 0)).toEqual([0, 0, 0, 0]);
  });
  it('always gives each bucket exactly one eligible owner', () => {
    for (const p of ['lowest', 'least-loaded', 'spread', 'backup'] as const) {
      for (let e = 1; e < 16; e++) {
        const sets = assignOwners(m, P(p), e, { bucket_load: [3, 1, 4, 1, 5, 9, 2, 6] });
        expect(checkOwnership(sets.map((s, i) => ((e >> i) & 1 ? s : (expect(s).toBe(0), 0))), 8)).toEqual({ orphaned: [], doubled: [] });
      }
    }
  });
});

describe('decide (state, event, measurements) -> new owner sets', () => {
  const s0 = initialState(m, P('lowest'));
  it('dead moves only the dead node\'s buckets and does not mutate its input', () => {
    const copy = JSON.parse(JSON.stringify(s0)) as AgentState;
    const d = decide(m, P('lowest'), s0, { kind: 'dead', node: 2, t: 13 });
    expect(s0).toEqual(copy);
    expect(d.changed).toBe(true);
    expect(d.state.owners).toEqual([0b00110011, 0b1100, 0, 0b11000000]);
    expect(d.state.alive).toBe(without(2));
    expect(d.wake_at).toBeNull();
  });
  it('a dead event for a node already dead changes nothing', () => {
    const d1 = decide(m, P('lowest'), s0, { kind: 'leave', node: 1, t: 5 });
    const d2 = decide(m, P('lowest'), d1.state, { kind: 'dead', node: 1, t: 8 });
    expect(d2.changed).toBe(false);
  });
  it('failback immediate: a restarted node gets its home buckets back at once', () => {
    const d1 = decide(m, P('lowest'), s0, { kind: 'dead', node: 1, t: 13 });
    const d2 = decide(m, P('lowest'), d1.state, { kind: 'alive', node: 1, t: 30, restarted: true });
    expect(d2.state.owners).toEqual(homeSets(m));
  });
  it('failback stable: after stable_s, signalled through wake_at and a tick', () => {
    const p = P('lowest', { failback: 'stable', stable_s: 10 });
    const d1 = decide(m, p, initialState(m, p), { kind: 'dead', node: 1, t: 13 });
    const d2 = decide(m, p, d1.state, { kind: 'alive', node: 1, t: 30, restarted: true });
    expect(d2.changed).toBe(false);
    expect(d2.wake_at).toBe(40);
    expect(decide(m, p, d2.state, { kind: 'tick', t: 39.5 }).state.owners).toEqual(d1.state.owners);
    const d3 = decide(m, p, d2.state, { kind: 'tick', t: 40 });
    expect(d3.state.owners).toEqual(homeSets(m));
    expect(d3.wake_at).toBeNull();
    // Going away again before the period ends cancels the failback.
    const d4 = decide(m, p, d2.state, { kind: 'dead', node: 1, t: 35 });
    expect(decide(m, p, d4.state, { kind: 'tick', t: 40 }).state.owners).toEqual(d1.state.owners);
  });
  it('failback manual: only on an operator failback; a merely unreachable node is reinstated at once', () => {
    const p = P('lowest', { failback: 'manual' });
    const d1 = decide(m, p, initialState(m, p), { kind: 'dead', node: 1, t: 13 });
    const restarted = decide(m, p, d1.state, { kind: 'alive', node: 1, t: 30, restarted: true });
    expect(restarted.changed).toBe(false);
    expect(decide(m, p, restarted.state, { kind: 'failback', node: 1, t: 50 }).state.owners).toEqual(homeSets(m));
    const partitioned = decide(m, p, d1.state, { kind: 'alive', node: 1, t: 30, restarted: false });
    expect(partitioned.state.owners).toEqual(homeSets(m));
  });
});

describe('ownership helpers', () => {
  it('popcount32 and the invariant check', () => {
    expect(popcount32(0)).toBe(0);
    expect(popcount32(0xffffffff)).toBe(32);
    expect(popcount32(0b1011)).toBe(3);
    expect(checkOwnership([0b0011, 0b0110, 0], 4)).toEqual({ orphaned: [3], doubled: [1] });
  });
});
