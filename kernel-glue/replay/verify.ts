/**
 * Prediction and proof for a replay: which host accepts how many of the
 * replayed packets per node number (the simulator's selectors over the
 * rewritten datagrams), and what the hosts' acceptance counters say
 * (kernel-glue installs them with the rules: nft set-element counters,
 * per-node ACCEPT rules for xt_cluster, connmark counting rules after
 * CLUSTERIP).
 *
 * The prediction is per packet. The kernel's answer is per packet too as long
 * as every replayed packet meets no existing conntrack; the "sink" (a drop in
 * INPUT and FORWARD for the cluster IP, after the counters, before conntrack
 * confirmation) makes that true, as the golden-vector harness did
 * (kernel-semantics §11.1, §11.3). Without it, TCP state on the accepting node
 * (its own RST, SYN_SENT vs CLOSE) decides whether a later packet of the flow
 * is valid, which no per-packet prediction can know.
 */
import { type ClusterConfig } from '../../sim/core/cluster-config.ts';
import { selectorSpecOf } from '../../sim/select/from-config.ts';
import { buildSelector } from '../../sim/select/build.ts';
import { formatIPv4, formatIPv6 } from '../../sim/core/addr.ts';
import { FAMILY_IPV6 } from '../../sim/traffic/batch.ts';
import { readHostState, type HostState } from '../control/state.ts';
import { fingerprint, type NodeEntry } from '../backends/shared/names.ts';
import { TCP_LOOSE } from '../backends/shared/link.ts';
import { backendOf } from '../backends/index.ts';
import type { RunStep } from '../plan.ts';
import { readFileOn } from '../exec/steps.ts';
import { runnerFor, type Runner } from '../exec/runner.ts';
import { CT, type Rewritten } from './rewrite.ts';

export interface Prediction {
  /** Node number (1..N) per visible datagram, 0 when no node takes it (conntrack INVALID). */
  node: Int32Array;
  /** Per host: node number -> packets predicted (over all loops). */
  perHost: Map<string, Map<number, number>>;
}

/**
 * Per host: a datagram of node number k is accepted by the host that owns k,
 * if conntrack gives it an entry there (TCP mid-stream pickup depends on the
 * host's nf_conntrack_tcp_loose).
 */
export function predict(c: ClusterConfig, rw: Rewritten, tcpLoose: ReadonlyMap<string, boolean>, loops: number): Prediction {
  const sel = buildSelector(selectorSpecOf(c));
  const n = rw.visible.count;
  const out = new Int32Array(Math.max(1, n));
  if (n > 0) sel.select(rw.visible, out);
  const node = new Int32Array(n);
  for (let i = 0; i < n; i++) node[i] = out[i]! >= 0 ? out[i]! + sel.offset : 0;
  const perHost = new Map<string, Map<number, number>>();
  for (const h of c.nodes) {
    const m = new Map<number, number>();
    for (const k of h.owns) m.set(k, 0);
    const loose = tcpLoose.get(h.name) ?? false;
    for (let i = 0; i < n; i++) {
      const k = node[i]!;
      if (k === 0 || !m.has(k)) continue;
      const cls = rw.ct[i]!;
      if (cls === CT.INVALID || (cls === CT.LOOSE && !loose)) continue;
      m.set(k, m.get(k)! + loops);
    }
    perHost.set(h.name, m);
  }
  return { node, perHost };
}

export type RunnerOf = (n: NodeEntry) => Runner;
export const defaultRunnerOf: RunnerOf = (n) => runnerFor(n.name, n.host);

/** Reads every host; refuses hosts whose rules are missing or from another config. */
export async function readStates(c: ClusterConfig, runnerOf: RunnerOf): Promise<Map<string, HostState>> {
  const fp = fingerprint(c);
  const res = await Promise.all(c.nodes.map(async (n) => [n.name, await readHostState(runnerOf(n), c, fp)] as const));
  return new Map(res);
}

/** nf_conntrack_tcp_loose per host (1 = mid-stream TCP pickup). */
export async function readTcpLoose(c: ClusterConfig, runnerOf: RunnerOf): Promise<Map<string, boolean>> {
  const res = await Promise.all(c.nodes.map(async (n) => [n.name, ((await readFileOn(runnerOf(n), TCP_LOOSE)) ?? '1').trim() !== '0'] as const));
  return new Map(res);
}

/**
 * Steps that install (or remove) the sink on a host of this backend: the
 * backend knows where its counters sit (kernel-glue/backends/<name>/index.ts,
 * `replaySink`).
 */
export function sinkSteps(c: ClusterConfig, install: boolean): RunStep[] {
  return backendOf(c).replaySink(c, install);
}

export async function setSinks(c: ClusterConfig, runnerOf: RunnerOf, install: boolean): Promise<string[]> {
  const errors: string[] = [];
  await Promise.all(c.nodes.map(async (n) => {
    const r = runnerOf(n);
    for (const s of sinkSteps(c, install)) {
      const res = await r.run(s.argv, s.stdin);
      if (res.code !== 0) errors.push(`${n.name} (${r.where}): ${s.argv.join(' ')}: ${res.stderr.trim() || `exit ${res.code}`}`);
    }
  }));
  return errors;
}

export interface HostDelta {
  host: string;
  /** node number -> packets counted since `before`. */
  accepted: Map<number, number>;
  /** Packets this host's chain dropped (xt_cluster / nft), null when it has no such counter. */
  dropped: number | null;
}

export function deltas(before: Map<string, HostState>, after: Map<string, HostState>): HostDelta[] {
  const out: HostDelta[] = [];
  for (const [host, a] of after) {
    const b = before.get(host)!;
    const accepted = new Map<number, number>();
    for (const k of Object.keys(a.counters).map(Number)) accepted.set(k, a.counters[k]!.packets - (b.counters[k]?.packets ?? 0));
    out.push({ host, accepted, dropped: a.dropped && b.dropped ? a.dropped.packets - b.dropped.packets : null });
  }
  return out;
}

/**
 * Polls the counters until every host has seen all `expected` packets
 * (accepted + dropped, where the backend counts drops) or nothing changed for
 * two polls in a row; at most `timeoutMs`.
 */
export async function settle(c: ClusterConfig, runnerOf: RunnerOf, before: Map<string, HostState>, expected: number, timeoutMs = 10_000): Promise<Map<string, HostState>> {
  const t0 = Date.now();
  let prev = '';
  let stable = 0;
  for (;;) {
    await new Promise((r) => setTimeout(r, 150));
    const now = await readStates(c, runnerOf);
    const d = deltas(before, now);
    const sum = (x: HostDelta): number => [...x.accepted.values()].reduce((a, b) => a + b, 0) + (x.dropped ?? 0);
    if (d.every((x) => x.dropped !== null && sum(x) >= expected)) return now;
    const key = JSON.stringify(d.map((x) => [x.host, [...x.accepted], x.dropped]));
    stable = key === prev ? stable + 1 : 0;
    prev = key;
    if (stable >= 2 || Date.now() - t0 > timeoutMs) return now;
  }
}

export interface Difference {
  host: string;
  node: number;
  predicted: number;
  counted: number;
  /** The first flows predicted for this node number (what to look at). */
  flows: string[];
}

const PROTO_NAME: Record<number, string> = { 1: 'icmp', 6: 'tcp', 17: 'udp', 58: 'icmpv6' };

/** One line per datagram: "tcp 10.0.0.1:1234 -> 192.0.2.10:80". */
export function describeFlow(rw: Rewritten, i: number): string {
  const b = rw.visible;
  const p = b.proto[i]!;
  const ports = p === 6 || p === 17;
  const v6 = b.family[i] === FAMILY_IPV6;
  const src = v6 ? `[${formatIPv6(b.saddr6, i * 4)}]` : formatIPv4(b.saddr[i]!), dst = v6 ? `[${formatIPv6(b.daddr6, i * 4)}]` : formatIPv4(b.daddr[i]!);
  return `${PROTO_NAME[p] ?? `proto ${p}`} ${src}${ports ? `:${b.sport[i]}` : ''} -> ${dst}${ports ? `:${b.dport[i]}` : ''}`;
}

/** Node-by-node comparison; empty when the kernel did exactly what was predicted. */
export function compare(p: Prediction, rw: Rewritten, got: HostDelta[], maxFlows = 5): Difference[] {
  const diffs: Difference[] = [];
  for (const d of got) {
    const want = p.perHost.get(d.host) ?? new Map<number, number>();
    const keys = new Set([...want.keys(), ...d.accepted.keys()]);
    for (const k of [...keys].sort((a, b) => a - b)) {
      const w = want.get(k) ?? 0, g = d.accepted.get(k) ?? 0;
      if (w === g) continue;
      // distinct flows in capture order, with how many of their datagrams were predicted here
      const seen = new Map<string, number>();
      for (let i = 0; i < p.node.length; i++) {
        if (p.node[i] !== k) continue;
        const f = describeFlow(rw, i);
        if (seen.has(f)) seen.set(f, seen.get(f)! + 1);
        else if (seen.size < maxFlows) seen.set(f, 1);
      }
      const flows = [...seen].map(([f, n]) => (n > 1 ? `${f} (${n} datagrams)` : f));
      diffs.push({ host: d.host, node: k, predicted: w, counted: g, flows });
    }
  }
  return diffs;
}
