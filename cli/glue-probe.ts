/**
 * `clusterip-sim glue probe`: one crafted probe per bucket, which node
 * answered against the prediction. The work lives in kernel-glue/probe/; this
 * file parses flags and prints.
 */
import { Option, type Command } from 'commander';
import { GateError, UsageError } from '../sim/core/errors.ts';
import { formatProblems, loadClusters } from '../sim/core/cluster-config.ts';
import { SCHEMA_VERSION } from '../sim/core/version.ts';
import { probeCluster, type ProbeReport } from '../kernel-glue/probe/prober.ts';

interface ProbeFlags {
  config: string;
  cluster?: string;
  proto: 'tcp' | 'icmp';
  port?: string;
  sources: string;
  interface?: string;
  wait: string;
  json?: boolean;
}

const out = (s: string): void => void process.stdout.write(s + '\n');
const names = (xs: readonly string[]): string => (xs.length ? xs.join('+') : 'nobody');

function print(r: ProbeReport): void {
  out(`cluster ${r.cluster.name ? `${r.cluster.name} ` : ''}${r.cluster.ip} (${r.cluster.backend}, ${r.cluster.total_nodes} node numbers), answers read on ${r.interface}`);
  for (const b of r.buckets) {
    const probe = b.proto === 'tcp' ? `${b.source}:${b.sport} -> :${b.dport} SYN` : `${b.source} echo id ${b.sport}`;
    const ans = b.answered.length ? b.answered.map((a, i) => `${a} (${b.kinds[i]})`).join(', ') : 'no answer';
    out(`  node number ${b.number} (bucket ${b.bucket}): ${probe}: predicted ${names(b.expected)}, answered ${ans}${b.ok ? '' : '  <-- DISAGREES'}`);
  }
  out(r.ok ? 'probe: every bucket answered by its predicted node' : `probe: ${r.disagree.length} bucket(s) disagree with the config`);
}

export function registerGlueProbe(glue: Command): void {
  glue
    .command('probe')
    .description('send one crafted probe per bucket (TCP SYN or ICMP echo, source chosen by the cluster\'s own selector) and report which node answered against the config\'s owner; exit 3 when any disagrees')
    .requiredOption('--config <file>', 'cluster YAML')
    .option('--cluster <name>', 'the cluster of a file with several (cluster.name)')
    .addOption(new Option('--proto <proto>', 'probe kind').choices(['tcp', 'icmp']).default('tcp'))
    .option('--port <n>', 'TCP destination port the nodes listen on (a RST answers too); default 80')
    .requiredOption('--sources <cidr>', 'addresses the probes may come from; their answers must route back to this host (e.g. 10.201.0.0/24)')
    .option('--interface <dev>', 'where to read the answers (default: the route to the cluster IP)')
    .option('--wait <ms>', 'how long to wait for answers after the last probe', '1000')
    .option('--json', 'the report as JSON')
    .addHelpText('after', `
Needs root, tcpdump and the optional 'raw-socket' package. The node that answered is told by the answer's source MAC
(each node's MAC on cluster.interface, read from the node through its host entry).

Examples:
  clusterip-sim glue probe --config cluster.yaml --sources 10.201.0.0/24 --port 443
  ip netns exec client clusterip-sim glue probe --config cluster.yaml --sources 10.201.0.0/24 --proto icmp --json`)
    .action(async (o: ProbeFlags) => {
      if (o.proto === 'icmp' && o.port !== undefined) throw new UsageError('--port applies to --proto tcp only');
      const port = o.port ?? '80';
      if (!/^\d+$/.test(port) || Number(port) < 1 || Number(port) > 65535) throw new UsageError(`--port ${port}: expected 1..65535`);
      if (!/^\d+$/.test(o.wait) || Number(o.wait) > 60_000) throw new UsageError(`--wait ${o.wait}: expected milliseconds, at most 60000`);
      let all = loadClusters(o.config);
      if (o.cluster) all = all.filter((l) => l.config.cluster.name === o.cluster);
      if (all.length !== 1) throw new UsageError(o.cluster ? `--cluster ${o.cluster}: no cluster of that name in ${o.config}` : `${o.config} holds ${all.length} clusters: add --cluster NAME`);
      const c = all[0]!.config;
      if (all[0]!.problems.length) process.stderr.write(`warning: the config fails validation (the prediction follows its owner sets as written):\n${formatProblems(all[0]!)}\n`);
      const r = await probeCluster(c, { proto: o.proto, port: Number(port), sources: o.sources, interface: o.interface, waitMs: Number(o.wait) });
      if (o.json) out(JSON.stringify({ schema_version: SCHEMA_VERSION, ...r }, null, 2));
      else print(r);
      if (!r.ok) {
        const first = r.buckets.filter((b) => !b.ok).map((b) => `node number ${b.number} (bucket ${b.bucket}) predicted ${names(b.expected)}, answered by ${names(b.answered)}`);
        throw new GateError(`probe: ${first.join('; ')}`);
      }
    });
}
