/**
 * IPv6 cluster addresses in the config and the rendered glue: the family
 * picks ip6 tables, ip6tables-legacy and the neighbour-discovery table; the
 * ND mangling keeps the ICMPv6 checksum exact for any node MAC (emulated
 * here statement by statement as the kernel runs them; measured on 6.18.44
 * in kernel-glue/ipv6.kernel.test.ts); a listed ND table is rendered again.
 */
import { describe, expect, it } from 'vitest';
import { parseConfig, type ClusterConfig } from '../../sim/core/cluster-config.ts';
import { onesSum, pseudoSum6, checksumOf } from '../../sim/traffic/checksum.ts';
import { parseIPv6 } from '../../sim/core/addr.ts';
import { isRun, type RunStep } from '../plan.ts';
import { createPlan, ownerPlan } from './index.ts';
import { ndMacWrite, ndTable, ndTableFromListing, linkRollbackSteps } from './shared/link.ts';
import { emptySnapshot } from './shared/backend.ts';
import { nftIpTable } from './nft/render.ts';
import { xtClusterRules } from './xt-cluster/render.ts';

const MAC = '01:00:5e:00:00:26';
const text = (backend: string, ip = 'fd00:200:0::100'): string => `cluster:
  ip: ${ip}
  interface: eth0
  mac: "${MAC}"
  backend: ${backend}
  seed: 1
  total_nodes: 3
nodes:
  - { name: n1, owns: [1, 2] }
  - { name: n2, owns: [3], host: { netns: ns2 } }
`;
const cfg = (backend: string): ClusterConfig => parseConfig(text(backend), 'v6.yaml').config;
const runs = (steps: unknown[]): RunStep[] => (steps as RunStep[]).filter(isRun);

describe('config', () => {
  it('takes an IPv6 cluster address for xt_cluster and nft; refuses it for clusterip at its key and line', () => {
    expect(cfg('nft').cluster.ip).toBe('fd00:200:0::100');
    expect(() => parseConfig(text('clusterip').replace('seed: 1', 'hashmode: sourceip'), 'v6.yaml')).toThrow(/v6\.yaml:2: cluster\.ip: fd00:200:0::100: the clusterip backend is IPv4-only/);
    expect(() => parseConfig(text('nft', 'fd00::1::2'), 'v6.yaml')).toThrow(/v6\.yaml:2: cluster\.ip: an IPv4 address such as 192\.0\.2\.10 or an IPv6 address/);
  });
});

describe('nft backend, IPv6', () => {
  const c = cfg('nft');
  it('an ip6 table hashing ct original ip6 saddr, the address in the form nft lists it, ND before the hash', () => {
    const t = nftIpTable(c, [1, 2]);
    expect(t.startsWith('table ip6 clusterip_sim {')).toBe(true);
    expect(t).toContain('\t\tjhash ct original ip6 saddr mod 3 seed 0x00000001 offset 1 @owned accept\n');
    expect(t).toContain('iifname "eth0" ip6 daddr fd00:200::100 meta pkttype multicast ip6 daddr != ff00::/8 meta pkttype set host');
    const nd = t.indexOf('ip6 daddr fd00:200::100 icmpv6 type { nd-neighbor-solicit, nd-neighbor-advert } accept');
    expect(nd).toBeGreaterThan(0);
    expect(nd).toBeLessThan(t.indexOf('jump cluster'));
    expect(t).not.toContain('ip daddr');
  });
  it('create replaces both ip6 tables in one transaction; owner changes touch the ip6 set', () => {
    const tx = runs(createPlan(c, 'n1').steps)[0]!.stdin!;
    expect(tx.startsWith('table ip6 clusterip_sim {}\ndelete table ip6 clusterip_sim\ntable ip6 clusterip_sim_nd {}\ndelete table ip6 clusterip_sim_nd\n')).toBe(true);
    expect(tx).toContain(ndTable(c));
    expect(tx).not.toContain('table arp');
    expect(runs(ownerPlan(c, 'n1', [1, 2], [1]).steps)[0]!.stdin).toBe('delete element ip6 clusterip_sim owned { 2 }\n');
  });
});

describe('xt_cluster backend, IPv6', () => {
  const c = cfg('xt_cluster');
  it('ip6tables-legacy with a /128 jump; ND accepted before the cluster match', () => {
    const steps = runs(createPlan(c, 'n1').steps);
    expect(steps[0]!.argv).toEqual(['ip6tables-legacy-restore', '--noflush']);
    expect(steps[1]!.argv).toEqual(['ip6tables-legacy', '-t', 'mangle', '-A', 'PREROUTING', '-d', 'fd00:200::100/128', '-i', 'eth0', '-j', 'CLUSTERIP_SIM']);
    expect(steps[2]!.stdin).toContain('table ip6 clusterip_sim_nd {');
    const rules = xtClusterRules(c, [1, 2]);
    expect(rules.slice(0, 2)).toEqual(['-p ipv6-icmp -m icmp6 --icmpv6-type 135 -j ACCEPT', '-p ipv6-icmp -m icmp6 --icmpv6-type 136 -j ACCEPT']);
    expect(rules[2]).toMatch(/^-m cluster --cluster-total-nodes 3 --cluster-local-node 1 /);
  });
});

/**
 * Runs the statements of ndMacWrite on an ICMPv6 message the way the kernel
 * does: `@th,O,L set V` (raw) writes bytes and leaves the checksum alone; a
 * typed `icmpv6 type/code set` writes the 16-bit type/code word and adjusts
 * the checksum by the change (nft_payload_set_eval with csum_type inet).
 */
function runNdWrite(msg: Uint8Array, stmts: string): void {
  const word = (o: number): number => (msg[o]! << 8) | msg[o + 1]!;
  const typed = (w: number): void => {
    const old = word(0);
    // ~csum' = ~csum - old + new (RFC 1624 eqn 3)
    const c = checksumOf((~word(2) & 0xffff) + ((~old) & 0xffff) + w);
    msg[0] = w >>> 8; msg[1] = w & 255; msg[2] = c >>> 8; msg[3] = c & 255;
  };
  const re = /@th,0,16 set (?:@th,(\d+),16|0x([0-9a-f]{4})) icmpv6 type set (\S+) icmpv6 code set 0|@th,208,48 set 0x([0-9a-f]{12})/g;
  let m: RegExpExecArray | null;
  let n = 0;
  while ((m = re.exec(stmts))) {
    n++;
    if (m[4]) { for (let k = 0; k < 6; k++) msg[26 + k] = parseInt(m[4].slice(2 * k, 2 * k + 2), 16); continue; }
    const v = m[1] ? word(Number(m[1]) / 8) : parseInt(m[2]!, 16);
    msg[0] = v >>> 8; msg[1] = v & 255; // raw: no checksum change
    const t = m[3] === 'nd-neighbor-advert' ? 136 : 135;
    typed((t << 8) | (msg[1]! & 0)); // type set (keeps code), then code set 0: together the word (t, 0)
  }
  expect(n).toBe(5);
}

describe('neighbour discovery answers with the cluster MAC', () => {
  it('keeps the ICMPv6 checksum exact whatever the node MAC (the MAC cancels out)', () => {
    const src = parseIPv6('fd00:200::100')!, dst = parseIPv6('fd00:1234::9')!;
    let seed = 7;
    const rnd = (): number => (seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) >>> 24;
    for (let trial = 0; trial < 200; trial++) {
      for (const type of [135, 136] as const) {
        const pkt = new Uint8Array(40 + 32);
        src.forEach((x, k) => { for (let q = 0; q < 4; q++) pkt[8 + 4 * k + q] = (x >>> (24 - 8 * q)) & 255; });
        dst.forEach((x, k) => { for (let q = 0; q < 4; q++) pkt[24 + 4 * k + q] = (x >>> (24 - 8 * q)) & 255; });
        const msg = pkt.subarray(40);
        msg[0] = type; msg[4] = type === 136 ? 0x60 : 0;
        for (let k = 8; k < 24; k++) msg[k] = rnd();
        msg[24] = type === 136 ? 2 : 1; msg[25] = 1;
        for (let k = 26; k < 32; k++) msg[k] = rnd();
        const ps = pseudoSum6(pkt, 0, 32, 58);
        const c0 = checksumOf(onesSum(msg, 0, 32, ps));
        msg[2] = c0 >>> 8; msg[3] = c0 & 255;
        runNdWrite(msg, ndMacWrite(type, MAC));
        expect(Array.from(msg.subarray(26, 32), (x) => x.toString(16).padStart(2, '0')).join(':')).toBe(MAC);
        expect([msg[0], msg[1]]).toEqual([type, 0]);
        expect(checksumOf(onesSum(msg, 0, 32, ps)), `trial ${trial} type ${type}`).toBe(0);
      }
    }
  });

  it('a listed ND table (nft 1.0.6 prints the typed writes as `th sport set`) is rendered again, not reloaded', () => {
    const listing = LISTING;
    const c = cfg('nft');
    expect(ndTableFromListing('clusterip_sim_nd', listing)).toBe(ndTable({ ...c, cluster: { ...c.cluster, ip: 'fd00:200::100' } }).replace(/cfg=[0-9a-f]{12}/, 'cfg=420a72baeaa1'));
    const snap = { ...emptySnapshot(), nftNeigh: listing };
    const tx = runs(linkRollbackSteps(c, snap, false))[0]!.stdin!;
    expect(tx).not.toContain('th sport set');
    expect(tx).toContain('icmpv6 type set nd-neighbor-advert icmpv6 code set 0');
    expect(ndTableFromListing('x', 'table ip6 x {\n}')).toBe(null);
  });
});

const LISTING = "table ip6 clusterip_sim_nd {\n\tcomment \"clusterip-sim cfg=420a72baeaa1\"\n\tchain output {\n\t\ttype filter hook output priority filter; policy accept;\n\t\ticmpv6 type nd-neighbor-advert @th,64,128 0xfd000200000000000000000000000100 @th,192,16 0x201 th sport set @th,208,16 th sport set th sport & 35071 | 34816 th sport set th sport & 65280 th sport set @th,224,16 th sport set th sport & 35071 | 34816 th sport set th sport & 65280 th sport set @th,240,16 th sport set th sport & 35071 | 34816 th sport set th sport & 65280 th sport set 49371 th sport set th sport & 35071 | 34816 th sport set th sport & 65280 @th,208,48 set 0x1005e000026\n\t\ticmpv6 type nd-neighbor-solicit ip6 saddr fd00:200::100 @th,192,16 0x101 th sport set @th,208,16 th sport set th sport & 34815 | 34560 th sport set th sport & 65280 th sport set @th,224,16 th sport set th sport & 34815 | 34560 th sport set th sport & 65280 th sport set @th,240,16 th sport set th sport & 34815 | 34560 th sport set th sport & 65280 th sport set 48347 th sport set th sport & 34815 | 34560 th sport set th sport & 65280 @th,208,48 set 0x1005e000026\n\t}\n}\n";
