/**
 * `clusterip-sim glue agent`: the heartbeat/failover daemon for one node
 * (kernel-glue/agent). Parses flags, loads the config and the key, runs until
 * a voluntary leave completes (exit 0) or a fatal error (exit 1).
 */
import type { Command } from 'commander';
import { DataError, UsageError } from '../sim/core/errors.ts';
import { formatProblems, heartbeatOf, loadClusters } from '../sim/core/cluster-config.ts';
import { loadKey } from '../kernel-glue/agent/protocol.ts';
import { startAgent } from '../kernel-glue/agent/daemon.ts';

interface AgentFlags {
  config: string;
  cluster?: string;
  node: string;
  healthCmd?: string;
  healthFails: string;
  healthInterval?: string;
  leaveTimeout?: string;
  startup?: string;
  keyFile?: string;
  jsonLog?: string;
  quiet?: boolean;
}

const num = (flag: string, v: string | undefined, min: number): number | undefined => {
  if (v === undefined) return undefined;
  const x = Number(v);
  if (!Number.isFinite(x) || x < min) throw new UsageError(`${flag}: '${v}' is not a number >= ${min}`);
  return x;
};

export function registerGlueAgent(glue: Command): void {
  glue
    .command('agent')
    .description(
      'Run the heartbeat/failover agent for one node: signed UDP heartbeats to every other node (HMAC-SHA256, replay protection), ' +
        'failure detection after heartbeat.dead_after missed beats, takeover by the failover policy (the same code as `failover`), ' +
        'voluntary leave on SIGTERM or a failing health command, failback on rejoin. Every decision is logged as one JSON object per line.',
    )
    .requiredOption('--config <file>', 'cluster YAML with nodes[].address and a heartbeat section (key_file, port, interval_s, dead_after)')
    .requiredOption('--node <name>', 'the node this agent runs on (a name from the config)')
    .option('--cluster <name>', 'in a file with several clusters: the one this agent runs (one agent, one heartbeat group per cluster; give each its own heartbeat.port)')
    .option('--health-cmd <command>', 'a health check run by /bin/sh -c every --health-interval; exit status != 0 counts as a failure')
    .option('--health-fails <n>', 'consecutive health failures that start a voluntary leave', '3')
    .option('--health-interval <s>', 'seconds between health checks (default: heartbeat.interval_s)')
    .option('--leave-timeout <s>', 'how long a leave waits for the takeover acknowledgement (default: max(5, 4 x dead_after x interval_s))')
    .option('--startup <s>', 'start-up listening window: agents started within this many seconds of each other form the cluster together (default: dead_after x interval_s); a node that starts later joins a running cluster as a restarted node, so with failback: manual it gets nothing back until SIGUSR1')
    .option('--key-file <file>', 'shared heartbeat key (overrides heartbeat.key_file); must not be readable by others')
    .option('--json-log <file>', 'append the JSON decision log to this file (also copied to stderr unless --quiet)')
    .option('--quiet', 'do not copy the log to stderr')
    .addHelpText(
      'after',
      `
Examples:
  clusterip-sim glue agent --config cluster.yaml --node node1
  clusterip-sim glue agent --config cluster.yaml --node node2 --health-cmd 'curl -fsS -m 1 http://127.0.0.1/health' --json-log /var/log/clusterip-agent.jsonl

Signals: SIGTERM/SIGINT = leave voluntarily (hand the buckets over, wait for the takeover, release, exit 0);
SIGUSR1 = ask the cluster to give this node its buckets back (failover.failback: manual).
The config needs, besides the cluster: nodes[].address (heartbeat address), heartbeat.key_file (or --key-file),
optionally heartbeat {interval_s, dead_after, takeover_delay_s, jitter_s, port} and failover {policy, failback, stable_s, backup, handover}.
The agent changes only its own host's owner set (kernel-glue's rules, installed on start if missing).`,
    )
    .action(async (o: AgentFlags) => {
      const all = loadClusters(o.config);
      const names = all.map((x) => x.config.cluster.name ?? '(unnamed)');
      if (all.length > 1 && o.cluster === undefined) throw new UsageError(`${o.config} holds several clusters: say which with --cluster NAME (clusters: ${names.join(', ')})`);
      const l = o.cluster === undefined ? all[0]! : all.find((x) => x.config.cluster.name === o.cluster);
      if (!l) throw new UsageError(`--cluster ${o.cluster}: no cluster of that name in ${o.config} (clusters: ${names.join(', ')})`);
      if (l.problems.length) throw new DataError(o.config, `the config fails validation; the agent refuses to run on it:\n${formatProblems(l)}`);
      const keyFile = o.keyFile ?? heartbeatOf(l.config).key_file;
      if (!keyFile) throw new UsageError('no heartbeat key: set heartbeat.key_file in the config or pass --key-file (e.g. head -c 32 /dev/urandom | base64 > hb.key; chmod 600 hb.key)');
      const agent = await startAgent({
        config: l.config,
        node: o.node,
        key: loadKey(keyFile),
        healthCmd: o.healthCmd,
        healthFails: num('--health-fails', o.healthFails, 1),
        healthInterval_s: num('--health-interval', o.healthInterval, 0.05),
        leaveTimeout_s: num('--leave-timeout', o.leaveTimeout, 0),
        startup_s: num('--startup', o.startup, 0),
        jsonLog: o.jsonLog,
        stderr: !o.quiet,
      });
      process.exitCode = await agent.done;
    });
}
