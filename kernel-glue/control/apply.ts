/**
 * apply / move / remove / status over the hosts of one cluster config.
 *
 * apply: read every selected host first (unreachable or refusing hosts stop
 * the run before anything changes); then per host either nothing (already as
 * configured: a second apply changes nothing), an owner-set update (rules match
 * the config, only the owners differ), or the full replace plan. Hosts that
 * gain node numbers go first (a brief duplicate beats a loss). When a host
 * fails midway it is rolled back from its snapshot, and so are the hosts this
 * run already changed, so the cluster is left as it was; the report says what
 * happened where.
 */
import type { HandoverMode } from '../../sim/cluster/handover.ts';
import type { ClusterConfig } from '../../sim/core/cluster-config.ts';
import { checkConfig } from '../../sim/core/cluster-config.ts';
import { DataError } from '../../sim/core/errors.ts';
import { fingerprint, ownersOf, whereOf, type NodeEntry } from '../backends/shared/names.ts';
import type { Snapshot } from '../backends/shared/backend.ts';
import { backendOf, createPlan, ownerPlan, removePlan } from '../backends/index.ts';
import type { Plan } from '../plan.ts';
import { runnerFor, type Runner } from '../exec/runner.ts';
import { runPlan, type StepLog } from '../exec/steps.ts';
import { readHostState, type HostState } from './state.ts';

export type Outcome = 'unchanged' | 'applied' | 'owners updated' | 'would change' | 'removed' | 'failed' | 'failed, rolled back' | 'rolled back' | 'not attempted' | 'refused' | 'unreachable';

export interface HostReport {
  host: string;
  where: string;
  outcome: Outcome;
  /** Owner set before and after (kernel node numbers). */
  before: number[] | null;
  after: number[] | null;
  steps: StepLog[];
  error?: string;
  rollbackError?: string;
}

export interface RunReport {
  ok: boolean;
  action: 'apply' | 'move' | 'remove';
  hosts: HostReport[];
}

export interface GlueOptions {
  /** Node names to act on (default: all). */
  hosts?: string[];
  dryRun?: boolean;
  /** Apply even though checkConfig found problems. */
  force?: boolean;
  /** How to reach a node (tests may override); default from the config's `host`. */
  runnerOf?: (n: NodeEntry) => Runner;
  /** Fault injection for tests: a real command run on `host` after its `afterStep`-th step (1-based). */
  inject?: { host: string; afterStep: number; argv: string[] };
}

export function selectNodes(c: ClusterConfig, names?: string[]): NodeEntry[] {
  if (!names || !names.length) return c.nodes;
  return names.map((n) => {
    const x = c.nodes.find((y) => y.name === n);
    if (!x) throw new DataError(`--host ${n}`, `no node named '${n}' in the config (nodes: ${c.nodes.map((y) => y.name).join(', ')})`);
    return x;
  });
}

const runnerOfDefault = (n: NodeEntry): Runner => runnerFor(n.name, n.host);

/**
 * One host carries one node's rules (our table and chain have fixed names), so
 * two nodes on the same host would overwrite each other. A config written for
 * `simulate` often has no `host` at all: every node is then 'local'.
 */
export function sameHostProblems(c: ClusterConfig): string[] {
  const seen = new Map<string, number>();
  const out: string[] = [];
  c.nodes.forEach((n, i) => {
    const key = whereOf(n.host).replace(/^ssh (?:[^@]+@)?/, 'ssh ');
    const j = seen.get(key);
    if (j !== undefined) out.push(`nodes[${i}].host: ${n.name} is on the same host as ${c.nodes[j]!.name} (${whereOf(n.host)}); each node needs its own host (give every node a 'host:' entry)`);
    else seen.set(key, i);
  });
  return out;
}

/** Tools and kernel the config's backend needs on the host; a refusal in words, or null. */
export function preflight(r: Runner, c: ClusterConfig, st: HostState): Promise<string | null> {
  return backendOf(c).preflight(r, c, st);
}

/** Puts a host back to its snapshot (our objects only, plus the mangle table as saved). */
export function rollbackHost(r: Runner, c: ClusterConfig, snap: Snapshot): Promise<StepLog[]> {
  return backendOf(c).rollback(r, c, snap);
}

function withInjection(p: Plan, o: GlueOptions): Plan {
  if (!o.inject || o.inject.host !== p.host || !p.steps.length) return p;
  const steps = [...p.steps];
  steps.splice(Math.min(o.inject.afterStep, steps.length), 0, { argv: o.inject.argv, why: 'injected fault (test)' });
  return { ...p, steps };
}

const errText = (e: unknown): string => (e instanceof Error ? e.message : String(e));

interface Prepared {
  node: NodeEntry;
  r: Runner;
  st: HostState;
  plan: Plan;
  after: number[];
}

/** Reads every host; returns reports for those that cannot go ahead. */
async function readAll(c: ClusterConfig, nodes: NodeEntry[], o: GlueOptions, check: boolean): Promise<{ states: { node: NodeEntry; r: Runner; st: HostState }[]; bad: HostReport[] }> {
  const fp = fingerprint(c);
  // Hosts are read in parallel (reads change nothing); changes later run one host at a time.
  const results = await Promise.all(nodes.map(async (node) => {
    const r = (o.runnerOf ?? runnerOfDefault)(node);
    try {
      const st = await readHostState(r, c, fp);
      const why = check ? await preflight(r, c, st) : null;
      if (why) return { bad: { host: node.name, where: r.where, outcome: 'refused', before: st.owners, after: st.owners, steps: [], error: `${node.name} (${r.where}): ${why}` } as HostReport };
      return { ok: { node, r, st } };
    } catch (e) {
      return { bad: { host: node.name, where: r.where, outcome: 'unreachable', before: null, after: null, steps: [], error: errText(e) } as HostReport };
    }
  }));
  const states = results.flatMap((x) => (x.ok ? [x.ok] : []));
  const bad = results.flatMap((x) => (x.bad ? [x.bad] : []));
  return { states, bad };
}

/**
 * Executes prepared plans in order; on the first failure rolls back that host
 * and every host already changed (reverse order).
 */
async function execute(c: ClusterConfig, prepared: Prepared[], o: GlueOptions, changed: Outcome): Promise<HostReport[]> {
  const reports: HostReport[] = [];
  const done: { p: Prepared; rep: HostReport }[] = [];
  let failed = false;
  for (const p of prepared) {
    const rep: HostReport = { host: p.node.name, where: p.r.where, outcome: 'unchanged', before: p.st.owners, after: p.st.owners, steps: [] };
    reports.push(rep);
    if (failed) {
      rep.outcome = 'not attempted';
      continue;
    }
    if (!p.plan.steps.length) continue;
    try {
      await runPlan(p.r, withInjection(p.plan, o), o.dryRun, rep.steps);
      rep.outcome = o.dryRun ? 'would change' : changed;
      rep.after = o.dryRun ? p.st.owners : p.after;
      done.push({ p, rep });
    } catch (e) {
      failed = true;
      rep.outcome = 'failed, rolled back';
      rep.error = errText(e);
      try {
        await rollbackHost(p.r, c, p.st.snapshot);
      } catch (re) {
        rep.rollbackError = errText(re);
      }
      for (const d of done.reverse()) {
        try {
          await rollbackHost(d.p.r, c, d.p.st.snapshot);
          d.rep.outcome = 'rolled back';
          d.rep.after = d.p.st.owners;
        } catch (re) {
          d.rep.rollbackError = errText(re);
        }
      }
    }
  }
  return reports;
}

function sameSet(a: readonly number[] | null, b: readonly number[]): boolean {
  return !!a && a.length === b.length && a.every((k, i) => k === b[i]);
}

/** The plan apply would run on a host in its current state. */
export function planFor(c: ClusterConfig, node: NodeEntry, st: HostState): Plan {
  const want = ownersOf(node);
  if (st.complete && st.owners) return ownerPlan(c, node.name, st.owners, want);
  return createPlan(c, node.name);
}

export async function applyConfig(c: ClusterConfig, o: GlueOptions = {}): Promise<RunReport> {
  const problems = checkConfig(c);
  if (problems.length && !o.force) {
    throw new DataError('config', `refusing to apply a config that fails validation (use --force to apply anyway):\n  ${problems.map((p) => `${p.path}: ${p.message}`).join('\n  ')}`);
  }
  const shared = sameHostProblems(c);
  if (shared.length) throw new DataError('config', `cannot apply:\n  ${shared.join('\n  ')}`);
  const { states, bad } = await readAll(c, selectNodes(c, o.hosts), o, true);
  if (bad.length) {
    return { ok: false, action: 'apply', hosts: [...bad, ...states.map((s): HostReport => ({ host: s.node.name, where: s.r.where, outcome: 'not attempted', before: s.st.owners, after: s.st.owners, steps: [], error: 'another host cannot be applied; nothing was changed' }))] };
  }
  const prepared: Prepared[] = states.map((s) => ({ ...s, plan: planFor(c, s.node, s.st), after: ownersOf(s.node) }));
  // Gainers first, losers last: during the run a node number is owned twice rather than by nobody.
  const rank = (p: Prepared): number => {
    const before = p.st.owners ?? [];
    const gains = p.after.some((k) => !before.includes(k)), loses = before.some((k) => !p.after.includes(k));
    return gains && !loses ? 0 : gains ? 1 : 2;
  };
  prepared.sort((a, b) => rank(a) - rank(b));
  const hosts = await execute(c, prepared, o, 'applied');
  for (const h of hosts) {
    const p = prepared.find((x) => x.node.name === h.host)!;
    if (h.outcome === 'applied' && p.st.complete && !sameSet(p.st.owners, p.after) ) h.outcome = 'owners updated';
  }
  return { ok: hosts.every((h) => !h.error), action: 'apply', hosts };
}

/**
 * The order of a move, in the agent's words (sim/cluster/handover.ts): `add-first` or `release-first`
 * (spelled `remove-first` before the vocabulary was unified; parseHandover still accepts it).
 */
export type MoveOrder = HandoverMode;

/**
 * Moves node number `k` (bucket k-1) to node `to`: the new owner takes it, then
 * the old owners drop it (add-first: a brief window where both accept, i.e.
 * duplicates) or the other way round (release-first: a brief window where
 * nobody does, i.e. loss). Needs every involved host's rules to match the config.
 */
export async function moveBucket(c: ClusterConfig, k: number, to: string, order: MoveOrder = 'add-first', o: GlueOptions = {}): Promise<RunReport> {
  const n = c.cluster.total_nodes;
  if (!Number.isInteger(k) || k < 1 || k > n) throw new DataError('--bucket', `${k} is not a node number 1..${n} (kernel numbering: node number K is bucket K-1)`);
  selectNodes(c, [to]);
  const { states, bad } = await readAll(c, c.nodes, o, false);
  if (bad.length) return { ok: false, action: 'move', hosts: bad };
  const involved = states.filter((s) => s.node.name === to || (s.st.owners ?? []).includes(k));
  const incomplete = involved.filter((s) => !s.st.complete);
  if (incomplete.length) {
    throw new DataError(incomplete.map((s) => s.node.name).join(', '), `rules do not match the config (${incomplete.map((s) => s.st.gaps[0]).join('; ')}); run 'glue apply' first`);
  }
  const target = involved.find((s) => s.node.name === to)!;
  const prepared: Prepared[] = [];
  const add = (s: (typeof states)[number], after: number[]): void => {
    prepared.push({ ...s, plan: ownerPlan(c, s.node.name, s.st.owners ?? [], after), after });
  };
  const tgtAfter = [...new Set([...(target.st.owners ?? []), k])].sort((a, b) => a - b);
  const losers = involved.filter((s) => s !== target);
  if (order === 'add-first') add(target, tgtAfter);
  for (const s of losers) add(s, (s.st.owners ?? []).filter((x) => x !== k));
  if (order === 'release-first') add(target, tgtAfter);
  const hosts = await execute(c, prepared, o, 'owners updated');
  return { ok: hosts.every((h) => !h.error), action: 'move', hosts };
}

export async function removeConfig(c: ClusterConfig, o: GlueOptions = {}): Promise<RunReport> {
  const hosts: HostReport[] = [];
  for (const node of selectNodes(c, o.hosts)) {
    const r = (o.runnerOf ?? runnerOfDefault)(node);
    const rep: HostReport = { host: node.name, where: r.where, outcome: 'removed', before: null, after: null, steps: [] };
    hosts.push(rep);
    try {
      await runPlan(r, removePlan(c, node.name), o.dryRun, rep.steps);
      if (o.dryRun) rep.outcome = rep.steps.some((s) => s.outcome === 'would-run') ? 'would change' : 'unchanged';
      else if (!rep.steps.some((s) => s.outcome === 'ran')) rep.outcome = 'unchanged';
    } catch (e) {
      rep.outcome = rep.steps.length ? 'failed' : 'unreachable';
      rep.error = errText(e);
    }
  }
  return { ok: hosts.every((h) => !h.error), action: 'remove', hosts };
}

/** One host's view for `status`. */
export interface HostStatus {
  host: string;
  where: string;
  reachable: boolean;
  error?: string;
  kernel: string | null;
  /** Our rules exist and carry this config's fingerprint, with every part in place. */
  matchesConfig: boolean;
  gaps: string[];
  expected: number[];
  actual: number[] | null;
  /** In the config but not on the host / on the host but not in the config. */
  missing: number[];
  extra: number[];
  counters: HostState['counters'];
  dropped: HostState['dropped'];
}

export interface StatusReport {
  cluster: { ip: string; backend: string; total_nodes: number; fingerprint: string };
  hosts: HostStatus[];
  /** Node number -> hosts that actually own it (from reachable hosts). */
  owners: Record<number, string[]>;
  orphaned: number[];
  doublyOwned: number[];
  /** Anything differs from the config (or a host could not be read). */
  drift: boolean;
  /** Only some hosts were read (--host): orphaned / doubly owned are not computed. */
  partial: boolean;
}

export async function clusterStatus(c: ClusterConfig, o: GlueOptions = {}): Promise<StatusReport> {
  const { states, bad } = await readAll(c, selectNodes(c, o.hosts), o, false);
  const hosts: HostStatus[] = [];
  for (const b of bad) {
    const node = c.nodes.find((x) => x.name === b.host)!;
    hosts.push({ host: b.host, where: b.where, reachable: false, error: b.error, kernel: null, matchesConfig: false, gaps: [], expected: ownersOf(node), actual: null, missing: [], extra: [], counters: {}, dropped: null });
  }
  for (const { node, r, st } of states) {
    const expected = ownersOf(node);
    const actual = st.owners;
    hosts.push({
      host: node.name, where: r.where, reachable: true, kernel: st.kernel, matchesConfig: st.complete, gaps: st.gaps, expected, actual,
      missing: expected.filter((k) => !(actual ?? []).includes(k)), extra: (actual ?? []).filter((k) => !expected.includes(k)), counters: st.counters, dropped: st.dropped,
    });
  }
  hosts.sort((a, b) => c.nodes.findIndex((x) => x.name === a.host) - c.nodes.findIndex((x) => x.name === b.host));
  const owners: Record<number, string[]> = {};
  for (let k = 1; k <= c.cluster.total_nodes; k++) owners[k] = [];
  for (const h of hosts) for (const k of h.actual ?? []) (owners[k] ??= []).push(h.host);
  const partial = !!o.hosts?.length && hosts.length < c.nodes.length;
  const orphaned = partial ? [] : Object.keys(owners).map(Number).filter((k) => owners[k]!.length === 0);
  const doublyOwned = Object.keys(owners).map(Number).filter((k) => owners[k]!.length > 1);
  const drift = hosts.some((h) => !h.reachable || !h.matchesConfig || h.missing.length > 0 || h.extra.length > 0) || orphaned.length > 0 || doublyOwned.length > 0;
  return { cluster: { ip: c.cluster.ip, backend: c.cluster.backend, total_nodes: c.cluster.total_nodes, fingerprint: fingerprint(c) }, hosts, owners, orphaned, doublyOwned, drift, partial };
}

/** For `glue plan`: per host, the current state (when readable) and the plan apply would run. */
export async function planAll(c: ClusterConfig, o: GlueOptions = {}): Promise<{ node: string; where: string; state: HostState | null; error?: string; plan: Plan; full: Plan }[]> {
  const out = [];
  for (const node of selectNodes(c, o.hosts)) {
    const r = (o.runnerOf ?? runnerOfDefault)(node);
    const full = createPlan(c, node.name);
    try {
      const st = await readHostState(r, c, fingerprint(c));
      const why = await preflight(r, c, st);
      out.push({ node: node.name, where: r.where, state: st, plan: planFor(c, node, st), full, ...(why ? { error: why } : {}) });
    } catch (e) {
      out.push({ node: node.name, where: r.where, state: null, error: errText(e), plan: full, full });
    }
  }
  return out;
}
