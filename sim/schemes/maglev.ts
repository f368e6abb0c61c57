/**
 * Maglev hashing (Eisenbud et al., "Maglev: A Fast and Reliable Software
 * Network Load Balancer", NSDI 2016, §3.4).
 *
 * Each backend i has a permutation of the M table slots, from two hashes of
 * its name: offset = h1(name) mod M, skip = h2(name) mod (M - 1) + 1,
 * permutation[j] = (offset + j * skip) mod M (M prime, so every skip is
 * coprime with M and the permutation covers every slot). Backends take turns
 * claiming their next preferred empty slot until the table is full; a flow
 * goes to table[hash mod M]. On a membership change the table is rebuilt from
 * the backends that are up.
 */
import { jhashBytes } from '../hash/lookup3.ts';
import { flowHashes, scratchHashes } from './flow-hash.ts';
import type { Membership, Scheme } from './scheme.ts';

/** The paper's example table size (a prime, > 100 x the backends for <= 1 % imbalance). */
export const MAGLEV_M = 65537;

function isPrime(n: number): boolean {
  if (n < 2 || !Number.isInteger(n)) return false;
  for (let d = 2; d * d <= n; d++) if (n % d === 0) return false;
  return true;
}

const nameBytes = (id: number): Uint8Array => new TextEncoder().encode(`node-${id + 1}`);

/** Offset and skip of backend `id` (0-based) for table size m. */
export function maglevPermutation(id: number, m: number): { offset: number; skip: number } {
  const name = nameBytes(id);
  const h1 = jhashBytes(name, name.length, 0x6d61676c) >>> 0;
  const h2 = jhashBytes(name, name.length, 0x65762121) >>> 0;
  return { offset: h1 % m, skip: (h2 % (m - 1)) + 1 };
}

/**
 * Populates the lookup table (the paper's Pseudocode 1) for the given backend
 * ids; returns table[slot] = backend id. Throws when m is not prime or there
 * is no backend.
 */
export function maglevTable(backends: readonly number[], m = MAGLEV_M): Int32Array {
  if (!isPrime(m)) throw new RangeError(`Maglev table size ${m} must be prime`);
  if (backends.length === 0) throw new RangeError('Maglev needs at least one backend');
  const n = backends.length;
  const offset = new Float64Array(n), skip = new Float64Array(n), next = new Float64Array(n);
  backends.forEach((id, i) => {
    const p = maglevPermutation(id, m);
    offset[i] = p.offset;
    skip[i] = p.skip;
  });
  const entry = new Int32Array(m).fill(-1);
  let filled = 0;
  for (;;) {
    for (let i = 0; i < n; i++) {
      // offset + next * skip < 2^53: exact.
      let c = (offset[i]! + next[i]! * skip[i]!) % m;
      while (entry[c] !== -1) {
        next[i]!++;
        c = (offset[i]! + next[i]! * skip[i]!) % m;
      }
      entry[c] = backends[i]!;
      next[i]!++;
      if (++filled === m) return entry;
    }
  }
}

export function maglevScheme(m = MAGLEV_M): Scheme {
  const cache = new Map<string, Int32Array>();
  const tableFor = (mb: Membership): Int32Array | null => {
    const ids: number[] = [];
    for (let k = 0; k < mb.slots; k++) if (mb.alive[k]) ids.push(k);
    if (!ids.length) return null;
    const key = ids.join(',');
    let t = cache.get(key);
    if (!t) { t = maglevTable(ids, m); cache.set(key, t); }
    return t;
  };
  return {
    name: 'maglev',
    description: `Maglev hashing (NSDI 2016), lookup table of ${m} entries rebuilt from the nodes that are up`,
    buckets: () => m,
    maxNodes: Math.floor(m / 100),
    assign(flows, mb, out) {
      const t = tableFor(mb);
      const n = flows.count;
      if (!t) { out.fill(-1, 0, n); return; }
      const h = scratchHashes(n);
      flowHashes(flows, 0x4d41474c, h);
      for (let i = 0; i < n; i++) out[i] = t[(h[i]! >>> 0) % m]!;
    },
  };
}
