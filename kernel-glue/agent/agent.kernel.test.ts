/**
 * The heartbeat agent on the running kernel: three node namespaces and a
 * client on a bridge (test/netns-cluster.ts), one real agent process per node
 * (`clusterip-sim glue agent`), real nft / xt_cluster rules, real UDP beats.
 *
 * A probe in the client namespace opens new TCP connections to the cluster
 * IP every PROBE_MS from sources chosen so that every bucket is exercised
 * (xt_cluster and nft hash only the conntrack's original source address, so
 * the source address alone decides the bucket), each with a short timeout and
 * no retry: a connection that gets no answer in PROBE_TIMEOUT_MS is lost.
 *
 * Per backend, in order:
 *  1. agents start together, establish the config's owner sets (cold start);
 *  2. node3 crashes (agent SIGKILLed, its link taken down): node1 (policy
 *     lowest) owns bucket 3 within dead_after x interval + one interval, new
 *     connections to bucket 3 are answered again, nothing else is lost; the
 *     measured loss window is compared with the failover model's prediction
 *     (sim/cluster buildTimeline) for the same parameters and crash phase;
 *  3. node3 comes back with an empty kernel owner set and a new agent:
 *     failback immediate gives bucket 3 back, no new connection is lost;
 *  4. node2 leaves (SIGTERM): it exits 0 after the takeover, no new
 *     connection is lost;
 *  5. a forged beat (wrong key) and a replayed beat (a captured real one,
 *     resent from the sender's address) are rejected and logged.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn, type ChildProcess, execFileSync } from 'node:child_process';
import { chmodSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { ClusterNet, CLUSTER_IP, SUBNET, nodeIp, runPrefix } from '../../test/netns-cluster.ts';
import { readLog, until, type LogLine } from '../../test/agent-log.ts';
import { parseConfig, type ClusterConfig } from '../../sim/core/cluster-config.ts';
import { applyConfig, clusterStatus, removeConfig, type GlueOptions } from '../control/apply.ts';
import { runnerFor } from '../exec/runner.ts';
import { predictNodeNumbers } from '../predict.ts';
import { parseIPv4 } from '../../sim/core/addr.ts';
import { parseScenario } from '../../sim/cluster/scenario.ts';
import { buildTimeline } from '../../sim/cluster/heartbeat.ts';
import { encodeBeat, PROTOCOL_VERSION } from './protocol.ts';

/**
 * Waits for a line in an agent's JSON log. The kernel shows a new owner set as soon as an agent's
 * command has run; the agent logs it once that command's process has exited and its callback ran,
 * which a loaded machine delays past a status poll (seen in CI with two suites side by side: the
 * status matched, the log line was not there yet). So log lines after a status check are awaited.
 */
async function logged(file: string, what: string, match: (l: LogLine) => boolean): Promise<void> {
  await until(what, () => readLog(file).some(match), 10_000, 50);
}

const PREFIX = runPrefix('cipsim-agent-');
const PORT = 8080;
const HB_PORT = 7946;
const INTERVAL = 0.2;
const DEAD_AFTER = 3;
const PROBE_MS = 20;
/** Long enough for one SYN retransmission (Linux: after 1 s), as a real client would wait. */
const PROBE_TIMEOUT_MS = 1500;
/** An answer this late means the first SYN was lost and the retransmission was answered. */
const DELAYED_MS = 900;
const CLIENT_HOSTS = Array.from({ length: 24 }, (_, i) => 30 + i);
const NAMES = ['node1', 'node2', 'node3'];
const MAIN = resolve(__dirname, '../../cli/main.ts');
const KEY = 'k'.repeat(8) + 'test-heartbeat-key-0123456789';

/**
 * Tolerances (stated, and why):
 * - takeover read back within dead_after x interval + interval (the brief's bound) + SCHED_SLACK_S: the
 *   agent's ticker runs every interval/5 and the nft/iptables command is a process start on a shared
 *   2-core machine;
 * - measured loss window vs the model's window for the same crash phase: from -PROBE granularity to
 *   + one tick + PROBE granularity + SCHED_SLACK_S (the model applies at the detection instant; the
 *   agent detects at its next tick and then runs a command).
 */
/** The least slack; the test raises it to 4 x the measured cost of one owner-set read when the machine is slower. */
const SCHED_SLACK_S = 0.25;

let net: ClusterNet;
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** One probe connection: start (ms since the epoch), source, the answering node ('' = none: broken or lost), latency. */
interface Attempt { t: number; src: string; a: string; ms: number }

class Probe {
  lines: Attempt[] = [];
  proc!: ChildProcess;
  private rest = '';
  async start(srcs: string[], everyMs = PROBE_MS): Promise<void> {
    const code = `const net=require('net');const [ip,port,every,tmo]=process.argv.slice(1,5).map((x,i)=>i?Number(x):x);const srcs=JSON.parse(process.argv[5]);
function attempt(src){const t0=Date.now();let buf='',done=false;const s=net.connect({host:ip,port,localAddress:src});
const fin=()=>{if(done)return;done=true;clearTimeout(tm);s.destroy();process.stdout.write(JSON.stringify({t:t0,src,a:buf.trim(),ms:Date.now()-t0})+'\\n')};
const tm=setTimeout(fin,tmo);s.on('data',d=>buf+=d);s.on('error',fin);s.on('close',fin)}
console.log('ready');const stop=Date.now()+120000;const iv=setInterval(()=>{if(Date.now()>stop){clearInterval(iv);return}for(const s of srcs)attempt(s)},every)`;
    this.proc = await net.startDaemon(net.client, [process.execPath, '-e', code, CLUSTER_IP, String(PORT), String(everyMs), String(PROBE_TIMEOUT_MS), JSON.stringify(srcs)], /ready/);
    this.proc.stdout!.on('data', (d: Buffer) => {
      const parts = (this.rest + d.toString()).split('\n');
      this.rest = parts.pop()!;
      for (const l of parts) if (l.startsWith('{')) this.lines.push(JSON.parse(l) as Attempt);
    });
  }
  /** Attempts that started in [from, to) (ms since the epoch) and are complete. */
  between(from: number, to: number): Attempt[] {
    return this.lines.filter((x) => x.t >= from && x.t < to);
  }
  stop(): void {
    if (this.proc.exitCode === null) this.proc.kill('SIGKILL');
  }
}

function configText(backend: 'xt_cluster' | 'nft', keyFile: string, node3Owns = '[3]', handover = 'release-first', failback = 'immediate'): string {
  return `cluster:
  ip: ${CLUSTER_IP}
  interface: eth0
  mac: 01:00:5e:00:00:20
  backend: ${backend}
  seed: 0x2545f491
  total_nodes: 3
nodes:
  - { name: node1, owns: [1], host: { netns: ${PREFIX}n1 }, address: ${nodeIp(1)} }
  - { name: node2, owns: [2], host: { netns: ${PREFIX}n2 }, address: ${nodeIp(2)} }
  - { name: node3, owns: ${node3Owns}, host: { netns: ${PREFIX}n3 }, address: ${nodeIp(3)} }
heartbeat: { interval_s: ${INTERVAL}, dead_after: ${DEAD_AFTER}, takeover_delay_s: 0, jitter_s: 0, port: ${HB_PORT}, key_file: ${keyFile} }
failover: { policy: lowest, failback: ${failback}, handover: ${handover} }
`;
}

const opts: GlueOptions = { runnerOf: (n) => runnerFor(n.name, n.host) };

const wall = (l: LogLine): number => Date.parse(l.ts);

class Agents {
  procs: (ChildProcess | null)[] = [null, null, null];
  exits: (Promise<number | null> | null)[] = [null, null, null];
  constructor(readonly file: string, readonly logs: string[], readonly extra: string[][] = [[], [], []]) {}
  async start(i: number): Promise<void> {
    const p = await net.startDaemon(net.nodes[i]!, [process.execPath, '--import', 'tsx', MAIN, 'glue', 'agent', '--config', this.file, '--node', NAMES[i]!, '--json-log', this.logs[i]!, '--leave-timeout', '3', ...this.extra[i]!], /"event":"start"/, 60_000).catch((e) => {
      throw new Error(`agent ${NAMES[i]}: ${(e as Error).message}\n${readFileSync(this.logs[i]!, 'utf8')}`);
    });
    this.procs[i] = p;
    this.exits[i] = new Promise((r) => (p.exitCode !== null ? r(p.exitCode) : p.on('exit', (c) => r(c))));
  }
  kill(i: number, sig: NodeJS.Signals): void {
    this.procs[i]?.kill(sig);
  }
  killAll(): void {
    for (const p of this.procs) if (p && p.exitCode === null) p.kill('SIGKILL');
  }
}

/** The UDP payload of the first packet in a classic pcap file (Ethernet, IPv4, UDP). */
function firstUdpPayload(pcap: Buffer): Buffer {
  const rec = 24, caplen = pcap.readUInt32LE(rec + 8);
  const frame = pcap.subarray(rec + 16, rec + 16 + caplen);
  const ihl = (frame[14]! & 0x0f) * 4;
  const udp = frame.subarray(14 + ihl);
  return udp.subarray(8, udp.readUInt16BE(4));
}

/** Sends one datagram from a namespace (optionally from a given local address). */
function sendUdp(ns: string, from: string | null, to: string, payload: Buffer): void {
  const code = `const d=require('dgram').createSocket('udp4');const [from,to,port,hex]=process.argv.slice(1);d.bind(0,from==='-'?undefined:from,()=>d.send(Buffer.from(hex,'hex'),Number(port),to,()=>d.close()))`;
  net.ns(ns, [process.execPath, '-e', code, from ?? '-', to, String(HB_PORT), payload.toString('hex')]);
}

beforeAll(async () => {
  net = await ClusterNet.open({ prefix: PREFIX, nodes: 3, clientHosts: CLIENT_HOSTS }, async (n) => {
    await n.startNameServers(NAMES, PORT);
  });
}, 120_000);

afterAll(() => {
  net?.teardown();
});

describe.each(['nft', 'xt_cluster'] as const)('heartbeat agent, backend %s, on the running kernel', (backend) => {
  it('crash -> takeover in time, rejoin -> failback, leave -> nothing lost, forged and replayed beats refused', async () => {
    const keyFile = join(net.dir, `${backend}.key`);
    writeFileSync(keyFile, KEY + '\n');
    chmodSync(keyFile, 0o600);
    const file = join(net.dir, `${backend}.yaml`);
    writeFileSync(file, configText(backend, keyFile));
    const c: ClusterConfig = parseConfig(readFileSync(file, 'utf8'), file).config;
    const logs = NAMES.map((n) => join(net.dir, `${backend}-${n}.jsonl`));
    // nft: node2 leaves on SIGTERM; xt_cluster: on its health command failing 3 times in a row.
    const sick = join(net.dir, `${backend}-node2-sick`);
    const agents = new Agents(file, logs, [[], backend === 'xt_cluster' ? ['--health-cmd', `test ! -e '${sick}'`, '--health-fails', '3'] : [], []]);
    const probe = new Probe();
    const status = async (hosts = NAMES): Promise<Record<string, number[] | null>> => {
      const s = await clusterStatus(c, { ...opts, hosts });
      return Object.fromEntries(s.hosts.map((h) => [h.host, h.actual]));
    };
    // Sources: two per bucket, predicted by the simulator's selector for this config.
    const cand = CLIENT_HOSTS.map((h) => `${SUBNET}.${h}`);
    const buckets = predictNodeNumbers({ backend: 'nft', expr: `jhash ct original ip saddr mod 3 seed 0x2545f491 offset 1`, kernel: '6.18', endian: 'little' }, cand.map((s) => ({ proto: 6, saddr: parseIPv4(s)!, sport: 40000, daddr: parseIPv4(CLUSTER_IP)!, dport: PORT })));
    const srcs: string[] = [];
    const bucketOf = new Map<string, number>();
    for (const k of [1, 2, 3]) cand.filter((_, i) => buckets[i] === k).slice(0, 2).forEach((s) => (srcs.push(s), bucketOf.set(s, k)));
    expect(srcs).toHaveLength(6);
    try {
      await removeConfig(c, opts);
      // 1. Start: the agents install the rules (empty owner sets) and establish the config's sets together.
      await Promise.all([0, 1, 2].map((i) => agents.start(i)));
      await until('every agent established', () => logs.every((f) => readLog(f).some((l) => l.event === 'established')), 30_000);
      await until('owner sets as configured', async () => JSON.stringify(await status()) === JSON.stringify({ node1: [1], node2: [2], node3: [3] }), 10_000, 100);
      // Before the agents installed the ARP mangling a node may have taught the client its own MAC for the
      // cluster IP (kernel-semantics §4.7); start from a clean neighbour entry.
      net.ns(net.client, ['ip', 'neigh', 'flush', 'to', CLUSTER_IP]);
      // Agents that start within one start-up window of each other form the cluster cold; a slower one joins it.
      // (The first may even be alone when the others' start-up takes longer than its window.)
      const est = logs.map((f) => readLog(f).find((l) => l.event === 'established')!).sort((x, y) => wall(x) - wall(y));
      expect(['cold-start', 'alone']).toContain(est[0]!.mode);
      for (const e of est.slice(1)) expect(['cold-start', 'join']).toContain(e.mode);
      await probe.start(srcs);
      await sleep(1000 + PROBE_TIMEOUT_MS);
      const steady = probe.between(0, Date.now() - PROBE_TIMEOUT_MS - 50);
      expect(steady.length).toBeGreaterThan(50);
      expect(steady.filter((x) => x.a !== `node${bucketOf.get(x.src)}`)).toEqual([]);

      // The slack for the timing checks below scales with what a kernel-glue command costs on this machine right
      // now (a read of node1's owner set, as the agent's read-back does): a fixed 0.25 s failed when the suite
      // shared the 2 cores with other runs.
      const tm = Date.now();
      for (let i = 0; i < 3; i++) await status(['node1']);
      const slackS = Math.max(SCHED_SLACK_S, (4 * (Date.now() - tm)) / 3000);

      // 2. Crash node3: the agent dies hard and the host drops off the network.
      const tc = Date.now();
      agents.kill(2, 'SIGKILL');
      net.ns(net.nodes[2]!, ['ip', 'link', 'set', 'eth0', 'down']);
      const tcDown = Date.now(); // node3 may still answer until its link is down
      const applied = await until('node1 takes bucket 3', () => readLog(logs[0]!).find((l) => l.event === 'applied' && (l.kernel as number[]).includes(3) && wall(l) >= tc), 5000);
      const takeoverS = (wall(applied) - tc) / 1000;
      expect(await status(['node1', 'node2'])).toEqual({ node1: [1, 3], node2: [2] });
      expect(takeoverS, 'takeover read back within dead_after x interval + interval (+ slack)').toBeLessThanOrEqual(DEAD_AFTER * INTERVAL + INTERVAL + slackS);
      const dead = readLog(logs[0]!).find((l) => l.event === 'dead' && l.peer === 'node3')!;
      expect(dead).toBeTruthy();
      await logged(logs[1]!, 'node2 logs node3 dead', (l) => l.event === 'dead' && l.peer === 'node3');
      await sleep(600 + PROBE_TIMEOUT_MS + 100);
      const during = probe.between(tcDown, tcDown + 1200);
      const b3 = during.filter((x) => bucketOf.get(x.src) === 3);
      // The loss window for new connections: until the first connection whose first SYN was answered.
      const firstOk = b3.find((x) => x.a !== '' && x.ms < DELAYED_MS);
      expect(firstOk, 'bucket 3 is answered again after the takeover').toBeTruthy();
      expect(firstOk!.a).toBe('node1');
      const lossS = (firstOk!.t - tc) / 1000;
      // Nothing else touched; in bucket 3 only SYNs sent before the takeover were lost, and each
      // was answered on its retransmission (the takeover came well within the 1 s SYN timeout).
      expect(during.filter((x) => bucketOf.get(x.src) !== 3 && (x.a !== `node${bucketOf.get(x.src)}` || x.ms >= DELAYED_MS))).toEqual([]);
      const lostSyns = b3.filter((x) => x.t < firstOk!.t);
      expect(lostSyns.filter((x) => x.a !== 'node1')).toEqual([]);
      expect(b3.filter((x) => x.t >= firstOk!.t && (x.a !== 'node1' || x.ms >= DELAYED_MS))).toEqual([]);
      // The model, for the same parameters and the same crash phase (time since node3's last beat).
      const lastBeatWall = wall(dead) - (dead.silent_s as number) * 1000;
      const phase = Math.max(0, (tc - lastBeatWall) / 1000);
      const sc = parseScenario(`cluster: ${JSON.stringify({ cluster: { ip: CLUSTER_IP, backend, total_nodes: 3, seed: 1 }, nodes: NAMES.map((n, i) => ({ name: n, owns: [i + 1] })) })}
heartbeat: { interval_s: ${INTERVAL}, dead_after: ${DEAD_AFTER}, takeover_delay_s: 0, jitter_s: 0 }
policy: lowest
failback: immediate
events: [ { at: ${(10 + phase).toFixed(4)}, crash: node3 } ]
`, 'agent-model.yaml', net.dir);
      const w = buildTimeline(sc).windows[0]!;
      const modelS = w.to_s - w.from_s;
      expect(w.orphaned).toEqual([3]);
      console.log(`[${backend}] crash: phase ${phase.toFixed(3)} s after node3's last beat; model loss window ${modelS.toFixed(3)} s; measured: takeover applied after ${takeoverS.toFixed(3)} s, first connection answered on its first SYN after ${lossS.toFixed(3)} s; ${lostSyns.length} new connections to bucket 3 lost their first SYN and were answered on the retransmission, 0 broken (probe: 2 sources per bucket every ${PROBE_MS} ms)`);
      expect(lossS).toBeGreaterThanOrEqual(modelS - PROBE_MS / 1000 - 0.01);
      expect(lossS).toBeLessThanOrEqual(modelS + INTERVAL / 5 + PROBE_MS / 1000 + slackS);

      /** A planned handover: no connection broken; the few whose first SYN fell into the gap were answered on the retransmission. */
      const handover = (from: number, to: number, owners: (bucket: number) => string[], mv: { bucket: number; old: number; new: number }): { n: number; delayed: Attempt[] } => {
        const xs = probe.between(from, to);
        expect(xs.filter((x) => x.a === ''), 'no new connection lost').toEqual([]);
        expect(xs.filter((x) => !owners(bucketOf.get(x.src)!).includes(x.a))).toEqual([]);
        const delayed = xs.filter((x) => x.ms >= DELAYED_MS);
        if (delayed.length) {
          // The gap lies between the old owner's release command and the end of the new owner's add command (the
          // agents log both, with their duration): a bound measured here, not a wall-clock constant (a fixed 300 ms
          // failed with the machine loaded).
          const applied = (i: number, add: boolean): LogLine => readLog(logs[i]!).find((l) => l.event === 'applied' && wall(l) >= from && (l.to as number[]).includes(mv.bucket) === add && (l.from as number[]).includes(mv.bucket) !== add)!;
          const rel = applied(mv.old, false), add = applied(mv.new, true);
          const bound = wall(add) - (wall(rel) - (rel.took_ms as number)) + 2 * PROBE_MS;
          expect(Math.max(...delayed.map((x) => x.t)) - Math.min(...delayed.map((x) => x.t)), `the SYNs dropped in the gap lie between the release command's start and the add command's end (${bound.toFixed(0)} ms)`).toBeLessThanOrEqual(bound);
        }
        return { n: xs.length, delayed };
      };

      // 3. node3 reboots: empty owner set (rules in place), link back, a new agent (new incarnation).
      const c3: ClusterConfig = parseConfig(configText(backend, keyFile, '[]'), file).config;
      const rep = await applyConfig(c3, { ...opts, hosts: ['node3'], force: true });
      expect(rep.ok, JSON.stringify(rep)).toBe(true);
      net.ns(net.nodes[2]!, ['ip', 'link', 'set', 'eth0', 'up']);
      const tr = Date.now();
      await agents.start(2);
      await until('bucket 3 back on node3 only', async () => JSON.stringify(await status()) === JSON.stringify({ node1: [1], node2: [2], node3: [3] }), 15_000, 100);
      const trDone = Date.now();
      expect(readLog(logs[2]!).findLast((l) => l.event === 'established')).toMatchObject({ mode: 'join' });
      await logged(logs[0]!, 'node1 logs node3 rejoining as a restarted node', (l) => l.event === 'rejoin' && l.peer === 'node3' && l.restarted === true);
      await logged(logs[0]!, 'node1 logs bucket 3 handed to node3', (l) => l.event === 'release' && l.bucket === 3 && String(l.cause).includes('handed to node3'));
      await logged(logs[2]!, 'node3 logs the failback of bucket 3', (l) => l.event === 'failback' && l.bucket === 3 && wall(l) >= tr);
      await sleep(PROBE_TIMEOUT_MS + 200);
      const fb = handover(tr, trDone, (k) => (k === 3 ? ['node1', 'node3'] : [`node${k}`]), { bucket: 3, old: 0, new: 2 });

      // 4. node2 leaves voluntarily.
      const tl = Date.now();
      if (backend === 'xt_cluster') writeFileSync(sick, '');
      else agents.kill(1, 'SIGTERM');
      const code = await Promise.race([agents.exits[1]!, sleep(8000).then(() => 'timeout')]);
      const tlDone = Date.now();
      expect(code, 'the leaving agent exits 0').toBe(0);
      expect(await status()).toEqual({ node1: [1, 2], node2: [], node3: [3] });
      const l2 = readLog(logs[1]!);
      if (backend === 'xt_cluster') {
        expect(l2.filter((l) => l.event === 'health-fail').map((l) => l.count)).toEqual([1, 2, 3]);
        expect(l2.find((l) => l.event === 'leave')).toMatchObject({ reason: 'health command failed 3 times in a row' });
      } else expect(l2.find((l) => l.event === 'leave')).toMatchObject({ reason: 'SIGTERM' });
      expect(l2.some((l) => l.event === 'leave-release' && l.bucket === 2 && String(l.cause).includes('handed to node1'))).toBe(true);
      expect(readLog(logs[0]!).some((l) => l.event === 'dead' && l.peer === 'node2')).toBe(false);
      await sleep(PROBE_TIMEOUT_MS + 300);
      const lv = handover(tl, tlDone + 300, (k) => (k === 2 ? ['node1', 'node2'] : [`node${k}`]), { bucket: 2, old: 1, new: 0 });
      expect(lv.n).toBeGreaterThan(20);
      console.log(`[${backend}] failback: ${fb.n} new connections during it, 0 broken, ${fb.delayed.length} answered on a SYN retransmission; leave: took ${((tlDone - tl) / 1000).toFixed(3)} s, ${lv.n} new connections, 0 broken, ${lv.delayed.length} answered on a SYN retransmission (model: no gap, nothing lost)`);

      // 5. A forged beat (wrong key) from the client, a replayed real beat from node3's own address.
      const pcap = join(net.dir, `${backend}-beat.pcap`);
      execFileSync('ip', ['netns', 'exec', net.nodes[0]!, 'timeout', '5', 'tcpdump', '-i', 'eth0', '-c', '1', '-U', '-w', pcap, `udp and dst port ${HB_PORT} and src host ${nodeIp(3)}`], { stdio: 'ignore' });
      const real = firstUdpPayload(readFileSync(pcap));
      expect(real.toString('utf8')).toContain('"node":"node3"');
      const forged = encodeBeat({ v: PROTOCOL_VERSION, node: 'node3', inc: Date.now(), seq: 1, ts: Date.now() / 1000, owned: [1, 2, 3], health: 'ok', leaving: false, view: { alive: 7, eligible: 4, owners: [0, 0, 7], waiting_ago: [null, null, null], incs: [0, 0, 0] }, fb: 0, load: [0, 0, 0] }, Buffer.from('not-the-cluster-key-at-all-0000'));
      sendUdp(net.client, null, nodeIp(1), forged);
      sendUdp(net.nodes[2]!, nodeIp(3), nodeIp(1), real);
      const rejected = await until('both rejections logged', () => {
        const r = readLog(logs[0]!).filter((l) => l.event === 'beat-rejected');
        return r.some((l) => l.reason === 'bad-mac') && r.some((l) => l.reason === 'replayed') ? r : null;
      }, 3000);
      expect(rejected.find((l) => l.reason === 'bad-mac')).toMatchObject({ claimed_node: 'node3', from: expect.stringContaining('10.200.0.2:') });
      expect(rejected.find((l) => l.reason === 'replayed')).toMatchObject({ claimed_node: 'node3', from: expect.stringContaining(`${nodeIp(3)}:`) });
      await sleep(2 * INTERVAL * 1000);
      expect(await status()).toEqual({ node1: [1, 2], node2: [], node3: [3] });
    } catch (e) {
      for (const f of logs) console.log(`--- ${f}\n${readLog(f).slice(-25).map((l) => JSON.stringify(l)).join('\n')}`);
      throw e;
    } finally {
      probe.proc && probe.stop();
      agents.killAll();
      await removeConfig(c, opts).catch(() => undefined);
    }
  });
});

/**
 * Why release-first is the default: with add-first the taker adds the bucket before the leaver releases
 * it, and during that overlap both nodes accept the SYN and answer it; new connections started in the
 * overlap are reset. The overlap of a real leave is only a few tens of ms (its resets are reported, not
 * asserted); the same state held open for 1.5 s through glue shows the effect reliably.
 */
describe('heartbeat agent, handover add-first (nft)', () => {
  it('add-first claims before the leaver releases (no gap); two owners of a bucket reset new connections', async () => {
    const keyFile = join(net.dir, 'addfirst.key');
    writeFileSync(keyFile, KEY + '\n');
    chmodSync(keyFile, 0o600);
    const file = join(net.dir, 'addfirst.yaml');
    writeFileSync(file, configText('nft', keyFile, '[3]', 'add-first'));
    const c: ClusterConfig = parseConfig(readFileSync(file, 'utf8'), file).config;
    const logs = NAMES.map((n) => join(net.dir, `addfirst-${n}.jsonl`));
    const agents = new Agents(file, logs);
    const probe = new Probe();
    const cand = CLIENT_HOSTS.map((h) => `${SUBNET}.${h}`);
    const buckets = predictNodeNumbers({ backend: 'nft', expr: `jhash ct original ip saddr mod 3 seed 0x2545f491 offset 1`, kernel: '6.18', endian: 'little' }, cand.map((x) => ({ proto: 6, saddr: parseIPv4(x)!, sport: 40000, daddr: parseIPv4(CLUSTER_IP)!, dport: PORT })));
    const b2 = cand.filter((_, i) => buckets[i] === 2).slice(0, 2);
    expect(b2).toHaveLength(2);
    try {
      await removeConfig(c, opts);
      await Promise.all([0, 1, 2].map((i) => agents.start(i)));
      await until('owner sets as configured', async () => {
        const st = await clusterStatus(c, opts);
        return JSON.stringify(st.hosts.map((h) => h.actual)) === '[[1],[2],[3]]';
      }, 30_000, 100);
      net.ns(net.client, ['ip', 'neigh', 'flush', 'to', CLUSTER_IP]);
      await probe.start(b2, 5); // 400 new connections a second into bucket 2
      await sleep(500);
      const tl = Date.now();
      agents.kill(1, 'SIGTERM');
      expect(await Promise.race([agents.exits[1]!, sleep(8000).then(() => 'timeout')])).toBe(0);
      const tlDone = Date.now();
      await sleep(PROBE_TIMEOUT_MS + 300);
      const xs = probe.between(tl, tlDone + 200);
      const claim = readLog(logs[0]!).find((l) => l.event === 'applied' && (l.to as number[]).includes(2) && wall(l) >= tl)!;
      const release = readLog(logs[1]!).find((l) => l.event === 'applied' && !(l.to as number[]).includes(2) && wall(l) >= tl)!;
      // add-first: node1 held bucket 2 before node2 let it go (the release names node1's claim); no gap, so no SYN was lost.
      expect(wall(claim)).toBeLessThanOrEqual(wall(release));
      expect(readLog(logs[1]!).some((l) => l.event === 'leave-release' && l.bucket === 2 && String(l.cause).includes('claimed by node1'))).toBe(true);
      expect(xs.filter((x) => x.ms >= DELAYED_MS)).toEqual([]);
      const resetInLeave = xs.filter((x) => x.a === '').length;
      agents.killAll();

      // What the overlap does, held open long enough to count: node1 and node2 both own bucket 2 (glue, forced).
      const dupCfg = parseConfig(configText('nft', keyFile, '[3]').replace('owns: [1],', 'owns: [1, 2],'), file).config;
      const rep = await applyConfig(dupCfg, { ...opts, force: true });
      expect(rep.ok, JSON.stringify(rep)).toBe(true);
      expect((await clusterStatus(dupCfg, opts)).doublyOwned).toEqual([2]);
      const td = Date.now();
      await sleep(1500);
      const tdEnd = Date.now();
      await sleep(PROBE_TIMEOUT_MS + 200);
      const dx = probe.between(td, tdEnd);
      const reset = dx.filter((x) => x.a === '');
      const by = (n: string): number => dx.filter((x) => x.a === n).length;
      console.log(`[add-first] leave: ${xs.length} new connections, ${resetInLeave} reset in the overlap (${wall(release) - wall(claim)} ms between the two kernel updates); held duplicate ownership of bucket 2 for 1.5 s: ${dx.length} new connections, ${by('node1')} answered by node1, ${by('node2')} by node2, ${reset.length} reset`);
      expect(dx.length).toBeGreaterThan(100);
      expect(reset.length, 'connections reset while two nodes own the bucket').toBeGreaterThan(0);
    } finally {
      probe.proc && probe.stop();
      agents.killAll();
      await removeConfig(c, opts).catch(() => undefined);
    }
  });
});

describe('heartbeat agent, network partition (nft)', () => {
  it('each side keeps every bucket owned (split brain, reported as duplicates); the heal resolves them to the policy owners', async () => {
    const keyFile = join(net.dir, 'part.key');
    writeFileSync(keyFile, KEY + '\n');
    chmodSync(keyFile, 0o600);
    const file = join(net.dir, 'part.yaml');
    writeFileSync(file, configText('nft', keyFile));
    const c: ClusterConfig = parseConfig(readFileSync(file, 'utf8'), file).config;
    const logs = NAMES.map((n) => join(net.dir, `part-${n}.jsonl`));
    const agents = new Agents(file, logs);
    const owners = async (): Promise<{ hosts: (number[] | null)[]; orphaned: number[]; doubly: number[] }> => {
      const st = await clusterStatus(c, opts);
      return { hosts: st.hosts.map((h) => h.actual), orphaned: st.orphaned, doubly: st.doublyOwned };
    };
    // The partition: node1 drops heartbeats from node2 and node3 and they drop node1's (a table of the test's own).
    const cut = (i: number, from: string[]): void => void net.ns(net.nodes[i]!, ['nft', '-f', '-'], `table ip agenttest {\n chain input {\n  type filter hook input priority -10; policy accept;\n  udp dport ${HB_PORT} ip saddr { ${from.join(', ')} } drop\n }\n}\n`);
    const heal = (i: number): void => void net.ns(net.nodes[i]!, ['nft', 'delete', 'table', 'ip', 'agenttest']);
    try {
      await removeConfig(c, opts);
      await Promise.all([0, 1, 2].map((i) => agents.start(i)));
      await until('owner sets as configured', async () => JSON.stringify((await owners()).hosts) === '[[1],[2],[3]]', 30_000, 100);
      const tp = Date.now();
      cut(0, [nodeIp(2), nodeIp(3)]);
      cut(1, [nodeIp(1)]);
      cut(2, [nodeIp(1)]);
      // node1 alone takes every bucket; node2 and node3 take node1's bucket 1 (lowest of them: node2).
      const split = await until('both sides took over', async () => {
        const o = await owners();
        return JSON.stringify(o.hosts) === '[[1,2,3],[1,2],[3]]' ? o : null;
      }, 5000, 50);
      expect(split.orphaned).toEqual([]);
      expect(split.doubly).toEqual([1, 2, 3]);
      // Every node has declared the other side dead (detection times differ by a tick and the beat phase).
      await until('each side declared the other dead', () =>
        JSON.stringify(readLog(logs[0]!).filter((l) => l.event === 'dead' && wall(l) >= tp).map((l) => l.peer).sort()) === '["node2","node3"]' &&
        [1, 2].every((i) => readLog(logs[i]!).some((l) => l.event === 'dead' && l.peer === 'node1' && wall(l) >= tp)), 3000);
      const th = Date.now();
      for (const i of [0, 1, 2]) heal(i);
      const healed = await until('the heal resolves the duplicates', async () => {
        const o = await owners();
        return JSON.stringify(o.hosts) === '[[1],[2],[3]]' ? o : null;
      }, 5000, 50);
      expect(healed.orphaned).toEqual([]);
      expect(healed.doubly).toEqual([]);
      for (const f of logs) {
        const l = readLog(f).filter((x) => wall(x) >= th);
        expect(l.some((x) => x.event === 'rejoin' && x.restarted === false), `${f}: heard again, not restarted`).toBe(true);
      }
      // The heal was seen as duplicate ownership and its resolution.
      await until('node2 logged the duplicates and their resolution', () => {
        const l1 = readLog(logs[1]!).filter((x) => wall(x) >= th);
        return l1.some((x) => x.event === 'duplicate') && l1.some((x) => x.event === 'duplicates-resolved');
      }, 2000);
      console.log(`[partition] heal resolved in ${((Date.now() - th) / 1000).toFixed(3)} s (status polls included)`);
    } finally {
      for (const i of [0, 1, 2]) { try { heal(i); } catch { /* not there */ } }
      agents.killAll();
      await removeConfig(c, opts).catch(() => undefined);
    }
  });
});

describe('heartbeat agent, failback manual (nft)', () => {
  it('a restarted node gets nothing back until SIGUSR1 asks for it; then every node fails back to it', async () => {
    const keyFile = join(net.dir, 'manual.key');
    writeFileSync(keyFile, KEY + '\n');
    chmodSync(keyFile, 0o600);
    const file = join(net.dir, 'manual.yaml');
    writeFileSync(file, configText('nft', keyFile, '[3]', 'release-first', 'manual'));
    const c: ClusterConfig = parseConfig(readFileSync(file, 'utf8'), file).config;
    const logs = NAMES.map((n) => join(net.dir, `manual-${n}.jsonl`));
    // A start-up window that covers the skew between the three agents' starts (loading tsx on a loaded machine
    // took seconds apart): with the default 0.6 s window a late agent joined the running cluster as a restarted
    // node, and under failback manual it rightly got nothing back, so the configured owner sets never came.
    const agents = new Agents(file, logs, [0, 1, 2].map(() => ['--startup', '8']));
    const hosts = async (): Promise<string> => JSON.stringify((await clusterStatus(c, opts)).hosts.map((h) => h.actual));
    try {
      await removeConfig(c, opts);
      await Promise.all([0, 1, 2].map((i) => agents.start(i)));
      await until('owner sets as configured', async () => (await hosts()) === '[[1],[2],[3]]', 30_000, 100);
      agents.kill(2, 'SIGKILL');
      net.ns(net.nodes[2]!, ['ip', 'link', 'set', 'eth0', 'down']);
      await until('node1 took bucket 3', async () => JSON.stringify((await clusterStatus(c, { ...opts, hosts: ['node1'] })).hosts[0]!.actual) === '[1,3]', 5000, 50);
      const c3: ClusterConfig = parseConfig(configText('nft', keyFile, '[]', 'release-first', 'manual'), file).config;
      expect((await applyConfig(c3, { ...opts, hosts: ['node3'], force: true })).ok).toBe(true);
      net.ns(net.nodes[2]!, ['ip', 'link', 'set', 'eth0', 'up']);
      await agents.start(2);
      await until('node3 joined', () => readLog(logs[2]!).filter((l) => l.event === 'established').length === 2, 10_000);
      await sleep(5 * INTERVAL * 1000);
      expect(await hosts(), 'manual: no failback by itself').toBe('[[1,3],[2],[]]');
      const tf = Date.now();
      agents.kill(2, 'SIGUSR1');
      await until('failback after SIGUSR1', async () => (await hosts()) === '[[1],[2],[3]]', 5000, 50);
      for (const i of [0, 1]) await logged(logs[i]!, `${NAMES[i]} logs node3's failback request`, (l) => l.event === 'failback-request' && l.peer === 'node3' && wall(l) >= tf);
      await logged(logs[0]!, 'node1 logs the release of bucket 3', (l) => l.event === 'release' && l.bucket === 3 && wall(l) >= tf);
    } finally {
      agents.killAll();
      await removeConfig(c, opts).catch(() => undefined);
    }
  });
});
