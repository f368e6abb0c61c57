/** The nft backend behind the GlueBackend interface (rules: render.ts, reading back: state.ts). */
import { selectorSpecOf } from '../../../sim/select/from-config.ts';
import { DEFAULT_CLUSTERIP_KERNEL } from '../../../sim/core/spec.ts';
import { runStep } from '../../exec/steps.ts';
import type { GlueBackend } from '../shared/backend.ts';
import { linkRollbackSteps, nftReplaySink } from '../shared/link.ts';
import { needNft } from '../shared/tools.ts';
import { nftCreatePlan, nftOwnerStep, nftRemovePlan } from './render.ts';
import { readNftOwners, readNftState } from './state.ts';
import { discoverNft } from './discover.ts';

export const nftBackend: GlueBackend = {
  name: 'nft',
  createPlan: nftCreatePlan,
  removePlan: nftRemovePlan,
  ownerSteps: (c, from, to) => {
    const s = nftOwnerStep(c, from, to);
    return s ? [s] : [];
  },
  readState: readNftState,
  readOwners: readNftOwners,
  preflight: (r) => needNft(r),
  async rollback(r, c, snap) {
    const log = [];
    for (const s of linkRollbackSteps(c, snap, true)) log.push(await runStep(r, s));
    return log;
  },
  replaySink: nftReplaySink,
  migration: (c) => ({
    from: 'clusterip sourceip',
    to: 'nft',
    before: { backend: 'clusterip', hashmode: 'sourceip', totalNodes: c.cluster.total_nodes, hashInit: c.cluster.seed, kernel: DEFAULT_CLUSTERIP_KERNEL, endian: c.cluster.endian },
    after: selectorSpecOf(c),
  }),
  discover: discoverNft,
};
