/**
 * The agent's metrics in the Prometheus text exposition format (0.0.4),
 * served on GET /metrics at the config's `metrics` address (off without it).
 * Counters follow the event log (every record passes through `observe`) and
 * the transport (beats sent, received, refused, including the refusals the log
 * leaves out); gauges are read from the core and the last kernel read-back at
 * scrape time.
 */
import { createServer, type Server } from 'node:http';
import type { AgentCore, LogRecord } from './core.ts';
import { numbersOf } from './core.ts';

/** Label values are quoted strings; backslash, quote and newline are escaped (exposition format). */
const esc = (v: string): string => v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');

export class AgentMetrics {
  sent = 0;
  readonly received = new Map<string, number>();
  readonly rejected = new Map<string, number>();
  /** Event log records by event name (takeover, leave, dead, ...). */
  readonly events = new Map<string, number>();
  /** Per node number: packets the kernel accepted here, as last read back. */
  load: Record<number, number> = {};

  observe(r: LogRecord): void {
    const e = String(r.event);
    this.events.set(e, (this.events.get(e) ?? 0) + 1);
    if (e === 'leave') this.bump(this.leaves, String(r.peer ?? ''));
  }

  readonly leaves = new Map<string, number>();

  bump(m: Map<string, number>, k: string, by = 1): void {
    m.set(k, (m.get(k) ?? 0) + by);
  }

  /** The exposition text for this moment. */
  render(core: AgentCore): string {
    const out: string[] = [];
    const metric = (name: string, type: 'counter' | 'gauge', help: string, rows: [Record<string, string>, number][]): void => {
      out.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);
      for (const [labels, v] of rows) {
        const l = Object.entries(labels).map(([k, x]) => `${k}="${esc(x)}"`).join(',');
        out.push(`${name}${l ? `{${l}}` : ''} ${v}`);
      }
    };
    const node = core.name;
    const ev = (e: string): number => this.events.get(e) ?? 0;
    metric('clusterip_sim_agent_up', 'gauge', 'The agent runs (1), leaving (2 while a voluntary leave is in progress).', [[{ node }, core.leaving ? 2 : 1]]);
    metric('clusterip_sim_agent_heartbeats_sent_total', 'counter', 'Heartbeats sent (one per peer address per beat).', [[{ node }, this.sent]]);
    metric('clusterip_sim_agent_heartbeats_received_total', 'counter', 'Verified heartbeats received, by sending peer.', [...this.received].map(([peer, v]): [Record<string, string>, number] => [{ node, peer }, v]));
    metric('clusterip_sim_agent_heartbeats_rejected_total', 'counter', 'Datagrams refused, by reason (bad-mac, replayed, stale, old-incarnation, wrong-source, unknown-node, self, malformed).', [...this.rejected].map(([reason, v]): [Record<string, string>, number] => [{ node, reason }, v]));
    metric('clusterip_sim_agent_takeovers_total', 'counter', 'Buckets this node took over from a dead or leaving node.', [[{ node }, ev('takeover') + ev('leave-takeover')]]);
    metric('clusterip_sim_agent_releases_total', 'counter', 'Buckets this node released (failback, leave).', [[{ node }, ev('release') + ev('leave-release')]]);
    metric('clusterip_sim_agent_leaves_total', 'counter', 'Voluntary leaves announced, by the leaving node.', [...this.leaves].map(([peer, v]): [Record<string, string>, number] => [{ node, peer }, v]));
    metric('clusterip_sim_agent_deaths_total', 'counter', 'Peers declared dead (dead_after beats missed).', [[{ node }, ev('dead')]]);
    metric('clusterip_sim_agent_apply_errors_total', 'counter', 'Owner-set changes the kernel refused.', [[{ node }, ev('apply-error')]]);
    const owners = core.state?.owners ?? [];
    metric('clusterip_sim_agent_owner', 'gauge', 'The owner sets as this agent sees them: 1 per (node, node number) owned.', owners.flatMap((mask, i) => numbersOf(mask).map((k): [Record<string, string>, number] => [{ node, owner: core.m.names[i]!, node_number: String(k) }, 1])));
    metric('clusterip_sim_agent_kernel_owned', 'gauge', 'Node numbers this host\'s kernel accepts (read back).', numbersOf(core.owned).map((k): [Record<string, string>, number] => [{ node, node_number: String(k) }, 1]));
    metric('clusterip_sim_agent_accepted_packets_total', 'counter', 'Packets this host\'s kernel accepted per node number (the backend\'s counters, as last read back).', Object.entries(this.load).map(([k, v]): [Record<string, string>, number] => [{ node, node_number: k }, v]));
    return out.join('\n') + '\n';
  }
}

/** Serves GET /metrics; resolves once listening. Anything else is 404. */
export async function serveMetrics(address: string, port: number, body: () => string): Promise<Server> {
  const srv = createServer((req, res) => {
    if (req.method === 'GET' && (req.url === '/metrics' || req.url?.startsWith('/metrics?'))) {
      res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4; charset=utf-8' });
      res.end(body());
    } else {
      res.writeHead(404, { 'content-type': 'text/plain' });
      res.end('only /metrics\n');
    }
  });
  await new Promise<void>((res, rej) => {
    srv.once('error', rej);
    srv.listen(port, address, () => {
      srv.off('error', rej);
      res();
    });
  });
  return srv;
}
