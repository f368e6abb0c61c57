/** jhash in its three kernel eras against published and spec anchor values (kernel-semantics §2.5, §8). */
import { describe, expect, it } from 'vitest';
import { jhashBytes, jhash1word, jhash2words, jhash3words, jhash2, jhash3wordsTransitional } from './lookup3.ts';
import { jhashBytesLookup2, jhash3wordsLookup2, jhash2Lookup2 } from './lookup2.ts';
import { multiplyShift, modulo } from './reduce.ts';

const text = new TextEncoder().encode('Four score and seven years ago');

describe('lookup3 byte form (Bob Jenkins\' published hashlittle values)', () => {
  it('hashes the 30-byte sentence', () => {
    expect(jhashBytes(text, 30, 0)).toBe(0x17770551);
    expect(jhashBytes(text, 30, 1)).toBe(0xcd628161);
  });
  it('returns the initial value for an empty key', () => {
    expect(jhashBytes(new Uint8Array(0), 0, 0)).toBe(0xdeadbeef);
    expect(jhashBytes(new Uint8Array(0), 0, 5)).toBe((0xdeadbeef + 5) >>> 0);
  });
  it('keys of 12 bytes or fewer do not depend on byte order; longer ones do', () => {
    const k12 = text.subarray(0, 12), k16 = text.subarray(0, 16);
    expect(jhashBytes(k12, 12, 3, 'big')).toBe(jhashBytes(k12, 12, 3, 'little'));
    expect(jhashBytes(k16, 16, 3, 'big')).not.toBe(jhashBytes(k16, 16, 3, 'little'));
  });
});

describe('lookup2 (up to 2.6.36)', () => {
  it('matches the computed anchors', () => {
    expect(jhashBytesLookup2(text, 30, 0)).toBe(0x50f2424b);
    expect(jhashBytesLookup2(new Uint8Array(0), 0, 0)).toBe(0xbd49d10d);
  });
});

describe('word forms per era (kernel-semantics §8)', () => {
  it('A1: sourceip 10.0.0.1, hash-init 0', () => {
    expect(jhash1word(0x0a000001, 0)).toBe(0x3483bc84);
    expect(jhash3wordsTransitional(0x0a000001, 0, 0, 0)).toBe(0xcfa466a2);
    expect(jhash3wordsLookup2(0x0a000001, 0, 0, 0)).toBe(0x61e5290c);
  });
  it('A2: 192.168.1.10 and the reductions', () => {
    expect(jhash1word(0xc0a8010a, 0)).toBe(0xc8ac0446);
    expect(jhash3wordsTransitional(0xc0a8010a, 0, 0, 0)).toBe(0xf2e88a68);
    const h = jhash3wordsLookup2(0xc0a8010a, 0, 0, 0);
    expect(h).toBe(0x46bb0c36);
    expect(multiplyShift(h, 16) + 1).toBe(5);
    expect(modulo(h, 16) + 1).toBe(7);
  });
  it('A3/A4/A5: port words and init values', () => {
    expect(jhash3words(0x0a000001, 0x0001, 0x5000, 0)).toBe(0xe2169531);
    expect(jhash3words(0x0a000001, 256, 80, 0)).toBe(0xc4aff398);
    expect(jhash3wordsTransitional(0x0a000001, 0x0001, 0x5000, 0)).toBe(0xd75ea598);
    expect(jhash3wordsLookup2(0x0a000001, 0x0001, 0x5000, 0)).toBe(0x49783cf8);
    expect(jhash3wordsLookup2(0x0a000001, 256, 80, 0)).toBe(0xca73a115);
    expect(jhash2words(0x0a000001, 0x3930, 0)).toBe(0x62f66c86);
    expect(jhash2words(0x0a000001, 12345, 0)).toBe(0x94cfeece);
    expect(jhash1word(0x0a010203, 7)).toBe(0xa3d9aba3);
    expect(jhash3wordsTransitional(0x0a010203, 0, 0, 7)).toBe(0x1efcc477);
    expect(jhash3wordsLookup2(0x0a010203, 0, 0, 7)).toBe(0xb9032a94);
  });
  it('A8: xt_cluster words per era', () => {
    expect(jhash1word(0x0100000a, 0xdeadbeef)).toBe(0x52e26e5d);
    expect(jhash1word(0x0a000001, 0xdeadbeef)).toBe(0x0c0dc576);
    expect(jhash3wordsTransitional(0x0100000a, 0, 0, 0xdeadbeef)).toBe(0x947962d7);
    expect(jhash3wordsLookup2(0x0100000a, 0, 0, 0xdeadbeef)).toBe(0x48bea9cb);
  });
  it('4.1+ identities: word forms equal jhash2 and the byte form of LE words', () => {
    const words = [0x0a000001, 0x3930, 0x5000];
    const bytes = new Uint8Array(new Uint32Array(words).buffer);
    expect(jhash1word(words[0]!, 9)).toBe(jhash2(words, 1, 9));
    expect(jhash3words(words[0]!, words[1]!, words[2]!, 9)).toBe(jhash2(words, 3, 9));
    expect(jhash3words(words[0]!, words[1]!, words[2]!, 9)).toBe(jhashBytes(bytes, 12, 9));
    // ... and not for the 2.6.37-4.0 word functions.
    expect(jhash3wordsTransitional(words[0]!, words[1]!, words[2]!, 9)).not.toBe(jhash2(words, 3, 9));
  });
  it('A13: IPv6 2001:db8::1 via jhash2', () => {
    const le = [0xb80d0120, 0, 0, 0x01000000];
    expect(jhash2(le, 4, 0)).toBe(0x0e5b0adb);
    expect(jhash2([0x20010db8, 0, 0, 1], 4, 0)).toBe(0x66295424);
    expect(jhash2Lookup2([1, 2, 3, 4], 4, 0)).toBe(jhash2Lookup2([1, 2, 3, 4], 4, 0));
  });
});

describe('multiply-shift', () => {
  it('is exact for every modulus up to 2^31', () => {
    const big = (h: number, n: number): number => Number((BigInt(h) * BigInt(n)) >> 32n);
    for (const h of [0, 1, 0x7fffffff, 0x80000000, 0xffffffff, 0x9e3779b9, 0x46bb0c36]) {
      for (const n of [1, 2, 3, 16, 65537, (1 << 21) - 1, 1 << 21, 0x7fffffff, 2 ** 31, 0xfffffffe]) {
        expect(multiplyShift(h, n), `${h} ${n}`).toBe(big(h, n));
      }
    }
  });
});
