/**
 * The selector contract: one configured bucket function, compiled from a
 * plain-data spec, applied to whole TupleBatches.
 */
import type { TupleBatch } from '../traffic/batch.ts';
import type { Backend, Fact, SelectorSpec } from '../core/spec.ts';
import type { KernelProfile } from './profile.ts';

/** No rule fires for this packet (wrong protocol for an nft key, no conntrack, IPv6 at an IPv4 target). */
export const NO_BUCKET = -1;
/** The capture lacks bytes the kernel would have hashed (snaplen): the answer is unknown, not 0. */
export const UNKNOWN_BUCKET = -2;

// The spec is the foundation's contract (sim/core/spec.ts); selectors are compiled from it.
export { CLUSTERIP_MODES, type Backend, type ClusteripMode, type SelectorSpec } from '../core/spec.ts';

export interface Selector {
  readonly spec: SelectorSpec;
  readonly backend: Backend;
  /** Number of buckets N. */
  readonly buckets: number;
  /**
   * What a bucket is called in the kernel's own numbers: node = bucket + 1 for
   * CLUSTERIP and xt_cluster, value = bucket + offset for nft.
   */
  readonly offset: number;
  readonly profile: KernelProfile;
  /** One line, e.g. "CLUSTERIP sourceip, 3 nodes, hash-init 0x00000000 on 6.1 little-endian". */
  readonly description: string;
  /** Where each fact behind the answer comes from: measured on a real kernel, or source reading only. */
  readonly facts: readonly Fact[];
  /** False when the kernel's values cannot be reproduced at all (nft symhash). */
  readonly predictable: boolean;
  /**
   * Writes one bucket (0..N-1), NO_BUCKET or UNKNOWN_BUCKET per packet of
   * `batch` in [start, end) to `out[i]`.
   */
  select(batch: TupleBatch, out: Int32Array, start?: number, end?: number): void;
}

/** 16-bit byte swap: what a little-endian CPU gets from a native load of a network-order port. */
export const bswap16 = (x: number): number => ((x & 0xff) << 8) | ((x >>> 8) & 0xff);
/** 32-bit byte swap (result as signed int32). */
export const bswap32 = (x: number): number => ((x & 0xff) << 24) | ((x & 0xff00) << 8) | ((x >>> 8) & 0xff00) | (x >>> 24);
