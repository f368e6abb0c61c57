/**
 * Reading the nft backend back from a host: `nft list table ip clusterip_sim`
 * parsed into the owner set, the per-element counters, the drop counter and
 * the hash rule (as data, by the one nft expression parser in
 * sim/select/nft-expr.ts).
 */
import type { ClusterConfig } from '../../../sim/core/cluster-config.ts';
import { UsageError } from '../../../sim/core/errors.ts';
import { findNftHash, renderNftHash, sameNftHash, type NftHashExpr } from '../../../sim/select/nft-expr.ts';
import { nftClusterHash } from '../../../sim/select/from-config.ts';
import type { Runner } from '../../exec/runner.ts';
import { mustRun } from '../../exec/steps.ts';
import { emptySnapshot, type BackendState, type Counter, type KernelView } from '../shared/backend.ts';
import { fpOf, nftFamily, nftTable } from '../shared/names.ts';
import { readLinkState } from '../shared/link.ts';

export interface NftTableView {
  owners: number[];
  counters: Record<number, Counter>;
  dropped: Counter | null;
  /** The hash of the rule that looks up @owned; null when there is none. */
  hash: NftHashExpr | null;
  /** Why the hash rule could not be read, when it could not. */
  hashError?: string;
}

/** `nft list table ip clusterip_sim` (or `nft list set ... owned`) -> owner set, per-element counters, drop counter, hash. */
export function parseNftTable(text: string): NftTableView {
  const owners: number[] = [];
  const counters: Record<number, Counter> = {};
  const m = /set owned \{[^}]*?elements = \{([^}]*)\}/s.exec(text);
  if (m) {
    for (const e of m[1]!.split(',')) {
      const x = /^\s*(\d+)(?:\s+counter(?:\s+packets\s+(\d+)\s+bytes\s+(\d+))?)?\s*$/.exec(e);
      if (!x) continue;
      const k = Number(x[1]);
      owners.push(k);
      counters[k] = { packets: Number(x[2] ?? 0), bytes: Number(x[3] ?? 0) };
    }
  }
  const d = /counter packets (\d+) bytes (\d+) drop/.exec(text);
  let hash: NftHashExpr | null = null;
  let hashError: string | undefined;
  const rule = text.split('\n').find((l) => /@owned\b/.test(l));
  if (rule) {
    try {
      hash = findNftHash(rule.trim(), `nft rule '${rule.trim()}'`);
    } catch (e) {
      if (!(e instanceof UsageError)) throw e;
      hashError = e.message;
    }
  }
  return { owners: owners.sort((a, b) => a - b), counters, dropped: d ? { packets: Number(d[1]), bytes: Number(d[2]) } : null, hash, ...(hashError ? { hashError } : {}) };
}

export async function readNftState(r: Runner, c: ClusterConfig, expectFp: string): Promise<BackendState> {
  const snapshot = emptySnapshot();
  const gaps = await readLinkState(r, c, expectFp, snapshot);
  const ip = await r.run(['nft', 'list', 'table', nftFamily(c), nftTable(c)]);
  snapshot.nftIp = ip.code === 0 ? ip.stdout : null;
  if (snapshot.nftIp === null) return { present: false, fingerprint: null, gaps: [`no table ${nftFamily(c)} ${nftTable(c)}`, ...gaps], owners: null, counters: {}, dropped: null, snapshot };
  const fingerprint = fpOf(snapshot.nftIp);
  const t = parseNftTable(snapshot.nftIp);
  const want = nftClusterHash(c);
  if (!t.hash || !sameNftHash(t.hash, want)) gaps.push(`the hash rule is not '${renderNftHash(want)}'${t.hash ? ` (found '${renderNftHash(t.hash)}')` : t.hashError ? ` (${t.hashError})` : ''}`);
  if (fingerprint !== expectFp) gaps.unshift(`rules are from another config (cfg=${fingerprint ?? 'none'}, expected ${expectFp})`);
  return { present: true, fingerprint, gaps, owners: t.owners, counters: t.counters, dropped: t.dropped, snapshot };
}

/** The owner set and its counters: one `nft list set`. */
export async function readNftOwners(r: Runner, c: ClusterConfig): Promise<KernelView> {
  const t = parseNftTable(await mustRun(r, ['nft', 'list', 'set', nftFamily(c), nftTable(c), 'owned']));
  return { owned: t.owners, load: Object.fromEntries(Object.entries(t.counters).map(([k, v]) => [k, v.packets])) };
}
