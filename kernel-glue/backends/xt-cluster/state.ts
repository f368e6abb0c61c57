/**
 * Reading the xt_cluster backend back from a host: our mangle chain (owner
 * set from the ACCEPT rules' node masks, per-node and drop counters) and the
 * link state it needs (ARP table, multicast MAC, tcp_loose).
 */
import type { ClusterConfig } from '../../../sim/core/cluster-config.ts';
import type { Runner } from '../../exec/runner.ts';
import { mustRun } from '../../exec/steps.ts';
import { emptySnapshot, type BackendState, type Counter, type KernelView } from '../shared/backend.ts';
import { fpOf, iptChain, IPT_TABLE } from '../shared/names.ts';
import { iptTools, parseMangleSave, readChain, type ChainView } from '../shared/iptables-legacy.ts';
import { readLinkState } from '../shared/link.ts';

/** xt_cluster owners: the set bits of every ACCEPT rule's node mask (iptables-save prints masks, §5.2). */
export function xtOwnersOf(view: ChainView): { owners: number[]; counters: Record<number, Counter>; dropped: Counter | null } {
  const owners = new Set<number>();
  const counters: Record<number, Counter> = {};
  let dropped: Counter | null = null;
  for (const r of view.rules) {
    const m = /--cluster-local-nodemask (0x[0-9a-f]+)/.exec(r.text);
    if (m && / -j ACCEPT$/.test(r.text)) {
      const mask = parseInt(m[1]!, 16);
      for (let b = 0; b < 32; b++) {
        if (mask & (1 << b)) {
          owners.add(b + 1);
          const prev = counters[b + 1] ?? { packets: 0, bytes: 0 };
          counters[b + 1] = { packets: prev.packets + r.counter.packets, bytes: prev.bytes + r.counter.bytes };
        }
      }
    } else if (/ -j DROP$/.test(r.text)) dropped = r.counter;
  }
  return { owners: [...owners].sort((a, b) => a - b), counters, dropped };
}

export async function readXtClusterState(r: Runner, c: ClusterConfig, expectFp: string): Promise<BackendState> {
  const snapshot = emptySnapshot();
  const gaps = await readLinkState(r, c, expectFp, snapshot);
  const { mangle, view } = await readChain(r, c);
  snapshot.mangle = mangle;
  if (mangle === null) gaps.push(`${iptTools(c).save} does not run`);
  if (!view.exists) return { present: false, fingerprint: null, gaps: [`no chain ${iptChain(c)}`, ...gaps], owners: null, counters: {}, dropped: null, snapshot };
  const fingerprint = fpOf(view.rules.map((x) => x.text).join('\n'));
  if (!view.jump) gaps.push(`no jump from PREROUTING to ${iptChain(c)}`);
  if (fingerprint !== expectFp) gaps.unshift(`rules are from another config (cfg=${fingerprint ?? 'none'}, expected ${expectFp})`);
  const { owners, counters, dropped } = xtOwnersOf(view);
  return { present: true, fingerprint, gaps, owners, counters, dropped, snapshot };
}

/** The owner set and its counters: one `iptables-legacy-save -c -t mangle` (ip6tables-legacy-save for IPv6). */
export async function readXtClusterOwners(r: Runner, c: ClusterConfig): Promise<KernelView> {
  const x = xtOwnersOf(parseMangleSave(await mustRun(r, [iptTools(c).save, '-c', '-t', IPT_TABLE]), c));
  return { owned: x.owners, load: Object.fromEntries(Object.entries(x.counters).map(([k, v]) => [k, v.packets])) };
}
