/**
 * iptables-legacy plumbing shared by the xt_cluster and clusterip backends:
 * our own chain in the mangle table, loaded atomically with
 * `iptables-legacy-restore --noflush` (declaring an existing user chain in a
 * --noflush restore flushes it, and the whole table is replaced in one
 * commit), plus one jump from PREROUTING for the cluster IP on its interface.
 *
 * Legacy, not iptables-nft: CLUSTERIP refuses nft_compat (§4.5, §10.7), and
 * using one flavour for both backends keeps status reading simple. Reading
 * the chain back (`iptables-legacy-save -c`) is here too.
 */
import { clusterAddrText, clusterFamily, type ClusterConfig } from '../../../sim/core/cluster-config.ts';
import type { RunStep, Step } from '../../plan.ts';
import type { Runner } from '../../exec/runner.ts';
import type { Counter } from './backend.ts';
import { hostPrefix, iptChain, IPT_TABLE } from './names.ts';

export const IPT = 'iptables-legacy';
export const IPT_RESTORE = 'iptables-legacy-restore';
export const IPT_SAVE = 'iptables-legacy-save';

/** The legacy tools of the cluster's family: iptables-legacy for IPv4, ip6tables-legacy for IPv6 (xt_cluster takes both, §5.1). */
export function iptTools(c: ClusterConfig): { ipt: string; restore: string; save: string } {
  return clusterFamily(c) === 6
    ? { ipt: 'ip6tables-legacy', restore: 'ip6tables-legacy-restore', save: 'ip6tables-legacy-save' }
    : { ipt: IPT, restore: IPT_RESTORE, save: IPT_SAVE };
}

/** The cluster address as a host match: A/32 or A/128, as iptables-save prints it. */
export const hostMatch = (c: ClusterConfig): string => `${clusterAddrText(c)}/${hostPrefix(c)}`;

/** The PREROUTING rule that sends the cluster IP's packets to our chain. */
export function jumpSpec(c: ClusterConfig): string[] {
  return ['PREROUTING', '-d', hostMatch(c), '-i', c.cluster.interface, '-j', iptChain(c)];
}

/** A restore input that (re)creates our chain with exactly `rules` (each a line without `-A CHAIN`). */
export function chainRestoreInput(c: ClusterConfig, rules: readonly string[]): string {
  const chain = iptChain(c);
  return [`*${IPT_TABLE}`, `:${chain} - [0:0]`, ...rules.map((r) => `-A ${chain} ${r}`), 'COMMIT', ''].join('\n');
}

export function restoreChainStep(c: ClusterConfig, rules: readonly string[], why: string): RunStep {
  return { argv: [iptTools(c).restore, '--noflush'], stdin: chainRestoreInput(c, rules), why };
}

export function ensureJumpStep(c: ClusterConfig): RunStep {
  const spec = jumpSpec(c);
  const IPT = iptTools(c).ipt;
  return { argv: [IPT, '-t', IPT_TABLE, '-A', ...spec], unless: [IPT, '-t', IPT_TABLE, '-C', ...spec], why: `send ${c.cluster.ip} on ${c.cluster.interface} to chain ${iptChain(c)} (added once)` };
}

/** Steps that take our chain away (each guarded, so they succeed on a host that has none of it). */
export function removeChainSteps(c: ClusterConfig): Step[] {
  const spec = jumpSpec(c);
  const chain = iptChain(c);
  const IPT = iptTools(c).ipt;
  const chainExists = [IPT, '-t', IPT_TABLE, '-S', chain];
  return [
    { argv: [IPT, '-t', IPT_TABLE, '-D', ...spec], onlyIf: [IPT, '-t', IPT_TABLE, '-C', ...spec], why: `remove the jump to ${chain}` },
    { argv: [IPT, '-t', IPT_TABLE, '-F', chain], onlyIf: chainExists, why: `flush ${chain}` },
    { argv: [IPT, '-t', IPT_TABLE, '-X', chain], onlyIf: chainExists, why: `delete ${chain}` },
  ];
}

/** Quotes a comment for iptables-restore input (double quotes; our comments never contain quotes). */
export const ruleComment = (text: string): string => `-m comment --comment "${text}"`;

export interface ChainView {
  exists: boolean;
  jump: boolean;
  /** Rules of our chain as printed by iptables-save -c, counters split off. */
  rules: { counter: Counter; text: string }[];
}

/** Our chain and its PREROUTING jump out of `iptables-legacy-save -c -t mangle`. */
export function parseMangleSave(text: string, c: ClusterConfig): ChainView {
  const lines = text.split('\n');
  const chain = iptChain(c);
  const exists = lines.some((l) => l.startsWith(`:${chain} `));
  const jumpRe = new RegExp(`-A PREROUTING -d ${hostMatch(c).replace(/\./g, '\\.')} -i ${c.cluster.interface.replace(/[.]/g, '\\.')} -j ${chain}$`);
  let jump = false;
  const rules: ChainView['rules'] = [];
  for (const l of lines) {
    const m = /^(?:\[(\d+):(\d+)\] )?(-A (\S+) .*)$/.exec(l);
    if (!m) continue;
    if (m[4] === 'PREROUTING' && jumpRe.test(m[3]!)) jump = true;
    if (m[4] === chain) rules.push({ counter: { packets: Number(m[1] ?? 0), bytes: Number(m[2] ?? 0) }, text: m[3]! });
  }
  return { exists, jump, rules };
}

/** The saved mangle table (null when iptables-legacy-save, or ip6tables-legacy-save, does not run) and our chain in it. */
export async function readChain(r: Runner, c: ClusterConfig): Promise<{ mangle: string | null; view: ChainView }> {
  const res = await r.run([iptTools(c).save, '-c', '-t', IPT_TABLE]);
  const mangle = res.code === 0 ? res.stdout : null;
  return { mangle, view: parseMangleSave(mangle ?? '', c) };
}
