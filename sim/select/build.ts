/** Compiles a SelectorSpec (plain data) into a Selector. */
import { clusteripSelector } from './clusterip.ts';
import { xtClusterSelector } from './xt-cluster.ts';
import { nftSelector } from './nft.ts';
import type { Selector, SelectorSpec } from './selector.ts';
import type { SelectorOptions } from './wasm.ts';

/**
 * `opts.engine`: `auto` (default) runs the WebAssembly SIMD build where it
 * covers the rule and is built, TypeScript otherwise; `ts` forces TypeScript.
 */
export function buildSelector(spec: SelectorSpec, opts: SelectorOptions = {}): Selector {
  switch (spec.backend) {
    case 'clusterip': return clusteripSelector(spec, opts);
    case 'xt_cluster': return xtClusterSelector(spec, opts);
    case 'nft': return nftSelector(spec, opts);
  }
}
