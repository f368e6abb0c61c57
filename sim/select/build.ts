/** Compiles a SelectorSpec (plain data) into a Selector. */
import { clusteripSelector } from './clusterip.ts';
import { xtClusterSelector } from './xt-cluster.ts';
import { nftSelector } from './nft.ts';
import type { Selector, SelectorSpec } from './selector.ts';

export function buildSelector(spec: SelectorSpec): Selector {
  switch (spec.backend) {
    case 'clusterip': return clusteripSelector(spec);
    case 'xt_cluster': return xtClusterSelector(spec);
    case 'nft': return nftSelector(spec);
  }
}
