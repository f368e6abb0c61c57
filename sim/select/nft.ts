/**
 * nftables `jhash` and `symhash` (net/netfilter/nft_hash.c, since 4.9),
 * kernel-semantics §6.
 *
 *   result = reciprocal_scale(jhash(key, len, seed), mod) + offset
 *
 * The key is the concatenation's register contents: each field in network byte
 * order, padded with zero bytes to a multiple of 4; `len` is the padded total.
 * Keys up to 12 bytes hash the same on every CPU; longer ones load their
 * 12-byte blocks as native words (byte-order dependent).
 */
import { F, L4, FAMILY_IPV4, FAMILY_IPV6, type TupleBatch } from '../traffic/batch.ts';
import { final3, JHASH_INITVAL } from '../hash/lookup3.ts';
import { MULSHIFT_FAST_MAX, multiplyShift } from '../hash/reduce.ts';
import { UsageError } from '../core/errors.ts';
import { endianFact, resolveProfile, type Fact } from './profile.ts';
import { bswap32Src, compileSelect, FINAL3, MIX3 } from './compile.ts';
import { wasmFor, wasmSelect, type SelectorOptions } from './wasm.ts';
import { parseNftHash, type NftFieldKind } from './nft-expr.ts';
import { NO_BUCKET, UNKNOWN_BUCKET, bswap32, type Selector, type SelectorSpec } from './selector.ts';

type NftSpec = Extract<SelectorSpec, { backend: 'nft' }>;

/** Field codes for the hot loop. */
const enum K { SADDR4, DADDR4, SADDR6, DADDR6, SPORT, DPORT, CT_SADDR4, CT_DADDR4, CT_SADDR6, CT_DADDR6 }

const CODE: Record<NftFieldKind, K> = {
  'ip saddr': K.SADDR4, 'ip daddr': K.DADDR4, 'ip6 saddr': K.SADDR6, 'ip6 daddr': K.DADDR6,
  'tcp sport': K.SPORT, 'udp sport': K.SPORT, 'th sport': K.SPORT,
  'tcp dport': K.DPORT, 'udp dport': K.DPORT, 'th dport': K.DPORT,
  'ct original ip saddr': K.CT_SADDR4, 'ct original ip daddr': K.CT_DADDR4,
  'ct original ip6 saddr': K.CT_SADDR6, 'ct original ip6 daddr': K.CT_DADDR6,
};

/** `reference: true` forces the general loop (tests hold the fast path against it). */
export function nftSelector(spec: NftSpec, opts: SelectorOptions = {}): Selector {
  const profile = resolveProfile(spec.kernel, spec.endian);
  if (!profile.nftHash) throw new UsageError(`--backend nft --kernel ${spec.kernel}: the nft hash expression arrived in Linux 4.9`);
  const expr = parseNftHash(spec.expr);
  const mod = expr.mod;
  const offset = expr.offset;
  const facts: Fact[] = [...profile.jhashFacts];
  for (const w of expr.warnings) facts.push({ topic: 'nft', evidence: 'source', note: w });

  if (expr.kind === 'symhash') {
    facts.push({ topic: 'symhash', evidence: 'unverified', note: 'stand-in hash: symmetric and uniform like the kernel\'s (measured 6.18.44), but the kernel\'s values depend on a per-boot siphash key and cannot be predicted' });
    return {
      spec, backend: 'nft', buckets: mod, offset, profile, facts, predictable: false,
      description: `nft ${expr.text} (stand-in values), kernel ${profile.label}`,
      select: symhashSelect(mod),
    };
  }

  const codes = expr.fields.map((f) => CODE[f.kind]);
  const nwords = expr.keyLength >>> 2;
  const needV4 = expr.fields.some((f) => f.kind.includes('ip '));
  const needV6 = expr.fields.some((f) => f.kind.includes('ip6 '));
  const l4 = expr.fields.find((f) => f.kind.startsWith('tcp') || f.kind.startsWith('udp'));
  const needProto = l4 ? (l4.kind.startsWith('tcp') ? 6 : 17) : -1;
  const needL4 = expr.fields.some((f) => f.kind.endsWith('port'));
  const needCt = expr.fields.some((f) => f.kind.startsWith('ct '));
  const little = spec.endian === 'little';
  const seed = expr.seed | 0;
  const init = (JHASH_INITVAL + expr.keyLength + seed) | 0;
  const fast = mod < MULSHIFT_FAST_MAX;
  const key = new Int32Array(nwords + 3);

  facts.push(
    expr.keyLength > 12
      ? !needV6
        ? { topic: 'nft key > 12 bytes', evidence: spec.endian === 'little' ? 'measured 6.18.44' : 'measured 6.1.176 s390x', note: `the ${expr.keyLength}-byte key runs jhash's block loop with native loads (measured for 16-byte IPv4 keys)` }
        : { topic: 'nft key > 12 bytes', evidence: 'source', note: `the ${expr.keyLength}-byte key runs jhash's block loop with native loads; IPv6 keys were not measured` }
      : { topic: 'nft key', evidence: 'measured 6.18.44', note: `${expr.keyLength}-byte key, zero-padded fields, multiply-shift; byte-order independent` },
  );
  if (expr.keyLength > 12) {
    const ef = endianFact(profile, 'nft keys longer than 12 bytes load 12-byte blocks as native words', needV6);
    if (ef) facts.push(ef);
  }

  const description = `nft ${expr.text}, kernel ${profile.label}`;
  // Fast path: IPv4 keys of up to 16 bytes (every IPv4 concatenation without a
  // repeated field), where the key bytes do not depend on the CPU's byte order
  // (<= 12 bytes) or the CPU is little-endian.
  if (!opts.reference && !needV6 && nwords <= 4 && (nwords <= 3 || little)) {
    const m = wasmFor(opts);
    const W: Partial<Record<K, number>> = { [K.SADDR4]: 1, [K.DADDR4]: 2, [K.CT_SADDR4]: 3, [K.CT_DADDR4]: 4, [K.SPORT]: 5, [K.DPORT]: 6 };
    const w = [0, 1, 2, 3].map((k) => (k < codes.length ? W[codes[k]!]! : 0));
    const ts = ipv4KeySelect(codes, nwords, needV4, needProto, needL4, needCt, init, mod);
    const has = (...k: K[]): boolean => codes.some((c) => k.includes(c));
    const fast4 = m
      ? wasmSelect(m, { saddr: has(K.SADDR4, K.CT_SADDR4, K.CT_DADDR4), daddr: has(K.DADDR4, K.CT_SADDR4, K.CT_DADDR4), l4a: needL4, proto: needProto >= 0, flags: needCt },
        (x, count) => x.nft(count, nwords, w[0]!, w[1]!, w[2]!, w[3]!, init, mod, needV4 ? 1 : 0, needProto, needL4 ? 1 : 0, needCt ? 1 : 0), ts)
      : ts;
    return { spec, backend: 'nft', buckets: mod, offset, profile, facts, predictable: true, description, select: fast4 };
  }

  const select = (b: TupleBatch, out: Int32Array, start = 0, end = b.count): void => {
    const { family, proto, flags, l4flags, saddr, daddr, saddr6, daddr6, l4a } = b;
    for (let i = start; i < end; i++) {
      const fam = family[i]!;
      const fl = flags[i]!;
      const lf = l4flags[i]!;
      // Each unmet dependency makes the payload/ct expression break the rule: no value.
      if ((needV4 && fam !== FAMILY_IPV4) || (needV6 && fam !== FAMILY_IPV6) || (fam !== FAMILY_IPV4 && fam !== FAMILY_IPV6)) { out[i] = NO_BUCKET; continue; }
      if (needProto >= 0 && proto[i] !== needProto) { out[i] = NO_BUCKET; continue; }
      if (needCt && (lf & L4.CT_INVALID) !== 0) { out[i] = NO_BUCKET; continue; }
      if (needL4 && (lf & L4.HAS4) === 0) { out[i] = (fl & F.TRUNCATED) !== 0 ? UNKNOWN_BUCKET : NO_BUCKET; continue; }
      const reply = (fl & F.REPLY) !== 0;
      // Build the key as little-endian words of its bytes.
      let w = 0;
      for (let f = 0; f < codes.length; f++) {
        switch (codes[f]) {
          case K.SADDR4: key[w++] = bswap32(saddr[i]!); break;
          case K.DADDR4: key[w++] = bswap32(daddr[i]!); break;
          case K.CT_SADDR4: key[w++] = bswap32(reply ? daddr[i]! : saddr[i]!); break;
          case K.CT_DADDR4: key[w++] = bswap32(reply ? saddr[i]! : daddr[i]!); break;
          case K.SADDR6: case K.DADDR6: case K.CT_SADDR6: case K.CT_DADDR6: {
            const c = codes[f]!;
            const src = c === K.SADDR6 || (c === K.CT_SADDR6 && !reply) || (c === K.CT_DADDR6 && reply) ? saddr6 : daddr6;
            const j = i << 2;
            key[w++] = bswap32(src[j]!); key[w++] = bswap32(src[j + 1]!); key[w++] = bswap32(src[j + 2]!); key[w++] = bswap32(src[j + 3]!);
            break;
          }
          case K.SPORT: { const p = l4a[i]! >>> 16; key[w++] = (p >>> 8) | ((p & 0xff) << 8); break; }
          case K.DPORT: { const p = l4a[i]! & 0xffff; key[w++] = (p >>> 8) | ((p & 0xff) << 8); break; }
        }
      }
      key[w] = 0; key[w + 1] = 0; key[w + 2] = 0;
      let a = init, bb = init, c = init;
      let p = 0;
      let rest = nwords;
      while (rest > 3) {
        // Block loop: native loads. On big-endian the word is the byte-swapped LE word.
        a = (a + (little ? key[p]! : bswap32(key[p]!))) | 0;
        bb = (bb + (little ? key[p + 1]! : bswap32(key[p + 1]!))) | 0;
        c = (c + (little ? key[p + 2]! : bswap32(key[p + 2]!))) | 0;
        a = (a - c) | 0; a ^= (c << 4) | (c >>> 28); c = (c + bb) | 0;
        bb = (bb - a) | 0; bb ^= (a << 6) | (a >>> 26); a = (a + c) | 0;
        c = (c - bb) | 0; c ^= (bb << 8) | (bb >>> 24); bb = (bb + a) | 0;
        a = (a - c) | 0; a ^= (c << 16) | (c >>> 16); c = (c + bb) | 0;
        bb = (bb - a) | 0; bb ^= (a << 19) | (a >>> 13); a = (a + c) | 0;
        c = (c - bb) | 0; c ^= (bb << 4) | (bb >>> 28); bb = (bb + a) | 0;
        p += 3;
        rest -= 3;
      }
      // Tail (1..3 words): explicit little-endian composition on every CPU.
      a = (a + key[p]!) | 0;
      bb = (bb + key[p + 1]!) | 0;
      c = (c + key[p + 2]!) | 0;
      const h = final3(a, bb, c);
      out[i] = fast ? ((h * mod) / 4294967296) | 0 : multiplyShift(h, mod);
    }
  };
  return { spec, backend: 'nft', buckets: mod, offset, profile, facts, predictable: true, description, select };
}

/**
 * Compiles the loop for one IPv4 key of up to 16 bytes into its own function
 * (`new Function` over source built here from numbers only, never from user
 * text), so that each rule gets a monomorphic loop with its key layout and
 * constants inlined: a closure shared by every nft rule would be optimised
 * for the first one and deoptimised by the next (measured: 158 -> 62 M/s).
 *
 * Key word k is the little-endian word of register bytes 4k..4k+3: an address
 * as network-order bytes (= bswap32 of the number), or a port as 2
 * network-order bytes plus 2 zero bytes of padding (kernel-semantics §6.1).
 */
function ipv4KeySelect(codes: readonly K[], nwords: number, needV4: boolean, needProto: number, needL4: boolean, needCt: boolean, init: number, mod: number): Selector['select'] {
  const word = (k: number): string => {
    switch (codes[k]) {
      case K.SADDR4: return 'S';
      case K.DADDR4: return 'D';
      case K.CT_SADDR4: return '(reply ? D : S)';
      case K.CT_DADDR4: return '(reply ? S : D)';
      case K.SPORT: return '((w >>> 24) | ((w >>> 8) & 0xff00))';
      case K.DPORT: return '(((w >>> 8) & 0xff) | ((w & 0xff) << 8))';
      default: return '0';
    }
  };
  const uses = (re: RegExp): boolean => codes.some((_, k) => re.test(word(k)));
  const needS = uses(/S/), needD = uses(/D/);
  const add = (v: string, k: number): string => (k < codes.length ? `${v} = (${v} + ${word(k)}) | 0;` : '');
  const body = `
    ${needV4 ? `if (family[i] !== ${FAMILY_IPV4}) { out[i] = ${NO_BUCKET}; continue; }`
    // Ports alone: any IP packet of the protocol (th: any protocol).
    : `if (family[i] !== ${FAMILY_IPV4} && family[i] !== ${FAMILY_IPV6}) { out[i] = ${NO_BUCKET}; continue; }`}
    ${needProto >= 0 ? `if (proto[i] !== ${needProto}) { out[i] = ${NO_BUCKET}; continue; }` : ''}
    ${needCt || needL4 ? 'const lf = l4flags[i];' : ''}
    ${needCt ? `if ((lf & ${L4.CT_INVALID}) !== 0) { out[i] = ${NO_BUCKET}; continue; }` : ''}
    ${needL4 ? `if ((lf & ${L4.HAS4}) === 0) { out[i] = (flags[i] & ${F.TRUNCATED}) !== 0 ? ${UNKNOWN_BUCKET} : ${NO_BUCKET}; continue; }` : ''}
    ${needS ? `const sa = saddr[i]; const S = ${bswap32Src('sa')};` : ''}
    ${needD ? `const da = daddr[i]; const D = ${bswap32Src('da')};` : ''}
    ${needCt ? `const reply = (flags[i] & ${F.REPLY}) !== 0;` : ''}
    ${needL4 ? 'const w = l4a[i];' : ''}
    let a = ${init | 0}, bb = ${init | 0}, c = ${init | 0};
    ${add('a', 0)} ${add('bb', 1)} ${add('c', 2)}
    ${nwords === 4 ? `${MIX3} ${add('a', 3)}` : ''}
    ${FINAL3}`;
  return compileSelect('nftIpv4Key', ['family', 'proto', 'flags', 'l4flags', 'saddr', 'daddr', 'l4a'], body, mod);
}
/**
 * A stand-in for the flow dissector's symmetric hash: endpoints sorted (address,
 * then port) so that a flow and its reverse agree, mixed with lookup3, reduced
 * by multiply-shift. Uniform and symmetric like the kernel's; never its values.
 */
function symhashSelect(mod: number) {
  const fast = mod < MULSHIFT_FAST_MAX;
  return (b: TupleBatch, out: Int32Array, start = 0, end = b.count): void => {
    const { family, saddr, daddr, saddr6, daddr6, sport, dport, proto } = b;
    for (let i = start; i < end; i++) {
      let x: number, y: number;
      if (family[i] === FAMILY_IPV6) {
        const j = i << 2;
        x = (saddr6[j]! ^ saddr6[j + 1]! ^ saddr6[j + 2]! ^ saddr6[j + 3]!) >>> 0;
        y = (daddr6[j]! ^ daddr6[j + 1]! ^ daddr6[j + 2]! ^ daddr6[j + 3]!) >>> 0;
      } else if (family[i] === FAMILY_IPV4) {
        x = saddr[i]!; y = daddr[i]!;
      } else { out[i] = NO_BUCKET; continue; }
      let ps = sport[i]!, pd = dport[i]!;
      if (x > y || (x === y && ps > pd)) { const t = x; x = y; y = t; const u = ps; ps = pd; pd = u; }
      const h = final3((x + 0x5bd1e995) | 0, (y + 0x5bd1e995) | 0, (((ps << 16) | pd) ^ (proto[i]! << 8)) | 0);
      out[i] = fast ? ((h * mod) / 4294967296) | 0 : multiplyShift(h, mod);
    }
  };
}
