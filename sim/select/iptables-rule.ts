/**
 * Reads an iptables rule as a user wrote it, for the CLUSTERIP target or the
 * `cluster` match, and checks it the way iptables 1.8.9 userspace would
 * (kernel-semantics §4.5, §5.2). Only the hash-relevant options are kept.
 */
import { UsageError } from '../core/errors.ts';
import { CLUSTERIP_MODES, isMulticastMac, type ClusteripMode } from '../core/spec.ts';

export type ParsedRule =
  | { kind: 'clusterip'; hashmode: ClusteripMode; totalNodes: number; localNode: number; hashInit: number; clusterMac: string; destination: string | null; iface: string | null }
  | { kind: 'xt_cluster'; totalNodes: number; nodeMask: number; hashSeed: number; invert: boolean };

/** Splits like a shell would for simple quoting ('…' and "…"), without evaluating anything. */
export function splitArgs(s: string): string[] {
  const out: string[] = [];
  const re = /'([^']*)'|"([^"]*)"|(\S+)/g;
  let m: RegExpExecArray | null;
  while ((m = re.exec(s))) out.push(m[1] ?? m[2] ?? m[3]!);
  return out;
}

export function parseU32Text(s: string | undefined, what: string): number {
  if (s === undefined) throw new UsageError(`${what} needs a value`);
  const v = /^0x[0-9a-f]{1,8}$/i.test(s) ? parseInt(s.slice(2), 16) : /^\d+$/.test(s) ? Number(s) : NaN;
  if (!Number.isFinite(v) || v > 0xffffffff) throw new UsageError(`${what}: '${s}' is not a 32-bit unsigned number (decimal or 0x hex)`);
  return v >>> 0;
}

function intIn(s: string | undefined, what: string, lo: number, hi: number): number {
  if (s === undefined || !/^\d+$/.test(s) || Number(s) < lo || Number(s) > hi) {
    throw new UsageError(`--rule: bad value for option ${what}, or out of range (${lo}-${hi}): '${s ?? ''}'`);
  }
  return Number(s);
}


export function parseIptablesRule(rule: string): ParsedRule {
  const t = splitArgs(rule);
  const opt = (name: string): string | undefined => {
    const i = t.indexOf(name);
    return i >= 0 ? t[i + 1] : undefined;
  };
  const target = opt('-j') ?? opt('--jump');
  const matchIdx = t.findIndex((x, i) => (x === '-m' || x === '--match') && t[i + 1] === 'cluster');
  if (target === 'CLUSTERIP') {
    if (!t.includes('--new')) {
      throw new UsageError("--rule: a CLUSTERIP rule without --new only joins an existing config, whose hash parameters it does not carry; give the rule that has --new");
    }
    const missing = ['--hashmode', '--clustermac', '--total-nodes', '--local-node'].filter((o) => opt(o) === undefined);
    if (missing.length) throw new UsageError(`--rule: CLUSTERIP --new needs ${missing.join(', ')} (iptables: "Invalid parameter combination")`);
    const hm = opt('--hashmode')!;
    if (!(CLUSTERIP_MODES as readonly string[]).includes(hm)) throw new UsageError(`--rule: --hashmode '${hm}' is not one of ${CLUSTERIP_MODES.join(', ')}`);
    const mac = opt('--clustermac')!;
    if (!isMulticastMac(mac)) throw new UsageError(`--rule: --clustermac ${mac}: MAC has to be a multicast ethernet address`);
    const totalNodes = intIn(opt('--total-nodes'), '--total-nodes', 0, 16);
    const localNode = intIn(opt('--local-node'), '--local-node', 0, 16);
    if (localNode === 0) throw new UsageError('--rule: --local-node 0: the kernel refuses it (EINVAL, "bad local_nodes[0] 0")');
    const dst = opt('-d') ?? opt('--destination') ?? null;
    if (dst !== null && /\/(?!32$)\d+$/.test(dst)) throw new UsageError(`--rule: -d ${dst}: CLUSTERIP needs a single destination address (the kernel refuses a network: "Please specify destination IP")`);
    return {
      kind: 'clusterip', hashmode: hm as ClusteripMode, totalNodes, localNode,
      hashInit: opt('--hash-init') === undefined ? 0 : parseU32Text(opt('--hash-init'), '--rule: --hash-init'),
      clusterMac: mac.toLowerCase(), destination: dst, iface: opt('-i') ?? opt('--in-interface') ?? null,
    };
  }
  if (matchIdx >= 0) {
    const totalNodes = intIn(opt('--cluster-total-nodes'), '--cluster-total-nodes', 1, 32);
    if (opt('--cluster-hash-seed') === undefined) throw new UsageError('--rule: option --cluster-hash-seed must be specified');
    const hashSeed = parseU32Text(opt('--cluster-hash-seed'), '--rule: --cluster-hash-seed');
    const node = opt('--cluster-local-node');
    const mask = opt('--cluster-local-nodemask');
    if ((node === undefined) === (mask === undefined)) throw new UsageError('--rule: give exactly one of --cluster-local-node and --cluster-local-nodemask');
    let nodeMask: number;
    if (node !== undefined) nodeMask = 2 ** (intIn(node, '--cluster-local-node', 1, 32) - 1);
    else nodeMask = intIn(mask, '--cluster-local-nodemask', 1, 32); // iptables parses the mask as a value 1..32
    if (nodeMask >= 2 ** totalNodes) throw new UsageError(`--rule: node mask 0x${nodeMask.toString(16)} has bits beyond --cluster-total-nodes ${totalNodes} (the kernel refuses it: EDOM)`);
    const negIdx = t.findIndex((x, i) => x === '!' && (t[i + 1] === '--cluster-local-node' || t[i + 1] === '--cluster-local-nodemask'));
    return { kind: 'xt_cluster', totalNodes, nodeMask, hashSeed, invert: negIdx >= 0 };
  }
  throw new UsageError("--rule: expected an iptables rule with '-j CLUSTERIP' or '-m cluster'");
}
