/**
 * The independent kernel check's cluster (issue 17): test/netns-cluster.ts's
 * bridge, client and nodes, with each node's rules written here with nft or
 * iptables commands (never through kernel-glue), a counter on every node's
 * cluster rule that the test reads back, and the cluster's multicast MAC
 * joined on every node. Nodes accept what their rule matches, as production
 * nodes do (`meta pkttype set host` so unicast IP on the multicast MAC reaches
 * the stack, kernel-semantics §6.3), and drop the rest of the cluster IP's traffic.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ClusterNet, CLUSTER_IP } from './netns-cluster.ts';

export const CLUSTER_MAC_TEXT = '01:00:5e:00:00:20';

/** How a node's cluster rule is built and whether the node's namespace uses conntrack. */
export type NodeRules =
  /** nft `jhash <key> mod N seed S offset 1 == k` (expr includes `jhash`); `conntrack` adds a counting `ct state` rule before it (conntrack then defragments). */
  | { kind: 'nft'; expr: string; conntrack: boolean; sink?: boolean }
  /** xt_cluster through iptables-nft (`iptables`) or iptables-legacy. */
  | { kind: 'xt_cluster'; tool: 'iptables-nft' | 'iptables-legacy'; seed: number; sink?: boolean };

export class KernelCluster {
  constructor(readonly net: ClusterNet) {}

  /** Joins the cluster MAC on every node (production nodes receive it by multicast filter). */
  joinMac(): void {
    for (const n of this.net.nodes) this.net.ns(n, ['ip', 'maddr', 'add', CLUSTER_MAC_TEXT, 'dev', 'eth0']);
  }

  /**
   * Removes whatever this helper installed on every node. Conntrack entries a
   * previous case confirmed stay; the keys checked here (packet bytes, or the
   * original source of connections that all start at the client) do not depend on them.
   */
  clear(): void {
    for (const n of this.net.nodes) {
      for (const t of ['iptables-legacy', 'iptables-nft']) {
        try { this.net.ns(n, [t, '-t', 'mangle', '-F']); } catch { /* table absent */ }
      }
      this.net.ns(n, ['nft', 'flush', 'ruleset']);
    }
  }

  /**
   * Installs node k's rules (k from 1). Every node has a `seen` counter (all
   * cluster-IP packets reaching PREROUTING after defragmentation, if any) and
   * the cluster rule's own counter `cl`. With `sink`, a matched packet is
   * counted and dropped before conntrack confirms it (each packet judged alone).
   */
  install(rules: NodeRules, total: number): void {
    this.net.nodes.forEach((ns, i) => {
      const k = i + 1;
      if (rules.kind === 'nft') {
        const verdict = rules.sink ? 'drop' : 'meta pkttype set host accept';
        const text = [
          'table ip vk {',
          '  counter seen {}',
          '  counter cl {}',
          '  counter ctseen {}',
          '  chain pre {',
          // After conntrack (-200) and its defragmentation (-400), as a production filter chain.
          '    type filter hook prerouting priority -140; policy accept;',
          `    ip daddr ${CLUSTER_IP} counter name seen`,
          // Any ct expression makes the namespace use conntrack (nf_ct_netns_get); this one only counts.
          ...(rules.conntrack ? [`    ip daddr ${CLUSTER_IP} ct state new,established,related,invalid,untracked counter name ctseen`] : []),
          `    ip daddr ${CLUSTER_IP} ${rules.expr} == ${k} counter name cl ${verdict}`,
          `    ip daddr ${CLUSTER_IP} drop`,
          '  }',
          '}',
        ].join('\n');
        const f = join(this.net.dir, `rules-${k}.nft`);
        writeFileSync(f, text + '\n');
        this.net.ns(ns, ['nft', '-f', f]);
      } else {
        // The `seen` counter as for nft: every cluster-IP packet reaching PREROUTING after conntrack (-200) and
        // its defragmentation, before iptables' mangle table (-150) drops what the node does not own.
        const f = join(this.net.dir, `seen-${k}.nft`);
        writeFileSync(f, ['table ip vk {', '  counter seen {}', '  chain pre {', '    type filter hook prerouting priority -175; policy accept;',
          `    ip daddr ${CLUSTER_IP} counter name seen`, '  }', '}', ''].join('\n'));
        this.net.ns(ns, ['nft', '-f', f]);
        const t = rules.tool;
        const m = ['-d', `${CLUSTER_IP}/32`];
        this.net.ns(ns, [t, '-t', 'mangle', '-A', 'PREROUTING', ...m, '-m', 'cluster', '--cluster-total-nodes', String(total),
          '--cluster-local-node', String(k), '--cluster-hash-seed', `0x${rules.seed.toString(16)}`, '-j', 'MARK', '--set-mark', '1']);
        if (rules.sink) {
          // Counted (the rule's own counter) and dropped before confirmation.
          this.net.ns(ns, [t, '-t', 'mangle', '-A', 'PREROUTING', ...m, '-m', 'mark', '--mark', '1', '-j', 'DROP']);
        }
        this.net.ns(ns, [t, '-t', 'mangle', '-A', 'PREROUTING', ...m, '-m', 'mark', '!', '--mark', '1', '-j', 'DROP']);
      }
    });
  }

  /** Each node's cluster-rule counter, node 1 first. */
  counters(rules: NodeRules): number[] {
    return this.net.nodes.map((ns) => {
      if (rules.kind === 'nft') return this.nftCounter(ns, 'cl');
      // The first rule of mangle PREROUTING is the cluster match; `-x -v` gives its exact packet count.
      const out = this.net.ns(ns, [rules.tool, '-t', 'mangle', '-L', 'PREROUTING', '-n', '-v', '-x']);
      const line = out.split('\n').find((l) => /cluster/.test(l));
      if (!line) throw new Error(`${ns}: no cluster rule in ${rules.tool} mangle PREROUTING:\n${out}`);
      return Number(line.trim().split(/\s+/)[0]);
    });
  }

  nftCounter(ns: string, name: string): number {
    const j = JSON.parse(this.net.ns(ns, ['nft', '-j', 'list', 'counter', 'ip', 'vk', name])) as { nftables: { counter?: { packets: number } }[] };
    const c = j.nftables.find((x) => x.counter)?.counter;
    if (!c) throw new Error(`${ns}: counter ${name} not found`);
    return c.packets;
  }

  /** Replays a pcap from the client namespace onto the bridge at a rate the veths never drop at. */
  replay(pcapPath: string, pps = 3000): void {
    this.net.ns(this.net.client, ['tcpreplay', '-q', '-i', 'eth0', `--pps=${pps}`, pcapPath]);
  }
}
