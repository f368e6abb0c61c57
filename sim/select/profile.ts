/**
 * Kernel profiles: a kernel version and a CPU byte order, resolved once into
 * the facts that change a hash answer (kernel-semantics §0, §9). This is the
 * only place that knows era boundaries; selectors read the resolved profile.
 */
import type { Reduction } from '../hash/reduce.ts';
import { UsageError } from '../core/errors.ts';

import type { ByteOrder, Fact } from '../core/spec.ts';
export type { Evidence, Fact } from '../core/spec.ts';

export type JhashFlavour = 'lookup2' | 'lookup3-transitional' | 'lookup3';

/**
 * CLUSTERIP's port rule per era (kernel-semantics §4.1):
 * - `ntohs-icmp`: eras A/A′, numeric TCP/UDP ports; ICMP echo id and (type<<8)|code.
 * - `raw-first4`: eras B/C, raw 16-bit loads of L4 bytes 0-1/2-3 for TCP, UDP,
 *   UDP-Lite, SCTP, DCCP and ICMP (type/code, checksum).
 * - `proto-ports-offset`: era D, `proto_ports_offset()`: offset 0 for TCP, UDP,
 *   DCCP, ESP, SCTP, UDP-Lite, offset 4 for AH, nothing for the rest (ICMP included).
 */
export type ClusteripPortRule = 'ntohs-icmp' | 'raw-first4' | 'proto-ports-offset';

export interface ClusteripEra {
  readonly id: 'A' | "A'" | 'B' | 'C' | 'D';
  readonly ports: ClusteripPortRule;
  readonly reduction: Reduction;
  /** Era D checks that the 4 port bytes exist (ports 0/0 if not); A-C read past a short header. */
  readonly boundsChecked: boolean;
  readonly facts: readonly Fact[];
}

export interface KernelVersion {
  readonly major: number;
  readonly minor: number;
  readonly patch: number;
  readonly text: string;
}

export interface KernelProfile {
  readonly kernel: KernelVersion;
  readonly endian: ByteOrder;
  readonly jhash: JhashFlavour;
  /** null from 6.3 on (CLUSTERIP removed) and before 2.6.10 (not yet merged). */
  readonly clusterip: ClusteripEra | null;
  /** Why `clusterip` is null, for error messages. */
  readonly clusteripAbsent: string | null;
  readonly xtCluster: boolean;
  readonly nftHash: boolean;
  readonly jhashFacts: readonly Fact[];
  /** Short label, e.g. "6.1 little-endian (lookup3, CLUSTERIP era D)". */
  readonly label: string;
}


export function parseKernelVersion(text: string): KernelVersion {
  const m = /^v?(\d+)\.(\d+)(?:\.(\d+))?(?:[-+~.].*)?$/.exec(text.trim());
  if (!m) throw new UsageError(`--kernel: cannot read kernel version '${text}' (expected e.g. 6.1, 2.6.32, 4.19.0-25-amd64)`);
  return { major: Number(m[1]), minor: Number(m[2]), patch: Number(m[3] ?? 0), text: text.trim() };
}

/** Compares two versions; negative when a < b. */
export function cmpVersion(a: KernelVersion, b: readonly [number, number, number]): number {
  return a.major - b[0] || a.minor - b[1] || a.patch - b[2];
}
const atLeast = (v: KernelVersion, b: readonly [number, number, number]): boolean => cmpVersion(v, b) >= 0;

function jhashFlavour(v: KernelVersion): { flavour: JhashFlavour; facts: Fact[] } {
  if (!atLeast(v, [2, 6, 37])) {
    return {
      flavour: 'lookup2',
      facts: [{ topic: 'jhash', evidence: 'source', note: 'lookup2 (up to 2.6.36); no kernel of this era was measured, boundary from strongSwan\'s version switch' }],
    };
  }
  if (!atLeast(v, [4, 1, 0])) {
    return {
      flavour: 'lookup3-transitional',
      facts: [{ topic: 'jhash', evidence: 'source', note: 'lookup3 with the 2.6.37-4.0 word functions; not measured, boundaries from strongSwan\'s version switch' }],
    };
  }
  return {
    flavour: 'lookup3',
    facts: [{ topic: 'jhash', evidence: 'measured 6.18.44', note: 'current lookup3 (4.1+), matched by every golden vector (6.1.192 and 6.18.44)' }],
  };
}

function clusteripEra(v: KernelVersion): { era: ClusteripEra | null; absent: string | null } {
  if (atLeast(v, [6, 3, 0])) {
    return {
      era: null,
      absent: `CLUSTERIP was removed in Linux 6.3 (commit 9db5d918e2c0 "netfilter: ip_tables: remove clusterip target"); kernel ${v.text} has no ipt_CLUSTERIP. Its successors hash differently: use --backend xt_cluster (iptables -m cluster) or --backend nft (nft 'jhash ct original ip saddr mod N seed S offset 1'), and see \`simulate --compare\` for how many flows would move.`,
    };
  }
  if (!atLeast(v, [2, 6, 10])) {
    return { era: null, absent: `CLUSTERIP was merged in Linux 2.6.10; kernel ${v.text} predates it` };
  }
  const src = (note: string): Fact => ({ topic: 'CLUSTERIP hash input', evidence: 'source', note });
  const unv = (note: string): Fact => ({ topic: 'CLUSTERIP era boundary', evidence: 'unverified', note });
  if (!atLeast(v, [2, 6, 13])) {
    return { era: { id: 'A', ports: 'ntohs-icmp', reduction: 'modulo', boundsChecked: false, facts: [src('era A (2.6.10-2.6.12): numeric ports (ntohs), ICMP echo id and type/code hashed, hash % N; read from source only')] }, absent: null };
  }
  if (!atLeast(v, [2, 6, 22])) {
    const facts = [src("era A' (by 2.6.13): numeric ports (ntohs), ICMP echo id and type/code hashed, hash % N; read from source only")];
    if (atLeast(v, [2, 6, 17])) facts.push(unv('the switch from numeric to raw port loads happened somewhere in 2.6.17-2.6.21; this version is modelled as era A\' (numeric ports), the raw form (era B) is equally possible'));
    return { era: { id: "A'", ports: 'ntohs-icmp', reduction: 'modulo', boundsChecked: false, facts }, absent: null };
  }
  if (!atLeast(v, [2, 6, 25])) {
    return { era: { id: 'B', ports: 'raw-first4', reduction: 'modulo', boundsChecked: false, facts: [src('era B (~2.6.22-2.6.24): raw 16-bit port loads of L4 bytes 0-3 for TCP, UDP, UDP-Lite, SCTP, DCCP and ICMP (type/code and checksum), hash % N; read from source only')] }, absent: null };
  }
  if (!atLeast(v, [2, 6, 37])) {
    const facts = [src('era C (~2.6.25-2.6.36): raw 16-bit port loads as era B, multiply-shift reduction; read from source only')];
    if (!atLeast(v, [2, 6, 27])) facts.push(unv('the change from % to multiply-shift is bracketed between 2.6.24 and 2.6.27; this version is modelled with multiply-shift'));
    return { era: { id: 'C', ports: 'raw-first4', reduction: 'multiply-shift', boundsChecked: false, facts }, absent: null };
  }
  const d: Fact[] = [
    atLeast(v, [4, 1, 0])
      ? { topic: 'CLUSTERIP hash input', evidence: 'measured 6.1.192', note: 'era D: proto_ports_offset() ports as raw 16-bit loads, ICMP not hashed, multiply-shift; every golden row matches (6.1.192; same code 4.1-6.2 by source)' }
      : src('era D (2.6.37+): proto_ports_offset() ports; measured on 6.1.192 only, with the 4.1 jhash'),
  ];
  return { era: { id: 'D', ports: 'proto-ports-offset', reduction: 'multiply-shift', boundsChecked: true, facts: d }, absent: null };
}

const cache = new Map<string, KernelProfile>();

/** Resolves `--kernel` and `--endian` into a profile. */
export function resolveProfile(kernel: string, endian: ByteOrder = 'little'): KernelProfile {
  const key = `${kernel}|${endian}`;
  const hit = cache.get(key);
  if (hit) return hit;
  const v = parseKernelVersion(kernel);
  if (v.major < 2 || (v.major === 2 && v.minor < 6)) throw new UsageError(`--kernel ${kernel}: only Linux 2.6 and later are modelled`);
  const { flavour, facts } = jhashFlavour(v);
  const { era, absent } = clusteripEra(v);
  const label = `${v.text} ${endian}-endian (${flavour}${era ? `, CLUSTERIP era ${era.id}` : ''})`;
  const profile: KernelProfile = {
    kernel: v,
    endian,
    jhash: flavour,
    clusterip: era,
    clusteripAbsent: absent,
    xtCluster: atLeast(v, [2, 6, 30]),
    nftHash: atLeast(v, [4, 9, 0]),
    jhashFacts: facts,
    label,
  };
  cache.set(key, profile);
  return profile;
}

/**
 * What a big-endian CPU changes, and how sure we are of it. The s390x golden
 * vectors (../shared/vectors/s390x/, Debian's 6.1.176 s390x kernel under qemu)
 * measured the lookup3 era (4.1+, the code 6.1 runs): CLUSTERIP's three hash
 * modes, xt_cluster and nft jhash keys of 4 to 16 bytes, IPv4. Older eras on a
 * big-endian CPU rest on source reading only.
 */
export function endianFact(profile: KernelProfile, affects: string, ipv6 = false): Fact | null {
  if (profile.endian === 'little') return null;
  if (ipv6) return { topic: 'byte order', evidence: 'source', note: `big-endian: ${affects}; IPv6 keys were not measured on a big-endian CPU` };
  if (profile.jhash === 'lookup3') {
    return { topic: 'byte order', evidence: 'measured 6.1.176 s390x', note: `big-endian: ${affects}; every s390x golden row matches (6.1.176; same code 4.1+ by source)` };
  }
  return { topic: 'byte order', evidence: 'source', note: `big-endian: ${affects}; only the 4.1+ code was measured on a big-endian CPU (6.1.176 s390x), this era is read from source` };
}

/**
 * Facts a user is told about next to an answer (a `note:` on stderr): those
 * not measured on a real kernel, and the big-endian ones, which were measured
 * on one s390x kernel only (6.1.176), so a big-endian user sees the basis.
 */
export function worthANote(f: Fact): boolean {
  return !f.evidence.startsWith('measured') || f.evidence === 'measured 6.1.176 s390x' || f.surprising === true;
}

/** True when every fact behind an answer was measured on a real kernel. */
export function allMeasured(facts: readonly Fact[]): boolean {
  return facts.every((f) => f.evidence.startsWith('measured'));
}
