/** The nft backend behind the GlueBackend interface (rules: render.ts, reading back: state.ts). */
import { runStep } from '../../exec/steps.ts';
import { migrationFromClusterip, type GlueBackend } from '../shared/backend.ts';
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
  migration: (c) => migrationFromClusterip(c, 'nft'),
  discover: discoverNft,
};
