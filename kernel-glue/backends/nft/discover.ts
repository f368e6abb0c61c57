/**
 * `glue import` for nft: cluster rules in `nft list ruleset`, ours or written
 * by hand. A rule is a cluster rule when its hash is xt_cluster's
 * (`jhash ct original ip saddr mod N seed S offset O`, §7, or its IPv6 form
 * over `ct original ip6 saddr` in an ip6 or inet table) and it compares
 * the value with a set, an anonymous set or one value; the node numbers are
 * value - O + 1. The cluster IP and interface come from the rule itself or
 * from the rule that jumps to its chain (`iifname "eth0" ip daddr IP jump c`).
 */
import { UsageError } from '../../../sim/core/errors.ts';
import { findNftHash, renderNftHash } from '../../../sim/select/nft-expr.ts';
import type { Runner } from '../../exec/runner.ts';
import type { Discovery, Found } from '../shared/backend.ts';
import { discoverMac } from '../shared/link.ts';
import { NFT_TABLE } from '../shared/names.ts';

interface Table { family: string; name: string; chains: Map<string, string[]>; sets: Map<string, number[]> }

/** Tables with their chains' rules and their sets' elements, out of `nft list ruleset`. */
export function parseRuleset(text: string): Table[] {
  const tables: Table[] = [];
  let t: Table | null = null;
  let chain: string | null = null;
  let set: { name: string; text: string } | null = null;
  for (const raw of text.split('\n')) {
    const l = raw.trim();
    let m: RegExpExecArray | null;
    if ((m = /^table (\S+) (\S+) \{$/.exec(l))) {
      t = { family: m[1]!, name: m[2]!, chains: new Map(), sets: new Map() };
      tables.push(t);
    } else if (t && (m = /^(?:set|map) (\S+) \{$/.exec(l))) {
      set = { name: m[1]!, text: '' };
    } else if (t && (m = /^chain (\S+) \{$/.exec(l))) {
      chain = m[1]!;
      t.chains.set(chain, []);
    } else if (l === '}') {
      if (set && t) {
        const e = /elements = \{([^}]*)\}/s.exec(set.text);
        t.sets.set(set.name, e ? e[1]!.split(',').map((x) => Number(x.trim().split(/\s+/)[0])).filter(Number.isInteger) : []);
        set = null;
      } else if (chain) chain = null;
      else t = null;
    } else if (set) set.text += ` ${l}`;
    else if (t && chain && l && !/^(type|policy|comment) /.test(l)) t.chains.get(chain)!.push(l);
  }
  return tables;
}

const daddrOf = (rule: string): string | null => /\bip daddr (\d+\.\d+\.\d+\.\d+)(?:\s|$)/.exec(rule)?.[1] ?? (/\bip6 daddr ([0-9a-f:.]+)(?:\s|$)/i.exec(rule)?.[1] ?? null);
const iifOf = (rule: string): string | null => /\biifname "?([^"\s]+)"?/.exec(rule)?.[1] ?? null;

/** The cluster rules of a ruleset (without MACs: the caller reads those from the host). */
export function findNftClusters(text: string): Discovery {
  const found: Found[] = [];
  const skipped: string[] = [];
  for (const t of parseRuleset(text)) {
    if (t.family !== 'ip' && t.family !== 'ip6' && t.family !== 'inet') continue;
    for (const [chain, rules] of t.chains) {
      for (const rule of rules) {
        if (!/\b(jhash|symhash)\b/.test(rule)) continue;
        const where = `nft table ${t.family} ${t.name} chain ${chain}`;
        let h;
        try {
          h = findNftHash(rule, where);
        } catch (e) {
          if (!(e instanceof UsageError)) throw e;
          skipped.push(e.message);
          continue;
        }
        const field = h && h.kind === 'jhash' && h.fields.length === 1 ? h.fields[0]!.kind : null;
        if (!h || h.kind !== 'jhash' || (field !== 'ct original ip saddr' && field !== 'ct original ip6 saddr') || !h.seedGiven) {
          skipped.push(`${where}: '${h ? renderNftHash(h) : rule}' is not xt_cluster's hash with a seed (jhash ct original ip saddr, or ip6 saddr, mod N seed S): no cluster config expresses it`);
          continue;
        }
        // What the rule does with the value: the words after the expression.
        const norm = rule.split(/\s+/).join(' ');
        const after = norm.slice(norm.indexOf(h.text) + h.text.length).trim();
        let values: number[] | null = null;
        let m: RegExpExecArray | null;
        if ((m = /^@(\S+)/.exec(after))) values = t.sets.get(m[1]!) ?? null;
        else if ((m = /^\{([^}]*)\}/.exec(after))) values = m[1]!.split(',').map((x) => Number(x.trim()));
        else if ((m = /^(?:== )?(\d+)\b/.exec(after))) values = [Number(m[1])];
        if (!values || !/\baccept\b/.test(after)) {
          skipped.push(`${where}: '${rule}' does not accept the values of a set or of one value`);
          continue;
        }
        // The cluster IP: in the rule, or in the rule that jumps here.
        const jump = [...t.chains.values()].flat().find((r) => new RegExp(`\\b(jump|goto) ${chain}$`).test(r));
        const ip = daddrOf(rule) ?? (jump ? daddrOf(jump) : null);
        if (!ip) {
          skipped.push(`${where}: '${rule}' matches no single destination address (ip daddr), so it has no cluster IP`);
          continue;
        }
        const owns = values.map((v) => v - h.offset + 1).filter((k) => k >= 1 && k <= h.mod).sort((a, b) => a - b);
        const name = t.name.startsWith(`${NFT_TABLE}_`) ? t.name.slice(NFT_TABLE.length + 1) : undefined;
        found.push({ backend: 'nft', ip, interface: iifOf(rule) ?? (jump ? iifOf(jump) : null), mac: null, total_nodes: h.mod, seed: h.seed, owns, ...(name ? { name } : {}), source: where });
      }
    }
  }
  return { found, skipped };
}

export async function discoverNft(r: Runner): Promise<Discovery> {
  const rs = await r.run(['nft', 'list', 'ruleset']);
  if (rs.code !== 0) return { found: [], skipped: [] };
  const d = findNftClusters(rs.stdout);
  for (const f of d.found) f.mac = await discoverMac(r, f.ip, f.interface);
  return d;
}
