/**
 * `clusterip-sim tuples FILE`: what the simulator sees in a capture, one CSV
 * line per IP packet, so a user can hold it against `tshark -T fields`.
 */
import type { Command } from 'commander';
import { writeSync } from 'node:fs';
import { openSpool } from './spool.ts';
import { DataError, UsageError } from '../sim/core/errors.ts';
import { createBatch, F, FAMILY_IPV6, L4, type TupleBatch } from '../sim/traffic/batch.ts';
import { formatIPv4, formatIPv6 } from '../sim/core/addr.ts';
import { openCapture } from '../sim/traffic/capture.ts';
import { describeSkipped, untimedNote, type IngestStats } from '../sim/traffic/input.ts';
import type { LiveOptions } from '../sim/traffic/live.ts';

/** Whether slot i has ports (TCP, UDP, UDP-Lite, SCTP, DCCP) that were actually captured: the contract of the sport/dport columns. */
export function hasPorts(b: TupleBatch, i: number): boolean {
  return (b.flags[i]! & F.PORTS) !== 0;
}

/**
 * The identifying L4 field of a protocol without ports, as the batch carries
 * it where some backends and eras hash it (kernel-semantics §7): ICMP/ICMPv6
 * echo identifier and sequence, ESP and AH SPI, GRE key. null where there is
 * none or the capture cut it. Shown in its own column, never as ports.
 */
export function l4Id(b: TupleBatch, i: number): string | null {
  const p = b.proto[i]!, lf = b.l4flags[i]!;
  const word = (((b.sport[i]! << 16) | b.dport[i]!) >>> 0).toString(16).padStart(8, '0');
  if (p === 1 || p === 58) {
    if ((lf & L4.HAS8) === 0) return null;
    const t = b.l4a[i]! >>> 24;
    const echo = p === 1 ? t === 8 || t === 0 : t === 128 || t === 129;
    return echo ? `id=${b.sport[i]}/seq=${b.dport[i]}` : null;
  }
  if (p === 50) return (lf & L4.HAS4) !== 0 ? `spi=0x${word}` : null;
  if (p === 51) return (lf & L4.HAS8) !== 0 ? `spi=0x${word}` : null;
  if (p === 47) return (lf & L4.HAS4) !== 0 && (b.l4a[i]! & 0x20000000) !== 0 && (b.flags[i]! & F.TRUNCATED) === 0 ? `key=0x${word}` : null;
  return null;
}

/** The CSV header of `tuples`. */
export const TUPLES_HEADER = 'ts,proto,saddr,sport,daddr,dport,wirelen,l4_id';

function addr(b: TupleBatch, i: number, s: boolean): string {
  if (b.family[i] === FAMILY_IPV6) return formatIPv6(s ? b.saddr6 : b.daddr6, i << 2);
  return formatIPv4(s ? b.saddr[i]! : b.daddr[i]!);
}

export function num(s: string | undefined, flag: string, int: boolean): number | undefined {
  if (s === undefined) return undefined;
  const v = Number(s);
  if (s.trim() === '' || !Number.isFinite(v) || (int && (!Number.isInteger(v) || v < 0))) throw new UsageError(`${flag}: '${s}' is not ${int ? 'a whole number' : 'a number of seconds'}`);
  return v;
}

function row(b: TupleBatch, i: number, ts: string, json: boolean): string {
  const ports = hasPorts(b, i), id = l4Id(b, i);
  if (json) {
    const f = b.flags[i]!;
    return `    {"ts":${ts === '' ? 'null' : ts},"proto":${b.proto[i]},"saddr":"${addr(b, i, true)}","sport":${ports ? b.sport[i] : 'null'},"daddr":"${addr(b, i, false)}","dport":${ports ? b.dport[i] : 'null'},"wirelen":${b.wirelen[i]},"l4_id":${id === null ? 'null' : `"${id}"`}${f & F.FRAGMENT ? ',"fragment":true' : ''}${f & F.TRUNCATED ? ',"truncated":true' : ''}}`;
  }
  return `${ts},${b.proto[i]},${addr(b, i, true)},${ports ? b.sport[i] : ''},${addr(b, i, false)},${ports ? b.dport[i] : ''},${b.wirelen[i]},${id ?? ''}\n`;
}

/**
 * Captures live through sim/traffic/live.ts (the optional `cap` package, loaded
 * only here, on the main thread) and writes each packet as a `tuples` row to
 * `write`, until the duration or limit ends or SIGINT stops it (then the run
 * ends normally). `tuples --live` prints the rows; `simulate --live` records
 * them to a private CSV file and simulates that. Returns the capture's stats.
 */
export async function captureLive(o: LiveOptions & { device: string }, write: (s: string) => void, json = false): Promise<{ stats: IngestStats; fragments: number }> {
  const { openLive } = await import('../sim/traffic/live.ts');
  const src = await openLive(o);
  const b = createBatch(4096);
  const stop = (): void => src.close();
  process.once('SIGINT', stop);
  let first = true, fragments = 0;
  write(json ? '{\n  "packets": [\n' : TUPLES_HEADER + '\n');
  try {
    for (;;) {
      const n = await src.next(b);
      if (n === 0) break;
      let s = '';
      for (let i = 0; i < n; i++) {
        s += (json && !first ? ',\n' : '') + row(b, i, b.ts[i]!.toFixed(6), json);
        if (b.flags[i]! & F.FRAGMENT) fragments++;
        first = false;
      }
      write(s);
    }
  } finally {
    process.off('SIGINT', stop);
    src.close();
  }
  if (json) write(`\n  ],\n  "stats": ${JSON.stringify(src.stats)}\n}\n`);
  process.stderr.write(`${src.stats.packets} IP packets captured on ${o.device}; skipped: ${describeSkipped(src.stats)}\n`);
  return { stats: src.stats, fragments };
}

async function liveTuples(device: string, filter: string | undefined, duration: number | undefined, limit: number | undefined, json: boolean): Promise<void> {
  await captureLive({ device, filter, duration, limit }, (s) => void process.stdout.write(s), json);
}

export function registerTuples(program: Command): void {
  program
    .command('tuples')
    .description(
      'Decodes a pcap or pcapng capture (gzip-compressed or not, - for stdin) the way every other command does and prints ' +
        'one line per IP packet: ts,proto,saddr,sport,daddr,dport,wirelen,l4_id. Fragments carry their datagram\'s ports; ports are ' +
        'empty where the protocol has none or the capture cut them. l4_id is the identifying field of a protocol without ports ' +
        '(ICMP echo id=N/seq=N, ESP/AH spi=0x..., GRE key=0x...), which some backends hash in their place. ts is empty (JSON null) for a packet ' +
        'the capture gave no time (pcapng simple packet blocks), as tshark shows it. What was skipped, and why, goes to stderr.',
    )
    .argument('[file]', "capture file (pcap, pcapng, .gz) or '-' for stdin")
    .option('-r, --read <file>', 'the capture file, as tcpdump -r takes it (instead of the argument)')
    .option('-i, --live <device>', "capture live from an interface instead (needs the optional 'cap' package and root)")
    .option('--filter <bpf>', "with --live: a BPF filter, e.g. 'tcp port 80'")
    .option('--duration <seconds>', 'with --live: stop after this long')
    .option('-c, --limit <n>', 'stop after N packets (-c as in tcpdump)')
    .option('--from <t>', 'skip packets before this time (seconds since 1970)')
    .option('--to <t>', 'stop at the first packet after this time')
    .option('--lenient', 'skip and count damaged records instead of stopping at the first one')
    .option('--json', 'one JSON document with the packets and the counts')
    .addHelpText(
      'after',
      `
Examples:
  clusterip-sim tuples capture.pcapng | head
  clusterip-sim tuples big.pcap.gz --limit 1000 --json
  tcpdump -i eth0 -w - -c 100 | clusterip-sim tuples -
  clusterip-sim tuples --live eth0 --filter 'tcp port 443' --duration 10
  # compare with tshark:
  tshark -r capture.pcapng -T fields -E separator=, -e frame.time_epoch -e ip.proto -e ip.src -e tcp.srcport -e ip.dst -e tcp.dstport -e frame.len

Exit codes: 0 ok, 1 damaged or unreadable capture (the message names the byte offset), 2 usage.`,
    )
    .action(async (arg: string | undefined, o: { read?: string; limit?: string; from?: string; to?: string; lenient?: boolean; json?: boolean; live?: string; filter?: string; duration?: string }) => {
      if (arg !== undefined && o.read !== undefined) throw new UsageError(`give the capture once: '${arg}' or -r ${o.read}`);
      const file = arg ?? o.read;
      const limit = num(o.limit, '--limit', true);
      const from = num(o.from, '--from', false);
      const to = num(o.to, '--to', false);
      if (o.live !== undefined) {
        if (file !== undefined) throw new UsageError('give a capture file or --live DEVICE, not both');
        await liveTuples(o.live, o.filter, num(o.duration, '--duration', false), limit, o.json ?? false);
        return;
      }
      if (file === undefined) throw new UsageError('give a capture file (or - for stdin), or --live DEVICE');
      if (o.filter !== undefined || o.duration !== undefined) throw new UsageError('--filter and --duration go with --live');
      const src = openCapture(file, { limit, from, to, lenient: o.lenient ?? false });
      // JSON goes to a spool file first and reaches stdout only whole: a damaged capture must not leave half a JSON
      // document for a script to choke on. CSV streams (it is line-oriented), and on an error says how far it got.
      const spool = o.json ? openSpool() : null;
      const write = (t: string): void => { if (spool) writeSync(spool.fd, t); else process.stdout.write(t); };
      const batch = createBatch(8192);
      let first = true;
      let rows = 0;
      try {
        if (o.json) write('{\n  "packets": [\n');
        else write(TUPLES_HEADER + '\n');
        for (;;) {
          let n: number;
          try {
            n = src.fill(batch);
          } catch (e) {
            if (!spool && e instanceof DataError) throw new DataError(e.where, `${e.what} (the CSV above is complete up to there: ${rows} packets)`);
            throw e;
          }
          if (n === 0) break;
          let s = '';
          for (let i = 0; i < n; i++) {
            s += (o.json && !first ? ',\n' : '') + row(batch, i, src.formatTs(batch, i), o.json ?? false);
            first = false;
          }
          write(s);
          rows += n;
        }
        const st = src.stats;
        if (o.json) write(`\n  ],\n  "stats": ${JSON.stringify(st)}\n}\n`);
        if (spool) await spool.copyTo(process.stdout);
        process.stderr.write(`${st.packets} IP packets (${st.bytes} bytes on the wire); ${st.truncated} with the transport header cut by the snap length, ${st.fragments} fragments; skipped: ${describeSkipped(st)}\n`);
        const untimed = untimedNote(st.untimed);
        if (untimed) process.stderr.write(`note: ${untimed}\n`);
      } finally {
        src.close();
        spool?.remove();
      }
    });
}

