import { describe, expect, it } from 'vitest';
import { parseScenario } from './scenario.ts';
import { buildTimeline, jitterUnit, segmentAt, type OwnershipTimeline } from './heartbeat.ts';
import { scenarioYaml } from './test-helpers.ts';

/** Node-index masks accepting each bucket at time t. */
const at = (tl: OwnershipTimeline, t: number): number[] => {
  const s = segmentAt(tl, t);
  return Array.from(tl.owners.subarray(s * tl.buckets, (s + 1) * tl.buckets));
};

describe('heartbeat detection and takeover timing', () => {
  it('crash at 10 s, beats every 1 s, dead after 3: takeover at 13 s + delay by the lowest node', () => {
    const sc = parseScenario(scenarioYaml(3, 'events:\n  - { at: 10s, crash: node2 }'), 't.yaml');
    const tl = buildTimeline(sc);
    expect(at(tl, 9.999)).toEqual([0b001, 0b010, 0b100]);
    expect(at(tl, 10)).toEqual([0b001, 0, 0b100]);
    expect(at(tl, 13.499)).toEqual([0b001, 0, 0b100]);
    expect(at(tl, 13.5)).toEqual([0b001, 0b001, 0b100]);
    expect(tl.first_fault).toBe(10);
    expect(tl.recovered_at).toBe(13.5);
    expect(tl.windows).toEqual([{ from_s: 10, to_s: 13.5, orphaned: [2], doubled: [] }]);
    expect(tl.events.filter((e) => e.kind === 'detected').map((e) => [e.t, e.node])).toEqual([[13, 'node1'], [13, 'node3']]);
  });
  it('a crash between beats is detected dead_after intervals after the last beat', () => {
    const sc = parseScenario(scenarioYaml(2, 'events:\n  - { at: 10.7s, crash: node2 }', '{ interval_s: 0.5, dead_after: 4, takeover_delay_s: 0 }'), 't.yaml');
    const tl = buildTimeline(sc);
    expect(tl.recovered_at).toBe(10.5 + 2);
  });
  it('jitter is seeded, within [0, jitter_s), and only delays detection', () => {
    for (let k = 0; k < 1000; k++) {
      const u = jitterUnit(7, 1, 2, k);
      expect(u).toBeGreaterThanOrEqual(0);
      expect(u).toBeLessThan(1);
    }
    const y = scenarioYaml(3, 'events:\n  - { at: 10s, crash: node2 }', '{ interval_s: 1, dead_after: 3, takeover_delay_s: 0.5, jitter_s: 0.2, seed: 9 }');
    const a = buildTimeline(parseScenario(y, 't.yaml'));
    const b = buildTimeline(parseScenario(y, 't.yaml'));
    expect(a.recovered_at).toBe(b.recovered_at);
    // node1 (the lowest survivor) applies: 13 s + its jitter on the 10 s beat from node2 + 0.5 s.
    expect(a.recovered_at).toBeCloseTo(13.5 + 0.2 * jitterUnit(9, 1, 0, 10), 12);
  });
  it('a voluntary leave, release-first: the leaver releases when node1\'s next beat (11 s) shows it ready, node1 adds one update later: a gap', () => {
    const tl = buildTimeline(parseScenario(scenarioYaml(3, 'events:\n  - { at: 10s, leave: node3 }\nhandover: release-first', '{ interval_s: 1, dead_after: 3, takeover_delay_s: 0.5, jitter_s: 0, apply_s: 0.05 }'), 't.yaml'));
    // Beat 11 arrives at 11 s (jitter 0); release applied at 11.05; node1 sees the announcement at once and adds at 11.10.
    expect(at(tl, 11.049)).toEqual([1, 2, 4]);
    expect(at(tl, 11.05)).toEqual([1, 2, 0]);
    expect(at(tl, 11.099)).toEqual([1, 2, 0]);
    expect(at(tl, 11.1 + 1e-9)).toEqual([1, 2, 1]);
    expect(tl.windows.map((w) => [w.orphaned, w.doubled])).toEqual([[[3], []]]);
    expect(tl.windows[0]!.from_s).toBeCloseTo(11.05, 9);
    expect(tl.windows[0]!.to_s).toBeCloseTo(11.1, 9);
    expect(tl.recovered_at).toBeCloseTo(11.1, 9);
  });
  it('a voluntary leave, add-first: node1 adds on hearing the leave, the leaver releases on seeing the claim: an overlap', () => {
    const tl = buildTimeline(parseScenario(scenarioYaml(3, 'events:\n  - { at: 10s, leave: node3 }\nhandover: add-first', '{ interval_s: 1, dead_after: 3, takeover_delay_s: 0.5, jitter_s: 0.02, apply_s: 0.05 }'), 't.yaml'));
    // Delivery = mean jitter 0.01 s: add at 10.06, release at 10.12.
    expect(at(tl, 10.059)).toEqual([1, 2, 4]);
    expect(at(tl, 10.061)).toEqual([1, 2, 5]);
    expect(at(tl, 10.119)).toEqual([1, 2, 5]);
    expect(at(tl, 10.121)).toEqual([1, 2, 1]);
    expect(tl.windows.map((w) => [w.orphaned, w.doubled])).toEqual([[[], [3]]]);
    expect(tl.windows[0]!.to_s - tl.windows[0]!.from_s).toBeCloseTo(0.06, 9);
  });
  it('a leave nobody hears (the leaver is cut off): it keeps its buckets until its leave timeout, then they are orphaned until detected', () => {
    const tl = buildTimeline(parseScenario(scenarioYaml(3, 'events:\n  - { at: 5s, partition: [[node1, node2], [node3]] }\n  - { at: 5.5s, leave: node3 }', '{ interval_s: 1, dead_after: 3, takeover_delay_s: 0, jitter_s: 0, apply_s: 0.05 }'), 't.yaml'));
    // node1 and node2 take bucket 3 at 8 s (node3 silent since 5 s): duplicates until node3's timeout (max(5, 4 x 3 x 1) = 12 s) + one update.
    expect(at(tl, 8.01)).toEqual([1, 2, 5]);
    expect(at(tl, 17.549)).toEqual([1, 2, 5]);
    expect(at(tl, 17.55)).toEqual([1, 2, 1]);
  });
  it('a partition makes each side take the other\'s buckets (split brain); the heal resolves it', () => {
    const tl = buildTimeline(parseScenario(scenarioYaml(3, 'events:\n  - { at: 10s, partition: [[node1, node2], [node3]] }\n  - { at: 20s, heal: true }'), 't.yaml'));
    expect(at(tl, 13.49)).toEqual([1, 2, 4]);
    // [node1,node2] give bucket 3 to node1; node3, alone, takes buckets 1 and 2.
    expect(at(tl, 13.5)).toEqual([0b101, 0b110, 0b101]);
    // The 20 s beat is still blocked (events act after the beat at their time); 21 s gets through.
    expect(at(tl, 21.49)).toEqual([0b101, 0b110, 0b101]);
    expect(at(tl, 21.5)).toEqual([1, 2, 4]);
    expect(tl.windows).toEqual([{ from_s: 13.5, to_s: 21.5, orphaned: [], doubled: [1, 2, 3] }]);
  });
  it('heartbeat loss on one link: the deaf node takes over, the others do not; it gives back when it hears again', () => {
    const tl = buildTimeline(parseScenario(scenarioYaml(3, 'events:\n  - { at: 10s, heartbeat-loss: { from: node1, to: node2, for: 5s } }'), 't.yaml'));
    // Beats 11..15 lost: node2 last heard node1 at 10, dead at 13, takes bucket 1 (lowest in its view = node2) at 13.5.
    expect(at(tl, 13.5)).toEqual([0b011, 2, 4]);
    // Beat 16 gets through: node2 hears node1 again (never restarted) and releases at 16.5.
    expect(at(tl, 16.49)).toEqual([0b011, 2, 4]);
    expect(at(tl, 16.5)).toEqual([1, 2, 4]);
    expect(tl.windows).toEqual([{ from_s: 13.5, to_s: 16.5, orphaned: [], doubled: [1] }]);
  });
  it('a short heartbeat loss (below dead_after) changes nothing', () => {
    const tl = buildTimeline(parseScenario(scenarioYaml(2, 'events:\n  - { at: 10s, heartbeat-loss: { from: node1, to: node2, for: 2s } }'), 't.yaml'));
    expect(tl.windows).toEqual([]);
    expect(tl.starts.length).toBe(1);
  });
  it('rejoin with immediate failback: the restarted node adopts the view and takes its buckets back', () => {
    const tl = buildTimeline(parseScenario(scenarioYaml(2, 'events:\n  - { at: 10s, crash: node2 }\n  - { at: 30s, rejoin: node2 }'), 't.yaml'));
    expect(at(tl, 29.9)).toEqual([1, 1]);
    // node2 hears node1's 30 s beat at 30 (adopts, decides, applies at 30.5); node1 hears node2's 30 s beat, applies at 30.5.
    expect(at(tl, 30.4)).toEqual([1, 1]);
    expect(at(tl, 30.5)).toEqual([1, 2]);
    expect(tl.windows).toEqual([{ from_s: 10, to_s: 13.5, orphaned: [2], doubled: [] }]);
    expect(tl.settled_at).toBe(13.5);
  });
  it('rejoin with failback after a stable period', () => {
    const tl = buildTimeline(parseScenario(scenarioYaml(2, 'failback: stable\nstable_s: 5\nevents:\n  - { at: 10s, crash: node2 }\n  - { at: 30s, rejoin: node2 }'), 't.yaml'));
    expect(at(tl, 35.49)).toEqual([1, 1]);
    expect(at(tl, 35.5)).toEqual([1, 2]);
  });
  it('manual failback waits for the operator', () => {
    const tl = buildTimeline(parseScenario(scenarioYaml(2, 'failback: manual\nevents:\n  - { at: 10s, crash: node2 }\n  - { at: 30s, rejoin: node2 }\n  - { at: 50s, failback: node2 }'), 't.yaml'));
    expect(at(tl, 49.9)).toEqual([1, 1]);
    expect(at(tl, 50.5)).toEqual([1, 2]);
  });
  it('the last node standing and a total outage', () => {
    const tl = buildTimeline(parseScenario(scenarioYaml(2, 'events:\n  - { at: 10s, crash: node2 }\n  - { at: 20s, crash: node1 }'), 't.yaml'));
    expect(at(tl, 19)).toEqual([1, 1]);
    expect(at(tl, 20)).toEqual([0, 0]);
    expect(tl.recovered_at).toBe(13.5);
    expect(tl.settled_at).toBeNull();
    expect(tl.windows.at(-1)!.to_s).toBe(Infinity);
  });
  it('a node restarting into a partition believes it is alone: with immediate failback it takes everything until the heal', () => {
    const ev = 'events:\n  - { at: 5s, crash: node2 }\n  - { at: 8s, partition: [[node1], [node2]] }\n  - { at: 20s, rejoin: node2 }\n  - { at: 30s, heal: true }';
    const tl = buildTimeline(parseScenario(scenarioYaml(2, `failback: immediate\n${ev}`), 't.yaml'));
    expect(at(tl, 22.9)).toEqual([1, 1]);
    // node2 hears nobody by 23 s and takes buckets 1 and 2 at 23.5: both doubly owned.
    expect(at(tl, 23.5)).toEqual([0b11, 0b11]);
    // Heal: beats get through from 31 s; both reinstate each other and go home at 31.5.
    expect(at(tl, 31.5)).toEqual([1, 2]);
    expect(tl.windows.map((w) => [w.from_s, w.to_s, w.orphaned, w.doubled])).toEqual([[5, 8.5, [2], []], [23.5, 31.5, [], [1, 2]]]);
    // With manual failback the lone restarted node waits for the operator: no split brain.
    const manual = buildTimeline(parseScenario(scenarioYaml(2, `failback: manual\n${ev}`), 't.yaml'));
    expect(manual.windows).toEqual([{ from_s: 5, to_s: 8.5, orphaned: [2], doubled: [] }]);
    expect(at(manual, 40)).toEqual([1, 1]);
  });
  it('walking beat runs gives the same timeline as walking every beat (random scenarios)', () => {
    let seed = 12345;
    const rnd = (): number => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 4294967296);
    for (let trial = 0; trial < 40; trial++) {
      const n = 2 + Math.floor(rnd() * 4);
      const names = Array.from({ length: n }, (_, i) => `node${i + 1}`);
      const up = names.map(() => true);
      const ev: string[] = [];
      let t = 2;
      let parted = false;
      for (let k = 0; k < 6; k++) {
        t += 0.3 + rnd() * 6;
        const x = Math.floor(rnd() * n);
        const y = (x + 1 + Math.floor(rnd() * (n - 1))) % n;
        const r = rnd();
        const at = t.toFixed(3);
        if (r < 0.25 && up.filter(Boolean).length > 1 && up[x]) { ev.push(`  - { at: ${at}, ${rnd() < 0.5 ? 'crash' : 'leave'}: ${names[x]} }`); up[x] = false; }
        else if (r < 0.5 && !up[x]) { ev.push(`  - { at: ${at}, rejoin: ${names[x]} }`); up[x] = true; }
        else if (r < 0.65 && !parted) { ev.push(`  - { at: ${at}, partition: [[${names.slice(0, 1).join(', ')}], [${names.slice(1).join(', ')}]] }`); parted = true; }
        else if (r < 0.8 && parted) { ev.push(`  - { at: ${at}, heal: true }`); parted = false; }
        else ev.push(`  - { at: ${at}, heartbeat-loss: { from: ${names[x]}, to: ${names[y]}, for: ${(rnd() * 6).toFixed(2)}s } }`);
      }
      const I = [0.5, 1, 0.2][trial % 3]!;
      const hb = `{ interval_s: ${I}, dead_after: ${1 + (trial % 4)}, takeover_delay_s: ${(trial % 2) * 0.3}, jitter_s: ${(rnd() * 0.8 * I).toFixed(3)}, seed: ${trial} }`;
      const fb = ['immediate', 'stable', 'manual'][trial % 3];
      const sc = parseScenario(scenarioYaml(n, `policy: ${['lowest', 'spread', 'backup'][trial % 3]}\nfailback: ${fb}\nstable_s: 3\nevents:\n${ev.join('\n')}`, hb), 't.yaml');
      const fast = buildTimeline(sc);
      const slow = buildTimeline(sc, sc.policy, undefined, { exhaustiveBeats: true });
      expect(Array.from(fast.starts)).toEqual(Array.from(slow.starts));
      expect(Array.from(fast.owners)).toEqual(Array.from(slow.owners));
      expect(fast.events).toEqual(slow.events);
    }
  });
});
