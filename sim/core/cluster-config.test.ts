import { describe, expect, it } from 'vitest';
import { HEARTBEAT_DEFAULTS, heartbeatOf, parseConfig } from './cluster-config.ts';

describe('heartbeat defaults: one home', () => {
  const base = 'cluster: { ip: 192.0.2.10, backend: nft, total_nodes: 2 }\nnodes:\n  - { name: a, owns: [1] }\n  - { name: b, owns: [2] }\n';
  it('a config without a heartbeat section gets HEARTBEAT_DEFAULTS', () => {
    expect(heartbeatOf(parseConfig(base, 'c.yaml').config)).toEqual(HEARTBEAT_DEFAULTS);
  });
  it('a section with some keys gets the defaults for the others, and keeps its own', () => {
    const hb = heartbeatOf(parseConfig(`${base}heartbeat: { interval_s: 0.25, key_file: /k }\n`, 'c.yaml').config);
    expect(hb).toEqual({ ...HEARTBEAT_DEFAULTS, interval_s: 0.25, key_file: '/k' });
  });
});
