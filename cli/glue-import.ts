/**
 * `clusterip-sim glue import`: read live hosts into a cluster config. The
 * work lives in kernel-glue/import/; this file parses flags and prints.
 */
import { writeFileSync } from 'node:fs';
import type { Command } from 'commander';
import { UsageError } from '../sim/core/errors.ts';
import { loadClusters, parseClusters, type HostSpec } from '../sim/core/cluster-config.ts';
import { configYaml, importHosts, type ImportNode } from '../kernel-glue/import/assemble.ts';

interface ImportFlags {
  node?: string[];
  config?: string;
  out?: string;
  json?: boolean;
}

/** NAME=local | NAME=netns:NS | NAME=ssh:user@host[:port] */
export function parseNodeFlag(s: string): ImportNode {
  const m = /^([A-Za-z0-9][A-Za-z0-9_.-]{0,62})=(local|netns:([A-Za-z0-9_.-]{1,64})|ssh:([^\s:]+)(?::(\d+))?)$/.exec(s);
  if (!m) throw new UsageError(`--node '${s}': expected NAME=local, NAME=netns:NS or NAME=ssh:user@host[:port]`);
  const host: HostSpec = m[2] === 'local' ? 'local' : m[3] ? { netns: m[3] } : { ssh: m[4]!, ...(m[5] ? { port: Number(m[5]) } : {}) };
  return { name: m[1]!, host };
}

export function registerGlueImport(glue: Command): void {
  glue
    .command('import')
    .description(
      'read live hosts (CLUSTERIP rules and /proc/net/ipt_CLUSTERIP, xt_cluster rules in iptables-legacy or iptables-nft, nft jhash rules; ' +
        'written by this tool or by hand) into a cluster config that simulate and glue plan accept',
    )
    .option('--node <NAME=WHERE...>', 'a host to read: NAME=local, NAME=netns:NS or NAME=ssh:user@host[:port] (repeat per node)')
    .option('--config <file>', 'read the hosts of this config\'s nodes instead (ssh identity and known_hosts included)')
    .option('--out <file>', 'write the config here instead of standard output')
    .option('--json', 'the configs, problems and skipped rules as JSON')
    .addHelpText('after', `
Examples:
  clusterip-sim glue import --node node1=ssh:root@10.0.0.1 --node node2=ssh:root@10.0.0.2 --out imported.yaml
  clusterip-sim simulate --config imported.yaml --compare nft-config.yaml       the first step of a CLUSTERIP migration
  clusterip-sim glue import --config cluster.yaml | diff cluster.yaml -         what the hosts have against the file

Problems (hosts that disagree on a hash parameter, a MAC no host shows) go to standard error; the config takes the
first host's value and the exit status is 1. Rules that no cluster config can express are listed and left out.`)
    .action(async (o: ImportFlags) => {
      if (!!o.node?.length === !!o.config) throw new UsageError('give the hosts either as --node NAME=WHERE ... or as --config FILE');
      const nodes: ImportNode[] = o.config
        ? loadClusters(o.config)[0]!.config.nodes.map((n) => ({ name: n.name, host: n.host }))
        : o.node!.map(parseNodeFlag);
      const names = new Set<string>();
      for (const n of nodes) {
        if (names.has(n.name)) throw new UsageError(`--node ${n.name}: named twice`);
        names.add(n.name);
      }
      const r = await importHosts(nodes);
      if (!r.configs.length) throw new UsageError(`no cluster rules found on ${nodes.map((n) => n.name).join(', ')}${r.skipped.length ? ` (skipped: ${r.skipped.join('; ')})` : ''}`);
      const text = configYaml(r.configs);
      // What we write must load: the same reader simulate and glue use.
      parseClusters(text, o.out ?? '(imported config)');
      if (o.json) process.stdout.write(JSON.stringify(r, null, 2) + '\n');
      else if (o.out) writeFileSync(o.out, text);
      else process.stdout.write(text);
      for (const p of r.problems) process.stderr.write(`problem: ${p}\n`);
      for (const s of r.skipped) process.stderr.write(`skipped: ${s}\n`);
      if (r.problems.length) process.exitCode = 1;
    });
}
