import { describe, expect, it } from 'vitest';
import { parseConfig, type ClusterConfig } from '../../sim/core/cluster-config.ts';
import { isRun, isWrite, type RunStep } from '../plan.ts';
import { createPlan, ownerPlan, removePlan } from './index.ts';
import { fingerprint, IPT_CHAIN, iptChain, NFT_TABLE, nftTable } from './shared/names.ts';
import { clusteripRefusal, procWrites } from './clusterip/render.ts';
import { nftIpTable } from './nft/render.ts';
import { nftClusterExpr } from '../../sim/select/from-config.ts';
import { xtClusterRules } from './xt-cluster/render.ts';

function cfg(backend: string, extra = '', owns: [string, string, string] = ['[1]', '[2]', '[3]']): ClusterConfig {
  const y = `cluster:
  ip: 10.200.0.100
  interface: br-c0
  mac: 01:00:5E:00:00:21
  backend: ${backend}
  seed: 0x1234abcd
  total_nodes: 3
${extra}nodes:
  - { name: n1, owns: ${owns[0]} }
  - { name: n2, owns: ${owns[1]}, host: { netns: ns2 } }
  - { name: n3, owns: ${owns[2]}, host: { ssh: root@10.200.0.13 } }
`;
  const l = parseConfig(y, 'test.yaml');
  return l.config;
}

const runs = (steps: unknown[]): RunStep[] => (steps as RunStep[]).filter(isRun);

describe('nft backend', () => {
  const c = cfg('nft', '', ['[1, 3]', '[2]', '[]']);
  it('hashes exactly like config.ts says the simulator does (offset 1, seed explicit) and never the iptables-translate form', () => {
    expect(nftClusterExpr(c)).toBe('jhash ct original ip saddr mod 3 seed 0x1234abcd offset 1');
    const t = nftIpTable(c, [1, 3]);
    expect(t).toContain('\t\tjhash ct original ip saddr mod 3 seed 0x1234abcd offset 1 @owned accept\n');
    expect(t).not.toMatch(/\beq \d/);
    expect(t).not.toMatch(/offset 0/);
    expect(t).toContain('elements = { 1, 3 }');
    expect(t).toContain('iifname "br-c0" ip daddr 10.200.0.100 meta pkttype multicast ip daddr != 224.0.0.0/4 meta pkttype set host');
    expect(t).toContain(`comment "clusterip-sim cfg=${fingerprint(c)}"`);
    expect(t).toContain('counter drop');
  });
  it('create plan: one atomic nft transaction replacing both tables, the multicast MAC, tcp_loose=0', () => {
    const p = createPlan(c, 'n1');
    expect(p.where).toBe('local');
    const [tx, maddr] = runs(p.steps);
    expect(tx!.argv).toEqual(['nft', '-f', '-']);
    expect(tx!.stdin!.startsWith(`table ip ${NFT_TABLE} {}\ndelete table ip ${NFT_TABLE}\ntable arp ${NFT_TABLE} {}\ndelete table arp ${NFT_TABLE}\n`)).toBe(true);
    expect(tx!.stdin).toContain('arp saddr ip 10.200.0.100 arp saddr ether set 01:00:5e:00:00:21');
    expect(maddr!.argv).toEqual(['ip', 'maddr', 'add', '01:00:5e:00:00:21', 'dev', 'br-c0']);
    expect(maddr!.unless).toEqual(['grep', '-Eq', '^[0-9]+ +br-c0 +[0-9]+ +[0-9]+ +01005e000021$', '/proc/net/dev_mcast']);
    const w = p.steps.find(isWrite)!;
    expect([w.write, w.data]).toEqual(['/proc/sys/net/netfilter/nf_conntrack_tcp_loose', '0\n']);
    // A node that owns nothing gets an empty set, not a syntax error.
    expect(runs(createPlan(c, 'n3').steps)[0]!.stdin).not.toContain('elements');
  });
  it('a move is one set-element transaction (adds before deletes)', () => {
    const p = ownerPlan(c, 'n2', [2], [1, 2]);
    expect(runs(p.steps)).toEqual([{ argv: ['nft', '-f', '-'], stdin: `add element ip ${NFT_TABLE} owned { 1 }\n`, why: expect.any(String) }]);
    expect(runs(ownerPlan(c, 'n1', [1, 3], [3]).steps)[0]!.stdin).toBe(`delete element ip ${NFT_TABLE} owned { 1 }\n`);
    expect(ownerPlan(c, 'n1', [3, 1], [1, 3]).steps).toEqual([]);
  });
  it('remove deletes both tables safely and leaves the multicast group only if joined', () => {
    const s = removePlan(c, 'n2').steps;
    expect(runs(s)[0]!.stdin).toBe(`table ip ${NFT_TABLE} {}\ndelete table ip ${NFT_TABLE}\ntable arp ${NFT_TABLE} {}\ndelete table arp ${NFT_TABLE}\n`);
    expect(runs(s)[1]!.onlyIf![0]).toBe('grep');
  });
});

describe('xt_cluster backend', () => {
  const c = cfg('xt_cluster', '', ['[1]', '[2, 3]', '[]']);
  it('one ACCEPT per owned node number with --cluster-local-node (not a mask: iptables caps it at 32), then DROP', () => {
    expect(xtClusterRules(c, [2, 3])).toEqual([
      '-m cluster --cluster-total-nodes 3 --cluster-local-node 2 --cluster-hash-seed 0x1234abcd -m comment --comment "clusterip-sim node 2" -j ACCEPT',
      '-m cluster --cluster-total-nodes 3 --cluster-local-node 3 --cluster-hash-seed 0x1234abcd -m comment --comment "clusterip-sim node 3" -j ACCEPT',
      `-m comment --comment "clusterip-sim cfg=${fingerprint(c)}" -j DROP`,
    ]);
  });
  it('create plan: restore of our own chain only (--noflush), guarded jump, ARP in nft, MAC, tcp_loose', () => {
    const p = createPlan(c, 'n2');
    expect(p.where).toBe('netns ns2');
    const r = runs(p.steps);
    expect(r[0]!.argv).toEqual(['iptables-legacy-restore', '--noflush']);
    expect(r[0]!.stdin).toBe(`*mangle\n:${IPT_CHAIN} - [0:0]\n${xtClusterRules(c, [2, 3]).map((x) => `-A ${IPT_CHAIN} ${x}`).join('\n')}\nCOMMIT\n`);
    expect(r[1]!.argv).toEqual(['iptables-legacy', '-t', 'mangle', '-A', 'PREROUTING', '-d', '10.200.0.100/32', '-i', 'br-c0', '-j', IPT_CHAIN]);
    expect(r[1]!.unless).toEqual(['iptables-legacy', '-t', 'mangle', '-C', 'PREROUTING', '-d', '10.200.0.100/32', '-i', 'br-c0', '-j', IPT_CHAIN]);
    expect(r[2]!.stdin).toContain('table arp');
    expect(r[2]!.stdin).not.toContain('table ip ');
    expect(r[3]!.argv.slice(0, 3)).toEqual(['ip', 'maddr', 'add']);
    expect(p.steps.some((s) => isWrite(s) && s.data === '0\n')).toBe(true);
  });
});

describe('clusterip backend', () => {
  const c = cfg('clusterip', '  hashmode: sourceip-sourceport\n', ['[]', '[1, 3]', '[2]']);
  it('the --new rule carries the first owned node; /proc completes the owner set', () => {
    const p = createPlan(c, 'n2');
    const restore = runs(p.steps).find((s) => s.argv[0] === 'iptables-legacy-restore')!;
    expect(restore.stdin!.split('\n')[2]).toBe(
      `-A ${IPT_CHAIN} -d 10.200.0.100/32 -i br-c0 -m comment --comment "clusterip-sim cfg=${fingerprint(c)}" -j CLUSTERIP --new --hashmode sourceip-sourceport --clustermac 01:00:5E:00:00:21 --total-nodes 3 --local-node 1 --hash-init 305441741`,
    );
    expect(restore.stdin).toContain(`-A ${IPT_CHAIN} -m connmark --mark 3 -m comment --comment "clusterip-sim node 3"`);
    expect(p.steps.filter(isWrite).map((w) => [w.write, w.data])).toEqual([['/proc/net/ipt_CLUSTERIP/10.200.0.100', '+3']]);
    // old config first: removal, then a bounded wait for /proc to let go (first --new wins)
    const waitIdx = p.steps.findIndex((s) => 'waitAbsent' in s);
    expect(waitIdx).toBeGreaterThan(0);
    expect(waitIdx).toBeLessThan(p.steps.indexOf(restore));
  });
  it('a node that owns nothing creates the rule with node 1 and gives it up at once', () => {
    expect(createPlan(c, 'n1').steps.filter(isWrite).map((w) => w.data)).toEqual(['-1']);
  });
  it('owner moves are /proc writes, adds first', () => {
    expect(procWrites('10.200.0.100', [1, 2], [2, 3]).map((s) => (s as { data: string }).data)).toEqual(['+3', '-1']);
    expect(ownerPlan(c, 'n3', [2], [1]).steps.map((s) => (s as { data: string }).data)).toEqual(['+1', '-2']);
  });
  it('refuses 6.3+ kernels and iptables-nft-only hosts, naming what to use instead', () => {
    expect(clusteripRefusal('6.1.0-26-amd64', true)).toBeNull();
    expect(clusteripRefusal('5.10.0', true)).toBeNull();
    expect(clusteripRefusal('6.3.0', true)).toMatch(/removed in Linux 6\.3.*xt_cluster or nft/);
    expect(clusteripRefusal('6.18.44-fc', true)).toMatch(/no CLUSTERIP/);
    expect(clusteripRefusal('6.1.0', false, 'iptables v1.8.9 (nf_tables)')).toMatch(/\(nf_tables\).*iptables-nft cannot load CLUSTERIP/);
    expect(clusteripRefusal('garbage', true)).toMatch(/cannot read the kernel version/);
  });
});

describe('config fingerprint', () => {
  it('ignores owner sets (moves) but not the hash parameters', () => {
    const a = cfg('nft'), b = cfg('nft', '', ['[2]', '[1]', '[3]']);
    expect(fingerprint(a)).toBe(fingerprint(b));
    const c = structuredClone(a);
    c.cluster.seed = 1;
    expect(fingerprint(c)).not.toBe(fingerprint(a));
  });
  it('ssh destinations and key paths that could become options are refused by the schema', () => {
    const bad = (host: string): string => `cluster: { ip: 10.0.0.1, backend: nft, total_nodes: 1 }\nnodes:\n  - { name: a, owns: [1], host: ${host} }\n`;
    expect(() => parseConfig(bad('{ ssh: "-oProxyCommand=x" }'), 'x.yaml')).toThrow(/x\.yaml:3: nodes\[0\]\.host/);
    expect(() => parseConfig(bad('{ ssh: root@h, identity: "a b" }'), 'x.yaml')).toThrow(/x\.yaml:3/);
    expect(parseConfig(bad('{ ssh: root@h, identity: /k, known_hosts: /kh, port: 2222 }'), 'x.yaml').config.nodes[0]!.host).toEqual({ ssh: 'root@h', identity: '/k', known_hosts: '/kh', port: 2222 });
  });
});

describe('several clusters on one host: object names per cluster', () => {
  const named = (name: string, backend: string): ClusterConfig => {
    const c = cfg(backend);
    return { ...c, cluster: { ...c.cluster, name } };
  };
  it('an unnamed cluster keeps the names and fingerprint it always had', () => {
    const c = cfg('nft');
    expect(nftTable(c)).toBe(NFT_TABLE);
    expect(iptChain(c)).toBe(IPT_CHAIN);
    expect(fingerprint(named('web', 'nft'))).not.toBe(fingerprint(c));
  });
  it('named clusters get their own nft tables, iptables chain, jump and replay sink; no step of one names the other\'s objects', () => {
    for (const backend of ['nft', 'xt_cluster', 'clusterip']) {
      const a = named('web', backend), b = named('dns', backend);
      const text = (c: ClusterConfig): string => [createPlan(c, 'n1'), removePlan(c, 'n1'), ownerPlan(c, 'n1', [1], [1, 2])]
        .flatMap((p) => p.steps).filter(isRun).map((s) => `${s.argv.join(' ')}\n${s.stdin ?? ''}`).join('\n');
      const ta = text(a);
      if (backend !== 'clusterip') expect(ta).toContain('clusterip_sim_web');
      if (backend !== 'nft') expect(ta).toContain('CLUSTERIP_SIM_WEB');
      expect(ta).not.toMatch(/clusterip_sim_dns|CLUSTERIP_SIM_DNS|clusterip_sim\b(?!_)|CLUSTERIP_SIM\b(?!_)/);
      expect(text(b)).not.toMatch(/_web\b|_WEB\b/);
    }
  });
});
