/**
 * The failover scenario file (YAML, validated with zod): which cluster, which
 * heartbeat parameters, which policy and failback, which conntrack model, and
 * the events. Errors name file:line, key and value.
 *
 *   name: node2 crashes
 *   cluster: cluster.yaml          # a path (relative to this file) or the config inline
 *   heartbeat: { interval_s: 1, dead_after: 3, takeover_delay_s: 0.5, jitter_s: 0.02, seed: 1, apply_s: 0.02 }
 *   handover: release-first        # release-first | add-first (default: the config's failover.handover)
 *   policy: lowest                 # lowest | least-loaded | spread | backup
 *   backup: { node2: [node3, node1] }   # for policy backup (default: the next nodes in order)
 *   failback: immediate            # immediate | stable (with stable_s) | manual
 *   stable_s: 10
 *   conntrack: { state_sync: false, tcp_loose: true }
 *   traffic: { flows: 1000, duration_s: 60, seed: 1 }   # the built-in flow generator, when no capture is given
 *   events:
 *     - at: 12.5s
 *       crash: node2
 *     - { at: 30s, rejoin: node2 }
 *     - { at: 40s, partition: [[node1, node2], [node3]] }
 *     - { at: 50s, heal: true }
 *     - { at: 55s, heartbeat-loss: { from: node1, to: node2, for: 5s } }
 */
import { dirname, resolve } from 'node:path';
import { z } from 'zod';
import { DataError, readTextFile } from '../core/errors.ts';
import { issueMessage, parseKeyPath, YamlInput, type KeyPath } from '../core/yaml-input.ts';
import { ClusterConfigSchema, checkConfig, heartbeatOf, loadConfig, type ClusterConfig } from '../core/cluster-config.ts';
import { clusterModel, type ClusterModel } from './ownership.ts';
import { FAILBACKS, POLICIES, type PolicyConfig } from './policies.ts';
import { parseDuration, type ScenarioEvent } from './events.ts';
import { HANDOVER_MODES, type HandoverMode } from './handover.ts';

/**
 * Default time one kernel owner-set update takes (decision to kernel), seconds: the order of the agent's
 * `applied.took_ms` on an idle machine (one nft or iptables process). A planned handover's gap or overlap
 * lasts one beat delivery plus one update (handover.ts).
 */
export const DEFAULT_APPLY_S = 0.02;

const dur = z.union([z.number(), z.string()]).refine((v) => parseDuration(v) !== null, 'a time such as 12.5s, 500ms, 2m or a number of seconds').transform((v) => parseDuration(v)!);
const name = z.string();

const EventSchema = z.union([
  z.object({ at: dur, crash: name }).strict(),
  z.object({ at: dur, leave: name }).strict(),
  z.object({ at: dur, rejoin: name }).strict(),
  z.object({ at: dur, failback: name }).strict(),
  z.object({ at: dur, partition: z.array(z.array(name).min(1)).min(2) }).strict(),
  z.object({ at: dur, heal: z.literal(true) }).strict(),
  z.object({ at: dur, 'heartbeat-loss': z.object({ from: name, to: name, for: dur }).strict() }).strict(),
]);

export const TrafficSchema = z.object({
  flows: z.number().int().min(1).max(5_000_000).default(2000),
  duration_s: z.number().positive().default(60),
  seed: z.number().int().default(1),
  tcp_share: z.number().min(0).max(1).default(0.8),
  clients: z.number().int().min(1).optional(),
}).strict();

export const ScenarioSchema = z.object({
  name: z.string().default('scenario'),
  cluster: z.union([z.string(), z.record(z.string(), z.unknown())]),
  // No defaults here: unset keys fall back to the cluster config's heartbeat section, then to its defaults.
  heartbeat: z.object({
    interval_s: z.number().positive().optional(),
    dead_after: z.number().int().min(1).optional(),
    takeover_delay_s: z.number().min(0).optional(),
    jitter_s: z.number().min(0).optional(),
    seed: z.number().int().optional(),
    apply_s: z.number().min(0).optional(),
  }).strict().optional(),
  handover: z.enum(HANDOVER_MODES).optional(),
  policy: z.enum(POLICIES).default('lowest'),
  backup: z.record(z.string(), z.array(z.string())).optional(),
  failback: z.enum(FAILBACKS).default('immediate'),
  stable_s: z.number().min(0).default(10),
  conntrack: z.object({ state_sync: z.boolean().default(false), tcp_loose: z.boolean().default(true) }).strict().default({ state_sync: false, tcp_loose: true }),
  bin_s: z.number().positive().optional(),
  traffic: TrafficSchema.optional(),
  events: z.array(EventSchema).default([]),
}).strict();

export interface HeartbeatParams {
  interval_s: number;
  dead_after: number;
  takeover_delay_s: number;
  jitter_s: number;
  /** Seeds the jitter so a scenario always gives the same answer. */
  seed: number;
  /** One kernel owner-set update (decision to kernel holding it), seconds: the length of a handover's gap or overlap beside a beat's delivery. */
  apply_s: number;
}

export interface ConntrackParams {
  /** conntrackd-style synchronisation: every node holds every entry, so moved TCP connections survive. */
  state_sync: boolean;
  /** nf_conntrack_tcp_loose: a node picks up mid-stream packets (and resets them) instead of marking them INVALID. */
  tcp_loose: boolean;
}

export interface Scenario {
  name: string;
  file: string;
  config: ClusterConfig;
  /** Where the cluster config came from: a path, or "inline". */
  config_source: string;
  model: ClusterModel;
  heartbeat: HeartbeatParams;
  policy: PolicyConfig;
  /** Planned handover order (leave): the scenario's, else the config's failover.handover. */
  handover: HandoverMode;
  conntrack: ConntrackParams;
  bin_s?: number;
  traffic?: z.infer<typeof TrafficSchema>;
  /** Sorted by time (stable). */
  events: ScenarioEvent[];
  /** The events as written (for the JSON result). */
  raw_events: unknown[];
}

/** Parses and validates a scenario. `baseDir` resolves a cluster config path. */
export function parseScenario(text: string, file: string, baseDir = dirname(file)): Scenario {
  const y = new YamlInput(text, file);
  const res = ScenarioSchema.safeParse(y.data());
  if (!res.success) {
    throw y.schemaError('failover scenario', res.error.issues, (iss) =>
      iss.path[0] === 'events' && iss.path.length === 2 && iss.code === 'invalid_union'
        ? 'an event is `at: TIME` plus one of crash|leave|rejoin|failback: NODE, partition: [[NODE, ...], [NODE, ...]], heal: true, heartbeat-loss: {from: NODE, to: NODE, for: TIME}'
        : undefined);
  }
  const s = res.data;

  const { config, configSource } = scenarioCluster(s.cluster, y, baseDir);
  let model: ClusterModel;
  try {
    model = clusterModel(config);
  } catch (e) {
    return y.fail(['cluster'], (e as Error).message);
  }

  // Heartbeat: the cluster config's section, overridden by the scenario's.
  const hb0 = heartbeatOf(config);
  const heartbeat: HeartbeatParams = {
    interval_s: s.heartbeat?.interval_s ?? hb0.interval_s,
    dead_after: s.heartbeat?.dead_after ?? hb0.dead_after,
    takeover_delay_s: s.heartbeat?.takeover_delay_s ?? hb0.takeover_delay_s,
    jitter_s: s.heartbeat?.jitter_s ?? hb0.jitter_s,
    seed: s.heartbeat?.seed ?? 1,
    apply_s: s.heartbeat?.apply_s ?? DEFAULT_APPLY_S,
  };

  const backup = scenarioBackup(s, model, y);
  const events = scenarioEvents(s, model, y);

  return {
    name: s.name,
    file,
    config,
    config_source: configSource,
    model,
    heartbeat,
    policy: { policy: s.policy, failback: s.failback, stable_s: s.stable_s, backup },
    handover: s.handover ?? config.failover?.handover ?? 'release-first',
    conntrack: s.conntrack,
    bin_s: s.bin_s,
    traffic: s.traffic,
    events,
    raw_events: (y.data() as { events?: unknown[] }).events ?? [],
  };
}

type ScenarioFile = z.infer<typeof ScenarioSchema>;

/** Index of node `nm` in the model; an error at `path` names the nodes there are. */
function nodeIndex(model: ClusterModel, y: YamlInput, nm: string, path: KeyPath): number {
  const i = model.names.indexOf(nm);
  if (i < 0) y.fail(path, `no node named '${nm}' in the cluster config (nodes: ${model.names.join(', ')})`);
  return i;
}

/** The scenario's cluster: a config file (relative to the scenario) or an inline config, checked either way. */
function scenarioCluster(cluster: ScenarioFile['cluster'], y: YamlInput, baseDir: string): { config: ClusterConfig; configSource: string } {
  let config: ClusterConfig;
  let configSource: string;
  if (typeof cluster === 'string') {
    const path = resolve(baseDir, cluster);
    const loaded = loadConfig(path);
    if (loaded.problems.length) throw new DataError(path, `cluster config problems (fix them before simulating a failover):\n  ${loaded.problems.map((q) => `${path}${q.line ? `:${q.line}` : ''}: ${q.path}: ${q.message}`).join('\n  ')}`);
    config = loaded.config;
    configSource = cluster;
  } else {
    const r = ClusterConfigSchema.safeParse(cluster);
    if (!r.success) {
      const iss = r.error.issues[0]!;
      y.fail(['cluster', ...(iss.path as (string | number)[])], issueMessage(iss));
    }
    config = r.data!;
    const probs = checkConfig(config);
    if (probs.length) {
      const q = probs[0]!;
      y.fail(['cluster', ...parseKeyPath(q.path)], q.message);
    }
    configSource = 'inline';
  }
  return { config, configSource };
}

/** The backup map as node indexes (policy: backup only). */
function scenarioBackup(s: ScenarioFile, model: ClusterModel, y: YamlInput): number[][] | undefined {
  const idx = (nm: string, path: KeyPath): number => nodeIndex(model, y, nm, path);
  let backup: number[][] | undefined;
  if (s.backup) {
    backup = model.names.map(() => []);
    for (const [k, list] of Object.entries(s.backup)) {
      const from = idx(k, ['backup', k]);
      backup[from] = list.map((x, j) => idx(x, ['backup', k, j]));
      if (backup[from]!.includes(from)) y.fail(['backup', k], `a node cannot be its own backup`);
    }
    for (let i = 0; i < model.names.length; i++) if (!s.backup[model.names[i]!]) backup[i] = [];
  }
  if (s.backup && s.policy !== 'backup') y.fail(['backup'], `a backup map only matters with policy: backup (policy is ${s.policy})`);

  return backup;
}

/** Events sorted by time (stable), nodes resolved, and replayed once to catch impossible sequences. */
function scenarioEvents(s: ScenarioFile, model: ClusterModel, y: YamlInput): ScenarioEvent[] {
  const idx = (nm: string, path: KeyPath): number => nodeIndex(model, y, nm, path);
  const order = s.events.map((e, i) => ({ e, i })).sort((a, b) => a.e.at - b.e.at || a.i - b.i);
  const up = model.names.map(() => true);
  let partitioned = false;
  const events: ScenarioEvent[] = [];
  for (const { e, i } of order) {
    const p = (k: string): (string | number)[] => ['events', i, k];
    const line = y.lineOf(['events', i]);
    const t = e.at;
    if ('crash' in e || 'leave' in e) {
      const kind = 'crash' in e ? 'crash' : 'leave';
      const node = idx('crash' in e ? e.crash : e.leave, p(kind));
      if (!up[node]) y.fail(p(kind), `${model.names[node]} is already down at ${t} s`);
      up[node] = false;
      events.push({ t, kind, node, line });
    } else if ('rejoin' in e) {
      const node = idx(e.rejoin, p('rejoin'));
      if (up[node]) y.fail(p('rejoin'), `${model.names[node]} is up at ${t} s; only a crashed or departed node can rejoin`);
      up[node] = true;
      events.push({ t, kind: 'rejoin', node, line });
    } else if ('failback' in e) {
      const node = idx(e.failback, p('failback'));
      if (s.failback !== 'manual') y.fail(p('failback'), `a failback event only matters with failback: manual (failback is ${s.failback})`);
      events.push({ t, kind: 'failback', node, line });
    } else if ('partition' in e) {
      const seen = new Set<number>();
      const groups = e.partition.map((g, gi) => g.map((nm, ni) => {
        const n = idx(nm, ['events', i, 'partition', gi, ni]);
        if (seen.has(n)) y.fail(['events', i, 'partition', gi, ni], `${nm} is in two groups`);
        seen.add(n);
        return n;
      }));
      if (seen.size !== model.names.length) y.fail(p('partition'), `a partition lists every node exactly once; missing: ${model.names.filter((_, n) => !seen.has(n)).join(', ')}`);
      partitioned = true;
      events.push({ t, kind: 'partition', groups, line });
    } else if ('heal' in e) {
      if (!partitioned) y.fail(p('heal'), `nothing to heal at ${t} s: no partition is in effect`);
      partitioned = false;
      events.push({ t, kind: 'heal', line });
    } else {
      const h = e['heartbeat-loss'];
      const from = idx(h.from, ['events', i, 'heartbeat-loss', 'from']);
      const to = idx(h.to, ['events', i, 'heartbeat-loss', 'to']);
      if (from === to) y.fail(['events', i, 'heartbeat-loss', 'to'], 'a node always hears itself; name two different nodes');
      events.push({ t, kind: 'heartbeat-loss', node: from, to, for_s: h.for, line });
    }
  }

  return events;
}

export function loadScenario(file: string): Scenario {
  const text = readTextFile(file);
  return parseScenario(text, file);
}

/** The scenario `failover` runs when given none: 4 nodes, node2 crashes at 20 s and rejoins at 40 s. */
export const BUILTIN_SCENARIO = `name: "built-in: 4 nodes, node2 crashes at 20 s and rejoins at 40 s"
cluster:
  cluster: { ip: 192.0.2.10, backend: clusterip, hashmode: sourceip-sourceport, total_nodes: 4, seed: 0x1234 }
  nodes:
    - { name: node1, owns: [1] }
    - { name: node2, owns: [2] }
    - { name: node3, owns: [3] }
    - { name: node4, owns: [4] }
heartbeat: { interval_s: 1, dead_after: 3, takeover_delay_s: 0.5, jitter_s: 0.05, seed: 1 }
policy: lowest
failback: immediate
conntrack: { state_sync: false, tcp_loose: true }
traffic: { flows: 2000, duration_s: 60, seed: 1 }
events:
  - { at: 20s, crash: node2 }
  - { at: 40s, rejoin: node2 }
`;

export function builtinScenario(): Scenario {
  return parseScenario(BUILTIN_SCENARIO, '(built-in scenario)', process.cwd());
}
