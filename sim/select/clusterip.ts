/**
 * The iptables CLUSTERIP target's bucket choice (net/ipv4/netfilter/ipt_CLUSTERIP.c,
 * removed in 6.3), per kernel era and CPU byte order. kernel-semantics §4.1.
 *
 *   words = [ntohl(saddr)] (+ sport word) (+ dport word)
 *   hash  = jhash_{1,2,3}word(words, hash_init)      (era's jhash flavour)
 *   node  = reduce(hash, total_nodes) + 1              (% before ~2.6.25, multiply-shift after)
 *
 * The destination address is never hashed (measured 6.1.192), and the hash is
 * recomputed from each packet, not from its conntrack.
 */
import { F, L4, FAMILY_IPV4, type TupleBatch } from '../traffic/batch.ts';
import { GOLDEN_RATIO } from '../hash/lookup2.ts';
import { JHASH_INITVAL } from '../hash/lookup3.ts';
import { UsageError } from '../core/errors.ts';
import { endianFact, resolveProfile, type ClusteripEra, type Fact } from './profile.ts';
import { compileSelect, FINAL3 } from './compile.ts';
import { wasmFor, wasmSelect, type SelectorOptions } from './wasm.ts';
import { CLUSTERIP_MODES, NO_BUCKET, UNKNOWN_BUCKET, bswap16, type Selector, type SelectorSpec } from './selector.ts';

import { CLUSTERIP_MAX_NODES } from '../core/spec.ts';

type ClusteripSpec = Extract<SelectorSpec, { backend: 'clusterip' }>;

/** Reusable per-thread scratch for the port words (grown on demand, never per batch). */
let w1s = new Uint32Array(0);
let w2s = new Uint32Array(0);
function scratch(n: number): void {
  if (w1s.length < n) {
    w1s = new Uint32Array(n);
    w2s = new Uint32Array(n);
  }
}

/**
 * `reference: true` forces the general two-pass path for every era, so that
 * tests can hold the fused fast path against it on arbitrary packets.
 */
export function clusteripSelector(spec: ClusteripSpec, opts: SelectorOptions = {}): Selector {
  const profile = resolveProfile(spec.kernel, spec.endian);
  const era = profile.clusterip;
  if (!era) throw new UsageError(`--backend clusterip --kernel ${spec.kernel}: ${profile.clusteripAbsent}`);
  const mode = CLUSTERIP_MODES.indexOf(spec.hashmode);
  if (mode < 0) throw new UsageError(`--hashmode: '${spec.hashmode}' is not one of ${CLUSTERIP_MODES.join(', ')}`);
  const n = spec.totalNodes;
  if (!Number.isInteger(n) || n < 0 || n > CLUSTERIP_MAX_NODES) {
    throw new UsageError(`--total-nodes: ${n} is out of range; iptables accepts 0-${CLUSTERIP_MAX_NODES} for CLUSTERIP`);
  }
  if (n === 0 && era.reduction === 'modulo') {
    throw new UsageError(`--total-nodes 0 on era ${era.id} (hash % N) would divide by zero in the kernel; use 1-${CLUSTERIP_MAX_NODES}`);
  }
  const facts: Fact[] = [...profile.jhashFacts, ...era.facts];
  if (mode > 0) {
    const f = endianFact(profile, 'CLUSTERIP port words are raw 16-bit loads, so they are the port numbers themselves rather than byte-swapped');
    if (f && era.ports !== 'ntohs-icmp') facts.push(f);
  }
  if (n === 0) facts.push({ topic: 'total nodes 0', evidence: 'measured 6.1.192', note: 'reciprocal_scale(h, 0) = 0: every packet goes to node 1' });

  const portRule = era.ports;
  const little = spec.endian === 'little';
  const iv = spec.hashInit | 0;
  const flavour = profile.jhash;
  const modulo = era.reduction === 'modulo';
  const nwords = mode + 1;

  // The measured era (D, 4.1+ jhash, multiply-shift) gets one fused loop per
  // mode: no scratch passes, constants folded. Every other era takes the
  // general two-pass path below. Both are checked against the golden vectors.
  if (!opts.reference && era.id === 'D' && flavour === 'lookup3' && !modulo) {
    const s = (iv + JHASH_INITVAL + (nwords << 2)) | 0;
    const m = wasmFor(opts);
    const ts = compileEraD(mode, s, n, little);
    const select = m ? wasmSelect(m, { saddr: true, l4a: mode > 0, proto: mode > 0 }, (x, count) => x.clusterip(count, mode, s, n, little ? 1 : 0), ts) : ts;
    const description = `CLUSTERIP ${spec.hashmode}, ${n} nodes, hash-init 0x${(spec.hashInit >>> 0).toString(16).padStart(8, '0')}, kernel ${profile.label}`;
    return { spec, backend: 'clusterip', buckets: n === 0 ? 1 : n, offset: 1, profile, description, facts, predictable: true, select };
  }

  const select = (b: TupleBatch, out: Int32Array, start = 0, end = b.count): void => {
    scratch(end);
    if (mode > 0) portWords(b, out, start, end, portRule, little);
    else for (let i = start; i < end; i++) out[i] = b.family[i] === FAMILY_IPV4 && (b.l4flags[i]! & L4.CT_INVALID) === 0 ? 0 : NO_BUCKET;
    hashLoop(b.saddr, out, start, end, mode, nwords, iv, flavour, modulo, n);
  };

  const description = `CLUSTERIP ${spec.hashmode}, ${n} nodes, hash-init 0x${(spec.hashInit >>> 0).toString(16).padStart(8, '0')}, kernel ${profile.label}`;
  return { spec, backend: 'clusterip', buckets: n === 0 ? 1 : n, offset: 1, profile, description, facts, predictable: true, select };
}

/**
 * Fills w1s/w2s with the port words of each packet and marks in `out` the
 * packets that get no answer (NO_BUCKET: not IPv4 or conntrack-INVALID, which
 * the target drops on every node, §4.2) or an unknown one (UNKNOWN_BUCKET: the
 * capture cut the bytes the kernel hashed). Everything else gets 0 in `out`.
 */
function portWords(b: TupleBatch, out: Int32Array, start: number, end: number, rule: ClusteripEra['ports'], little: boolean): void {
  const { family, proto, l4flags, l4a, l4b, flags } = b;
  for (let i = start; i < end; i++) {
    w1s[i] = 0;
    w2s[i] = 0;
    const lf = l4flags[i]!;
    if (family[i] !== FAMILY_IPV4 || (lf & L4.CT_INVALID) !== 0) {
      out[i] = NO_BUCKET;
      continue;
    }
    out[i] = 0;
    const p = proto[i]!;
    // Which 4 bytes carry the "ports", and whether they are present.
    let word = 0;
    let need = 0; // 0: protocol has no ports in this era; L4.HAS4 / L4.HAS8: the bytes it needs
    if (rule === 'proto-ports-offset') {
      // proto_ports_offset(): offset 0 for TCP, UDP, DCCP, ESP, SCTP, UDP-Lite; 4 (the SPI) for AH.
      if (p === 6 || p === 17 || p === 33 || p === 50 || p === 132 || p === 136) { need = L4.HAS4; word = l4a[i]!; }
      else if (p === 51) { need = L4.HAS8; word = l4b[i]!; }
    } else if (rule === 'raw-first4') {
      // Eras B/C: L4 bytes 0-3 for TCP, UDP, UDP-Lite, SCTP, DCCP and ICMP (type/code, checksum).
      if (p === 6 || p === 17 || p === 136 || p === 132 || p === 33 || p === 1) { need = L4.HAS4; word = l4a[i]!; }
    } else {
      // Eras A/A': numeric ports for TCP/UDP; ICMP: echo id (bytes 4-5) and (type<<8)|code.
      if (p === 6 || p === 17) { need = L4.HAS4; word = l4a[i]!; }
      else if (p === 1) {
        need = L4.HAS8;
        word = ((l4b[i]! >>> 16) << 16) | (l4a[i]! >>> 16);
      }
    }
    if (need === 0) continue; // ports 0/0 ("unknown protocol" in the kernel log)
    if ((lf & need) !== need) {
      // The bytes are not in our capture. If the capture cut them, the kernel
      // saw them: unknown. If the packet itself is that short, era D hashes
      // 0/0 (bounds-checked); eras A-C read past the header: unknown too.
      if ((flags[i]! & F.TRUNCATED) !== 0 || rule !== 'proto-ports-offset') out[i] = UNKNOWN_BUCKET;
      continue;
    }
    const hi = word >>> 16;
    const lo = word & 0xffff;
    if (rule === 'ntohs-icmp' || !little) {
      // ntohs() (era A) or a native load on a big-endian CPU: the numeric value.
      w1s[i] = hi;
      w2s[i] = lo;
    } else {
      // Native 16-bit load of network-order bytes on a little-endian CPU: port 80 -> 0x5000.
      w1s[i] = bswap16(hi);
      w2s[i] = bswap16(lo);
    }
  }
}

/**
 * Hashes [saddr, w1, w2] with the era's word function and reduces to a bucket,
 * for every packet whose `out` is still 0. The jhash rounds are written out
 * inline (calling small functions per packet costs ~1.7x, DESIGN.md).
 */
function hashLoop(
  saddr: Uint32Array, out: Int32Array, start: number, end: number,
  mode: number, nwords: number, iv: number, flavour: string, modulo: boolean, n: number,
): void {
  const w1v = w1s, w2v = w2s;
  const useW1 = mode >= 1, useW2 = mode >= 2;
  if (flavour === 'lookup3' || flavour === 'lookup3-transitional') {
    // current: a,b,c += initval + 0xdeadbeef + 4n; transitional: a,b += 0xdeadbeef, c += initval.
    const cur = flavour === 'lookup3';
    const s = (iv + JHASH_INITVAL + (nwords << 2)) | 0;
    const ka = cur ? s : JHASH_INITVAL | 0;
    const kb = ka;
    const kc = cur ? s : iv;
    for (let i = start; i < end; i++) {
      if (out[i] !== 0) continue;
      let a = (saddr[i]! + ka) | 0;
      let b = ((useW1 ? w1v[i]! : 0) + kb) | 0;
      let c = ((useW2 ? w2v[i]! : 0) + kc) | 0;
      c ^= b; c = (c - ((b << 14) | (b >>> 18))) | 0;
      a ^= c; a = (a - ((c << 11) | (c >>> 21))) | 0;
      b ^= a; b = (b - ((a << 25) | (a >>> 7))) | 0;
      c ^= b; c = (c - ((b << 16) | (b >>> 16))) | 0;
      a ^= c; a = (a - ((c << 4) | (c >>> 28))) | 0;
      b ^= a; b = (b - ((a << 14) | (a >>> 18))) | 0;
      c ^= b; c = (c - ((b << 24) | (b >>> 8))) | 0;
      const h = c >>> 0;
      out[i] = modulo ? h % n : ((h * n) / 4294967296) | 0;
    }
    return;
  }
  // lookup2: a += golden, b += golden, c += initval, then the nine-step mix.
  for (let i = start; i < end; i++) {
    if (out[i] !== 0) continue;
    let a = (saddr[i]! + GOLDEN_RATIO) | 0;
    let b = ((useW1 ? w1v[i]! : 0) + GOLDEN_RATIO) | 0;
    let c = ((useW2 ? w2v[i]! : 0) + iv) | 0;
    a = (a - b - c) | 0; a ^= c >>> 13;
    b = (b - c - a) | 0; b ^= a << 8;
    c = (c - a - b) | 0; c ^= b >>> 13;
    a = (a - b - c) | 0; a ^= c >>> 12;
    b = (b - c - a) | 0; b ^= a << 16;
    c = (c - a - b) | 0; c ^= b >>> 5;
    a = (a - b - c) | 0; a ^= c >>> 3;
    b = (b - c - a) | 0; b ^= a << 10;
    c = (c - a - b) | 0; c ^= b >>> 15;
    const h = c >>> 0;
    out[i] = modulo ? h % n : ((h * n) / 4294967296) | 0;
  }
}

/**
 * Where era D finds the "ports" per protocol (proto_ports_offset()): 1 = L4
 * bytes 0-3 (TCP, UDP, DCCP, ESP, SCTP, UDP-Lite), 2 = bytes 4-7 (AH's SPI),
 * 0 = none (hashed as 0/0: ICMP, GRE, ...).
 */
const ERA_D_PORTS = new Uint8Array(256);
for (const p of [6, 17, 33, 50, 132, 136]) ERA_D_PORTS[p] = 1;
ERA_D_PORTS[51] = 2;

/**
 * The fused era-D loop for one rule (compiled per rule, see compile.ts).
 * `s` = hash_init + 0xdeadbeef + 4 * words, which the 4.1+ word functions add
 * to a, b and c. Ports as raw 16-bit loads: byte-swapped on little-endian.
 */
function compileEraD(mode: number, s: number, n: number, little: boolean): Selector['select'] {
  const ports = mode === 0 ? '' : `
    let w = 0;
    const p = proto[i];
    // TCP with its first 4 L4 bytes is nearly every packet: no table walk for it.
    if (p === 6 && (lf & ${L4.HAS4}) !== 0) w = l4a[i];
    else {
      const k = ERA_D_PORTS[p];
      if (k !== 0) {
        const need = k === 1 ? ${L4.HAS4} : ${L4.HAS8};
        if ((lf & need) === need) w = k === 1 ? l4a[i] : l4b[i];
        // Cut by the capture: the kernel saw bytes we did not. Short by itself: 0/0.
        else if ((flags[i] & ${F.TRUNCATED}) !== 0) { out[i] = ${UNKNOWN_BUCKET}; continue; }
      }
    }
    const sp = ${little ? '(w >>> 24) | ((w >>> 8) & 0xff00)' : 'w >>> 16'};
    ${mode === 2 ? `const dp = ${little ? '((w >>> 8) & 0xff) | ((w & 0xff) << 8)' : 'w & 0xffff'};` : ''}`;
  const body = `
    const lf = l4flags[i];
    if (family[i] !== ${FAMILY_IPV4} || (lf & ${L4.CT_INVALID}) !== 0) { out[i] = ${NO_BUCKET}; continue; }
    ${ports}
    let a = (saddr[i] + ${s}) | 0;
    let bb = ${mode >= 1 ? `(sp + ${s}) | 0` : s};
    let c = ${mode >= 2 ? `(dp + ${s}) | 0` : s};
    ${FINAL3}`;
  return compileSelect(`clusteripEraD${mode}`, ['family', 'l4flags', 'saddr', 'proto', 'l4a', 'l4b', 'flags'], body, n, { ERA_D_PORTS });
}
