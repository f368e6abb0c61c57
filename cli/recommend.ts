/**
 * `clusterip-sim recommend`: from diagnosis to a fix. One pass over the
 * traffic, a search over what the kernels allow (sim/recommend), the verdict
 * checked on traffic the search never saw, and the chosen configuration
 * written as a cluster config that `simulate --config` and `glue` accept.
 */
import { existsSync, statSync, writeFileSync } from 'node:fs';
import { Option, type Command } from 'commander';
import { UsageError } from '../sim/core/errors.ts';
import { loadConfig, formatProblems, type ClusterConfig } from '../sim/core/cluster-config.ts';
import { parseClusterIp } from '../sim/engine/cluster-filter.ts';
import { CURRENT_KERNEL, DEFAULT_CLUSTERIP_KERNEL, type Backend } from '../sim/core/spec.ts';
import type { InputFile, Metric, RecommendResult } from '../sim/core/result.ts';
import { SCHEMA_VERSION, TOOL, VERSION } from '../sim/core/version.ts';
import { POLICIES, type PolicyName } from '../sim/cluster/policies.ts';
import { DEFAULT_FLOW_TIMEOUT } from '../sim/engine/conn-table.ts';
import type { InputSpec } from '../sim/engine/task.ts';
import { collectFlows } from '../sim/recommend/flows.ts';
import { backendRefusal, recommend } from '../sim/recommend/search.ts';
import { configYaml } from '../sim/recommend/config-out.ts';
import { writeReport } from '../reports/write.ts';
import { addSelectorOptions, selectorSpecFromFlags, type SelectorFlags } from './hash.ts';
import { addInputOptions, DEFAULT_SCENARIO, refuseSyntheticToV6, type InputFlags } from './simulate.ts';
import { formatRecommend } from './recommend-format.ts';

interface RecommendFlags extends SelectorFlags, InputFlags {
  config?: string;
  clusterIp?: string;
  backends?: string;
  fixedHashmode?: boolean;
  timeOnly?: boolean;
  maxBuckets?: string;
  policy?: string;
  searchSeeds?: string;
  failureWeight?: string;
  minGain?: string;
  metric?: string;
  top?: string;
  flowTimeout?: string;
  lenient?: boolean;
  json?: boolean;
  report?: string;
  out?: string;
}

function num(v: string | undefined, flag: string, lo: number, hi: number, int = false): number | undefined {
  if (v === undefined) return undefined;
  const x = Number(v);
  if (!Number.isFinite(x) || x < lo || x > hi || (int && !Number.isInteger(x))) throw new UsageError(`${flag}: '${v}' must be ${int ? 'a whole number' : 'a number'} in ${lo}..${hi}`);
  return x;
}

/** The config in place when none is given: selector flags, one bucket a node (node1 owns 1, ...). */
function configFromFlags(o: RecommendFlags, ip: string): ClusterConfig {
  const { spec } = selectorSpecFromFlags(o);
  if (spec.backend === 'nft') throw new UsageError('--backend nft: give the cluster as --config cluster.yaml (a free nft expression has no cluster config form)');
  const N = spec.totalNodes;
  if (N < 1) throw new UsageError(`--total-nodes: ${N}: at least one node`);
  return {
    cluster: {
      ip, interface: 'eth0', mac: '01:00:5e:00:00:20', backend: spec.backend, ...(spec.backend === 'clusterip' ? { hashmode: spec.hashmode } : {}),
      seed: spec.backend === 'clusterip' ? spec.hashInit : spec.hashSeed, total_nodes: N, kernel: spec.kernel, endian: spec.endian,
    },
    nodes: Array.from({ length: N }, (_, k) => ({ name: `node${k + 1}`, owns: [k + 1], host: 'local' as const })),
  };
}

export function registerRecommend(program: Command): void {
  const cmd = program
    .command('recommend')
    .summary('so what do I deploy instead? a configuration proven on traffic it was not tuned on')
    .description(
      'Reads the traffic (twice: once only to find the median packet time), then searches what the kernels allow (backend, CLUSTERIP hash mode, bucket count up to 16 for ' +
        'CLUSTERIP and 32 for xt_cluster/nft, owner sets laid out so that any single node failure spreads evenly under the takeover ' +
        'policy, optionally other seeds). It tunes on the packets before the median packet time and judges on those after, checks the same on source ' +
        'addresses it never saw, compares the gain with what reseeding alone gives, and says "nothing worth changing" when the gain ' +
        'does not hold up. The chosen candidate is written as a cluster config (--out).',
    );
  addInputOptions(cmd)
    .option('--config <cluster.yaml>', 'the cluster in place (nodes, hosts, structure); replaces the selector flags');
  addSelectorOptions(cmd)
    .option('--cluster-ip <ip>', "only packets to this address are hashed (default: the config's ip, or 192.0.2.10)")
    .option('--backends <list>', 'backends the search may use, comma-separated (default: the current one); those the kernel cannot run are refused with the reason')
    .option('--fixed-hashmode', 'keep the CLUSTERIP hash mode')
    .option('--time-only', 'accept a gain that holds on later traffic but not on source addresses the search never saw (a layout tuned to heavy sources that persist: NAT gateways, proxies)')
    .option('--max-buckets <n>', 'at most this many buckets (besides 16 for CLUSTERIP, 32 for xt_cluster and nft)')
    .addOption(new Option('--policy <name>', "takeover policy the layout must suit (default: the config's failover.policy, else lowest)").choices([...POLICIES]))
    .option('--search-seeds <n>', 'also try this many other seeds per structure (a seed tuned to a capture is usually chance: the held-out checks say so)', '0')
    .option('--failure-weight <w>', 'weight of the worst single-node-failure imbalance in the score (score = now + w * (worst - 1))', '0.25')
    .option('--min-gain <x>', 'smallest held-out improvement in max/mean worth a change', '0.02')
    .addOption(new Option('--metric <m>', 'load that must be even').choices(['packets', 'bytes', 'flows', 'connections']).default('packets'))
    .option('--top <n>', 'candidates to show', '5')
    .option('--flow-timeout <s>', 'connection idle timeout, seconds (as simulate)', String(DEFAULT_FLOW_TIMEOUT))
    .option('--lenient', 'skip malformed capture records (counted) instead of stopping')
    .option('--out <cluster.yaml>', 'write the recommended configuration here (nothing is written when nothing is worth changing)')
    .option('--json', 'print the whole result as one JSON document')
    .option('--report <out.html>', 'write a self-contained HTML report: before / after / after each failure, side by side')
    .addHelpText('after', `
Examples:
  clusterip-sim recommend --synthetic nat --config cluster.yaml --backends clusterip,xt_cluster,nft --out better.yaml
  clusterip-sim recommend --pcap edge.pcap --config cluster.yaml --policy spread --report rec.html
  clusterip-sim recommend --csv flows.csv --backend xt_cluster --total-nodes 4 --hash-seed 0x1 --json

Then check it: clusterip-sim simulate --pcap edge.pcap --config better.yaml; clusterip-sim glue plan --config better.yaml`)
    .action(async (o: RecommendFlags) => {
      const err = (s: string): void => void process.stderr.write(s);
      const inputs: InputSpec[] = [];
      const files: InputFile[] = [];
      let kind: RecommendResult['input']['kind'] = 'synthetic';
      let synthetic: RecommendResult['input']['synthetic'];
      const packets = num(o.packets, '--packets', 1, 1e12, true)!;
      const seed = num(o.seed, '--seed', 0, 0xffffffff, true)!;
      const given = [o.pcap?.length ? 'pcap' : null, o.synthetic ? 'synthetic' : null, o.csv ? 'csv' : null].filter(Boolean);
      if (given.length > 1) throw new UsageError(`give one kind of input (got ${given.join(' and ')})`);
      if (o.pcap?.length) {
        kind = 'pcap';
        for (const p of o.pcap) {
          if (!existsSync(p)) throw new UsageError(`--pcap ${p}: no such file`);
          inputs.push({ kind: 'pcap', path: p, lenient: !!o.lenient });
          files.push({ path: p, bytes: statSync(p).size, sha256: '' });
        }
      } else if (o.csv) {
        kind = 'csv';
        if (!existsSync(o.csv)) throw new UsageError(`--csv ${o.csv}: no such file`);
        inputs.push({ kind: 'csv', path: o.csv });
        files.push({ path: o.csv, bytes: statSync(o.csv).size, sha256: '' });
      } else {
        const name = o.synthetic ?? DEFAULT_SCENARIO.name;
        inputs.push({ kind: 'synthetic', name, seed, packets });
        synthetic = { scenario: name, seed, params: { packets } };
      }
      let current: ClusterConfig;
      if (o.config) {
        if (o.backend || o.nft || o.rule || o.hashmode || o.totalNodes || o.hashInit || o.hashSeed) throw new UsageError('--config describes the cluster in place; drop the selector flags (or drop --config)');
        const l = loadConfig(o.config);
        if (l.problems.length) err(`warning: ${o.config} would not pass \`glue apply\`:\n${formatProblems(l)}\n`);
        current = l.config;
      } else if (o.backend || o.rule) {
        current = configFromFlags(o, o.clusterIp ?? DEFAULT_SCENARIO.clusterIp);
      } else throw new UsageError('say what runs now: --config cluster.yaml, or selector flags (--backend clusterip --hashmode sourceip --total-nodes 4)');
      if (current.nodes.length > 32) throw new UsageError(`${current.nodes.length} nodes: the takeover policies handle at most 32`);
      const ipText = o.clusterIp ?? current.cluster.ip;
      const clusterIp = parseClusterIp(ipText);
      if (clusterIp === null) throw new UsageError(`--cluster-ip: '${ipText}' is not an IPv4 or IPv6 address`);
      if (kind === 'synthetic') refuseSyntheticToV6(clusterIp, ipText);
      const kernel = o.kernel ?? current.cluster.kernel ?? (current.cluster.backend === 'clusterip' ? DEFAULT_CLUSTERIP_KERNEL : CURRENT_KERNEL);
      const backends = (o.backends ?? current.cluster.backend).split(',').map((s) => s.trim()).filter(Boolean);
      for (const b of backends) if (!['clusterip', 'xt_cluster', 'nft'].includes(b)) throw new UsageError(`--backends: '${b}' is not one of clusterip, xt_cluster, nft`);
      const policyName = (o.policy ?? current.failover?.policy ?? 'lowest') as PolicyName;
      const idx = new Map(current.nodes.map((n, i) => [n.name, i]));
      const backup = current.failover?.backup ? current.nodes.map((n) => (current.failover!.backup![n.name] ?? []).map((x) => idx.get(x) ?? -1).filter((i) => i >= 0)) : undefined;
      const refusals = backends.map((b) => ({ b, why: backendRefusal(b as Backend, kernel) }));
      if (refusals.every((x) => x.why)) throw new UsageError(`--backends: none of ${backends.join(', ')} can run on kernel ${kernel}: ${refusals.map((x) => `${x.b}: ${x.why}`).join('; ')}`);
      const t0 = performance.now();
      const table = collectFlows({ inputs, clusterIp, flowTimeout: num(o.flowTimeout, '--flow-timeout', 0.001, 1e9)! });
      const t1 = performance.now();
      const metric = o.metric as Metric;
      const opts = {
        table, current, metric, kernel,
        policy: { policy: policyName, failback: current.failover?.failback ?? 'immediate', stable_s: current.failover?.stable_s ?? 10, ...(backup ? { backup } : {}) },
        backends: backends as Backend[], hashmodeMayChange: !o.fixedHashmode,
        maxBuckets: num(o.maxBuckets, '--max-buckets', 1, 32, true),
        seeds: num(o.searchSeeds, '--search-seeds', 0, 64, true)!,
        failureWeight: num(o.failureWeight, '--failure-weight', 0, 100)!,
        minGain: num(o.minGain, '--min-gain', 0, 100)!,
        top: num(o.top, '--top', 1, 50, true)!,
        timeOnly: !!o.timeOnly,
      };
      if (!opts.seeds && !o.json) err('recommend: the seed is kept (--search-seeds N tries others)\n');
      const r = recommend(opts);
      const t2 = performance.now();
      let pk = 0, by = 0, conns = 0, flows = 0;
      for (let i = 0; i < table.count; i++) { pk += table.packets[i]!; by += table.bytes[i]!; conns += table.orig[i]!; flows += table.flowW[i]!; }
      let first = Infinity, last = -Infinity;
      for (let i = 0; i < table.count; i++) { if (table.start[i]! < first) first = table.start[i]!; if (table.start[i]! > last) last = table.start[i]!; }
      const yaml = r.chosenConfig
        ? configYaml(r.chosenConfig, [`clusterip-sim ${VERSION} recommend: candidate ${r.chosen!.id} (${r.chosen!.description})`, `tuned on the packets before the median packet time; max/mean after it ${r.current.held_out.now.toFixed(3)} -> ${r.chosen!.held_out.now.toFixed(3)} (${metric})`])
        : null;
      const result: RecommendResult = {
        kind: 'recommend',
        schema_version: SCHEMA_VERSION,
        tool: TOOL,
        generated_at: new Date().toISOString(),
        input: { kind, files, ...(synthetic ? { synthetic } : {}), packets: pk, bytes: by, duration_s: Number.isFinite(first) ? last - first : 0, skipped: table.notToCluster ? { 'not to the cluster ip': table.notToCluster } : {} },
        metric, policy: policyName,
        allowed: { time_only: opts.timeOnly, backends: r.allowedBackends, refused_backends: r.refused, kernel, hashmode_may_change: !o.fixedHashmode, max_buckets: r.maxBuckets, seeds: opts.seeds, failure_weight: opts.failureWeight, min_gain: opts.minGain },
        splits: r.splits, current: r.current, candidates: r.candidates, chosen: r.chosen?.id ?? null, summary: r.summary, warnings: r.warnings, config_yaml: yaml,
        search: {
          flows, connections: conns, structures: r.structures, layouts_exhaustive: r.exhaustive, collect_s: (t1 - t0) / 1000, search_s: (t2 - t1) / 1000,
          bound: `time O(F x H) for F = ${table.count} rows (direction flows, cut at the median packet time) and H = ${r.structures} structures (one selector call a flow each) plus 16 x F per candidate shown (its band: 32 seeds over the held-out half); memory ~104 bytes a flow plus O(H x N)`,
        },
      };
      if (o.out) {
        if (yaml) { writeFileSync(o.out, yaml); err(`recommend: wrote ${o.out}\n`); }
        else err(`recommend: nothing worth changing, ${o.out} not written\n`);
      }
      if (o.json) process.stdout.write(JSON.stringify(result, null, 2) + '\n');
      else process.stdout.write(formatRecommend(result));
      if (o.report) {
        const w = await writeReport(result, o.report);
        err(`report: ${w.html}\n`);
      }
    });
}
