/**
 * The iptables `cluster` match (net/netfilter/xt_cluster.c, since 2.6.30),
 * kernel-semantics §5.
 *
 *   IPv4: hash = jhash_1word(saddr as a CPU word, seed)      no ntohl: 10.0.0.1 -> 0x0100000a on LE
 *   IPv6: hash = jhash2(address as CPU words, 1, seed): the FIRST 32 bits only.
 *         xt_cluster passes NF_CT_TUPLE_L3SIZE / sizeof(u32) as the length,
 *         and NF_CT_TUPLE_L3SIZE is already a count of u32 words (4), so the
 *         length is 1 (source: xt_cluster.c, nf_conntrack_tuple.h; measured
 *         6.18.44: 120 flows from one /32 all landed in one bucket, and the
 *         one-word hash predicts every flow of kernel-glue/ipv6.kernel.test.ts).
 *   bucket = reciprocal_scale(hash, total_nodes); node K owns bucket K-1
 *
 * The address is the conntrack's *original* source, so reply packets hash
 * their destination (measured 6.18.44). No conntrack, no match.
 */
import { F, L4, FAMILY_IPV4, FAMILY_IPV6, type TupleBatch } from '../traffic/batch.ts';
import { GOLDEN_RATIO } from '../hash/lookup2.ts';
import { final3, jhash2, JHASH_INITVAL } from '../hash/lookup3.ts';
import { jhash2Lookup2 } from '../hash/lookup2.ts';
import { UsageError } from '../core/errors.ts';
import { endianFact, resolveProfile, type Fact } from './profile.ts';
import { bswap32Src, compileSelect, FINAL3 } from './compile.ts';
import { wasmFor, wasmSelect, type SelectorOptions } from './wasm.ts';
import { NO_BUCKET, bswap32, type Selector, type SelectorSpec } from './selector.ts';

import { XT_CLUSTER_MAX_NODES } from '../core/spec.ts';

type XtSpec = Extract<SelectorSpec, { backend: 'xt_cluster' }>;

/** `reference: true` forces the general loop (tests hold the fast path against it). */
export function xtClusterSelector(spec: XtSpec, opts: SelectorOptions = {}): Selector {
  const profile = resolveProfile(spec.kernel, spec.endian);
  if (!profile.xtCluster) throw new UsageError(`--backend xt_cluster --kernel ${spec.kernel}: the cluster match arrived in Linux 2.6.30`);
  const n = spec.totalNodes;
  if (!Number.isInteger(n) || n < 1 || n > XT_CLUSTER_MAX_NODES) {
    throw new UsageError(`--total-nodes: ${n} is out of range; the cluster match takes 1-${XT_CLUSTER_MAX_NODES} nodes`);
  }
  const facts: Fact[] = [...profile.jhashFacts];
  facts.push(
    profile.jhash === 'lookup3' && spec.endian === 'little'
      ? { topic: 'xt_cluster IPv4', evidence: 'measured 6.18.44', note: 'jhash_1word(saddr as CPU word, seed), multiply-shift; every golden row matches' }
      : { topic: 'xt_cluster IPv4', evidence: 'source', note: 'jhash_1word(saddr as CPU word, seed) with this era\'s jhash; read from source only' },
    profile.jhash === 'lookup3' && spec.endian === 'little'
      ? { topic: 'xt_cluster IPv6', evidence: 'measured 6.18.44', note: 'jhash2 over the FIRST address word only (length NF_CT_TUPLE_L3SIZE / 4 = 1): sources sharing their top 32 bits share a node', scope: 'ipv6' }
      : { topic: 'xt_cluster IPv6', evidence: 'source', note: 'jhash2 over the FIRST address word only (length NF_CT_TUPLE_L3SIZE / 4 = 1); read from source for this era', scope: 'ipv6' },
  );
  const ef = endianFact(profile, 'xt_cluster hashes the address as a raw CPU word');
  if (ef) facts.push(ef);

  const little = spec.endian === 'little';
  const seed = spec.hashSeed | 0;
  const flavour = profile.jhash;
  // jhash_1word constants per flavour: a += ka, b += kb (b = 0), c += kc (c = 0).
  const ka = flavour === 'lookup3' ? (seed + JHASH_INITVAL + 4) | 0 : flavour === 'lookup3-transitional' ? JHASH_INITVAL | 0 : GOLDEN_RATIO | 0;
  const kb = ka; // b starts at the same constant as a in every flavour
  const kc = flavour === 'lookup3' ? ka : seed;
  const lookup2 = flavour === 'lookup2';
  const words = new Uint32Array(1);

  const description = `xt_cluster, ${n} nodes, hash-seed 0x${(spec.hashSeed >>> 0).toString(16).padStart(8, '0')}, kernel ${profile.label}`;
  if (!opts.reference && flavour === 'lookup3') {
    // 4.1+: one loop compiled for this rule (compile.ts); IPv6 packets go to
    // the general jhash2 code one by one.
    const v6 = (b: TupleBatch, i: number, reply: boolean): number => {
      const lanes = reply ? b.daddr6 : b.saddr6;
      const j = i << 2;
      words[0] = little ? bswap32(lanes[j]!) : lanes[j]!;
      return jhash2(words, 1, seed) | 0;
    };
    const body = `
    if ((l4flags[i] & ${L4.CT_INVALID}) !== 0) { out[i] = ${NO_BUCKET}; continue; }
    const fam = family[i];
    const reply = (flags[i] & ${F.REPLY}) !== 0;
    let c;
    if (fam === ${FAMILY_IPV4}) {
      const addr = reply ? daddr[i] : saddr[i];
      // The network-order address read as a CPU word: no ntohl (§5.1).
      let a = (${little ? bswap32Src('addr') : 'addr'} + ${ka}) | 0, bb = ${ka};
      c = ${ka};
      ${FINAL3}
    } else if (fam === ${FAMILY_IPV6}) c = v6(b, i, reply);
    else { out[i] = ${NO_BUCKET}; continue; }`;
    const ts = compileSelect('xtCluster', ['family', 'flags', 'l4flags', 'saddr', 'daddr'], body, n, { v6 });
    const m = wasmFor(opts);
    const select = m ? wasmSelect(m, { saddr: true, daddr: true, flags: true }, (x, count) => x.xtCluster(count, ka, n, little ? 1 : 0), ts) : ts;
    return { spec, backend: 'xt_cluster', buckets: n, offset: 1, profile, description, facts, predictable: true, select };
  }

  const select = (b: TupleBatch, out: Int32Array, start = 0, end = b.count): void => {
    const { family, flags, l4flags, saddr, daddr } = b;
    for (let i = start; i < end; i++) {
      const fam = family[i]!;
      if ((l4flags[i]! & L4.CT_INVALID) !== 0) { out[i] = NO_BUCKET; continue; }
      const reply = (flags[i]! & F.REPLY) !== 0;
      let h: number;
      if (fam === FAMILY_IPV4) {
        const addr = reply ? daddr[i]! : saddr[i]!;
        const w = little ? bswap32(addr) : addr | 0;
        if (lookup2) {
          let a = (w + ka) | 0, bb = kb, c = kc;
          a = (a - bb - c) | 0; a ^= c >>> 13;
          bb = (bb - c - a) | 0; bb ^= a << 8;
          c = (c - a - bb) | 0; c ^= bb >>> 13;
          a = (a - bb - c) | 0; a ^= c >>> 12;
          bb = (bb - c - a) | 0; bb ^= a << 16;
          c = (c - a - bb) | 0; c ^= bb >>> 5;
          a = (a - bb - c) | 0; a ^= c >>> 3;
          bb = (bb - c - a) | 0; bb ^= a << 10;
          c = (c - a - bb) | 0; c ^= bb >>> 15;
          h = c >>> 0;
        } else {
          h = final3((w + ka) | 0, kb, kc);
        }
      } else if (fam === FAMILY_IPV6) {
        // Only the first address word: see the header (length 1).
        const lanes = reply ? b.daddr6 : b.saddr6;
        words[0] = little ? bswap32(lanes[i << 2]!) : lanes[i << 2]!;
        h = lookup2 ? jhash2Lookup2(words, 1, seed) : jhash2(words, 1, seed);
      } else {
        out[i] = NO_BUCKET;
        continue;
      }
      out[i] = ((h * n) / 4294967296) | 0;
    }
  };
  return { spec, backend: 'xt_cluster', buckets: n, offset: 1, profile, description, facts, predictable: true, select };
}
