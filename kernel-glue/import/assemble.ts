/**
 * `glue import`: read live hosts (whatever wrote their rules) into the
 * cluster config that `simulate` and `glue plan` accept. Each backend says
 * what it finds on a host (kernel-glue/backends/<name>/discover.ts); this
 * file groups the findings by cluster IP across hosts, checks that the hosts
 * agree on every hash parameter, and writes the config. For a host running
 * CLUSTERIP this is the first step of a migration:
 * `simulate --config imported.yaml --compare nft-config.yaml`.
 */
import { stringify } from 'yaml';
import type { ClusterConfig, HostSpec } from '../../sim/core/cluster-config.ts';
import { ALL_BACKENDS } from '../backends/index.ts';
import type { Found } from '../backends/shared/backend.ts';
import { whereOf } from '../backends/shared/names.ts';
import { runnerFor, type Runner } from '../exec/runner.ts';

export interface ImportNode {
  name: string;
  host: HostSpec;
}

export interface ImportResult {
  configs: ClusterConfig[];
  /** Hosts that disagree, facts a host does not show (the MAC), rules that no config expresses: in words, with the host. */
  problems: string[];
  /** Rules seen but not imported, per host, with why. */
  skipped: string[];
}

/** Everything every backend finds on one host. */
export async function discoverHost(r: Runner): Promise<{ found: Found[]; skipped: string[] }> {
  const found: Found[] = [];
  const skipped: string[] = [];
  for (const b of ALL_BACKENDS) {
    const d = await b.discover(r);
    found.push(...d.found);
    skipped.push(...d.skipped.map((s) => `${r.host} (${r.where}): ${s}`));
  }
  return { found, skipped };
}

const hex32 = (v: number): string => `0x${(v >>> 0).toString(16).padStart(8, '0')}`;

/** The parameters every host of a cluster must agree on, in words. */
function params(f: Found): Record<string, string> {
  return {
    backend: f.backend, total_nodes: String(f.total_nodes), seed: hex32(f.seed), interface: f.interface ?? '(any)',
    ...(f.hashmode ? { hashmode: f.hashmode } : {}), ...(f.mac ? { mac: f.mac.toLowerCase() } : {}), ...(f.name ? { name: f.name } : {}),
  };
}

/** Groups per-host findings into cluster configs (one per cluster IP, in address order). */
export function assemble(hosts: readonly { node: ImportNode; found: readonly Found[] }[]): { configs: ClusterConfig[]; problems: string[] } {
  const problems: string[] = [];
  // One config per cluster IP, in address order (the same file whatever order the backends were asked in).
  // IPv4 addresses in numeric order, then IPv6 ones in text order.
  const num = (ip: string): number => (ip.includes(':') ? Infinity : ip.split('.').reduce((a, x) => a * 256 + Number(x), 0));
  const ips = [...new Set(hosts.flatMap((h) => h.found.map((f) => f.ip)))].sort((a, b) => num(a) - num(b) || (a < b ? -1 : a > b ? 1 : 0));
  const configs = ips.map((ip): ClusterConfig => {
    const per = hosts.map((h) => ({ node: h.node, list: h.found.filter((f) => f.ip === ip) }));
    const first = per.find((p) => p.list.length)!.list[0]!;
    const owns = new Map<string, number[]>();
    for (const { node, list } of per) {
      const mine = new Set<number>();
      for (const f of list) {
        const a = params(first), b = params(f);
        const diff = Object.keys({ ...a, ...b }).filter((k) => a[k] !== b[k] && !(k === 'mac' && (!a.mac || !b.mac)));
        if (diff.length) problems.push(`${ip}: ${node.name} (${whereOf(node.host)}) ${f.source} has ${diff.map((k) => `${k} ${b[k] ?? '(none)'}`).join(', ')} where ${first.source} has ${diff.map((k) => a[k] ?? '(none)').join(', ')}: the hosts disagree; the config takes the first`);
        for (const k of f.owns) mine.add(k);
      }
      owns.set(node.name, [...mine].sort((x, y) => x - y));
    }
    const mac = per.flatMap((p) => p.list).find((f) => f.mac)?.mac ?? null;
    if (!mac) problems.push(`${ip}: no host shows the cluster MAC (no ARP rule for it, not exactly one multicast MAC on the interface): set cluster.mac`);
    if (!first.interface) problems.push(`${ip}: the rules match any input interface: set cluster.interface`);
    return {
      cluster: {
        ...(first.name ? { name: first.name } : {}),
        ip, interface: first.interface ?? 'eth0', mac: (mac ?? '01:00:5e:00:00:20').toLowerCase(), backend: first.backend,
        ...(first.hashmode ? { hashmode: first.hashmode } : {}),
        seed: first.seed >>> 0, total_nodes: first.total_nodes, endian: 'little',
      },
      nodes: hosts.map((h) => ({ name: h.node.name, owns: owns.get(h.node.name) ?? [], host: h.node.host })),
    };
  });
  // Several clusters share a file only with names (they name the kernel objects when applied).
  if (configs.length > 1) {
    configs.forEach((c, i) => {
      if (c.cluster.name) return;
      c.cluster.name = `c${i + 1}`;
      problems.push(`${c.cluster.ip}: unnamed cluster called '${c.cluster.name}' (several clusters in one file need names; applying it creates objects under that name)`);
    });
  }
  return { configs, problems };
}

/** Reads every node's host and assembles the configs. */
export async function importHosts(nodes: readonly ImportNode[], runnerOf: (n: ImportNode) => Runner = (n) => runnerFor(n.name, n.host)): Promise<ImportResult> {
  const hosts = [];
  const skipped: string[] = [];
  for (const node of nodes) {
    const d = await discoverHost(runnerOf(node));
    hosts.push({ node, found: d.found });
    skipped.push(...d.skipped);
  }
  return { ...assemble(hosts), skipped };
}

/** The configs as the YAML file `simulate` and `glue` read (several under `clusters:`), seeds in hex. */
export function configYaml(configs: readonly ClusterConfig[]): string {
  const plain = (c: ClusterConfig): unknown => {
    const { endian: _e, ...k } = c.cluster;
    return { cluster: { ...k, seed: hex32(k.seed) }, nodes: c.nodes.map((n) => ({ name: n.name, owns: n.owns, host: n.host })) };
  };
  const doc = configs.length === 1 ? plain(configs[0]!) : { clusters: configs.map(plain) };
  return stringify(doc, { flowCollectionPadding: false, lineWidth: 0 });
}
