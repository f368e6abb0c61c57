/**
 * `glue import` for CLUSTERIP: `-j CLUSTERIP --new` rules in iptables-legacy
 * (iptables-nft cannot load the target, §4.5), read with the same rule reader
 * `hash --rule` uses, and the owner set from /proc/net/ipt_CLUSTERIP/<ip>
 * (the rule's --local-node is only the first one, §4.4).
 */
import { UsageError } from '../../../sim/core/errors.ts';
import { parseIptablesRule } from '../../../sim/select/iptables-rule.ts';
import type { Runner } from '../../exec/runner.ts';
import { readFileOn } from '../../exec/steps.ts';
import type { Discovery, Found } from '../shared/backend.ts';
import { IPT_CHAIN } from '../shared/names.ts';
import { destinationOf, savedRules, type SavedRule } from '../shared/iptables-save.ts';
import { procPath } from './render.ts';
import { parseProcOwners } from './state.ts';

/** The CLUSTERIP rules among saved rules; `owners` reads /proc for an IP (null when absent). */
export function findClusterips(rules: readonly SavedRule[], owners: (ip: string) => number[] | null): Discovery {
  const found: Found[] = [];
  const skipped: string[] = [];
  for (const r of rules) {
    if (!/-j CLUSTERIP(?:\s|$)/.test(r.spec)) continue;
    const where = `${r.flavour} ${r.table} chain ${r.chain}`;
    let p;
    try {
      p = parseIptablesRule(r.spec);
    } catch (e) {
      if (!(e instanceof UsageError)) throw e;
      skipped.push(`${where}: ${e.message.replace(/^--rule: /, '')}`);
      continue;
    }
    if (p.kind !== 'clusterip') continue;
    const { ip, iface } = destinationOf(r, rules);
    if (!ip) {
      skipped.push(`${where}: '${r.spec}' has no single destination address`);
      continue;
    }
    const name = r.chain.startsWith(`${IPT_CHAIN}_`) ? r.chain.slice(IPT_CHAIN.length + 1).toLowerCase() : undefined;
    found.push({
      backend: 'clusterip', ip, interface: p.iface ?? iface, mac: p.clusterMac, total_nodes: p.totalNodes, seed: p.hashInit, hashmode: p.hashmode,
      owns: owners(ip) ?? [p.localNode], ...(name ? { name } : {}), source: where,
    });
  }
  return { found, skipped };
}

export async function discoverClusterip(r: Runner): Promise<Discovery> {
  const rules = await savedRules(r, ['iptables-legacy']);
  const ips = [...new Set(rules.filter((x) => /-j CLUSTERIP(?:\s|$)/.test(x.spec)).map((x) => destinationOf(x, rules).ip).filter((x): x is string => !!x))];
  const proc = new Map<string, number[] | null>();
  for (const ip of ips) {
    const t = await readFileOn(r, procPath(ip));
    proc.set(ip, t === null ? null : parseProcOwners(t));
  }
  return findClusterips(rules, (ip) => proc.get(ip) ?? null);
}
