/**
 * Compares load-sharing schemes over the same flows: balance, disruption on
 * membership changes, and speed.
 *
 * - balance: max/mean load over the live nodes, by packets, bytes and flows
 *   (1.0 = perfect), with all N nodes up and after one node failed;
 * - disruption, as the share of flows that change node:
 *   fail   N up -> node f down; the minimum is the flows node f had;
 *   add    N -> N+1 nodes; the minimum is the share the new node ends up with
 *          (reported beside the fair share 1/(N+1) and the balance after the add);
 *   return node f down -> up again; the minimum is the flows node f gets back;
 *   plus `restored`: the share of flows back on the node they had before the failure;
 * - speed: selections per second of the scheme's assign() on these flows
 *   (wall clock; the bench suite `schemes` measures it properly).
 */
import type { FlowSet } from './flows.ts';
import { membership, type Membership, type Scheme } from './scheme.ts';
import { kernelSchemes } from './buckets.ts';
import { maglevScheme } from './maglev.ts';
import { rendezvousScheme } from './rendezvous.ts';
import { jumpScheme } from './jump.ts';

export interface Balance {
  packets: number;
  bytes: number;
  flows: number;
}

export interface Disruption {
  /** Share of (assigned) flows that changed node. */
  moved: number;
  /** The least any scheme must move for this change. */
  ideal: number;
}

export interface SchemeResult {
  name: string;
  description: string;
  buckets: number | null;
  /** Flows the scheme gave no node (e.g. IPv6 at CLUSTERIP). */
  unassigned_flows: number;
  balance: Balance;
  balance_after_fail: Balance;
  /** max/mean by flows with N+1 nodes (null when the scheme cannot grow). */
  balance_after_add: number | null;
  disruption: {
    fail: Disruption;
    add: (Disruption & { fair_share: number }) | null;
    return: Disruption & { restored: number };
  };
  selections_per_s: number;
  /** Why a part is missing (e.g. "CLUSTERIP has at most 16 buckets"). */
  notes: string[];
}

export interface Win {
  aspect: string;
  scheme: string;
  value: number;
  note: string;
}

export interface CompareResult {
  nodes: number;
  fail_node: number;
  flows: number;
  packets: number;
  bytes: number;
  schemes: SchemeResult[];
  wins: Win[];
}

/** Every scheme of the comparison. */
export function allSchemes(): Scheme[] {
  return [...kernelSchemes(), maglevScheme(), rendezvousScheme(), jumpScheme()];
}

function loads(a: Int32Array, fs: FlowSet, m: Membership): Balance {
  const n = fs.flows.count;
  const f = new Float64Array(m.slots), p = new Float64Array(m.slots), b = new Float64Array(m.slots);
  for (let i = 0; i < n; i++) {
    const k = a[i]!;
    if (k < 0) continue;
    f[k]! += 1;
    p[k]! += fs.packets[i]!;
    b[k]! += fs.bytes[i]!;
  }
  const ratio = (x: Float64Array): number => {
    let sum = 0, max = 0, live = 0;
    for (let k = 0; k < m.slots; k++) {
      if (!m.alive[k]) continue;
      live++;
      sum += x[k]!;
      if (x[k]! > max) max = x[k]!;
    }
    return sum > 0 ? max / (sum / live) : 0;
  };
  return { packets: ratio(p), bytes: ratio(b), flows: ratio(f) };
}

function moved(a: Int32Array, b: Int32Array, n: number): { moved: number; assigned: number } {
  let mv = 0, as = 0;
  for (let i = 0; i < n; i++) {
    if (a[i]! < 0 || b[i]! < 0) continue;
    as++;
    if (a[i] !== b[i]) mv++;
  }
  return { moved: mv, assigned: as };
}

function share(a: Int32Array, n: number, node: number): number {
  let on = 0, as = 0;
  for (let i = 0; i < n; i++) {
    if (a[i]! < 0) continue;
    as++;
    if (a[i] === node) on++;
  }
  return as ? on / as : 0;
}

/** Times assign() over the flows: passes until `minSeconds` have gone by. */
export function schemeSpeed(s: Scheme, fs: FlowSet, m: Membership, minSeconds = 0.2): number {
  const out = new Int32Array(fs.flows.count);
  s.assign(fs.flows, m, out); // warm-up (and table builds)
  let done = 0;
  const t0 = performance.now();
  let dt = 0;
  do {
    s.assign(fs.flows, m, out);
    done += fs.flows.count;
    dt = (performance.now() - t0) / 1000;
  } while (dt < minSeconds);
  return done / dt;
}

export interface CompareOptions {
  nodes: number;
  /** 1-based node that fails (and returns). Default 1. */
  failNode?: number;
  schemes?: Scheme[];
  /** Seconds of timing per scheme (0 skips the timing: selections_per_s = 0). */
  speedSeconds?: number;
}

export function compareSchemes(fs: FlowSet, o: CompareOptions): CompareResult {
  const N = o.nodes;
  const f = (o.failNode ?? 1) - 1;
  if (!Number.isInteger(N) || N < 2) throw new RangeError(`--nodes ${N}: the comparison needs at least 2 nodes`);
  if (f < 0 || f >= N) throw new RangeError(`fail node ${f + 1} is not one of 1..${N}`);
  const n = fs.flows.count;
  const schemes = o.schemes ?? allSchemes();
  const up = membership(N);
  const down = membership(N, N, [f]);
  const grown = membership(N, N + 1);
  const results: SchemeResult[] = [];
  for (const s of schemes) {
    if (N > s.maxNodes) continue;
    const notes: string[] = [];
    const base = new Int32Array(n), failed = new Int32Array(n), back = new Int32Array(n);
    s.assign(fs.flows, up, base);
    s.assign(fs.flows, down, failed);
    s.assign(fs.flows, up, back);
    let add: SchemeResult['disruption']['add'] = null;
    let balanceAfterAdd: number | null = null;
    if (N + 1 <= s.maxNodes) {
      const more = new Int32Array(n);
      s.assign(fs.flows, grown, more);
      const ma = moved(base, more, n);
      add = { moved: ma.moved / Math.max(1, ma.assigned), ideal: share(more, n, N), fair_share: 1 / (N + 1) };
      balanceAfterAdd = loads(more, fs, grown).flows;
    } else {
      notes.push(`cannot grow to ${N + 1} nodes (at most ${s.maxNodes})`);
    }
    let unassigned = 0;
    for (let i = 0; i < n; i++) if (base[i]! < 0) unassigned++;
    const mf = moved(base, failed, n), mr = moved(failed, back, n), rs = moved(base, back, n);
    results.push({
      name: s.name,
      description: s.description,
      buckets: s.buckets(up),
      unassigned_flows: unassigned,
      balance: loads(base, fs, up),
      balance_after_fail: loads(failed, fs, down),
      balance_after_add: balanceAfterAdd,
      disruption: {
        fail: { moved: mf.moved / Math.max(1, mf.assigned), ideal: share(base, n, f) },
        add,
        return: { moved: mr.moved / Math.max(1, mr.assigned), ideal: share(back, n, f), restored: 1 - rs.moved / Math.max(1, rs.assigned) },
      },
      selections_per_s: (o.speedSeconds ?? 0.2) > 0 ? schemeSpeed(s, fs, up, o.speedSeconds ?? 0.2) : 0,
      notes,
    });
  }
  return { nodes: N, fail_node: f + 1, flows: n, packets: fs.totalPackets, bytes: fs.totalBytes, schemes: results, wins: wins(results) };
}

/** Where each scheme wins: the best value per aspect (ties named together). */
export function wins(rs: readonly SchemeResult[]): Win[] {
  const out: Win[] = [];
  const best = (aspect: string, note: string, val: (r: SchemeResult) => number | null, higher = false): void => {
    const vals = rs.map((r) => ({ r, v: val(r) })).filter((x): x is { r: SchemeResult; v: number } => x.v !== null && Number.isFinite(x.v));
    if (!vals.length) return;
    const top = vals.reduce((a, b) => ((higher ? b.v > a.v : b.v < a.v) ? b : a)).v;
    // Within 0.5 % of the best counts as a tie: sampling noise of a few 10k flows is about that.
    const tol = Math.abs(top) * 0.005;
    const names = vals.filter((x) => Math.abs(x.v - top) <= tol).map((x) => x.r.name);
    out.push({ aspect, scheme: names.join(', '), value: top, note });
  };
  best('balance by flows', 'lowest max/mean load by flows, all nodes up', (r) => r.balance.flows);
  best('balance by bytes', 'lowest max/mean load by bytes, all nodes up', (r) => r.balance.bytes);
  best('balance after a failure', 'lowest max/mean by flows with one node down', (r) => r.balance_after_fail.flows);
  best('disruption on failure', 'flows moved beyond the failed node\'s own', (r) => r.disruption.fail.moved - r.disruption.fail.ideal);
  best('balance after adding a node', 'lowest max/mean by flows with N+1 nodes', (r) => r.balance_after_add);
  best('disruption on adding a node', 'flows moved beyond those the new node takes', (r) => (r.disruption.add ? r.disruption.add.moved - r.disruption.add.ideal : null));
  best('disruption on return', 'flows moved beyond those the returning node takes back', (r) => r.disruption.return.moved - r.disruption.return.ideal);
  best('speed', 'selections per second (this machine, this run)', (r) => r.selections_per_s || null, true);
  return out;
}
