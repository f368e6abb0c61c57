/**
 * Issue 17's production-conntrack check: real TCP and UDP conversations from
 * 40 client addresses to listeners on the cluster IP (every node runs one and
 * answers), plus injected lone FINs, RSTs and stray SYN-ACKs, captured by
 * tcpdump on the client's side. `simulate` on that capture must predict every
 * node's own counter exactly, for xt_cluster (iptables-nft and -legacy) and
 * nft `jhash ct original ip saddr`, and for `jhash ip saddr` (a packet key,
 * which counts conntrack's INVALID packets too).
 *
 * The client reaches the cluster IP through a static neighbour entry for the
 * cluster's multicast MAC (as a router in front of an xt_cluster cluster is
 * set up); nodes accept as in production (xt_cluster turns the multicast
 * pkt_type into host by itself, kernel-semantics §5.4; the nft rule sets it).
 * Injected packets come from 10.77.0.0/16, which nothing routes, so a node's
 * answer to them never comes back. Nothing leaves the namespaces.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn, type ChildProcess } from 'node:child_process';
import { copyFileSync, writeFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { ClusterNet, CLUSTER_IP, SUBNET, runPrefix } from '../../test/netns-cluster.ts';
import { CLUSTER_MAC_TEXT, KernelCluster, type NodeRules } from '../../test/kernel-cluster.ts';
import { strayCapture, capturePcap, type BuiltCapture } from '../../test/kernel-captures.ts';
import { runCli } from '../../test/cli.ts';

const PREFIX = runPrefix('cipsim-kp-');
const N = 3;
const SEED = 0x5eed;
const hex = `0x${SEED.toString(16)}`;
const HOSTS = Array.from({ length: 40 }, (_, i) => 20 + i);
let net: ClusterNet;
let kc: KernelCluster;
let stray: BuiltCapture, strayPath: string;

beforeAll(async () => {
  net = new ClusterNet({ prefix: PREFIX, nodes: N, clientHosts: HOSTS });
  net.setup();
  kc = new KernelCluster(net);
  kc.joinMac();
  net.ns(net.client, ['ip', 'neigh', 'replace', CLUSTER_IP, 'lladdr', CLUSTER_MAC_TEXT, 'dev', 'eth0', 'nud', 'permanent']);
  // Every node listens on the cluster IP: TCP 8080 answers with the node's name and closes; UDP 9999 echoes.
  const code = "const net=require('net'),dgram=require('dgram');const [name,ip]=process.argv.slice(1);" +
    "const u=dgram.createSocket('udp4');u.on('message',(m,r)=>u.send(m,r.port,r.address));" +
    "u.bind(9999,ip,()=>net.createServer(s=>{s.on('error',()=>{});s.on('data',()=>{});s.end(name+'\\n')}).listen(8080,ip,()=>console.log('ready')))";
  await Promise.all(net.nodes.map((ns, i) => net.startDaemon(ns, [process.execPath, '-e', code, `n${i + 1}`, CLUSTER_IP], /ready/)));
  stray = strayCapture(CLUSTER_IP, 30);
  strayPath = join(net.dir, 'stray.pcap');
  writeFileSync(strayPath, capturePcap(stray));
});
afterAll(() => net?.teardown());

/** From the client: per source address 2 TCP connections and 2 UDP exchanges (one datagram of 3000 bytes, fragmented). */
function converse(): void {
  const code = `const net=require('net'),dgram=require('dgram');const hosts=${JSON.stringify(HOSTS)};
const tcp=(src)=>new Promise(r=>{const s=net.connect({host:'${CLUSTER_IP}',port:8080,localAddress:src});const t=setTimeout(()=>{s.destroy();r()},3000);s.on('error',()=>{});s.on('connect',()=>s.write('hello'));s.on('data',()=>{});s.on('close',()=>{clearTimeout(t);r()})});
const udp=(src,n)=>new Promise(r=>{const u=dgram.createSocket('udp4');const t=setTimeout(()=>{u.close();r()},3000);u.on('message',()=>{clearTimeout(t);u.close();r()});u.bind(0,src,()=>u.send(Buffer.alloc(n,7),9999,'${CLUSTER_IP}'))});
(async()=>{for(const h of hosts){const src='${SUBNET}.'+h;await Promise.all([tcp(src),tcp(src),udp(src,64),udp(src,3000)])}})()`;
  net.ns(net.client, [process.execPath, '-e', code]);
}

function settleSeen(): void {
  let prev = '';
  for (let i = 0; i < 50; i++) {
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 300);
    const now = JSON.stringify(net.nodes.map((n) => kc.nftCounter(n, 'seen')));
    if (now === prev) return;
    prev = now;
  }
}

function settle(rules: NodeRules): number[] {
  let prev = '';
  for (let i = 0; i < 50; i++) {
    const now = JSON.stringify(kc.counters(rules));
    if (now === prev) break;
    prev = now;
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 200);
  }
  return kc.counters(rules);
}

/** The capture's packets to the cluster IP by class (tshark), to tell which class a difference comes from. */
function classes(pcap: string): { frames: number; nonFirst: number; stray: number; datagrams: number } {
  const rows = execFileSync('tshark', ['-r', pcap, '-Y', `ip.dst == ${CLUSTER_IP}`, '-T', 'fields', '-e', 'ip.src', '-e', 'ip.frag_offset', '-e', 'ip.flags.mf'],
    { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).split('\n').filter(Boolean).map((l) => l.split('\t'));
  const nonFirst = rows.filter((r) => Number(r[1]) > 0).length, stray = rows.filter((r) => r[0]!.startsWith('10.77.')).length;
  return { frames: rows.length, nonFirst, stray, datagrams: rows.length - nonFirst };
}

async function tcpdump(out: string): Promise<ChildProcess> {
  const p = spawn('ip', ['netns', 'exec', net.client, 'tcpdump', '-i', 'eth0', '--immediate-mode', '-U', '-n', '-B', '8192', '-w', out, 'ip'], { stdio: ['ignore', 'pipe', 'pipe'] });
  await new Promise<void>((resolve, reject) => {
    let seen = '';
    const t = setTimeout(() => reject(new Error(`tcpdump not ready: ${seen}`)), 10_000);
    p.stderr!.on('data', (d: Buffer) => { seen += d.toString(); if (/listening on/.test(seen)) { clearTimeout(t); resolve(); } });
  });
  return p;
}

const ct = `jhash ct original ip saddr mod ${N} seed ${hex} offset 1`;
const ips = `jhash ip saddr mod ${N} seed ${hex} offset 1`;
const xt = ['--backend', 'xt_cluster', '--total-nodes', String(N), '--hash-seed', hex];
const cases: { name: string; rules: NodeRules; sel: string[]; knownWrong: boolean }[] = [
  { name: 'xt_cluster through iptables-legacy', rules: { kind: 'xt_cluster', tool: 'iptables-legacy', seed: SEED }, sel: xt, knownWrong: false },
  { name: 'xt_cluster through iptables-nft', rules: { kind: 'xt_cluster', tool: 'iptables-nft', seed: SEED }, sel: xt, knownWrong: false },
  { name: 'nft jhash ct original ip saddr', rules: { kind: 'nft', expr: ct, conntrack: true }, sel: ['--backend', 'nft', '--nft', ct], knownWrong: false },
  // Its only mismatch was the fragment train lost at a share edge (now carried to the merge, sim/traffic/frag-carry.ts).
  { name: 'nft jhash ip saddr (conntrack in use)', rules: { kind: 'nft', expr: ips, conntrack: true }, sel: ['--backend', 'nft', '--nft', ips], knownWrong: false },
];
/*
 * knownWrong: none left. The xt_cluster and ct cases needed the conntrack model (cluster/ct-model.ts: the
 * stray FINs, RSTs and SYN-ACKs get no node, connections are followed across share edges) and the
 * fragment trains carried across share edges (sim/traffic/frag-carry.ts). Keep the flag for the next
 * known wrong answer, with its exact mismatch here.
 */
const measured = new Map<string, { counters: number[]; pcap: string }>();

describe('production conntrack: the nodes\' own counters', () => {
  it('conversations complete through the cluster and every case is recorded', async () => {
    for (const c of cases) {
      // A conversation's last packets can trail (a retransmitted FIN on a busy machine); a capture that
      // misses what a node saw is measured again, at most twice more, and then the test fails.
      let counters: number[] = [], cls = { frames: 0, nonFirst: 0, stray: 0, datagrams: 0 }, seen: number[] = [];
      const pcap = join(net.dir, `conv-${cases.indexOf(c)}.pcap`);
      for (let attempt = 0; attempt < 3; attempt++) {
        kc.clear();
        kc.install(c.rules, N);
        const dump = await tcpdump(pcap);
        converse();
        kc.replay(strayPath, 1000);
        // Stop capturing only once every node's seen counter has been still for two reads.
        settleSeen();
        const exited = new Promise<void>((r) => dump.on('exit', () => r()));
        dump.kill('SIGINT');
        await exited;
        counters = settle(c.rules);
        cls = classes(pcap);
        seen = net.nodes.map((n) => kc.nftCounter(n, 'seen'));
        if (seen.every((x) => x === cls.datagrams)) break;
        process.stderr.write(`${c.name}: attempt ${attempt + 1}: seen ${JSON.stringify(seen)}, capture ${JSON.stringify(cls)}; measuring again\n`);
      }
      // The capture holds what the nodes saw: every node's seen counter (after defragmentation) = the capture's datagrams to the cluster IP.
      expect({ case: c.name, seen }).toEqual({ case: c.name, seen: net.nodes.map(() => cls.datagrams) });
      // Every source's conversation reached one node: at least SYN, ACK, data, FIN per TCP connection and two datagrams.
      expect(counters.reduce((a, b) => a + b, 0), c.name).toBeGreaterThanOrEqual(HOSTS.length * (2 * 4 + 2));
      process.stderr.write(`kernel ${c.name}: counters ${JSON.stringify(counters)}; capture ${JSON.stringify(cls)}\n`);
      if (process.env.CIPSIM_KEEP_CAPTURES) copyFileSync(pcap, join(process.env.CIPSIM_KEEP_CAPTURES, `conntrack-${cases.indexOf(c)}.pcap`));
      measured.set(c.name, { counters, pcap });
    }
  });
});

describe('simulate predicts every node\'s counter on the tcpdump capture, exactly (--workers 0, 1, 2 and 3)', () => {
  for (const c of cases) {
    (c.knownWrong ? it.fails : it)(c.name, async () => {
      const m = measured.get(c.name);
      if (!m) throw new Error(`no kernel measurement for ${c.name}`);
      for (const w of [0, 1, 2, 3]) {
        const r = await runCli(['simulate', '--pcap', m.pcap, ...c.sel, '--cluster-ip', CLUSTER_IP, '--workers', String(w), '--no-hash', '--json']);
        if (r.code !== 0) throw new Error(`simulate exited ${r.code}: ${r.stderr}`);
        const res = JSON.parse(r.stdout) as { configs: { nodes: { node: number; packets: number }[] }[] };
        const packets = new Array<number>(N).fill(0);
        for (const n of res.configs[0]!.nodes) packets[n.node - 1] = n.packets;
        process.stderr.write(`simulate --workers ${w} ${c.name}: packets ${JSON.stringify(packets)} (kernel ${JSON.stringify(m.counters)})\n`);
        expect({ workers: w, packets }).toEqual({ workers: w, packets: m.counters });
      }
    });
  }
});
