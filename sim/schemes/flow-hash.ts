/**
 * The flow hash the consistent-hashing schemes share: lookup3's final mix
 * over (source, destination, ports ^ protocol), IPv6 addresses folded by XOR.
 * Seeded, so that a scheme can draw two independent hashes (jump's 64-bit key).
 */
import { FAMILY_IPV6, type TupleBatch } from '../traffic/batch.ts';
import { JHASH_INITVAL, final3 } from '../hash/lookup3.ts';

/** Writes one 32-bit hash per flow (as int32) to out[0..count). */
export function flowHashes(b: TupleBatch, seed: number, out: Int32Array): void {
  const s = (JHASH_INITVAL + 12 + seed) | 0;
  const { family, saddr, daddr, saddr6, daddr6, sport, dport, proto } = b;
  for (let i = 0; i < b.count; i++) {
    let x: number, y: number;
    if (family[i] === FAMILY_IPV6) {
      const j = i << 2;
      x = saddr6[j]! ^ saddr6[j + 1]! ^ saddr6[j + 2]! ^ saddr6[j + 3]!;
      y = daddr6[j]! ^ daddr6[j + 1]! ^ daddr6[j + 2]! ^ daddr6[j + 3]!;
    } else {
      x = saddr[i]!;
      y = daddr[i]!;
    }
    out[i] = final3((x + s) | 0, (y + s) | 0, ((((sport[i]! << 16) | dport[i]!) ^ Math.imul(proto[i]!, 0x01000193)) + s) | 0);
  }
}

/** lookup3 final mix of two words: a well-spread 32-bit value (rendezvous scores, node name hashes). */
export function mix2(x: number, y: number): number {
  return final3((x + 0x2545f491) | 0, (y + 0x2545f491) | 0, 0x2545f491);
}

/** Scratch for one pass (grown on demand, reused). */
let scratch = new Int32Array(0);
export function scratchHashes(n: number, which = 0): Int32Array {
  if (scratch.length < n * 2) scratch = new Int32Array(n * 2);
  return scratch.subarray(which * n, which * n + n);
}
