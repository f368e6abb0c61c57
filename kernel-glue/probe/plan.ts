/**
 * Which probes to send so that every bucket gets one: candidate tuples from
 * the source addresses the prober may use, run through the cluster's own
 * selector (the simulator's prediction, sim/select via predict.ts), the first
 * candidate per bucket kept. The predicted answering node is the config's
 * owner of that node number.
 */
import type { ClusterConfig } from '../../sim/core/cluster-config.ts';
import { formatIPv4, parseIPv4 } from '../../sim/core/addr.ts';
import { UsageError } from '../../sim/core/errors.ts';
import { selectorSpecOf } from '../../sim/select/from-config.ts';
import { predictNodeNumbers, type Flow } from '../predict.ts';
import type { ProbePacket } from './packets.ts';

export interface ProbeTarget extends ProbePacket {
  /** Kernel node number 1..N (bucket = number - 1). */
  number: number;
  /** The nodes whose owner set holds `number` (config order); empty: nobody should answer. */
  expected: string[];
}

export interface ProbePlanOptions {
  proto: 'tcp' | 'icmp';
  /** TCP destination port (ignored for ICMP). */
  port: number;
  /** 'A.B.C.D/P': the addresses the probes may come from (their answers must route back to the prober). */
  sources: string;
  /** First TCP source port / ICMP identifier of the candidates. */
  sportBase?: number;
}

/**
 * Most candidates tried. With N buckets and D distinct hash inputs, a uniform
 * hash leaves some bucket uncovered with odds about N·e^(-D/N); for the
 * source-address-only hashes (xt_cluster, nft, CLUSTERIP sourceip) D is the
 * number of --sources addresses (254 for a /24: fine for 16 buckets, often
 * short for 64), and planProbes then names the uncovered node numbers.
 */
export const MAX_CANDIDATES = 4096;

/** The usable addresses of a CIDR (network and broadcast left out below /31), refused in the flag's words. */
export function sourceRange(cidr: string): { first: number; count: number } {
  const m = /^(\d+\.\d+\.\d+\.\d+)(?:\/(\d{1,2}))?$/.exec(cidr);
  const base = m ? parseIPv4(m[1]!) : null;
  const len = m ? Number(m[2] ?? 32) : NaN;
  if (base === null || !(len >= 0 && len <= 32)) throw new UsageError(`--sources ${cidr}: expected an IPv4 address or prefix such as 10.201.0.0/24`);
  const size = 2 ** (32 - len);
  const net = len === 0 ? 0 : (base & (~0 << (32 - len))) >>> 0;
  if (len <= 30) return { first: net + 1, count: size - 2 };
  return { first: net, count: size };
}

/**
 * One probe per node number 1..N whose tuple the selector puts there. Refuses
 * (UsageError) what the model cannot predict for the chosen probe, and names
 * the node numbers no candidate reached.
 */
export function planProbes(c: ClusterConfig, o: ProbePlanOptions): ProbeTarget[] {
  const spec = selectorSpecOf(c);
  const daddr = parseIPv4(c.cluster.ip);
  if (daddr === null) throw new UsageError(`cluster.ip ${c.cluster.ip}: glue probe sends IPv4 probes only`);
  // CLUSTERIP's port hash modes read the 4 bytes after the IP header for ICMP too
  // (type, code, checksum): not a tuple we choose freely, so ICMP is refused there.
  if (o.proto === 'icmp' && spec.backend === 'clusterip' && spec.hashmode !== 'sourceip') {
    throw new UsageError(`--proto icmp: CLUSTERIP hashmode ${spec.hashmode} hashes ports; probe it with --proto tcp`);
  }
  const { first, count } = sourceRange(o.sources);
  const base = o.sportBase ?? 33000;
  const n = Math.min(MAX_CANDIDATES, o.proto === 'icmp' ? count : Math.max(count, MAX_CANDIDATES));
  const flows: Flow[] = [];
  for (let i = 0; i < n; i++) {
    const sport = 1024 + ((base - 1024 + i) % 64512);
    flows.push({ proto: o.proto === 'tcp' ? 6 : 1, saddr: (first + (i % count)) >>> 0, sport: o.proto === 'tcp' ? sport : 0, daddr, dport: o.proto === 'tcp' ? o.port : 0 });
  }
  const numbers = predictNodeNumbers(spec, flows);
  const total = c.cluster.total_nodes;
  const out: (ProbeTarget | undefined)[] = new Array(total);
  numbers.forEach((k, i) => {
    if (k < 1 || k > total || out[k - 1]) return;
    const f = flows[i]!;
    out[k - 1] = {
      proto: o.proto, saddr: f.saddr, daddr,
      // ICMP: identifier from the candidate's port, sequence = node number (reads back from the reply).
      sport: o.proto === 'tcp' ? f.sport : 1024 + ((base - 1024 + i) % 64512),
      dport: o.proto === 'tcp' ? o.port : k,
      number: k,
      expected: c.nodes.filter((nd) => nd.owns.includes(k)).map((nd) => nd.name),
    };
  });
  const missing = Array.from(out, (t, i) => (t ? 0 : i + 1)).filter((k) => k > 0); // not flatMap: it skips the holes
  if (missing.length) {
    throw new UsageError(`--sources ${o.sources}: no candidate tuple among ${n} (${formatIPv4(first)} onwards) falls on node number(s) ${missing.join(', ')}; give a wider prefix`);
  }
  return out as ProbeTarget[];
}
