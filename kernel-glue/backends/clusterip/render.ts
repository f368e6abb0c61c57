/**
 * The `clusterip` backend (kernels before 6.3): the iptables-legacy CLUSTERIP
 * target and its /proc owner-set protocol (kernel-semantics §4.4-§4.7).
 *
 * - One `--new` rule creates the cluster IP's config; the FIRST `--new` wins
 *   and later rules' parameters are silently ignored (§4.6). So changing any
 *   parameter means: remove our rule, wait for /proc/net/ipt_CLUSTERIP/<ip> to
 *   disappear, load the new rule.
 * - A rule carries one `--local-node`; the owner set is then completed with
 *   `+k` / `-k` writes to /proc (one write each, ENOMEM/ENOENT when the node is
 *   already set / not set, §4.4).
 * - CLUSTERIP joins the multicast MAC and mangles ARP itself (§4.7).
 * - Per-node counters: CLUSTERIP writes the node number into ct->mark of NEW
 *   conntracks (§10.5); one counting rule per node number after the target
 *   counts what this host accepted.
 */
import type { ClusterConfig } from '../../../sim/core/cluster-config.ts';
import type { Plan, Step } from '../../plan.ts';
import { parseKernelVersion, cmpVersion } from '../../../sim/select/profile.ts';
import { cfgComment, fmtSet, hex32, MARK, nodeByName, ownersOf, whereOf } from '../shared/names.ts';
import { ensureJumpStep, removeChainSteps, restoreChainStep, ruleComment } from '../shared/iptables-legacy.ts';

/** /proc/net/ipt_CLUSTERIP/<ip>: CLUSTERIP's per-cluster-IP owner set (§4.4). */
export const procPath = (ip: string): string => `/proc/net/ipt_CLUSTERIP/${ip}`;

/** How long to wait for the old config to go away after its last rule is deleted (bounded poll, §11.3). */
export const PROC_GONE_TIMEOUT_MS = 5000;

/** The local node the `--new` rule carries: the first owned one (1 when the node owns nothing; removed right after). */
export const ruleLocalNode = (owners: readonly number[]): number => owners[0] ?? 1;

export function clusteripRules(c: ClusterConfig, owners: readonly number[]): string[] {
  const { ip, interface: iface, mac, total_nodes: n, seed, hashmode } = c.cluster;
  const rules = [
    `-d ${ip}/32 -i ${iface} ${ruleComment(cfgComment(c))} -j CLUSTERIP --new --hashmode ${hashmode ?? 'sourceip'} --clustermac ${mac.toUpperCase()} --total-nodes ${n} --local-node ${ruleLocalNode(owners)} --hash-init ${seed >>> 0}`,
  ];
  for (let k = 1; k <= n; k++) rules.push(`-m connmark --mark ${k} ${ruleComment(`${MARK} node ${k}`)}`);
  return rules;
}

/** /proc writes that turn owner set `from` into `to`: adds first (a brief duplicate beats a loss). */
export function procWrites(ip: string, from: readonly number[], to: readonly number[]): Step[] {
  const steps: Step[] = [];
  for (const k of to) if (!from.includes(k)) steps.push({ write: procPath(ip), data: `+${k}`, why: `take node number ${k}` });
  for (const k of from) if (!to.includes(k)) steps.push({ write: procPath(ip), data: `-${k}`, why: `give up node number ${k}` });
  return steps;
}

/**
 * From any state of our own chain to the config: remove our chain, wait for
 * the old config's /proc entry to vanish, load the new rule, complete the
 * owner set. On a clean host the removal steps are skipped by their guards.
 */
export function clusteripCreatePlan(c: ClusterConfig, nodeName: string): Plan {
  const node = nodeByName(c, nodeName);
  const owners = ownersOf(node);
  const local = ruleLocalNode(owners);
  const { ip, total_nodes: n, hashmode, seed } = c.cluster;
  return {
    host: node.name,
    where: whereOf(node.host),
    backend: 'clusterip',
    notes: [
      `owns node numbers ${fmtSet(owners)} of ${n}; ${ip} must be configured on ${c.cluster.interface}`,
      'needs a kernel before 6.3 and iptables-legacy (iptables-nft refuses CLUSTERIP)',
    ],
    steps: [
      ...removeChainSteps(c),
      { waitAbsent: procPath(ip), timeoutMs: PROC_GONE_TIMEOUT_MS, why: 'an old config for this IP would silently win over the new --new rule (first --new wins, §4.6)' },
      restoreChainStep(c, clusteripRules(c, owners), `CLUSTERIP ${hashmode} over ${n} nodes, hash-init ${hex32(seed)}, created with local node ${local}; counting rule per node`),
      ensureJumpStep(c),
      ...procWrites(ip, [local], owners),
    ],
  };
}

export function clusteripRemovePlan(c: ClusterConfig, nodeName: string): Plan {
  const node = nodeByName(c, nodeName);
  return { host: node.name, where: whereOf(node.host), backend: 'clusterip', notes: ['the kernel drops the config (and the multicast MAC) when the last rule for the IP is gone'], steps: removeChainSteps(c) };
}

/**
 * Why CLUSTERIP cannot be used on a host, or null. `kernelRelease` is
 * `uname -r`; `iptablesLegacy` says whether iptables-legacy(-restore) runs.
 */
export function clusteripRefusal(kernelRelease: string, iptablesLegacy: boolean, iptablesVersion?: string): string | null {
  let v;
  try {
    v = parseKernelVersion(kernelRelease);
  } catch {
    return `cannot read the kernel version '${kernelRelease}' (uname -r)`;
  }
  if (cmpVersion(v, [6, 3, 0]) >= 0) {
    return `kernel ${kernelRelease} has no CLUSTERIP target (removed in Linux 6.3); use backend xt_cluster or nft (same cluster MAC; note that flows move to other nodes, see 'glue plan')`;
  }
  if (!iptablesLegacy) {
    const nft = iptablesVersion && /nf_tables/.test(iptablesVersion) ? ` ('iptables' here is ${iptablesVersion.trim()})` : '';
    return `iptables-legacy is not installed${nft}; iptables-nft cannot load CLUSTERIP (nft_compat: EOPNOTSUPP). Install the legacy tools (Debian: package iptables, /usr/sbin/iptables-legacy) or use backend xt_cluster or nft`;
  }
  return null;
}
