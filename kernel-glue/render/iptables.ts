/**
 * iptables-legacy plumbing shared by the xt_cluster and clusterip backends:
 * our own chain in the mangle table, loaded atomically with
 * `iptables-legacy-restore --noflush` (declaring an existing user chain in a
 * --noflush restore flushes it, and the whole table is replaced in one
 * commit), plus one jump from PREROUTING for the cluster IP on its interface.
 *
 * Legacy, not iptables-nft: CLUSTERIP refuses nft_compat (§4.5, §10.7), and
 * using one flavour for both backends keeps status reading simple.
 */
import type { ClusterConfig } from '../../sim/core/cluster-config.ts';
import type { RunStep, Step } from '../plan.ts';
import { IPT_CHAIN, IPT_TABLE } from './common.ts';

export const IPT = 'iptables-legacy';
export const IPT_RESTORE = 'iptables-legacy-restore';
export const IPT_SAVE = 'iptables-legacy-save';

/** The PREROUTING rule that sends the cluster IP's packets to our chain. */
export function jumpSpec(c: ClusterConfig): string[] {
  return ['PREROUTING', '-d', `${c.cluster.ip}/32`, '-i', c.cluster.interface, '-j', IPT_CHAIN];
}

/** A restore input that (re)creates our chain with exactly `rules` (each a line without `-A CHAIN`). */
export function chainRestoreInput(rules: readonly string[]): string {
  return [`*${IPT_TABLE}`, `:${IPT_CHAIN} - [0:0]`, ...rules.map((r) => `-A ${IPT_CHAIN} ${r}`), 'COMMIT', ''].join('\n');
}

export function restoreChainStep(rules: readonly string[], why: string): RunStep {
  return { argv: [IPT_RESTORE, '--noflush'], stdin: chainRestoreInput(rules), why };
}

export function ensureJumpStep(c: ClusterConfig): RunStep {
  const spec = jumpSpec(c);
  return { argv: [IPT, '-t', IPT_TABLE, '-A', ...spec], unless: [IPT, '-t', IPT_TABLE, '-C', ...spec], why: `send ${c.cluster.ip} on ${c.cluster.interface} to chain ${IPT_CHAIN} (added once)` };
}

/** Steps that take our chain away (each guarded, so they succeed on a host that has none of it). */
export function removeChainSteps(c: ClusterConfig): Step[] {
  const spec = jumpSpec(c);
  const chainExists = [IPT, '-t', IPT_TABLE, '-S', IPT_CHAIN];
  return [
    { argv: [IPT, '-t', IPT_TABLE, '-D', ...spec], onlyIf: [IPT, '-t', IPT_TABLE, '-C', ...spec], why: `remove the jump to ${IPT_CHAIN}` },
    { argv: [IPT, '-t', IPT_TABLE, '-F', IPT_CHAIN], onlyIf: chainExists, why: `flush ${IPT_CHAIN}` },
    { argv: [IPT, '-t', IPT_TABLE, '-X', IPT_CHAIN], onlyIf: chainExists, why: `delete ${IPT_CHAIN}` },
  ];
}

/** Quotes a comment for iptables-restore input (double quotes; our comments never contain quotes). */
export const ruleComment = (text: string): string => `-m comment --comment "${text}"`;
