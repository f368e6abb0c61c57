/** The clusterip backend behind the GlueBackend interface (rules: render.ts, reading back: state.ts). */
import { selectorSpecOf } from '../../../sim/select/from-config.ts';
import { CURRENT_KERNEL } from '../../../sim/core/spec.ts';
import { runStep, type StepLog } from '../../exec/steps.ts';
import type { Step } from '../../plan.ts';
import type { GlueBackend } from '../shared/backend.ts';
import { IPT, IPT_RESTORE, removeChainSteps } from '../shared/iptables-legacy.ts';
import { probe } from '../shared/tools.ts';
import { clusteripCreatePlan, clusteripRefusal, clusteripRemovePlan, procPath, procWrites, PROC_GONE_TIMEOUT_MS } from './render.ts';
import { parseProcOwners, readClusteripOwners, readClusteripState } from './state.ts';
import { discoverClusterip } from './discover.ts';

/** CLUSTERIP hosts may have no nft at all (§11.2's guest); iptables-legacy is there by definition. */
const SINK_COMMENT = 'clusterip-sim replay sink';

export const clusteripBackend: GlueBackend = {
  name: 'clusterip',
  createPlan: clusteripCreatePlan,
  removePlan: clusteripRemovePlan,
  ownerSteps: (c, from, to) => procWrites(c.cluster.ip, from, to),
  readState: readClusteripState,
  readOwners: readClusteripOwners,
  async preflight(r, c, st) {
    const legacy = await probe(r, [IPT, '--version']);
    const plain = legacy.ok ? { out: '' } : await probe(r, ['iptables', '--version']);
    const why = clusteripRefusal(st.kernel ?? '', legacy.ok, plain.out);
    if (why) return why;
    if (!st.present && st.snapshot.procOwners !== null) {
      return `${procPath(c.cluster.ip)} exists but not from clusterip-sim's chain: that config's parameters would silently win over ours (first --new wins, §4.6); remove the other CLUSTERIP rules for ${c.cluster.ip} first`;
    }
    return null;
  },
  async rollback(r, c, snap) {
    const steps: Step[] = [...removeChainSteps(c), { waitAbsent: procPath(c.cluster.ip), timeoutMs: PROC_GONE_TIMEOUT_MS, why: 'let the new config go before the old rule comes back' }];
    if (snap.mangle !== null) steps.push({ argv: [IPT_RESTORE, '-c'], stdin: snap.mangle, why: 'restore the mangle table as saved (with counters)' });
    const log: StepLog[] = [];
    for (const s of steps) log.push(await runStep(r, s));
    if (snap.procOwners !== null) {
      const now = await r.run(['cat', procPath(c.cluster.ip)]);
      if (now.code === 0) for (const s of procWrites(c.cluster.ip, parseProcOwners(now.stdout), snap.procOwners)) log.push(await runStep(r, s));
    }
    return log;
  },
  replaySink(c, install) {
    const op = install ? '-I' : '-D';
    return ['INPUT', 'FORWARD'].map((ch) => ({
      argv: [IPT, '-t', 'filter', op, ch, ...(install ? ['1'] : []), '-d', `${c.cluster.ip}/32`, '-m', 'comment', '--comment', SINK_COMMENT, '-j', 'DROP'],
      why: `${install ? 'drop' : 'stop dropping'} replayed packets to ${c.cluster.ip} in ${ch} after CLUSTERIP counted them`,
    }));
  },
  migration: (c) => ({
    from: `clusterip ${c.cluster.hashmode ?? 'sourceip'}`,
    to: 'xt_cluster / nft',
    before: selectorSpecOf(c),
    after: { backend: 'xt_cluster', totalNodes: c.cluster.total_nodes, hashSeed: c.cluster.seed, kernel: CURRENT_KERNEL, endian: c.cluster.endian },
  }),
  discover: discoverClusterip,
};
