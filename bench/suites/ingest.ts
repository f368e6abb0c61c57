/**
 * ingest: packets per second decoding a pcap into TupleBatches, single
 * thread, from the page cache; in the same run our C reader
 * (bench/native/pcap_ingest.c, the same decoding work) and
 * `tcpdump -r FILE -nn -q > /dev/null`. Two captures, generated into the
 * work folder: an internet mix of full frames and the same traffic cut at
 * snaplen 96. Goal: >= 0.9 of C, >= 30x tcpdump.
 *
 * Clock: CPU time (user + system) of each reader, not wall time. The bench
 * machine is two cores shared with other jobs; wall time there measures the
 * neighbours (the same binary varied 2x between runs), CPU time does not.
 * Our runs and the C runs alternate so both see the same cache and load.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, readFileSync, renameSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { createRequire } from 'node:module';
import { summarize, type BenchContext, type Suite } from '../harness/harness.ts';
import { createBatch } from '../../sim/traffic/batch.ts';
import { openCapture } from '../../sim/traffic/capture.ts';
import { openSynthetic } from '../../sim/traffic/synthetic.ts';
import { PcapWriter } from '../../sim/traffic/pcap-writer.ts';

const CHILD = join(dirname(fileURLToPath(import.meta.url)), 'ingest-child.ts');
/** tsx's loader, for the child (this process may run under vitest, which is not tsx). */
const TSX_ESM = pathToFileURL(createRequire(import.meta.url).resolve('tsx/esm')).href;

const here = dirname(fileURLToPath(import.meta.url));
const NATIVE_SRC = resolve(here, '../native/pcap_ingest.c');

/** Generates (once, cached by name) a capture of the default mix. */
export function ensureCapture(ctx: BenchContext, packets: number, snaplen: number): string {
  const file = join(ctx.workDir, `ingest-default-${packets}-snap${snaplen}.pcap`);
  if (existsSync(file)) return file;
  ctx.log(`generating ${file} (${packets} packets)`);
  const tmp = `${file}.tmp`;
  const w = new PcapWriter(tmp, snaplen);
  const src = openSynthetic('default', { seed: 1, packets });
  const b = createBatch();
  while (src.fill(b) > 0) w.write(b);
  w.close();
  renameSync(tmp, file);
  return file;
}

export function buildNative(ctx: BenchContext): string {
  const exe = join(ctx.workDir, 'pcap_ingest');
  const stamp = `${exe}.src`;
  const src = readFileSync(NATIVE_SRC, 'utf8');
  if (!existsSync(exe) || !existsSync(stamp) || readFileSync(stamp, 'utf8') !== src) {
    execFileSync('cc', ['-O2', '-o', exe, NATIVE_SRC]);
    execFileSync('sh', ['-c', 'cat > "$1"', 'sh', stamp], { input: src });
  }
  return exe;
}

/** Our reader: open, fill batches to the end, return packets. */
export function ours(file: string): () => number {
  const b = createBatch();
  return () => {
    const s = openCapture(file);
    let n = 0, k: number;
    while ((k = s.fill(b)) > 0) n += k;
    s.close();
    return n;
  };
}

/**
 * One measured pass of our reader in a fresh process (ingest-child.ts: one
 * unmeasured pass first), like the C reader: packets per CPU second and per
 * wall second of that pass.
 */
export function oursInChild(file: string): { cpu: number; wall: number } {
  const out = execFileSync(process.execPath, ['--import', TSX_ESM, CHILD, file], { encoding: 'utf8' });
  const [p, c, w] = out.trim().split(' ').map(Number);
  return { cpu: p! / c!, wall: p! / w! };
}

/** One run of the C reader; it reports packets and its own CPU seconds. */
export function native(exe: string, file: string): number {
  const [p, s] = execFileSync(exe, [file, '1'], { encoding: 'utf8' }).trim().split(' ').map(Number);
  return p! / s!;
}

/**
 * tcpdump's CPU time, from bash's `times` (children's user and system). TZ is
 * set so glibc does not stat /etc/localtime for every printed timestamp
 * (measured: without it tcpdump spends most of its time in newfstatat).
 */
export function tcpdump(file: string, packets: number): number | undefined {
  const r = spawnSync('bash', ['-c', 'tcpdump -r "$1" -nn -q > /dev/null 2>&1 || exit 9; times', 'bash', file], { encoding: 'utf8', env: { ...process.env, TZ: 'UTC' } });
  if (r.status !== 0) return undefined;
  const m = /(\d+)m([\d.]+)s\s+(\d+)m([\d.]+)s\s*$/.exec(r.stdout.trim());
  if (!m) return undefined;
  const cpu = Number(m[1]) * 60 + Number(m[2]) + Number(m[3]) * 60 + Number(m[4]);
  return cpu > 0 ? packets / cpu : undefined;
}

/**
 * tshark's CPU time extracting the 5-tuple fields (what `tuples` prints) from
 * a smaller capture: tshark dissects every layer and is far slower, so it gets
 * 1/25 of the packets; the rate is per packet either way.
 */
export function tshark(file: string, packets: number): number | undefined {
  const r = spawnSync('bash', ['-c', 'tshark -n -r "$1" -T fields -e ip.proto -e ip.src -e tcp.srcport -e ip.dst -e tcp.dstport > /dev/null 2>&1 || exit 9; times', 'bash', file], { encoding: 'utf8', env: { ...process.env, TZ: 'UTC' } });
  if (r.status !== 0) return undefined;
  const m = /(\d+)m([\d.]+)s\s+(\d+)m([\d.]+)s\s*$/.exec(r.stdout.trim());
  if (!m) return undefined;
  const cpu = Number(m[1]) * 60 + Number(m[2]) + Number(m[3]) * 60 + Number(m[4]);
  return cpu > 0 ? packets / cpu : undefined;
}

export const ingest: Suite = {
  name: 'ingest',
  description: 'pcap -> TupleBatch decoding, single thread, vs our C reader, tcpdump and (on a smaller file) tshark',
  async run(ctx) {
    const packets = ctx.quick ? 200_000 : 5_000_000;
    const repeats = ctx.quick ? 3 : 5;
    const exe = buildNative(ctx);
    const hasTcpdump = spawnSync('sh', ['-c', 'command -v tcpdump']).status === 0;
    const hasTshark = spawnSync('sh', ['-c', 'command -v tshark']).status === 0;
    for (const [name, snap] of [['internet-mix', 262144], ['snaplen-96', 96]] as const) {
      const file = ensureCapture(ctx, packets, snap);
      // Both readers in processes of their own, alternating (a burst of load from the shared machine
      // hits both): ours does an unmeasured pass first (page cache, JIT), and so does the first C run.
      native(exe, file);
      const jsRates: number[] = [], cRates: number[] = [], wallRates: number[] = [];
      for (let r = 0; r < repeats; r++) {
        const o = oursInChild(file);
        jsRates.push(o.cpu);
        wallRates.push(o.wall);
        cRates.push(native(exe, file));
      }
      const js = summarize(jsRates);
      const c = summarize(cRates);
      const wall = summarize(wallRates);
      const td = hasTcpdump ? tcpdump(file, packets) : undefined;
      const smallPackets = Math.max(20_000, Math.floor(packets / 25));
      const ts = hasTshark ? tshark(ensureCapture(ctx, smallPackets, snap), smallPackets) : undefined;
      ctx.emit({
        suite: 'ingest',
        case: `${name} ${packets} packets`,
        ops_per_s: js.median,
        spread: js.spread,
        native_ops_per_s: c.median,
        ratio: js.median / c.median,
        tcpdump_ops_per_s: td,
        ratio_tcpdump: td ? js.median / td : undefined,
        tshark_ops_per_s: ts,
        ratio_tshark: ts ? js.median / ts : undefined,
        tshark_packets: ts ? smallPackets : undefined,
        file_bytes: statSync(file).size,
        clock: 'cpu',
        wall_ops_per_s: wall.median,
      });
    }
  },
};
