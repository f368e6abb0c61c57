import { describe, expect, it } from 'vitest';
import { request } from 'node:http';
import { AgentCore } from './core.ts';
import { AgentMetrics, serveMetrics } from './metrics.ts';
import { clusterModel } from '../../sim/cluster/ownership.ts';
import { parseConfig } from '../../sim/core/cluster-config.ts';
import { policyOf } from './daemon.ts';
import { parsePrometheus, sampleValue } from '../../test/prometheus.ts';

const c = parseConfig(`cluster: { ip: 192.0.2.10, backend: nft, total_nodes: 3 }
nodes:
  - { name: node1, owns: [1, 3], address: 10.0.0.1, host: { netns: a } }
  - { name: node2, owns: [2], address: 10.0.0.2, host: { netns: b } }
metrics: { port: 9464 }
`, 'c.yaml').config;

describe('agent metrics (Prometheus text format)', () => {
  it('the metrics section is off unless given, and defaults to 127.0.0.1', () => {
    expect(c.metrics).toEqual({ address: '127.0.0.1', port: 9464 });
    expect(parseConfig('cluster: { ip: 192.0.2.10, backend: nft, total_nodes: 1 }\nnodes:\n  - { name: a, owns: [1] }\n', 'c.yaml').config.metrics).toBeUndefined();
  });
  it('renders counters that follow events and gauges from the core; the text parses strictly', () => {
    const core = new AgentCore({ model: clusterModel(c), policy: policyOf(c), self: 0, interval_s: 1, dead_after: 3, takeover_delay_s: 0, leave_timeout_s: 5, t0: 0, inc: 1 });
    core.setOwned(0b101);
    const m = new AgentMetrics();
    m.sent += 2;
    m.bump(m.received, 'node2');
    m.bump(m.rejected, 'bad-mac', 3);
    for (const event of ['takeover', 'takeover', 'leave-takeover', 'dead']) m.observe({ event });
    m.observe({ event: 'leave', peer: 'node2' });
    m.load = { 1: 10, 3: 7 };
    const { samples, types } = parsePrometheus(m.render(core));
    expect(types.get('clusterip_sim_agent_heartbeats_sent_total')).toBe('counter');
    expect(sampleValue(samples, 'clusterip_sim_agent_heartbeats_sent_total', { node: 'node1' })).toBe(2);
    expect(sampleValue(samples, 'clusterip_sim_agent_heartbeats_received_total', { peer: 'node2' })).toBe(1);
    expect(sampleValue(samples, 'clusterip_sim_agent_heartbeats_rejected_total', { reason: 'bad-mac' })).toBe(3);
    expect(sampleValue(samples, 'clusterip_sim_agent_takeovers_total')).toBe(3);
    expect(sampleValue(samples, 'clusterip_sim_agent_deaths_total')).toBe(1);
    expect(sampleValue(samples, 'clusterip_sim_agent_leaves_total', { peer: 'node2' })).toBe(1);
    expect(samples.filter((s) => s.name === 'clusterip_sim_agent_kernel_owned').map((s) => s.labels.node_number)).toEqual(['1', '3']);
    expect(sampleValue(samples, 'clusterip_sim_agent_accepted_packets_total', { node_number: '3' })).toBe(7);
    expect(sampleValue(samples, 'clusterip_sim_agent_up')).toBe(1);
  });
  it('serves GET /metrics and nothing else', async () => {
    const srv = await serveMetrics('127.0.0.1', 0, () => '# TYPE x gauge\nx 1\n');
    const port = (srv.address() as { port: number }).port;
    const get = (path: string): Promise<{ status: number; type: string; body: string }> => new Promise((res, rej) => {
      request({ host: '127.0.0.1', port, path }, (r) => {
        let body = '';
        r.setEncoding('utf8').on('data', (d: string) => (body += d)).on('end', () => res({ status: r.statusCode!, type: String(r.headers['content-type']), body }));
      }).on('error', rej).end();
    });
    try {
      expect(await get('/metrics')).toEqual({ status: 200, type: 'text/plain; version=0.0.4; charset=utf-8', body: '# TYPE x gauge\nx 1\n' });
      expect((await get('/')).status).toBe(404);
    } finally {
      srv.close();
    }
  });
});
