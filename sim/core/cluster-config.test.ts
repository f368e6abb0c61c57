import { describe, expect, it } from 'vitest';
import { HEARTBEAT_DEFAULTS, heartbeatOf, parseClusters, parseConfig } from './cluster-config.ts';

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

describe('several clusters in one file', () => {
  const entry = (name: string, ip: string, mac: string, backend = 'nft'): string => `  - cluster: { name: ${name}, ip: ${ip}, mac: "${mac}", backend: ${backend}, total_nodes: 2, seed: 7 }
    nodes:
      - { name: a, owns: [1], host: { netns: x1 } }
      - { name: b, owns: [2], host: { netns: x2 } }
`;
  it('each entry is a whole cluster config; a single-cluster file stays one cluster', () => {
    const l = parseClusters(`clusters:\n${entry('web', '192.0.2.10', '01:00:5e:00:00:20')}${entry('dns', '192.0.2.11', '01:00:5e:00:00:21', 'xt_cluster')}`, 'm.yaml');
    expect(l.map((x) => [x.config.cluster.name, x.config.cluster.ip, x.config.cluster.backend])).toEqual([['web', '192.0.2.10', 'nft'], ['dns', '192.0.2.11', 'xt_cluster']]);
    expect(parseClusters('cluster: { ip: 192.0.2.10, backend: nft, total_nodes: 1 }\nnodes:\n  - { name: a, owns: [1] }\n', 's.yaml')).toHaveLength(1);
  });
  it('errors name the file, line and the key under clusters[i]', () => {
    expect(() => parseClusters(`clusters:\n${entry('web', '192.0.2.10', '01:00:5e:00:00:20')}${entry('dns', '192.0.2.300', '01:00:5e:00:00:21')}`, 'm.yaml')).toThrow(/m\.yaml:6: clusters\[1\]\.cluster\.ip: an IPv4 address/);
    const p = parseClusters(`clusters:\n${entry('web', '192.0.2.10', '01:00:5e:00:00:20').replace('owns: [2]', 'owns: [1]')}`, 'm.yaml')[0]!.problems;
    expect(p[0]).toMatchObject({ path: 'clusters[0].nodes[1].owns[0]', line: 5 });
  });
  it('refuses clusters that would collide on a host: no name, same name, same IP, same MAC on one interface', () => {
    const two = (a: string, b: string): string => `clusters:\n${a}${b}`;
    expect(() => parseClusters(two(entry('web', '192.0.2.10', '01:00:5e:00:00:20'), entry('web', '192.0.2.11', '01:00:5e:00:00:21')), 'm.yaml')).toThrow(/clusters\[1\]\.cluster: name 'web' is also used by cluster 'web'/);
    expect(() => parseClusters(two(entry('web', '192.0.2.10', '01:00:5e:00:00:20'), entry('dns', '192.0.2.10', '01:00:5e:00:00:21')), 'm.yaml')).toThrow(/ip 192\.0\.2\.10 is also used by cluster 'web'/);
    expect(() => parseClusters(two(entry('web', '192.0.2.10', '01:00:5e:00:00:20'), entry('dns', '192.0.2.11', '01:00:5E:00:00:20')), 'm.yaml')).toThrow(/MAC .* on eth0 is also used by cluster 'web' \(removing one/);
    expect(() => parseClusters(two(entry('web', '192.0.2.10', '01:00:5e:00:00:20'), entry('dns', '192.0.2.11', '01:00:5e:00:00:21').replace('name: dns, ', '')), 'm.yaml')).toThrow(/give each a name/);
    expect(() => parseConfig(two(entry('web', '192.0.2.10', '01:00:5e:00:00:20'), ''), 'm.yaml')).toThrow(/m\.yaml:2: this file holds several clusters/);
  });
});
