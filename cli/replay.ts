/**
 * `clusterip-sim replay`: sends a capture into a real cluster, rewritten to
 * the cluster IP and MAC (checksums fixed, sources kept), at a controlled
 * rate; with --verify, proves the prediction against the hosts' acceptance
 * counters node by node. The work lives in kernel-glue/replay/.
 */
import type { Command } from 'commander';
import { readFileSync } from 'node:fs';
import { DataError, GateError, UsageError } from '../sim/core/errors.ts';
import { clusterFamily, formatProblems, loadConfig, type ClusterConfig } from '../sim/core/cluster-config.ts';
import { parseIPv4, parseIPv6 } from '../sim/core/addr.ts';
import { parseMac, rewriteCapture, writeRewrittenPcap, type Rewritten } from '../kernel-glue/replay/rewrite.ts';
import { sendFrames, type Rate, type SendResult } from '../kernel-glue/replay/sender.ts';
import { Progress } from './progress.ts';
import { compare, defaultRunnerOf, deltas, predict, readStates, readTcpLoose, settle, setSinks, type Difference, type HostDelta, type Prediction } from '../kernel-glue/replay/verify.ts';

interface Opts {
  pcap?: string;
  config?: string;
  via?: string;
  pps?: string;
  mbps?: string;
  multiplier?: string;
  topspeed?: boolean;
  loop?: string;
  limit?: string;
  verify?: boolean;
  sink?: boolean;
  out?: string;
  json?: boolean;
}

const say = (s: string): void => void process.stdout.write(s.endsWith('\n') ? s : s + '\n');
const warn = (s: string): void => void process.stderr.write(s.endsWith('\n') ? s : s + '\n');

function positive(s: string, flag: string, int: boolean): number {
  const v = Number(s.replace(/_/g, ''));
  if (s.trim() === '' || !Number.isFinite(v) || v <= 0 || (int && !Number.isInteger(v))) throw new UsageError(`${flag}: '${s}' is not a positive ${int ? 'whole ' : ''}number`);
  return v;
}

export function rateOf(o: Opts): Rate {
  const given = [o.pps !== undefined, o.mbps !== undefined, o.multiplier !== undefined, !!o.topspeed].filter(Boolean).length;
  if (given > 1) throw new UsageError('choose one of --pps, --mbps, --multiplier, --topspeed');
  if (o.pps !== undefined) return { mode: 'pps', value: positive(o.pps, '--pps', false) };
  if (o.mbps !== undefined) return { mode: 'mbps', value: positive(o.mbps, '--mbps', false) };
  if (o.topspeed) return { mode: 'top' };
  // tcpreplay's default: the capture's own timing.
  return { mode: 'mult', value: o.multiplier !== undefined ? positive(o.multiplier, '--multiplier', false) : 1 };
}

const rateText = (r: Rate): string => (r.mode === 'top' ? 'top speed' : r.mode === 'pps' ? `${r.value} packets/s` : r.mode === 'mbps' ? `${r.value} Mbit/s` : `capture timing x${r.value}`);

/**
 * Achieved against requested, in the unit that was requested; for a
 * multiplier, the scheduled duration over the real one (null at top speed).
 */
function achievedShare(r: Rate, s: SendResult, rw: Rewritten, loops: number): number | null {
  if (r.mode === 'pps') return s.pps / r.value;
  if (r.mode === 'mbps') return s.mbps / r.value;
  if (r.mode === 'mult') {
    const span = expectedSpan(rw, loops) / r.value;
    const real = (s.lastNs - s.firstNs) / 1e9;
    return span > 0 && real > 0 ? span / real : null;
  }
  return null;
}

/** The schedule's length at multiplier 1, as sender.c lays loops end to end (one mean gap between them). */
function expectedSpan(rw: Rewritten, loops: number): number {
  if (rw.count < 2) return 0;
  const span = rw.ts[rw.count - 1]!;
  return (loops - 1) * (span + span / (rw.count - 1)) + span;
}

function plannedSeconds(r: Rate, rw: Rewritten, loops: number): number | null {
  if (r.mode === 'pps') return (rw.count * loops) / r.value;
  if (r.mode === 'mbps') return (Array.from(rw.len).reduce((a, b) => a + b, 0) * 8 * loops) / (r.value * 1e6);
  if (r.mode === 'mult') return expectedSpan(rw, loops) / r.value;
  return null;
}

interface Report {
  pcap: string;
  config: string;
  via: string | null;
  rewrite: Rewritten['stats'];
  rate: { requested: Rate; loops: number; sent: SendResult | null; achievedShare: number | null };
  verify: null | {
    sink: boolean;
    tcpLoose: Record<string, boolean>;
    hosts: { host: string; predicted: Record<number, number>; counted: Record<number, number>; dropped: number | null }[];
    differences: Difference[];
    ok: boolean;
  };
}

export function registerReplay(program: Command): void {
  program
    .command('replay')
    .description(
      'Rewrites every IPv4 packet of the capture (IPv6 packet, for an IPv6 cluster address) to the cluster IP (destination address) and the cluster MAC, fixes the IP and ' +
        'TCP/UDP/ICMP/ICMPv6 checksums (conntrack drops a packet with a bad one on every node), keeps source addresses and ports (they ' +
        'decide the bucket), strips VLAN tags, and sends the frames through an interface with AF_PACKET at a controlled rate. ' +
        'Fragments are sent as fragments, their L4 checksum fixed over the reassembled datagram. Packets of the other IP family than ' +
        'the cluster address, IPv6 extension headers and fragments, neighbour discovery, non-IP, truncated (snaplen) ' +
        'packets, datagrams larger than the interface MTU (GRO captures) and DCCP/SCTP/UDP-Lite are skipped and counted. ' +
        'The rewritten capture is held in memory (like tcpreplay --preload-pcap).\n\n' +
        'The sender is a small C program built with the system compiler (cc) at first use and cached in ~/.cache/clusterip-sim.\n\n' +
        '--verify reads the per-node acceptance counters that `glue apply` installed, before and after, and compares them node by ' +
        'node with the simulator\'s prediction for the rewritten packets (exit 3 on any difference, first flows shown). During a ' +
        'verified replay a temporary "sink" drops the replayed packets after the counters and before conntrack confirmation, so ' +
        'each packet is judged on its own as the prediction assumes (--no-sink to deliver them; TCP state then makes exact counts ' +
        'timing-dependent). Conntrack rules are modelled: only TCP SYN opens a connection (an ACK too where nf_conntrack_tcp_loose=1), ' +
        'ICMP only by requests; other packets are accepted by no node.',
    )
    .requiredOption('-r, --pcap <file>', 'capture to replay (pcap or pcapng, any supported link type, .gz)')
    .requiredOption('--config <file>', 'the cluster YAML (cluster IP, MAC, backend, nodes)')
    .option('-i, --via <iface>', 'send through this interface (needs root / CAP_NET_RAW); -i as in tcpreplay')
    .option('--pps <n>', 'packets per second')
    .option('--mbps <n>', 'megabits per second (frame bytes)')
    .option('--multiplier <x>', "the capture's own timing, x times faster (default 1)")
    .option('--topspeed', 'as fast as the interface takes them')
    .option('--loop <n>', 'send the capture n times (default 1)')
    .option('--limit <n>', 'only the first n records')
    .option('--verify', 'compare the hosts\' acceptance counters with the prediction (exit 3 on a difference)')
    .option('--no-sink', 'with --verify: deliver the packets instead of dropping them after the counters')
    .option('-w, --out <file>', 'also write the rewritten frames as a pcap (without --via: only write)')
    .option('--json', 'print the report as JSON')
    .addHelpText(
      'after',
      `
Examples:
  # replay at 20,000 packets/s, twice, and prove the per-node counts
  clusterip-sim replay --pcap web.pcap --config cluster.yaml --via eth0 --pps 20000 --loop 2 --verify
  # the capture's own timing, 10x faster; report as JSON
  clusterip-sim replay --pcap web.pcapng --config cluster.yaml --via eth0 --multiplier 10 --json
  # look at what would be sent (tcpdump -r rewritten.pcap), send nothing
  clusterip-sim replay --pcap web.pcap --config cluster.yaml --out rewritten.pcap

Exit codes: 0 ok (and, with --verify, every node counted exactly what was predicted), 1 error, 2 usage, 3 a node's count differs.`,
    )
    .action(async (o: Opts) => {
      const rate = rateOf(o);
      const loops = o.loop !== undefined ? positive(o.loop, '--loop', true) : 1;
      if (!o.via && !o.out) throw new UsageError('--via IFACE is required (or --out FILE to only write the rewritten capture)');
      if (o.verify && !o.via) throw new UsageError('--verify needs --via');
      const l = loadConfig(o.config!);
      if (l.problems.length) warn(`warning: the config fails validation:\n${formatProblems(l)}`);
      const c: ClusterConfig = l.config;
      const rw = rewriteCapture(o.pcap!, {
        mtu: o.via ? interfaceMtu(o.via) : undefined,
        clusterIp: parseIPv4(c.cluster.ip) ?? 0,
        ...(clusterFamily(c) === 6 ? { clusterIp6: parseIPv6(c.cluster.ip)! } : {}),
        clusterMac: parseMac(c.cluster.mac),
        limit: o.limit !== undefined ? positive(o.limit, '--limit', true) : undefined,
      });
      if (o.out) {
        writeRewrittenPcap(o.out, rw);
      }
      const report: Report = { pcap: o.pcap!, config: o.config!, via: o.via ?? null, rewrite: rw.stats, rate: { requested: rate, loops, sent: null, achievedShare: null }, verify: null };
      if (!o.via) return finish(report, o);
      if (rw.count === 0) throw new DataError(o.pcap!, `no IPv${clusterFamily(c)} packet to send to ${c.cluster.ip} (see the skipped counts with --out/--json)`);

      let pred: Prediction | null = null;
      let before = null, tcpLoose: Map<string, boolean> | null = null;
      const sink = o.verify ? o.sink !== false : false;
      const runnerOf = defaultRunnerOf;
      if (o.verify) {
        before = await readStates(c, runnerOf);
        const bad = [...before.values()].filter((s) => !s.present || s.gaps.some((g) => /another config|no table|no chain/.test(g)));
        if (bad.length) throw new DataError(o.config!, `cannot verify: ${bad.map((s) => `${s.host} (${s.where}): ${s.gaps.join('; ')}`).join(' | ')} (run 'clusterip-sim glue apply' first)`);
        tcpLoose = await readTcpLoose(c, runnerOf);
        pred = predict(c, rw, tcpLoose, loops);
        if (sink) {
          const err = await setSinks(c, runnerOf, true);
          if (err.length) { await setSinks(c, runnerOf, false); throw new DataError(o.config!, `cannot install the replay sink: ${err.join('; ')}`); }
        }
      }
      let diffs: Difference[] = [];
      let got: HostDelta[] = [];
      try {
        const planned = plannedSeconds(rate, rw, loops);
        if (process.stderr.isTTY && !o.json) warn(`sending ${rw.count * loops} frames via ${o.via} at ${rateText(rate)}${planned !== null ? ` (about ${planned.toFixed(1)} s)` : ''}...`);
        // A bar with percentage and ETA on a terminal (Progress stays silent elsewhere); the total is exact: frames × loops.
        const progress = o.json ? null : new Progress(process.stderr, rw.count * loops);
        const sent = await sendFrames(rw, { iface: o.via, rate, loops, ...(progress ? { onProgress: (n: number) => progress.update(n) } : {}) });
        progress?.done();
        report.rate.sent = sent;
        report.rate.achievedShare = achievedShare(rate, sent, rw, loops);
        if (o.verify && before && pred) {
          const after = await settle(c, runnerOf, before, rw.stats.datagrams * loops);
          got = deltas(before, after);
          diffs = compare(pred, rw, got);
        }
      } finally {
        if (sink) {
          const err = await setSinks(c, runnerOf, false);
          if (err.length) warn(`warning: could not remove the replay sink: ${err.join('; ')}`);
        }
      }
      if (o.verify && pred) {
        const obj = (m: Map<number, number> | undefined): Record<number, number> => Object.fromEntries(m ?? []);
        report.verify = {
          sink,
          tcpLoose: Object.fromEntries(tcpLoose!),
          hosts: got.map((d) => ({ host: d.host, predicted: obj(pred!.perHost.get(d.host)), counted: obj(d.accepted), dropped: d.dropped })),
          differences: diffs,
          ok: diffs.length === 0,
        };
      }
      finish(report, o);
    });
}

/** The interface's MTU in this network namespace, or undefined when it cannot be read (the sender then reports the error). */
function interfaceMtu(iface: string): number | undefined {
  if (!/^[A-Za-z0-9_.:@-]{1,15}$/.test(iface)) throw new UsageError(`--via: '${iface}' is not an interface name`);
  try {
    const v = Number(readFileSync(`/sys/class/net/${iface}/mtu`, 'utf8').trim());
    return Number.isInteger(v) && v > 0 ? v : undefined;
  } catch {
    throw new DataError(`--via ${iface}`, 'no such interface in this network namespace');
  }
}

function finish(r: Report, o: Opts): void {
  if (o.json) say(JSON.stringify(r, null, 2));
  else {
    const s = r.rewrite;
    const skipped = Object.entries(s.skipped).map(([k, v]) => `${k} ${v}`).join(', ');
    say(`rewrite: ${s.records} records -> ${s.frames} frames (${s.datagrams} datagrams after reassembly; ${s.fragments} fragments in ${s.fragmentTrains} complete trains${s.incompleteTrains ? `, ${s.incompleteTrains} incomplete` : ''}; VLAN tags stripped from ${s.vlanStripped})${skipped ? `; skipped: ${skipped}` : ''}`);
    if (o.out) say(`wrote the rewritten frames to ${o.out}`);
    const x = r.rate.sent;
    if (x) {
      const share = r.rate.achievedShare;
      say(`sent ${x.sent} frames (${x.bytes} bytes) via ${r.via} in ${(x.elapsedNs / 1e9).toFixed(3)} s: ${x.pps.toFixed(0)} packets/s, ${x.mbps.toFixed(2)} Mbit/s; requested ${rateText(r.rate.requested)} x ${r.rate.loops} loop${r.rate.loops > 1 ? 's' : ''}${share !== null ? ` (achieved ${(share * 100).toFixed(1)} %)` : ''}${x.retries ? `; ${x.retries} send retries` : ''}`);
    }
    const v = r.verify;
    if (v) {
      say(`verify (${v.sink ? 'sink on: every packet judged on its own' : 'no sink: packets delivered'}):`);
      for (const h of v.hosts) {
        const ks = [...new Set([...Object.keys(h.predicted), ...Object.keys(h.counted)])].map(Number).sort((a, b) => a - b);
        say(`  ${h.host} (tcp_loose ${v.tcpLoose[h.host] ? 1 : 0}): ${ks.map((k) => `node ${k}: predicted ${h.predicted[k] ?? 0}, counted ${h.counted[k] ?? 0}`).join('; ')}${h.dropped !== null ? `; dropped ${h.dropped}` : ''}`);
      }
      for (const d of v.differences) {
        say(`  DIFFERENCE on ${d.host}, node number ${d.node}: predicted ${d.predicted}, counted ${d.counted}; first flows predicted there:`);
        for (const f of d.flows) say(`      ${f}`);
      }
      say(v.ok ? 'verify: every node counted exactly what was predicted' : 'verify: FAILED');
    }
  }
  if (r.verify && !r.verify.ok) throw new GateError(`replay --verify: ${r.verify.differences.length} node count${r.verify.differences.length > 1 ? 's differ' : ' differs'} from the prediction`);
}
