/**
 * The cluster config: one YAML file that `simulate` validates and kernel-glue
 * applies. Its schema (zod) and every check that a deployment depends on live
 * here; errors name the file, line, key and value.
 *
 * Numbering: `owns` lists kernel node numbers 1..N, the numbers CLUSTERIP shows
 * in /proc/net/ipt_CLUSTERIP/<ip> and xt_cluster takes in --cluster-local-node
 * (bucket k-1 belongs to node number k). nft rules use `offset 1` so the same
 * numbers appear there.
 *
 *   cluster:
 *     ip: 192.0.2.10
 *     interface: eth0
 *     mac: 01:00:5e:00:00:20
 *     backend: xt_cluster            # clusterip | xt_cluster | nft
 *     hashmode: sourceip             # CLUSTERIP only
 *     seed: 0xdeadbeef               # --hash-init / --cluster-hash-seed / nft seed
 *     total_nodes: 3
 *     kernel: "6.18"                 # optional: the kernel the hosts run
 *   nodes:
 *     - { name: node1, owns: [1] }
 *     - { name: node2, owns: [2], host: { ssh: root@node2.example } }
 *     - { name: node3, owns: [3], host: { netns: ns3 } }
 *   heartbeat:                       # optional: the agent (glue agent)
 *     { interval_s: 1, dead_after: 3, port: 7946, key_file: /etc/clusterip-sim/hb.key }
 *   failover: { policy: lowest, failback: immediate }   # optional: the agent's policy
 *   metrics: { address: 127.0.0.1, port: 9464 }          # optional: the agent's /metrics (off without it)
 *   health: { gateway: { address: 192.0.2.1, fails: 3 }, link: { interface: eth0 }, disk: { min_free_pct: 5 } }
 *
 * The agent also needs every node's heartbeat `address` (nodes[].address).
 */
import { z } from 'zod';
import { DataError, readTextFile } from './errors.ts';
import { fmtPath, parseKeyPath, YamlInput, type KeyPath } from './yaml-input.ts';
import { formatIPv6, parseIPv4, parseIPv6 } from './addr.ts';
import { CLUSTERIP_MAX_NODES, CLUSTERIP_MODES, XT_CLUSTER_MAX_NODES, isMulticastMac } from './spec.ts';

const u32 = z.union([
  z.number().int().min(0).max(0xffffffff),
  z.string().regex(/^(0x[0-9a-fA-F]{1,8}|\d+)$/, 'a 32-bit number, decimal or 0x hex').transform((s) => (s.startsWith('0x') ? parseInt(s.slice(2), 16) : Number(s))).pipe(z.number().max(0xffffffff)),
]);

const ipv4 = z.string().refine((s) => parseIPv4(s) !== null, 'an IPv4 address such as 192.0.2.10');
/** The cluster address: IPv4, or IPv6 for the conntrack-based backends (xt_cluster, nft). */
const clusterAddr = z.string().refine((s) => parseIPv4(s) !== null || parseIPv6(s) !== null, 'an IPv4 address such as 192.0.2.10 or an IPv6 address such as 2001:db8::10');

/** 4 or 6: the family of a cluster address (the schema accepted it as one or the other). */
export const ipFamily = (ip: string): 4 | 6 => (parseIPv4(ip) !== null ? 4 : 6);

/** The family of a cluster's address. */
export const clusterFamily = (c: { cluster: { ip: string } }): 4 | 6 => ipFamily(c.cluster.ip);

/**
 * The cluster address as the kernel tools print it: IPv6 in RFC 5952 form
 * (lower case, longest zero run compressed; nft and ip6tables-save print that
 * form), IPv4 unchanged. Rules are rendered and read back with this text.
 */
export function clusterAddrText(c: { cluster: { ip: string } }): string {
  const v6 = parseIPv4(c.cluster.ip) === null ? parseIPv6(c.cluster.ip) : null;
  return v6 ? formatIPv6(v6) : c.cluster.ip;
}
const ifname = z.string().regex(/^[A-Za-z0-9_.:@-]{1,15}$/, 'an interface name (1-15 characters, no spaces or slashes)');
const nodeName = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/, 'a name of letters, digits, _ . - (starting with a letter or digit)');

const HostSchema = z.union([
  z.literal('local'),
  z.object({ local: z.literal(true) }).strict(),
  z.object({
    // Never starting with '-': OpenSSH must not read the destination as an option.
    ssh: z.string().regex(/^([A-Za-z0-9_][A-Za-z0-9._-]*@)?[A-Za-z0-9_[][A-Za-z0-9._:\]-]*$/, 'user@host or host (no spaces, no options)'),
    port: z.number().int().min(1).max(65535).optional(),
    // ssh -o UserKnownHostsFile splits its value at whitespace: paths without it.
    identity: z.string().regex(/^[^\s-][^\s]*$/, 'a file path without spaces').optional(),
    known_hosts: z.string().regex(/^[^\s-][^\s]*$/, 'a file path without spaces').optional(),
  }).strict(),
  z.object({ netns: z.string().regex(/^[A-Za-z0-9_.-]{1,64}$/, 'a network namespace name') }).strict(),
]);

/**
 * The heartbeat when the config leaves a key out: the one home of these
 * defaults (the schema below, sim/cluster/scenario.ts and the agent read them).
 */
export const HEARTBEAT_DEFAULTS = { interval_s: 1, dead_after: 3, takeover_delay_s: 0, jitter_s: 0, port: 7946 } as const;

export const HeartbeatSchema = z.object({
  interval_s: z.number().positive().default(HEARTBEAT_DEFAULTS.interval_s),
  dead_after: z.number().int().min(1).default(HEARTBEAT_DEFAULTS.dead_after),
  takeover_delay_s: z.number().min(0).default(HEARTBEAT_DEFAULTS.takeover_delay_s),
  jitter_s: z.number().min(0).default(HEARTBEAT_DEFAULTS.jitter_s),
  port: z.number().int().min(1).max(65535).default(HEARTBEAT_DEFAULTS.port),
  key_file: z.string().optional(),
}).strict();

export type Heartbeat = z.infer<typeof HeartbeatSchema>;

/** The config's heartbeat section with every default filled in. */
export function heartbeatOf(c: { heartbeat?: Heartbeat | undefined }): Heartbeat {
  return c.heartbeat ?? HeartbeatSchema.parse({});
}

/**
 * How the heartbeat agent (kernel-glue/agent) redistributes buckets: the
 * policy names of sim/cluster/policies.ts (POLICIES, FAILBACKS; a unit test
 * keeps the lists equal). Every node must run with the same section.
 */
export const FailoverSchema = z.object({
  policy: z.enum(['lowest', 'least-loaded', 'spread', 'backup']).default('lowest'),
  failback: z.enum(['immediate', 'stable', 'manual']).default('immediate'),
  stable_s: z.number().min(0).default(10),
  /** Planned handovers (leave, failback): release-first (a few ms gap, SYNs retransmitted) or add-first (overlap: duplicate SYN answers reset connections). */
  handover: z.enum(['release-first', 'add-first']).default('release-first'),
  /** policy backup: node name -> ordered node names that take over its buckets. */
  backup: z.record(z.string(), z.array(z.string())).optional(),
}).strict();

export const ClusterConfigSchema = z.object({
  cluster: z.object({
    /**
     * Names this cluster's kernel objects (nft tables clusterip_sim_NAME, chain
     * CLUSTERIP_SIM_NAME) so that several clusters share a host; required when
     * a file holds several clusters. Lower case: nft and iptables both take it.
     */
    name: z.string().regex(/^[a-z0-9][a-z0-9_]{0,11}$/, 'a cluster name of 1-12 lower-case letters, digits or _ (it becomes part of nft table and iptables chain names)').optional(),
    ip: clusterAddr,
    interface: ifname.default('eth0'),
    mac: z.string().refine(isMulticastMac, 'a multicast MAC such as 01:00:5e:00:00:20 (lowest bit of the first byte set)').default('01:00:5e:00:00:20'),
    backend: z.enum(['clusterip', 'xt_cluster', 'nft']),
    hashmode: z.enum(CLUSTERIP_MODES).optional(),
    seed: u32.default(0),
    total_nodes: z.number().int().min(1),
    kernel: z.string().optional(),
    endian: z.enum(['little', 'big']).default('little'),
  }).strict().superRefine((k, ctx) => {
    // CLUSTERIP is an IPv4 target in every kernel that had it (net/ipv4/netfilter/ipt_CLUSTERIP.c; no ip6t_ twin, §4).
    if (k.backend === 'clusterip' && parseIPv4(k.ip) === null) {
      ctx.addIssue({ code: 'custom', path: ['ip'], input: k.ip, message: `${k.ip}: the clusterip backend is IPv4-only (iptables CLUSTERIP never existed for IPv6); use backend xt_cluster or nft for an IPv6 cluster address` });
    }
  }),
  nodes: z.array(z.object({
    name: nodeName,
    owns: z.array(z.number().int()),
    host: HostSchema.default('local'),
    address: ipv4.optional(),
  }).strict()).min(1),
  heartbeat: HeartbeatSchema.optional(),
  failover: FailoverSchema.optional(),
  /**
   * Early signs of trouble the agent watches (each off unless given): crossing
   * a threshold starts a voluntary leave, so the node's buckets move before it
   * fails (the idea behind CLUSTERIP's controlling script).
   */
  health: z.object({
    /** How often link, disk and memory are checked (the gateway has its own interval). */
    interval_s: z.number().positive().default(1),
    /** ICMP echo to the default gateway (needs the optional raw-socket package): `fails` unanswered in a row. */
    gateway: z.object({ address: ipv4, interval_s: z.number().positive().default(1), fails: z.number().int().min(1).default(3) }).strict().optional(),
    /** The link: carrier lost, or more than `max_errors` new rx+tx errors between two checks. */
    link: z.object({ interface: ifname, carrier: z.boolean().default(true), max_errors: z.number().int().min(0).optional() }).strict().optional(),
    /** Free space on `path` below `min_free_pct` percent. */
    disk: z.object({ path: z.string().default('/'), min_free_pct: z.number().min(0).max(100) }).strict().optional(),
    /** MemAvailable below `min_available_pct` percent of MemTotal. */
    memory: z.object({ min_available_pct: z.number().min(0).max(100) }).strict().optional(),
  }).strict().optional(),
  /** The agent's Prometheus endpoint (GET /metrics); off unless this section is there. */
  metrics: z.object({
    address: ipv4.default('127.0.0.1'),
    port: z.number().int().min(1).max(65535),
  }).strict().optional(),
}).strict();

export type ClusterConfig = z.infer<typeof ClusterConfigSchema>;
export type HostSpec = z.infer<typeof HostSchema>;

export interface ConfigProblem {
  /** Dotted key path, e.g. nodes[1].owns[0]. */
  path: string;
  message: string;
  /** 1-based line in the YAML file, when known. */
  line?: number;
}

/**
 * Checks beyond the shape: the ownership invariant (every node number 1..N
 * owned by exactly one node) and the backend's limits.
 */
export function checkConfig(c: ClusterConfig): ConfigProblem[] {
  const p: ConfigProblem[] = [];
  const n = c.cluster.total_nodes;
  const b = c.cluster.backend;
  if (b === 'clusterip') {
    if (n > CLUSTERIP_MAX_NODES) p.push({ path: 'cluster.total_nodes', message: `${n}: CLUSTERIP allows at most ${CLUSTERIP_MAX_NODES} nodes (iptables: out of range 0-16)` });
    if (!c.cluster.hashmode) p.push({ path: 'cluster.hashmode', message: `the clusterip backend needs a hashmode (${CLUSTERIP_MODES.join(', ')})` });
  } else {
    if (c.cluster.hashmode && c.cluster.hashmode !== 'sourceip') {
      p.push({ path: 'cluster.hashmode', message: `${c.cluster.hashmode}: the ${b} backend hashes only the conntrack's original source address (sourceip); remove hashmode` });
    }
    if (n > XT_CLUSTER_MAX_NODES) p.push({ path: 'cluster.total_nodes', message: `${n}: the cluster match allows at most ${XT_CLUSTER_MAX_NODES} nodes` });
  }
  const owner = new Map<number, string>();
  const names = new Set<string>();
  c.nodes.forEach((node, i) => {
    if (names.has(node.name)) p.push({ path: `nodes[${i}].name`, message: `'${node.name}' is used by another node` });
    names.add(node.name);
    node.owns.forEach((k, j) => {
      if (k < 1 || k > n) p.push({ path: `nodes[${i}].owns[${j}]`, message: `${k} is out of range: node numbers are 1..${n} (total_nodes)` });
      else if (owner.has(k)) p.push({ path: `nodes[${i}].owns[${j}]`, message: `node number ${k} is also owned by ${owner.get(k)}: its packets would be accepted twice` });
      else owner.set(k, node.name);
    });
  });
  const orphans: number[] = [];
  for (let k = 1; k <= n; k++) if (!owner.has(k)) orphans.push(k);
  if (orphans.length) p.push({ path: 'nodes', message: `node number${orphans.length > 1 ? 's' : ''} ${orphans.join(', ')} owned by no node: their packets would be dropped everywhere` });
  return p;
}

export interface LoadedConfig {
  config: ClusterConfig;
  /** Problems found by checkConfig (the shape was valid). */
  problems: ConfigProblem[];
  file: string;
}

/** Validates the cluster config found at `at` in the file (the root, or clusters[i]). */
function validateAt(y: YamlInput, at: KeyPath): LoadedConfig {
  const root = y.data() as Record<string, unknown[]>;
  const value = at.length ? root[at[0] as string]![at[1] as number] : root;
  const res = ClusterConfigSchema.safeParse(value);
  if (!res.success) throw y.schemaError('cluster config', res.error.issues.map((iss) => ({ ...iss, path: [...at, ...iss.path] })));
  const prefix = at.length ? `${fmtPath(at)}.` : '';
  const problems = checkConfig(res.data).map((q) => ({ path: prefix + q.path, message: q.message, line: y.lineOf([...at, ...parseKeyPath(q.path)]) }));
  return { config: res.data, problems, file: y.file };
}

/**
 * Parses and validates a config. A shape error (unknown key, wrong type) is a
 * DataError naming file:line, key and value; invariant problems are returned
 * so that callers can refuse (apply) or warn (simulate).
 */
export function parseConfig(text: string, file: string): LoadedConfig {
  const y = new YamlInput(text, file);
  if (y.doc.has('clusters')) {
    throw new DataError(y.where(['clusters']), `this file holds several clusters ('clusters:'); this command takes one cluster's config (glue commands take the whole file, or one cluster with --cluster NAME)`);
  }
  return validateAt(y, []);
}

/**
 * A file with one cluster (the usual form) or several:
 *
 *   clusters:
 *     - cluster: { name: web, ip: 192.0.2.10, backend: nft, ... }
 *       nodes: [...]
 *     - cluster: { name: dns, ip: 192.0.2.11, backend: xt_cluster, ... }
 *       nodes: [...]                 # YAML anchors (&hosts / *hosts) avoid repeating hosts
 *
 * Each entry is a whole cluster config. With several, every cluster needs a
 * distinct name and IP, and two clusters on one interface need distinct
 * MACs (removing one leaves the MAC's multicast group, §4.7).
 */
export function parseClusters(text: string, file: string): LoadedConfig[] {
  const y = new YamlInput(text, file);
  if (!y.doc.has('clusters')) return [validateAt(y, [])];
  const root = y.data() as Record<string, unknown>;
  const extra = Object.keys(root).filter((k) => k !== 'clusters');
  if (extra.length) throw new DataError(y.where([extra[0]!]), `unknown top-level key${extra.length > 1 ? 's' : ''} ${extra.map((k) => `'${k}'`).join(', ')} beside 'clusters' (each cluster carries its own nodes, heartbeat and failover)`);
  const list = root.clusters;
  if (!Array.isArray(list) || !list.length) throw new DataError(y.where(['clusters']), `'clusters' must be a non-empty list of cluster configs`);
  const out = list.map((_, i) => validateAt(y, ['clusters', i]));
  if (out.length > 1) {
    const seen = new Map<string, string>();
    out.forEach((l, i) => {
      const k = l.config.cluster;
      const where = `${y.where(['clusters', i, 'cluster'])}: clusters[${i}].cluster`;
      if (!k.name) throw new DataError(where, 'several clusters share this file: give each a name (cluster.name)');
      for (const [key, what] of [[`name ${k.name}`, `name '${k.name}'`], [`ip ${k.ip}`, `ip ${k.ip}`], [`mac ${k.interface} ${k.mac.toLowerCase()}`, `MAC ${k.mac} on ${k.interface}`]] as const) {
        const other = seen.get(key);
        if (other) throw new DataError(where, `${what} is also used by cluster '${other}'${key.startsWith('mac') ? ' (removing one would take the other off the multicast group)' : ''}`);
        seen.set(key, k.name);
      }
    });
  }
  return out;
}

export function loadConfig(file: string): LoadedConfig {
  const text = readTextFile(file);
  return parseConfig(text, file);
}

/** The clusters of a file (one for the usual single-cluster form). */
export function loadClusters(file: string): LoadedConfig[] {
  return parseClusters(readTextFile(file), file);
}

export function formatProblems(l: LoadedConfig): string {
  return l.problems.map((q) => `${l.file}${q.line ? `:${q.line}` : ''}: ${q.path}: ${q.message}`).join('\n');
}
