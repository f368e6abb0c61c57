/**
 * Jump consistent hashing (Lamping & Veach, "A Fast, Minimal Memory,
 * Consistent Hash Algorithm", 2014): buckets 0..n-1, a 64-bit key, the
 * paper's linear congruential generator, no table. Growing n by one moves
 * exactly 1/(n+1) of the keys, all to the new bucket. It cannot remove a
 * bucket other than the last; a failed node is handled the usual way, by
 * drawing again (a re-hashed key) until the bucket is alive, which moves only
 * the failed node's flows.
 *
 * 64-bit arithmetic in 32-bit halves (no BigInt per flow).
 */
import { flowHashes, scratchHashes } from './flow-hash.ts';
import type { Scheme } from './scheme.ts';

// 2862933555777941757 = 0x27bb2ee6_87b0b0fd, the paper's multiplier.
const MUL_HI = 0x27bb2ee6;
const MUL_LO = 0x87b0b0fd;

/** High 32 bits of the unsigned 64-bit product of two uint32 (exact, 16-bit limbs). */
export function mulHi32(a: number, b: number): number {
  const ah = a >>> 16, al = a & 0xffff, bh = b >>> 16, bl = b & 0xffff;
  const p0 = al * bl, p1 = ah * bl, p2 = al * bh, p3 = ah * bh;
  const mid = (p0 >>> 16) + (p1 & 0xffff) + (p2 & 0xffff);
  return (p3 + Math.floor(p1 / 65536) + Math.floor(p2 / 65536) + Math.floor(mid / 65536)) >>> 0;
}

/**
 * The paper's JumpConsistentHash(key, num_buckets) for key = hi * 2^32 + lo
 * (both uint32). Returns 0..n-1.
 */
export function jumpHash(hi: number, lo: number, n: number): number {
  let b = -1, j = 0;
  let khi = hi >>> 0, klo = lo >>> 0;
  while (j < n) {
    b = j;
    // key = key * 2862933555777941757 + 1 (mod 2^64)
    const nhi = (mulHi32(klo, MUL_LO) + Math.imul(khi, MUL_LO) + Math.imul(klo, MUL_HI)) >>> 0;
    const nlo = Math.imul(klo, MUL_LO) >>> 0;
    klo = (nlo + 1) >>> 0;
    khi = klo === 0 ? (nhi + 1) >>> 0 : nhi;
    // j = (b + 1) * (double(1 << 31) / double((key >>> 33) + 1))
    j = Math.floor((b + 1) * (2147483648 / ((khi >>> 1) + 1)));
  }
  return b;
}

/** Re-draws for a dead bucket: a different, deterministic key per attempt. */
const REDRAW = 0x9e3779b9;

export function jumpScheme(): Scheme {
  return {
    name: 'jump',
    description: 'jump consistent hash (Lamping & Veach 2014) over the node slots; a dead node\'s flows re-drawn until they hit a live one',
    buckets: (m) => m.slots,
    maxNodes: 1 << 16,
    assign(flows, mb, out) {
      const n = flows.count;
      const hi = scratchHashes(n, 0), lo = scratchHashes(n, 1);
      flowHashes(flows, 0x4a554d50, hi);
      flowHashes(flows, 0x6a756d70, lo);
      let anyAlive = false;
      for (let k = 0; k < mb.slots; k++) if (mb.alive[k]) anyAlive = true;
      for (let i = 0; i < n; i++) {
        if (!anyAlive) { out[i] = -1; continue; }
        let h = hi[i]!, l = lo[i]!;
        let b = jumpHash(h, l, mb.slots);
        for (let t = 1; !mb.alive[b]; t++) {
          if (t > 1000) { // bounded: fall back to the next live slot
            while (!mb.alive[b]) b = (b + 1) % mb.slots;
            break;
          }
          h = (h ^ Math.imul(REDRAW, t)) | 0;
          l = (l + t) | 0;
          b = jumpHash(h, l, mb.slots);
        }
        out[i] = b;
      }
    },
  };
}
