/**
 * `glue probe`: send one crafted probe per bucket from this host (or the
 * namespace the command runs in) and see which node answers it.
 *
 * Sending: a raw IPv4 socket with IP_HDRINCL through the optional
 * `raw-socket` package (the agent's loader, watch.ts): our own IP header, so
 * each probe carries the source address the model chose for its bucket. The
 * answers go to those addresses, so they must route back to this host (a
 * prefix the nodes route via the prober, or addresses on its interface).
 *
 * Reading: tcpdump on the interface towards the cluster, written as pcap and
 * read back (packets.ts). The answering node is the answer's source MAC: the
 * cluster IP is shared, but each node sends from its own interface MAC
 * (CLUSTERIP, xt_cluster and our nft rules change only ARP answers and the
 * accept decision), which we read from each node through its runner.
 */
import { spawn } from 'node:child_process';
import { randomInt } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ClusterConfig } from '../../sim/core/cluster-config.ts';
import { formatIPv4, parseIPv4 } from '../../sim/core/addr.ts';
import { DataError } from '../../sim/core/errors.ts';
import { makeTempDir } from '../../sim/core/temp-dir.ts';
import { loadRawSocket } from '../agent/watch.ts';
import { runnerFor, spawnArgv, type Runner } from '../exec/runner.ts';
import { answersInPcap, probeDatagram, type Answer } from './packets.ts';
import { planProbes, type ProbePlanOptions, type ProbeTarget } from './plan.ts';

export interface ProbeOptions extends ProbePlanOptions {
  /** Interface towards the cluster; default: the route to the cluster IP. */
  interface?: string;
  /** How long to wait for answers after the last probe, ms. */
  waitMs: number;
  /** How to reach a node (tests); default: its config host. */
  runnerOf?: (n: ClusterConfig['nodes'][number]) => Runner;
}

/** One bucket's probe and what came back. */
export interface ProbeBucket {
  /** Kernel node number 1..N (bucket = number - 1). */
  number: number;
  bucket: number;
  proto: 'tcp' | 'icmp';
  source: string;
  sport: number;
  dport: number;
  /** Owners of `number` in the config (the prediction). */
  expected: string[];
  /** Nodes that answered (a node name, or 'unknown MAC xx:..' for a MAC no node has). */
  answered: string[];
  /** 'syn-ack', 'rst' or 'echo-reply' per answer, in the order of `answered`. */
  kinds: string[];
  ok: boolean;
}

export interface ProbeReport {
  cluster: { name?: string; ip: string; backend: string; total_nodes: number };
  interface: string;
  macs: Record<string, string>;
  buckets: ProbeBucket[];
  /** Node numbers where the answer differs from the prediction. */
  disagree: number[];
  ok: boolean;
}

/** Each node's MAC on the cluster interface, read on the node itself. */
async function nodeMacs(c: ClusterConfig, runnerOf: (n: ClusterConfig['nodes'][number]) => Runner): Promise<Map<string, string>> {
  const m = new Map<string, string>();
  for (const n of c.nodes) {
    const r = runnerOf(n);
    const argv = ['ip', '-j', 'link', 'show', 'dev', c.cluster.interface];
    const res = await r.run(argv);
    let mac: unknown;
    try {
      mac = (JSON.parse(res.stdout) as { address?: string }[])[0]?.address;
    } catch { /* reported below */ }
    if (res.code !== 0 || typeof mac !== 'string') throw new DataError(`${n.name} (${r.where})`, `\`${argv.join(' ')}\` gave no MAC (exit ${res.code}): ${res.stderr.trim() || res.stdout.trim()}`);
    const prev = [...m].find(([, v]) => v === mac.toLowerCase());
    if (prev) throw new DataError(`${n.name} (${r.where})`, `MAC ${mac} on ${c.cluster.interface} is also ${prev[0]}'s: answers could not tell the nodes apart`);
    m.set(n.name, mac.toLowerCase());
  }
  return m;
}

/** The interface the route to `ip` leaves by, here. */
async function routeDevice(ip: string): Promise<string> {
  const r = await spawnArgv(['ip', '-o', 'route', 'get', ip]);
  const dev = / dev (\S+)/.exec(r.stdout)?.[1];
  if (r.code !== 0 || !dev) throw new DataError(`ip route get ${ip}`, `no route to the cluster IP here (${r.stderr.trim()}); give --interface`);
  return dev;
}

/** tcpdump writing pcap to `file`, resolved once it listens. */
function startCapture(iface: string, filter: string, file: string): Promise<{ stop: () => Promise<void> }> {
  const p = spawn('tcpdump', ['-i', iface, '-n', '-U', '--immediate-mode', '-s', '128', '-w', file, filter], { stdio: ['ignore', 'ignore', 'pipe'] });
  return new Promise((resolve, reject) => {
    let err = '';
    const t = setTimeout(() => { p.kill('SIGKILL'); reject(new DataError(`tcpdump -i ${iface}`, `not listening after 10 s: ${err.trim()}`)); }, 10_000);
    p.on('error', (e) => { clearTimeout(t); reject(new DataError(`tcpdump -i ${iface}`, `cannot start it (apt-get install tcpdump): ${e.message}`)); });
    p.on('exit', (code) => { clearTimeout(t); reject(new DataError(`tcpdump -i ${iface}`, `exited with ${code}: ${err.trim()}`)); });
    let listening = false;
    p.stderr!.on('data', (d: Buffer) => {
      err += d.toString();
      if (listening || !/listening on/.test(err)) return;
      // Once only: tcpdump's closing words ("N packets captured") come after this line.
      listening = true;
      clearTimeout(t);
      p.removeAllListeners('exit');
      resolve({
        stop: () => new Promise<void>((res) => {
          if (p.exitCode !== null || p.signalCode !== null) return res();
          // Bounded: a tcpdump that does not stop on SIGTERM is killed rather than waited for.
          const kill = setTimeout(() => p.kill('SIGKILL'), STOP_TIMEOUT_MS);
          p.on('exit', () => { clearTimeout(kill); res(); });
          // SIGTERM, not SIGINT: a parent started in the background (sh `&`) passes SIGINT on ignored.
          p.kill('SIGTERM');
        }),
      });
    });
  });
}

/** How long tcpdump gets to stop on SIGTERM before it is killed, and the probes to be sent, ms. */
const STOP_TIMEOUT_MS = 5000;
const SEND_TIMEOUT_MS = 10_000;

/**
 * Sends every datagram through one raw IPv4 socket with IP_HDRINCL. Bounded:
 * raw-socket reports a failed poll as an 'error' event with no error object
 * and closes the socket, leaving the sends it had queued without their
 * callbacks; an error, a close with sends left, or SEND_TIMEOUT_MS without
 * them all ends the wait with a DataError (before, the command waited for
 * ever beside its running tcpdump).
 */
async function sendAll(datagrams: Buffer[], dest: string): Promise<void> {
  const raw = loadRawSocket('glue probe');
  const sock = raw.createSocket({ protocol: 255 }); // IPPROTO_RAW: send only, header included
  sock.setOption(raw.SocketLevel.IPPROTO_IP, raw.SocketOption.IP_HDRINCL, 1);
  // Send only: raw-socket polls for reading too, and when a socket is readable (a pending socket
  // error counts) it reports that instead of its being writable, which would hold the sends back.
  sock.pauseRecv();
  const where = `raw socket to ${dest}`;
  let left = datagrams.length;
  try {
    if (left === 0) return;
    await new Promise<void>((resolve, reject) => {
      const fail = (why: string): void => { clearTimeout(timer); reject(new DataError(where, `${why}; ${left} of ${datagrams.length} probes unsent`)); };
      const timer = setTimeout(() => fail(`not sent after ${SEND_TIMEOUT_MS / 1000} s`), SEND_TIMEOUT_MS);
      sock.on('error', (e?: Error) => fail(e?.message ? `the socket failed: ${e.message}` : 'the socket failed'));
      sock.on('close', () => { if (left > 0) fail('the socket closed'); });
      for (const d of datagrams) {
        sock.send(d, 0, d.length, dest, (e?: Error | null) => {
          if (e) return fail(e.message);
          if (--left === 0) { clearTimeout(timer); resolve(); }
        });
      }
    });
  } finally {
    sock.close();
  }
}

const kindOf = (a: Answer): string => (a.proto === 'icmp' ? 'echo-reply' : (a.tcpFlags & 0x12) === 0x12 ? 'syn-ack' : 'rst');

/** Matches answers to probes and decides each bucket (pure; the prober's last step, tested alone). */
export function judge(targets: readonly ProbeTarget[], answers: readonly Answer[], macs: ReadonlyMap<string, string>): ProbeBucket[] {
  const byMac = new Map([...macs].map(([n, m]) => [m, n]));
  return targets.map((t) => {
    const mine = answers.filter((a) => a.proto === t.proto && a.saddr === t.saddr >>> 0 && a.sport === t.sport && a.dport === t.dport
      && (t.proto === 'icmp' || a.ack === (((t.seq ?? 0) + 1) >>> 0)));
    const answered: string[] = [];
    const kinds: string[] = [];
    for (const a of mine) {
      const who = byMac.get(a.mac) ?? `unknown MAC ${a.mac}`;
      if (answered.includes(who)) continue; // a retransmitted SYN-ACK is the same answer
      answered.push(who);
      kinds.push(kindOf(a));
    }
    const ok = answered.length === t.expected.length && t.expected.every((e) => answered.includes(e));
    return { number: t.number, bucket: t.number - 1, proto: t.proto, source: formatIPv4(t.saddr), sport: t.sport, dport: t.dport, expected: t.expected, answered, kinds, ok };
  });
}

/** Probes every bucket of `c` and reports who answered against the prediction. */
export async function probeCluster(c: ClusterConfig, o: ProbeOptions): Promise<ProbeReport> {
  // Fresh tuples per run: a node that still holds an earlier run's half-open
  // connection of the same tuple answers a new SYN with a bare ACK, not a
  // SYN-ACK (seen in the kernel test). And a new SYN sequence number per run:
  // answers are matched on its acknowledgement, so retransmitted SYN-ACKs of
  // an earlier run never count (packets.ts).
  const seq = randomInt(0, 2 ** 32 - 1);
  const targets = planProbes(c, { ...o, sportBase: o.sportBase ?? randomInt(1024, 65536) }).map((t) => ({ ...t, seq }));
  const macs = await nodeMacs(c, o.runnerOf ?? ((n) => runnerFor(n.name, n.host)));
  const iface = o.interface ?? (await routeDevice(c.cluster.ip));
  const dir = makeTempDir('cipsim-probe-');
  const file = join(dir.path, 'answers.pcap');
  try {
    const filter = `src host ${c.cluster.ip} and ${o.proto === 'tcp' ? `tcp src port ${o.port}` : 'icmp[icmptype] == icmp-echoreply'}`;
    const cap = await startCapture(iface, filter, file);
    try {
      await sendAll(targets.map((t, i) => probeDatagram(t, i + 1)), c.cluster.ip);
      await new Promise((r) => setTimeout(r, o.waitMs));
    } finally {
      await cap.stop();
    }
    const answers = answersInPcap(readFileSync(file), parseIPv4(c.cluster.ip)!, `capture on ${iface}`);
    const buckets = judge(targets, answers, macs);
    const disagree = buckets.filter((b) => !b.ok).map((b) => b.number);
    return {
      cluster: { name: c.cluster.name, ip: c.cluster.ip, backend: c.cluster.backend, total_nodes: c.cluster.total_nodes },
      interface: iface,
      macs: Object.fromEntries(macs),
      buckets,
      disagree,
      ok: disagree.length === 0,
    };
  } finally {
    dir.remove();
  }
}
