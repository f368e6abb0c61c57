/**
 * `glue import` for xt_cluster: `-m cluster` rules in iptables-legacy or
 * iptables-nft and their ip6tables twins (any table), ours or written by hand. A rule that accepts or
 * marks its node mask owns those node numbers, and so does `! --cluster-local-...
 * -j DROP` (drop what is not ours); other shapes are reported, not guessed.
 */
import type { Runner } from '../../exec/runner.ts';
import type { Discovery, Found } from '../shared/backend.ts';
import { discoverMac } from '../shared/link.ts';
import { IPT_CHAIN } from '../shared/names.ts';
import { destinationOf, optOf, savedRules, type SavedRule } from '../shared/iptables-save.ts';

const bitsOf = (mask: number): number[] => Array.from({ length: 32 }, (_, b) => b + 1).filter((k) => (mask >>> (k - 1)) & 1);

export function findXtClusters(rules: readonly SavedRule[]): Discovery {
  const found: Found[] = [];
  const skipped: string[] = [];
  for (const r of rules) {
    if (!/(?:^|\s)-m cluster(?:\s|$)/.test(r.spec)) continue;
    const where = `${r.flavour} ${r.table} chain ${r.chain}`;
    const n = Number(optOf(r.spec, '--cluster-total-nodes'));
    const maskText = optOf(r.spec, '--cluster-local-nodemask');
    const nodeText = optOf(r.spec, '--cluster-local-node');
    const seedText = optOf(r.spec, '--cluster-hash-seed');
    const mask = maskText !== undefined ? Number(maskText) : nodeText !== undefined ? 2 ** (Number(nodeText) - 1) : NaN;
    const seed = seedText === undefined ? 0 : Number(seedText);
    const target = optOf(r.spec, '-j') ?? '';
    const inverted = /!\s+--cluster-local-node(mask)?\s/.test(r.spec);
    const owning = inverted ? target === 'DROP' : target !== '' && target !== 'DROP' && target !== 'REJECT';
    if (!Number.isInteger(n) || !Number.isInteger(mask) || !Number.isInteger(seed) || !owning) {
      skipped.push(`${where}: '${r.spec}' is not a rule that accepts (or drops the complement of) its node mask`);
      continue;
    }
    const { ip, iface } = destinationOf(r, rules);
    if (!ip) {
      skipped.push(`${where}: '${r.spec}' matches no single destination address (-d A/32, here or in the jump to ${r.chain}), so it has no cluster IP`);
      continue;
    }
    const name = r.chain.startsWith(`${IPT_CHAIN}_`) ? r.chain.slice(IPT_CHAIN.length + 1).toLowerCase() : undefined;
    found.push({ backend: 'xt_cluster', ip, interface: iface, mac: null, total_nodes: n, seed: seed >>> 0, owns: bitsOf(mask), ...(name ? { name } : {}), source: where });
  }
  return { found, skipped };
}

export async function discoverXtCluster(r: Runner): Promise<Discovery> {
  const d = findXtClusters(await savedRules(r, ['iptables-legacy', 'iptables-nft', 'ip6tables-legacy', 'ip6tables-nft']));
  for (const f of d.found) f.mac = await discoverMac(r, f.ip, f.interface);
  return d;
}
