/**
 * `clusterip-sim glue`: turn a validated cluster config into rules on real
 * hosts (local, a network namespace, or ssh), move buckets, read the status.
 * The work lives in kernel-glue/; this file parses flags and prints.
 */
import { HANDOVER_MODES, parseHandover } from '../sim/cluster/handover.ts';
import { Command, Option } from 'commander';
import { DataError, GateError, UsageError } from '../sim/core/errors.ts';
import { formatProblems, loadClusters, type ClusterConfig } from '../sim/core/cluster-config.ts';
import { formatPlan, planToShellScript } from '../kernel-glue/plan.ts';
import { applyConfig, clusterStatus, moveBucket, planAll, removeConfig, type RunReport, type StatusReport } from '../kernel-glue/control/apply.ts';
import { migrationView } from '../kernel-glue/control/migration.ts';
import { ownersAfterMove, saveOwners } from '../kernel-glue/config-edit.ts';
import { registerGlueAgent } from './glue-agent.ts';
import { registerGlueImport } from './glue-import.ts';
import { registerGlueProbe } from './glue-probe.ts';

interface Common {
  config: string;
  cluster?: string[];
  host?: string[];
  json?: boolean;
}

const out = (s: string): void => void process.stdout.write(s.endsWith('\n') ? s : s + '\n');
const warn = (s: string): void => void process.stderr.write(s.endsWith('\n') ? s : s + '\n');
const set = (s: readonly number[] | null): string => (s ? `{${s.join(',')}}` : 'none');

/** The file's clusters (one, or several under 'clusters:'), those named by --cluster when given. */
function load(o: Common, forApply: boolean, force = false): ClusterConfig[] {
  if (!o.config) throw new UsageError('--config FILE is required (the cluster YAML that simulate validated)');
  let all = loadClusters(o.config);
  if (o.cluster?.length) {
    const names = all.map((l) => l.config.cluster.name ?? '(unnamed)');
    for (const n of o.cluster) if (!names.includes(n)) throw new UsageError(`--cluster ${n}: no cluster of that name in ${o.config} (clusters: ${names.join(', ')})`);
    all = all.filter((l) => o.cluster!.includes(l.config.cluster.name ?? ''));
  }
  for (const l of all) {
    if (!l.problems.length) continue;
    const text = formatProblems(l);
    if (forApply && !force) throw new DataError(o.config, `the config fails validation; refusing to change hosts (--force to apply anyway):\n${text}`);
    warn(`warning: the config fails validation:\n${text}`);
  }
  return all.map((l) => l.config);
}

/** Runs `each` per cluster; with several, a heading per cluster (text) or one JSON array (--json). */
async function perCluster<T>(cs: readonly ClusterConfig[], o: Common, each: (c: ClusterConfig) => Promise<T>, print: (r: T) => void): Promise<void> {
  const results: T[] = [];
  for (const c of cs) {
    const r = await each(c);
    if (o.json) results.push(r);
    else {
      if (cs.length > 1) out(`== cluster ${c.cluster.name} (${c.cluster.ip}, ${c.cluster.backend})`);
      print(r);
    }
  }
  if (o.json) out(JSON.stringify(cs.length === 1 ? results[0] : results, null, 2));
}

function printRun(r: RunReport, json?: boolean): void {
  if (!json) {
    for (const h of r.hosts) {
      out(`${h.host} (${h.where}): ${h.outcome}${h.before || h.after ? `, owners ${set(h.before)} -> ${set(h.after)}` : ''}`);
      for (const s of h.steps) if (s.outcome !== 'skipped') out(`    ${s.outcome === 'ran' ? 'ran' : 'would run'}: ${s.step}`);
      if (h.error) out(`    error: ${h.error}`);
      if (h.rollbackError) out(`    ROLLBACK FAILED: ${h.rollbackError}`);
    }
    out(r.ok ? `${r.action}: ok` : `${r.action}: FAILED (see above; hosts marked 'rolled back' are as they were before)`);
  }
}

/** A failed run sets exit code 1 (JSON or text alike). */
function withExit(r: RunReport): RunReport {
  if (!r.ok) process.exitCode = 1;
  return r;
}

function printStatus(s: StatusReport): void {
  out(`cluster ${s.cluster.ip}, backend ${s.cluster.backend}, ${s.cluster.total_nodes} node numbers, config cfg=${s.cluster.fingerprint}`);
  for (const h of s.hosts) {
    if (!h.reachable) {
      out(`  ${h.host} (${h.where}): UNREACHABLE: ${h.error}`);
      continue;
    }
    const cnt = Object.entries(h.counters).map(([k, c]) => `${k}:${c.packets}`).join(' ');
    out(`  ${h.host} (${h.where}, kernel ${h.kernel}): owns ${set(h.actual)}, config says ${set(h.expected)}${h.missing.length ? `, missing ${set(h.missing)}` : ''}${h.extra.length ? `, extra ${set(h.extra)}` : ''}`);
    if (cnt || h.dropped) out(`      accepted packets per node number: ${cnt || '-'}${h.dropped ? `; dropped ${h.dropped.packets}` : ''}`);
    for (const g of h.gaps) out(`      drift: ${g}`);
  }
  if (s.orphaned.length) out(`  ORPHANED node numbers (no host accepts them; their flows are lost): ${s.orphaned.join(', ')}`);
  if (s.doublyOwned.length) out(`  DOUBLY OWNED node numbers (accepted twice): ${s.doublyOwned.map((k) => `${k} by ${s.owners[k]!.join('+')}`).join(', ')}`);
  out(s.drift ? 'status: DRIFT from the config' : 'status: as configured');
}

const hostOpt = (): Option => new Option('--host <name...>', 'only these nodes (names from the config)');
const clusterOpt = (): Option => new Option('--cluster <name...>', 'only these clusters of a file with several (cluster.name)');

export function registerGlue(program: Command): void {
  const glue = program
    .command('glue')
    .description(
      'Renders the cluster config into rules for its backend (CLUSTERIP via iptables-legacy and /proc, the xt_cluster match with ' +
        'multicast MAC and ARP plumbing, or a native nft table with an owner set) and applies them per host, atomically, idempotently, ' +
        'with rollback. Hosts are local, a network namespace ({ netns: NAME }) or reached by OpenSSH in batch mode ({ ssh: user@host }).',
    )
    .addHelpText(
      'after',
      `
Examples:
  clusterip-sim glue plan   --config cluster.yaml                 rules per host, the diff against what is there, migration warning
  clusterip-sim glue plan   --config cluster.yaml --host node1 --script > node1.sh   the full plan as a POSIX sh script
  clusterip-sim glue apply  --config cluster.yaml --dry-run       what apply would run (guards are evaluated for real)
  clusterip-sim glue apply  --config cluster.yaml                 every host, rolled back as a whole when one fails
  clusterip-sim glue move   --config cluster.yaml --bucket 3 --to node2    node number 3 (bucket 2) now goes to node2
  clusterip-sim glue status --config cluster.yaml --json          actual owner sets, drift, orphaned / doubly owned numbers
  clusterip-sim glue remove --config cluster.yaml --host node3

Numbering: --bucket and the config's 'owns' are kernel node numbers 1..N (CLUSTERIP /proc, --cluster-local-node,
nft 'offset 1'); node number K is hash bucket K-1. A move changes the hosts, not the file: 'status' shows it as drift
and the next 'apply' puts the config's owners back.`,
    );

  glue
    .command('plan')
    .description('show, per host, what apply would do there now (reads the host when reachable) and the full rule set')
    .requiredOption('--config <file>', 'cluster YAML')
    .addOption(hostOpt())
    .option('--script', 'print each host\'s full plan as a POSIX sh script (busybox compatible) instead')
    .option('--offline', 'do not contact hosts; show the full plans only')
    .option('--json', 'plans as JSON')
    .addHelpText('after', '\nExample:\n  clusterip-sim glue plan --config cluster.yaml --host node1\n')
    .addOption(clusterOpt())
    .action(async (o: Common & { script?: boolean; offline?: boolean }) => {
      const cs = load(o, false);
      if (cs.length > 1) {
        if (o.json) throw new UsageError('plan --json takes one cluster: add --cluster NAME');
        for (const c of cs) {
          out(`== cluster ${c.cluster.name} (${c.cluster.ip}, ${c.cluster.backend})`);
          await planOne(c, o);
        }
        return;
      }
      await planOne(cs[0]!, o);
    });

  async function planOne(c: ClusterConfig, o: Common & { script?: boolean; offline?: boolean }): Promise<void> {
      const mig = migrationView(c);
      if (o.script || o.offline) {
        const { createPlan } = await import('../kernel-glue/backends/index.ts');
        const { selectNodes } = await import('../kernel-glue/control/apply.ts');
        const plans = selectNodes(c, o.host).map((n) => createPlan(c, n.name));
        if (o.json) return out(JSON.stringify({ plans, migration: mig }, null, 2));
        if (o.script) return out(plans.map(planToShellScript).join('\n'));
        for (const p of plans) out(formatPlan(p) + '\n');
        return warn(`migration: ${mig.warning}`);
      }
      const all = await planAll(c, { hosts: o.host });
      if (o.json) return out(JSON.stringify({ hosts: all.map(({ state, ...x }) => ({ ...x, state: state && { ...state, snapshot: undefined } })), migration: mig }, null, 2));
      for (const h of all) {
        const st = h.state;
        const head = st
          ? `${h.node} (${h.where}, kernel ${st.kernel}): ${st.complete ? 'rules match the config' : st.present ? 'rules differ: ' + st.gaps.join('; ') : 'nothing of ours yet'}; owners now ${set(st.owners)}`
          : `${h.node} (${h.where}): cannot read the host: ${h.error}`;
        out(head);
        if (st && h.error) out(`  REFUSED: ${h.error}`);
        if (st && !h.plan.steps.length) out('  apply would change nothing here\n');
        else out(formatPlan(h.plan) + '\n');
      }
      warn(`migration: ${mig.warning}`);
  }

  glue
    .command('apply')
    .description('apply the config to every host (or --host): atomic per host, idempotent, rolled back when a host fails')
    .requiredOption('--config <file>', 'cluster YAML')
    .addOption(hostOpt())
    .option('--dry-run', 'read the hosts and show what would run, change nothing')
    .option('--force', 'apply even when the config fails validation (orphaned or doubly owned node numbers)')
    .option('--json', 'report as JSON')
    .addHelpText('after', '\nExample:\n  clusterip-sim glue apply --config cluster.yaml --dry-run\n')
    .addOption(clusterOpt())
    .action(async (o: Common & { dryRun?: boolean; force?: boolean }) => {
      await perCluster(load(o, true, o.force), o, async (c) => withExit(await applyConfig(c, { hosts: o.host, dryRun: o.dryRun, force: o.force })), printRun);
    });

  glue
    .command('move')
    .description('give node number K (bucket K-1) to node NAME: one /proc write, nft set update or chain reload per host')
    .requiredOption('--config <file>', 'cluster YAML')
    .requiredOption('--bucket <K>', 'kernel node number 1..N')
    .requiredOption('--to <name>', 'the node that takes it')
    .addOption(new Option('--order <order>', 'add-first: brief duplicates; release-first: brief loss (the agent\'s failover.handover words; the old spelling remove-first is accepted)').default('add-first'))
    .option('--dry-run', 'show what would run')
    .option('--save', 'after a successful move, write the new owner sets into the config file (comments kept)')
    .option('--json', 'report as JSON')
    .addHelpText('after', '\nExamples:\n  clusterip-sim glue move --config cluster.yaml --bucket 2 --to node3 --order add-first\n  clusterip-sim glue move --config cluster.yaml --bucket 2 --to node3 --save     the file follows: no drift afterwards\n')
    .addOption(clusterOpt())
    .action(async (o: Common & { bucket: string; to: string; order: string; dryRun?: boolean; save?: boolean }) => {
      if (!/^\d+$/.test(o.bucket)) throw new UsageError(`--bucket: '${o.bucket}' is not a node number`);
      const order = parseHandover(o.order);
      if (!order) throw new UsageError(`--order: '${o.order}' is not an order (${HANDOVER_MODES.join(', ')}; remove-first is the old spelling of release-first)`);
      if (o.order !== order) process.stderr.write(`note: --order ${o.order} is the old spelling of ${order} (the words of the agent's failover.handover); it still works\n`);
      if (o.save && o.dryRun) throw new UsageError('--save and --dry-run exclude each other');
      const cs = load(o, false);
      if (cs.length !== 1) throw new UsageError(`move acts on one cluster: add --cluster NAME (clusters: ${cs.map((x) => x.cluster.name).join(', ')})`);
      const c = cs[0]!;
      const rep = withExit(await moveBucket(c, Number(o.bucket), o.to, order, { dryRun: o.dryRun }));
      if (o.json) out(JSON.stringify(rep, null, 2));
      else printRun(rep);
      if (rep.ok && o.save) {
        if (c.cluster.name && loadClusters(o.config).length > 1) throw new UsageError('--save writes single-cluster files only; edit the owner sets of a multi-cluster file by hand');
        saveOwners(o.config, ownersAfterMove(c, Number(o.bucket), o.to));
        if (!o.json) out(`saved: ${o.config} now gives node number ${o.bucket} to ${o.to}`);
      }
    });

  glue
    .command('status')
    .description('actual owner sets per host, drift from the config, orphaned or doubly owned node numbers, per-node counters')
    .requiredOption('--config <file>', 'cluster YAML')
    .addOption(hostOpt())
    .option('--check', 'exit 3 when anything drifts from the config (for CI / monitoring)')
    .option('--json', 'report as JSON')
    .addHelpText('after', '\nExample:\n  clusterip-sim glue status --config cluster.yaml --json | jq .orphaned\n')
    .addOption(clusterOpt())
    .action(async (o: Common & { check?: boolean }) => {
      let drift = false;
      await perCluster(load(o, false), o, async (c) => {
        const s = await clusterStatus(c, { hosts: o.host });
        drift ||= s.drift;
        return s;
      }, printStatus);
      if (o.check && drift) throw new GateError('the cluster drifts from the config');
    });

  glue
    .command('remove')
    .description('take our rules (and multicast MAC) off the hosts')
    .requiredOption('--config <file>', 'cluster YAML')
    .addOption(hostOpt())
    .option('--dry-run', 'show what would run')
    .option('--json', 'report as JSON')
    .addOption(clusterOpt())
    .action(async (o: Common & { dryRun?: boolean }) => {
      await perCluster(load(o, false), o, async (c) => withExit(await removeConfig(c, { hosts: o.host, dryRun: o.dryRun })), printRun);
    });

  registerGlueAgent(glue);
  registerGlueImport(glue);
  registerGlueProbe(glue);
}
