/**
 * `clusterip-sim tuples FILE`: what the simulator sees in a capture, one CSV
 * line per IP packet, so a user can hold it against `tshark -T fields`.
 */
import type { Command } from 'commander';
import { UsageError } from './errors.ts';
import { createBatch, F, FAMILY_IPV6, L4, type TupleBatch } from '../traffic/batch.ts';
import { formatIPv4, formatIPv6 } from '../traffic/addr.ts';
import { openCapture } from '../traffic/capture.ts';
import { describeSkipped } from '../traffic/source.ts';

/** Whether slot i has "ports" in the batch's sense (see batch.ts sport/dport) that were actually captured. */
export function hasPorts(b: TupleBatch, i: number): boolean {
  const p = b.proto[i]!;
  if ((b.flags[i]! & F.PORTS) !== 0) return true;
  const lf = b.l4flags[i]!;
  if (p === 50) return (lf & L4.HAS4) !== 0;
  if (p === 51) return (lf & L4.HAS8) !== 0;
  if (p === 1 || p === 58) {
    if ((lf & L4.HAS8) === 0) return false;
    const t = b.l4a[i]! >>> 24;
    return p === 1 ? t === 8 || t === 0 : t === 128 || t === 129;
  }
  if (p === 47) return (lf & L4.HAS4) !== 0 && (b.l4a[i]! & 0x20000000) !== 0 && (b.flags[i]! & F.TRUNCATED) === 0;
  return false;
}

function addr(b: TupleBatch, i: number, s: boolean): string {
  if (b.family[i] === FAMILY_IPV6) return formatIPv6(s ? b.saddr6 : b.daddr6, i << 2);
  return formatIPv4(s ? b.saddr[i]! : b.daddr[i]!);
}

function num(s: string | undefined, flag: string, int: boolean): number | undefined {
  if (s === undefined) return undefined;
  const v = Number(s);
  if (s.trim() === '' || !Number.isFinite(v) || (int && (!Number.isInteger(v) || v < 0))) throw new UsageError(`${flag}: '${s}' is not ${int ? 'a whole number' : 'a number of seconds'}`);
  return v;
}

export function registerTuples(program: Command): void {
  program
    .command('tuples')
    .summary('show the tuples the simulator reads from a capture (CSV or JSON)')
    .description(
      'Decodes a pcap or pcapng capture (gzip-compressed or not, - for stdin) the way every other command does and prints ' +
        'one line per IP packet: ts,proto,saddr,sport,daddr,dport,wirelen. Fragments carry their datagram\'s ports; ports are ' +
        'empty where the protocol has none or the capture cut them. What was skipped, and why, goes to stderr.',
    )
    .argument('<file>', "capture file (pcap, pcapng, .gz) or '-' for stdin")
    .option('--limit <n>', 'stop after N packets')
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
  # compare with tshark:
  tshark -r capture.pcapng -T fields -E separator=, -e frame.time_epoch -e ip.proto -e ip.src -e tcp.srcport -e ip.dst -e tcp.dstport -e frame.len

Exit codes: 0 ok, 1 damaged or unreadable capture (the message names the byte offset), 2 usage.`,
    )
    .action((file: string, o: { limit?: string; from?: string; to?: string; lenient?: boolean; json?: boolean }) => {
      const limit = num(o.limit, '--limit', true);
      const from = num(o.from, '--from', false);
      const to = num(o.to, '--to', false);
      const src = openCapture(file, { limit, from, to, lenient: o.lenient ?? false });
      const out = process.stdout;
      const batch = createBatch(8192);
      let first = true;
      try {
        if (o.json) out.write('{\n  "packets": [\n');
        else out.write('ts,proto,saddr,sport,daddr,dport,wirelen\n');
        for (;;) {
          const n = src.fill(batch);
          if (n === 0) break;
          let s = '';
          for (let i = 0; i < n; i++) {
            const ports = hasPorts(batch, i);
            const ts = src.formatTs(batch, i);
            if (o.json) {
              const f = batch.flags[i]!;
              s += `${first ? '' : ',\n'}    {"ts":${ts},"proto":${batch.proto[i]},"saddr":"${addr(batch, i, true)}","sport":${ports ? batch.sport[i] : 'null'},"daddr":"${addr(batch, i, false)}","dport":${ports ? batch.dport[i] : 'null'},"wirelen":${batch.wirelen[i]}${f & F.FRAGMENT ? ',"fragment":true' : ''}${f & F.TRUNCATED ? ',"truncated":true' : ''}}`;
              first = false;
            } else {
              s += `${ts},${batch.proto[i]},${addr(batch, i, true)},${ports ? batch.sport[i] : ''},${addr(batch, i, false)},${ports ? batch.dport[i] : ''},${batch.wirelen[i]}\n`;
            }
          }
          out.write(s);
        }
        const st = src.stats;
        if (o.json) out.write(`\n  ],\n  "stats": ${JSON.stringify(st)}\n}\n`);
        process.stderr.write(`${st.packets} IP packets (${st.bytes} bytes on the wire); ${st.truncated} with the transport header cut by the snap length, ${st.fragments} fragments; skipped: ${describeSkipped(st)}\n`);
      } finally {
        src.close();
      }
    });
}
