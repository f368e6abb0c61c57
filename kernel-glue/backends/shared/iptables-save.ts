/**
 * iptables-save output as rules (for `glue import`): every `-A CHAIN ...`
 * line with its table, from iptables-legacy and iptables-nft alike (xt_cluster
 * rules live in either, and in their ip6tables twins; CLUSTERIP only in
 * legacy IPv4, §4.5).
 */
import type { Runner } from '../../exec/runner.ts';
import { parseIPv6 } from '../../../sim/core/addr.ts';

export interface SavedRule {
  /** 'iptables-legacy', 'iptables-nft', 'ip6tables-legacy' or 'ip6tables-nft'. */
  flavour: string;
  table: string;
  chain: string;
  /** The rule without `-A CHAIN` and without counters. */
  spec: string;
}

export function parseSave(text: string, flavour: string): SavedRule[] {
  const out: SavedRule[] = [];
  let table = '';
  for (const l of text.split('\n')) {
    if (l.startsWith('*')) table = l.slice(1).trim();
    const m = /^(?:\[\d+:\d+\] )?-A (\S+) (.*)$/.exec(l);
    if (m) out.push({ flavour, table, chain: m[1]!, spec: m[2]! });
  }
  return out;
}

/** The rules of each flavour that runs on the host (a missing tool gives none). */
export async function savedRules(r: Runner, flavours: readonly string[]): Promise<SavedRule[]> {
  const out: SavedRule[] = [];
  for (const f of flavours) {
    const res = await r.run([`${f}-save`]);
    if (res.code === 0) out.push(...parseSave(res.stdout, f));
  }
  return out;
}

/** The value after `opt` in a rule spec. */
export const optOf = (spec: string, opt: string): string | undefined => new RegExp(`(?:^|\\s)${opt} (\\S+)`).exec(spec)?.[1];

/** The cluster IP of a rule: its own `-d A/32` (ip6tables: `-d A/128`), or that of the rule jumping to its chain. */
export function destinationOf(rule: SavedRule, all: readonly SavedRule[]): { ip: string | null; iface: string | null } {
  const one = (spec: string): string | null => {
    const d = optOf(spec, '-d');
    if (d && /^\d+\.\d+\.\d+\.\d+(\/32)?$/.test(d)) return d.replace(/\/32$/, '');
    return d && /^[0-9a-f:.]+\/128$/i.test(d) && parseIPv6(d.slice(0, -4)) ? d.slice(0, -4) : null;
  };
  const jump = all.find((x) => x.flavour === rule.flavour && x.table === rule.table && new RegExp(`(?:^|\\s)-[jg] ${rule.chain}(?:\\s|$)`).test(x.spec));
  return { ip: one(rule.spec) ?? (jump ? one(jump.spec) : null), iface: optOf(rule.spec, '-i') ?? (jump ? optOf(jump.spec, '-i') ?? null : null) };
}
