/**
 * Reading the clusterip backend back from a host: our mangle chain (the
 * `--new` rule with the fingerprint, one connmark counting rule per node
 * number) and the owner set in /proc/net/ipt_CLUSTERIP/<ip> (§4.4).
 */
import type { ClusterConfig } from '../../../sim/core/cluster-config.ts';
import type { Runner } from '../../exec/runner.ts';
import { mustRun, readFileOn } from '../../exec/steps.ts';
import { emptySnapshot, type BackendState, type Counter, type KernelView } from '../shared/backend.ts';
import { fpOf, iptChain } from '../shared/names.ts';
import { IPT_SAVE, readChain, type ChainView } from '../shared/iptables-legacy.ts';
import { procPath } from './render.ts';

/** CLUSTERIP counting rules (`-m connmark --mark K`): packets accepted per node number. */
export function clusteripCountersOf(view: ChainView): Record<number, Counter> {
  const out: Record<number, Counter> = {};
  for (const r of view.rules) {
    const m = /-m connmark --mark 0x([0-9a-f]+)\b|-m connmark --mark (\d+)\b/.exec(r.text);
    if (m) out[m[1] !== undefined ? parseInt(m[1], 16) : Number(m[2])] = r.counter;
  }
  return out;
}

/** /proc/net/ipt_CLUSTERIP/<ip> content: "2,3\n", or empty (§4.4). */
export function parseProcOwners(text: string): number[] {
  const t = text.trim();
  return t ? t.split(',').map(Number).sort((a, b) => a - b) : [];
}

export async function readClusteripState(r: Runner, c: ClusterConfig, expectFp: string): Promise<BackendState> {
  const snapshot = emptySnapshot();
  const gaps: string[] = [];
  const { mangle, view } = await readChain(r, c);
  snapshot.mangle = mangle;
  if (mangle === null) gaps.push(`${IPT_SAVE} does not run`);
  const proc = await readFileOn(r, procPath(c.cluster.ip));
  snapshot.procOwners = proc === null ? null : parseProcOwners(proc);
  if (!view.exists) return { present: false, fingerprint: null, gaps: [`no chain ${iptChain(c)}`, ...gaps], owners: null, counters: {}, dropped: null, snapshot };
  const fingerprint = fpOf(view.rules.map((x) => x.text).join('\n'));
  if (!view.jump) gaps.push(`no jump from PREROUTING to ${iptChain(c)}`);
  if (proc === null) gaps.push(`${procPath(c.cluster.ip)} does not exist`);
  if (fingerprint !== expectFp) gaps.unshift(`rules are from another config (cfg=${fingerprint ?? 'none'}, expected ${expectFp})`);
  return { present: true, fingerprint, gaps, owners: snapshot.procOwners, counters: clusteripCountersOf(view), dropped: null, snapshot };
}

/** The owner set: one read of /proc (CLUSTERIP counts per node only in our connmark rules, not read here). */
export async function readClusteripOwners(r: Runner, c: ClusterConfig): Promise<KernelView> {
  return { owned: parseProcOwners(await mustRun(r, ['cat', procPath(c.cluster.ip)])), load: {} };
}
