import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { builtinScenario, loadScenario, parseScenario } from './scenario.ts';
import { DEFAULT_APPLY_S } from './scenario.ts';
import { parseDuration } from './events.ts';
import { DataError } from '../core/errors.ts';
import { scenarioYaml } from './test-helpers.ts';

const dir = mkdtempSync(join(tmpdir(), 'failover-scenario-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const err = (f: () => unknown): string => {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(DataError);
    return (e as Error).message;
  }
  throw new Error('no error');
};

describe('scenario files', () => {
  it('reads times in s, ms, m or plain seconds', () => {
    expect(parseDuration('12.5s')).toBe(12.5);
    expect(parseDuration('500ms')).toBe(0.5);
    expect(parseDuration('2m')).toBe(120);
    expect(parseDuration(3)).toBe(3);
    expect(parseDuration('soon')).toBeNull();
  });

  it('sorts events, resolves node names, takes heartbeat defaults from the cluster config', () => {
    const cfg = join(dir, 'cluster.yaml');
    writeFileSync(cfg, 'cluster: { ip: 192.0.2.10, backend: xt_cluster, total_nodes: 2, seed: 7 }\nnodes:\n  - { name: a, owns: [1] }\n  - { name: b, owns: [2] }\nheartbeat: { interval_s: 0.5, dead_after: 4 }\n');
    const f = join(dir, 's.yaml');
    writeFileSync(f, 'cluster: cluster.yaml\nheartbeat: { takeover_delay_s: 0.2 }\nevents:\n  - { at: 30s, rejoin: b }\n  - { at: 10s, crash: b }\n');
    const sc = loadScenario(f);
    expect(sc.events.map((e) => [e.t, e.kind])).toEqual([[10, 'crash'], [30, 'rejoin']]);
    expect(sc.heartbeat).toEqual({ interval_s: 0.5, dead_after: 4, takeover_delay_s: 0.2, jitter_s: 0, seed: 1, apply_s: DEFAULT_APPLY_S });
    expect(sc.handover).toBe('release-first');
    expect(sc.model.names).toEqual(['a', 'b']);
    expect(sc.config_source).toBe('cluster.yaml');
  });

  it('names file:line, key and value in errors', () => {
    expect(err(() => parseScenario(scenarioYaml(2, 'policy: fastest'), 's.yaml'))).toMatch(/s\.yaml:8: policy: .*"fastest"/);
    expect(err(() => parseScenario(scenarioYaml(2, 'events:\n  - { at: 10s, crash: node9 }'), 's.yaml'))).toMatch(/s\.yaml:9: events\[0\]\.crash: no node named 'node9'.*node1, node2.*"node9"/);
    expect(err(() => parseScenario(scenarioYaml(2, 'events:\n  - { at: soon, crash: node1 }'), 's.yaml'))).toMatch(/s\.yaml:9: events\[0\]/);
    expect(err(() => parseScenario(scenarioYaml(2, 'events:\n  - { at: 1s, explode: node1 }'), 's.yaml'))).toMatch(/an event is `at: TIME` plus one of/);
    expect(err(() => parseScenario(scenarioYaml(2, 'events:\n  - { at: 1s, crash: node1 }\n  - { at: 2s, crash: node1 }'), 's.yaml'))).toMatch(/:10: .*node1 is already down at 2 s/);
    expect(err(() => parseScenario(scenarioYaml(2, 'events:\n  - { at: 1s, rejoin: node1 }'), 's.yaml'))).toMatch(/only a crashed or departed node can rejoin/);
    expect(err(() => parseScenario(scenarioYaml(3, 'events:\n  - { at: 1s, partition: [[node1], [node2]] }'), 's.yaml'))).toMatch(/every node exactly once; missing: node3/);
    expect(err(() => parseScenario(scenarioYaml(2, 'events:\n  - { at: 1s, heal: true }'), 's.yaml'))).toMatch(/nothing to heal/);
    expect(err(() => parseScenario(scenarioYaml(2, 'events:\n  - { at: 1s, failback: node1 }'), 's.yaml'))).toMatch(/failback: manual/);
    expect(err(() => parseScenario(scenarioYaml(2, 'unknown_key: 1'), 's.yaml'))).toMatch(/unknown key 'unknown_key'/);
    expect(err(() => parseScenario('cluster:\n  cluster: { ip: 192.0.2.10, backend: xt_cluster, total_nodes: 2 }\n  nodes:\n    - { name: a, owns: [1] }\n    - { name: b, owns: [1] }\n', 's.yaml'))).toMatch(/s\.yaml:5: cluster\.nodes\[1\]\.owns\[0\]: node number 1 is also owned by a/);
    expect(err(() => loadScenario(join(dir, 'missing.yaml')))).toMatch(/no such file/);
  });

  it('reads a backup map as node indexes and refuses it with another policy', () => {
    const sc = parseScenario(scenarioYaml(3, 'policy: backup\nbackup: { node1: [node3, node2] }'), 's.yaml');
    expect(sc.policy.backup).toEqual([[2, 1], [], []]);
    expect(err(() => parseScenario(scenarioYaml(3, 'policy: lowest\nbackup: { node1: [node3] }'), 's.yaml'))).toMatch(/only matters with policy: backup/);
    expect(err(() => parseScenario(scenarioYaml(3, 'policy: backup\nbackup: { node1: [node1] }'), 's.yaml'))).toMatch(/its own backup/);
    const hl = parseScenario(scenarioYaml(3, 'events:\n  - { at: 500ms, heartbeat-loss: { from: node1, to: node3, for: 2.5s } }'), 's.yaml').events[0]!;
    expect(hl).toMatchObject({ t: 0.5, kind: 'heartbeat-loss', node: 0, to: 2, for_s: 2.5 });
  });

  it('has a built-in scenario', () => {
    const sc = builtinScenario();
    expect(sc.model.names).toHaveLength(4);
    expect(sc.events.map((e) => e.kind)).toEqual(['crash', 'rejoin']);
  });
});
