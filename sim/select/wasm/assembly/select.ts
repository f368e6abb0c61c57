/**
 * AssemblyScript (compiled to WebAssembly with SIMD by sim/select/wasm/build.ts)
 * for the selectors' hottest forms, four packets per instruction:
 * CLUSTERIP era D (4.1+ jhash, multiply-shift), xt_cluster IPv4 (4.1+) and
 * nft jhash over IPv4 keys of up to 16 bytes. The TypeScript selectors are
 * the reference; sim/select/wasm.test.ts holds this code to them and to every
 * golden vector.
 *
 * The memory is imported and shared. A batch allocated in a WebAssembly
 * memory (sim/traffic/batch.ts) is read in place; any other batch is copied
 * chunk by chunk into a scratch memory laid out as: u32 lanes at k * 4 * CHUNK
 * (0 saddr, 1 daddr, 2 l4a, 3 l4b, 4 out), u8 lanes at 20 * CHUNK + k * CHUNK
 * (0 family, 1 l4flags, 2 proto, 3 flags). Packets are processed 16 at a time
 * (byte-lane tests on 16 per instruction, the hash on 4); results for the
 * packets past `count` in the last group are garbage the caller ignores.
 */

export const CHUNK: i32 = 16384;
/** Bytes of memory the copy layout needs (the caller's own memory). */
export const MEMORY_BYTES: i32 = 24 * CHUNK;

// Lane addresses, set by lanes() before a call: either the fixed copy layout
// in a scratch memory, or the lanes of a TupleBatch that lives in this
// module's (imported, shared) memory, which needs no copy at all.
let SADDR: usize = 0;
let DADDR: usize = 0;
let L4A: usize = 0;
let L4B: usize = 0;
let OUT: usize = 0;
let FAMILY: usize = 0;
let L4FLAGS: usize = 0;
let PROTO: usize = 0;
let FLAGS: usize = 0;

/** Points the kernels at the lanes (byte addresses of packet 0 of the range) and the output area. */
export function lanes(saddr: usize, daddr: usize, l4a: usize, l4b: usize, out: usize, family: usize, l4flags: usize, proto: usize, flags: usize): void {
  SADDR = saddr; DADDR = daddr; L4A = l4a; L4B = l4b; OUT = out;
  FAMILY = family; L4FLAGS = l4flags; PROTO = proto; FLAGS = flags;
}

// Bits of the batch lanes (sim/traffic/batch.ts F and L4).
const F_REPLY = 0x80;
const L4_HAS4 = 0x01;
const L4_CT_INVALID = 0x04;

/** Rotate left; by a multiple of 8 it is one byte shuffle instead of shift, shift, or. */
@inline function rol(x: v128, k: i32): v128 {
  if (k == 8) return i8x16.shuffle(x, x, 3, 0, 1, 2, 7, 4, 5, 6, 11, 8, 9, 10, 15, 12, 13, 14);
  if (k == 16) return i8x16.shuffle(x, x, 2, 3, 0, 1, 6, 7, 4, 5, 10, 11, 8, 9, 14, 15, 12, 13);
  if (k == 24) return i8x16.shuffle(x, x, 1, 2, 3, 0, 5, 6, 7, 4, 9, 10, 11, 8, 13, 14, 15, 12);
  return v128.or(i32x4.shl(x, k), i32x4.shr_u(x, 32 - k));
}

/** bswap16 of the low 16 bits of each lane (high bits must be 0). */
@inline function bswap16(x: v128): v128 {
  return v128.or(i32x4.shr_u(x, 8), v128.and(i32x4.shl(x, 8), i32x4.splat(0xff00)));
}

/** bswap32 of each lane. */
@inline function bswap32(x: v128): v128 {
  return i8x16.shuffle(x, x, 3, 2, 1, 0, 7, 6, 5, 4, 11, 10, 9, 8, 15, 14, 13, 12);
}

/**
 * reciprocal_scale(h, n) = ((u64)h * n) >> 32 for any u32 n: two widening
 * 32x32->64 multiplies and a shuffle that keeps each product's high word.
 */
@inline function reduce(c: v128, n: v128): v128 {
  const lo = i64x2.extmul_low_i32x4_u(c, n);
  const hi = i64x2.extmul_high_i32x4_u(c, n);
  return i8x16.shuffle(lo, hi, 4, 5, 6, 7, 12, 13, 14, 15, 20, 21, 22, 23, 28, 29, 30, 31);
}

/** lookup3 final() on (a, b, c), returns c. */
/**
 * final3 for a one-word key, where b and c start as the same constant s: the
 * first step (c ^= b; c -= rol(b, 14)) and rol(c, 11) are constants, c0 and
 * rc0, computed once per call by the caller.
 */
@inline function final3OneWord(a: v128, s: v128, c0: v128, rc0: v128): v128 {
  let b = s, c = c0;
  a = v128.xor(a, c); a = i32x4.sub(a, rc0);
  b = v128.xor(b, a); b = i32x4.sub(b, rol(a, 25));
  c = v128.xor(c, b); c = i32x4.sub(c, rol(b, 16));
  a = v128.xor(a, c); a = i32x4.sub(a, rol(c, 4));
  b = v128.xor(b, a); b = i32x4.sub(b, rol(a, 14));
  c = v128.xor(c, b); c = i32x4.sub(c, rol(b, 24));
  return c;
}

@inline function c0Of(s: i32): i32 { return 0 - rotl<i32>(s, 14); }

@inline function final3(a: v128, b: v128, c: v128): v128 {
  c = v128.xor(c, b); c = i32x4.sub(c, rol(b, 14));
  a = v128.xor(a, c); a = i32x4.sub(a, rol(c, 11));
  b = v128.xor(b, a); b = i32x4.sub(b, rol(a, 25));
  c = v128.xor(c, b); c = i32x4.sub(c, rol(b, 16));
  a = v128.xor(a, c); a = i32x4.sub(a, rol(c, 4));
  b = v128.xor(b, a); b = i32x4.sub(b, rol(a, 14));
  c = v128.xor(c, b); c = i32x4.sub(c, rol(b, 24));
  return c;
}


/** Lanes 4q..4q+3 of a byte mask (0 or 0xff per packet) as four i32 masks (0 or -1). */
@inline function widen(m: v128, q: i32): v128 {
  const h = q < 2 ? i16x8.extend_low_i8x16_s(m) : i16x8.extend_high_i8x16_s(m);
  return (q & 1) == 0 ? i32x4.extend_low_i16x8_s(h) : i32x4.extend_high_i16x8_s(h);
}

@inline function bitSet8(x: v128, bit: i32): v128 {
  return v128.not(i8x16.eq(v128.and(x, i8x16.splat(<i8>bit)), i8x16.splat(0)));
}

@inline function is8(x: v128, v: i32): v128 {
  return i8x16.eq(x, i8x16.splat(<i8>v));
}

/** One CLUSTERIP quarter: 4 packets starting at byte offset o4 of the u32 lanes. */
@inline function clusteripQuarter(o4: usize, mode: i32, little: i32, vs: v128, vn: v128, c0: v128, rc0: v128, ok: v128, useA: v128, rest: v128): void {
  const a = i32x4.add(v128.load(SADDR + o4), vs);
  let b = vs, c = vs;
  if (mode > 0) {
    const w = v128.and(v128.load(L4A + o4), useA);
    let sp = i32x4.shr_u(w, 16);
    let dp = v128.and(w, i32x4.splat(0xffff));
    if (little) { sp = bswap16(sp); dp = bswap16(dp); }
    b = i32x4.add(sp, vs);
    if (mode > 1) c = i32x4.add(dp, vs);
  }
  const h = mode == 0 ? final3OneWord(a, vs, c0, rc0) : final3(a, b, c);
  const r = reduce(h, vn);
  const r2 = mode > 0 ? v128.bitselect(i32x4.splat(-3), r, rest) : r;
  v128.store(OUT + o4, v128.bitselect(r2, i32x4.splat(-1), ok));
}

/**
 * CLUSTERIP era D: mode 0 sourceip, 1 + sourceport, 2 + destport.
 * s = hash_init + 0xdeadbeef + 4 * words; little = CPU byte order.
 * AH (ports at L4 offset 4) and packets without their port bytes are rare:
 * they get -3 and the caller's TypeScript answers them (so the lanes they
 * need, l4b and flags, are never copied in). Returns how many there were.
 */
export function clusterip(count: i32, mode: i32, s: i32, n: i32, little: i32): i32 {
  // One loop per mode and byte order (the mode and order fold away in each).
  if (mode == 0) return clusteripLoop(count, 0, s, n, 1);
  if (little) return mode == 1 ? clusteripLoop(count, 1, s, n, 1) : clusteripLoop(count, 2, s, n, 1);
  return mode == 1 ? clusteripLoop(count, 1, s, n, 0) : clusteripLoop(count, 2, s, n, 0);
}

@inline function clusteripLoop(count: i32, mode: i32, s: i32, n: i32, little: i32): i32 {
  const vs = i32x4.splat(s);
  const vn = i32x4.splat(n);
  const c0 = i32x4.splat(c0Of(s)), rc0 = i32x4.splat(rotl<i32>(c0Of(s), 11));
  let left = 0;
  for (let i: i32 = 0; i < count; i += 16) {
    const o1 = <usize>i;
    const o4 = <usize>i << 2;
    const lf = v128.load(L4FLAGS + o1);
    const ok = v128.andnot(is8(v128.load(FAMILY + o1), 4), bitSet8(lf, L4_CT_INVALID));
    let useA = ok, rest = i8x16.splat(0);
    if (mode > 0) {
      const p = v128.load(PROTO + o1);
      // proto_ports_offset(): bytes 0-3 for TCP, UDP, DCCP, ESP, SCTP, UDP-Lite; 4-7 (the SPI) for AH.
      const first = v128.or(v128.or(v128.or(is8(p, 6), is8(p, 17)), v128.or(is8(p, 33), is8(p, 50))), v128.or(is8(p, 132), is8(p, 136)));
      const has4 = bitSet8(lf, L4_HAS4);
      useA = v128.and(first, has4);
      rest = v128.and(ok, v128.or(is8(p, 51), v128.andnot(first, has4)));
      left += popcnt(i8x16.bitmask(rest));
    }
    clusteripQuarter(o4, mode, little, vs, vn, c0, rc0, widen(ok, 0), widen(useA, 0), widen(rest, 0));
    clusteripQuarter(o4 + 16, mode, little, vs, vn, c0, rc0, widen(ok, 1), widen(useA, 1), widen(rest, 1));
    clusteripQuarter(o4 + 32, mode, little, vs, vn, c0, rc0, widen(ok, 2), widen(useA, 2), widen(rest, 2));
    clusteripQuarter(o4 + 48, mode, little, vs, vn, c0, rc0, widen(ok, 3), widen(useA, 3), widen(rest, 3));
  }
  return left;
}

@inline function xtQuarter(o4: usize, little: i32, vk: v128, vn: v128, c0: v128, rc0: v128, ok: v128, v6: v128, reply: v128): void {
  let addr = v128.bitselect(v128.load(DADDR + o4), v128.load(SADDR + o4), reply);
  if (little) addr = bswap32(addr);
  const r = reduce(final3OneWord(i32x4.add(addr, vk), vk, c0, rc0), vn);
  v128.store(OUT + o4, v128.bitselect(r, v128.bitselect(i32x4.splat(-3), i32x4.splat(-1), v6), ok));
}

/**
 * xt_cluster, IPv4, 4.1+ jhash: jhash_1word(address as CPU word, seed), the
 * conntrack's original source (daddr for replies). k = seed + 0xdeadbeef + 4.
 * IPv6 packets get -3 (the caller hashes them); returns how many there were.
 */
export function xtCluster(count: i32, k: i32, n: i32, little: i32): i32 {
  const vk = i32x4.splat(k);
  const vn = i32x4.splat(n);
  const c0 = i32x4.splat(c0Of(k)), rc0 = i32x4.splat(rotl<i32>(c0Of(k), 11));
  let v6n = 0;
  for (let i: i32 = 0; i < count; i += 16) {
    const o1 = <usize>i;
    const o4 = <usize>i << 2;
    const fam = v128.load(FAMILY + o1);
    const valid = v128.not(bitSet8(v128.load(L4FLAGS + o1), L4_CT_INVALID));
    const ok = v128.and(is8(fam, 4), valid);
    const v6 = v128.and(is8(fam, 6), valid);
    v6n += popcnt(i8x16.bitmask(v6));
    const reply = bitSet8(v128.load(FLAGS + o1), F_REPLY);
    xtQuarter(o4, little, vk, vn, c0, rc0, widen(ok, 0), widen(v6, 0), widen(reply, 0));
    xtQuarter(o4 + 16, little, vk, vn, c0, rc0, widen(ok, 1), widen(v6, 1), widen(reply, 1));
    xtQuarter(o4 + 32, little, vk, vn, c0, rc0, widen(ok, 2), widen(v6, 2), widen(reply, 2));
    xtQuarter(o4 + 48, little, vk, vn, c0, rc0, widen(ok, 3), widen(v6, 3), widen(reply, 3));
  }
  return v6n;
}

// Key word sources for nft (the caller maps sim/select/nft.ts's field codes to these).
const W_S = 1;
const W_D = 2;
const W_CTS = 3;
const W_CTD = 4;
const W_SP = 5;
const W_DP = 6;

/** Key word from its source code: a branch on a loop-invariant scalar, predicted every time. */
@inline function keyWord(code: i32, S: v128, D: v128, CS: v128, CD: v128, P: v128, Q: v128): v128 {
  if (code == W_S) return S;
  if (code == W_D) return D;
  if (code == W_SP) return P;
  if (code == W_DP) return Q;
  if (code == W_CTS) return CS;
  if (code == W_CTD) return CD;
  return i32x4.splat(0);
}

@inline function nftQuarter(o4: usize, nwords: i32, w0: i32, w1: i32, w2: i32, w3: i32, vinit: v128, vn: v128, c0: v128, rc0: v128, needS: i32, needD: i32, needL4: i32, needCt: i32, ok: v128, rest: v128, reply: v128): void {
  let S = i32x4.splat(0), D = i32x4.splat(0);
  if (needS) S = bswap32(v128.load(SADDR + o4));
  if (needD) D = bswap32(v128.load(DADDR + o4));
  let CS = S, CD = D;
  if (needCt) {
    CS = v128.bitselect(D, S, reply);
    CD = v128.bitselect(S, D, reply);
  }
  let P = i32x4.splat(0), Q = i32x4.splat(0);
  if (needL4) {
    const w = v128.load(L4A + o4);
    P = bswap16(i32x4.shr_u(w, 16));
    Q = bswap16(v128.and(w, i32x4.splat(0xffff)));
  }
  let a = i32x4.add(vinit, keyWord(w0, S, D, CS, CD, P, Q));
  let b = vinit, c = vinit;
  if (nwords > 1) b = i32x4.add(b, keyWord(w1, S, D, CS, CD, P, Q));
  if (nwords > 2) c = i32x4.add(c, keyWord(w2, S, D, CS, CD, P, Q));
  if (nwords == 4) {
    // 16-byte key: the first 12 bytes through jhash's block loop, the last 4 as the tail.
    a = i32x4.sub(a, c); a = v128.xor(a, rol(c, 4)); c = i32x4.add(c, b);
    b = i32x4.sub(b, a); b = v128.xor(b, rol(a, 6)); a = i32x4.add(a, c);
    c = i32x4.sub(c, b); c = v128.xor(c, rol(b, 8)); b = i32x4.add(b, a);
    a = i32x4.sub(a, c); a = v128.xor(a, rol(c, 16)); c = i32x4.add(c, b);
    b = i32x4.sub(b, a); b = v128.xor(b, rol(a, 19)); a = i32x4.add(a, c);
    c = i32x4.sub(c, b); c = v128.xor(c, rol(b, 4)); b = i32x4.add(b, a);
    a = i32x4.add(a, keyWord(w3, S, D, CS, CD, P, Q));
  }
  const r = reduce(nwords == 1 ? final3OneWord(a, vinit, c0, rc0) : final3(a, b, c), vn);
  v128.store(OUT + o4, v128.bitselect(r, v128.bitselect(i32x4.splat(-3), i32x4.splat(-1), rest), ok));
}

/**
 * nft jhash over an IPv4 key of 1-4 words (little-endian CPU, or <= 12 bytes
 * on any): w0..w3 name each word's source (W_*), init = 0xdeadbeef + len + seed.
 * needV4: an address is hashed (else any IPv4/IPv6 packet); proto: what the
 * ports imply (-1: none); needL4: ports are hashed; needCt: a ct key.
 * Packets whose port bytes are missing are rare: -3, the caller answers them
 * (so `flags` is copied in only for ct keys). Returns how many there were.
 */
export function nft(count: i32, nwords: i32, w0: i32, w1: i32, w2: i32, w3: i32, init: i32, mod: i32,
  needV4: i32, proto: i32, needL4: i32, needCt: i32): i32 {
  // The common shapes get loops of their own, with the shape folded in.
  if (!needCt) {
    if (nwords == 1 && !needL4 && needV4 && proto < 0) {
      if (w0 == W_S) return nftLoop(count, 1, W_S, 0, 0, 0, init, mod, 1, -1, 0, 0);
      if (w0 == W_D) return nftLoop(count, 1, W_D, 0, 0, 0, init, mod, 1, -1, 0, 0);
    }
    if (nwords == 3 && needL4 && needV4 && w0 == W_S && w1 == W_SP && w2 == W_DP) return nftLoop(count, 3, W_S, W_SP, W_DP, 0, init, mod, 1, proto, 1, 0);
    if (nwords == 4 && needL4 && needV4 && w0 == W_S && w1 == W_D && w2 == W_SP && w3 == W_DP) return nftLoop(count, 4, W_S, W_D, W_SP, W_DP, init, mod, 1, proto, 1, 0);
  }
  return nftLoop(count, nwords, w0, w1, w2, w3, init, mod, needV4, proto, needL4, needCt);
}

@inline function nftLoop(count: i32, nwords: i32, w0: i32, w1: i32, w2: i32, w3: i32, init: i32, mod: i32,
  needV4: i32, proto: i32, needL4: i32, needCt: i32): i32 {
  const vinit = i32x4.splat(init);
  const vn = i32x4.splat(mod);
  const c0 = i32x4.splat(c0Of(init)), rc0 = i32x4.splat(rotl<i32>(c0Of(init), 11));
  let needS = 0, needD = 0;
  for (let k = 0; k < nwords; k++) {
    const w = k == 0 ? w0 : k == 1 ? w1 : k == 2 ? w2 : w3;
    if (w == W_S || w == W_CTS || w == W_CTD) needS = 1;
    if (w == W_D || w == W_CTS || w == W_CTD) needD = 1;
  }
  let left = 0;
  for (let i: i32 = 0; i < count; i += 16) {
    const o1 = <usize>i;
    const o4 = <usize>i << 2;
    const fam = v128.load(FAMILY + o1);
    let ok = needV4 ? is8(fam, 4) : v128.or(is8(fam, 4), is8(fam, 6));
    if (proto >= 0) ok = v128.and(ok, is8(v128.load(PROTO + o1), proto));
    let reply = i8x16.splat(0);
    if (needCt || needL4) {
      const lf = v128.load(L4FLAGS + o1);
      if (needCt) {
        ok = v128.andnot(ok, bitSet8(lf, L4_CT_INVALID));
        reply = bitSet8(v128.load(FLAGS + o1), F_REPLY);
      }
      let rest = i8x16.splat(0);
      if (needL4) {
        rest = v128.andnot(ok, bitSet8(lf, L4_HAS4));
        ok = v128.andnot(ok, rest);
        left += popcnt(i8x16.bitmask(rest));
      }
      nftQuarter(o4, nwords, w0, w1, w2, w3, vinit, vn, c0, rc0, needS, needD, needL4, needCt, widen(ok, 0), widen(rest, 0), widen(reply, 0));
      nftQuarter(o4 + 16, nwords, w0, w1, w2, w3, vinit, vn, c0, rc0, needS, needD, needL4, needCt, widen(ok, 1), widen(rest, 1), widen(reply, 1));
      nftQuarter(o4 + 32, nwords, w0, w1, w2, w3, vinit, vn, c0, rc0, needS, needD, needL4, needCt, widen(ok, 2), widen(rest, 2), widen(reply, 2));
      nftQuarter(o4 + 48, nwords, w0, w1, w2, w3, vinit, vn, c0, rc0, needS, needD, needL4, needCt, widen(ok, 3), widen(rest, 3), widen(reply, 3));
    } else {
      const z = i32x4.splat(0);
      nftQuarter(o4, nwords, w0, w1, w2, w3, vinit, vn, c0, rc0, needS, needD, 0, 0, widen(ok, 0), z, z);
      nftQuarter(o4 + 16, nwords, w0, w1, w2, w3, vinit, vn, c0, rc0, needS, needD, 0, 0, widen(ok, 1), z, z);
      nftQuarter(o4 + 32, nwords, w0, w1, w2, w3, vinit, vn, c0, rc0, needS, needD, 0, 0, widen(ok, 2), z, z);
      nftQuarter(o4 + 48, nwords, w0, w1, w2, w3, vinit, vn, c0, rc0, needS, needD, 0, 0, widen(ok, 3), z, z);
    }
  }
  return left;
}
