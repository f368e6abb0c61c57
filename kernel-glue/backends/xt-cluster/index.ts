/** The xt_cluster backend behind the GlueBackend interface (rules: render.ts, reading back: state.ts). */
import { runStep, type StepLog } from '../../exec/steps.ts';
import { migrationFromClusterip, type GlueBackend } from '../shared/backend.ts';
import { linkRollbackSteps, nftReplaySink } from '../shared/link.ts';
import { iptTools } from '../shared/iptables-legacy.ts';
import { needIptablesLegacy, needNft } from '../shared/tools.ts';
import { xtClusterChainStep, xtClusterCreatePlan, xtClusterRemovePlan } from './render.ts';
import { readXtClusterOwners, readXtClusterState } from './state.ts';
import { discoverXtCluster } from './discover.ts';

export const xtClusterBackend: GlueBackend = {
  name: 'xt_cluster',
  createPlan: xtClusterCreatePlan,
  removePlan: xtClusterRemovePlan,
  ownerSteps: (c, _from, to) => [xtClusterChainStep(c, to)],
  readState: readXtClusterState,
  readOwners: readXtClusterOwners,
  async preflight(r, c) {
    return (await needIptablesLegacy(r, iptTools(c).ipt)) ?? (await needNft(r));
  },
  async rollback(r, c, snap) {
    const steps = linkRollbackSteps(c, snap, false);
    if (snap.mangle !== null) steps.push({ argv: [iptTools(c).restore, '-c'], stdin: snap.mangle, why: 'restore the mangle table as saved (with counters)' });
    const log: StepLog[] = [];
    for (const s of steps) log.push(await runStep(r, s));
    return log;
  },
  replaySink: nftReplaySink,
  migration: (c) => migrationFromClusterip(c, 'xt_cluster'),
  discover: discoverXtCluster,
};
