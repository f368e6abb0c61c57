/**
 * The C reference of the whole simulate job core (bench/native/pcap_sim.c):
 * build it, run it on byte ranges of a classic pcap (one thread per range, the
 * ranges of planInputShares), and read its answer back. For the one
 * configuration the simulate bench runs (CLUSTERIP sourceip-sourceport, 4
 * nodes, hash-init 0, kernel 6.1, little-endian; flow timeout 120 s).
 */
import { statSync } from 'node:fs';
import { resolve } from 'node:path';
import { buildNative, buildWasi, runNative, runWasi } from '../harness/native.ts';
import { planInputShares } from '../../sim/engine/inputs.ts';

/** Per-node counters, node k+1 at index k. */
export interface NativeSimCounts {
  packets: number[];
  bytes: number[];
  flows: number[];
  connections: number[];
  /** Distinct source addresses counted on each node. */
  sources: number[];
  /** band[(seed * 4 + metric) * 4 + node], metrics packets, bytes, flows, connections (flow-sink.ts). */
  band: number[];
  /** Packets no node takes (not IPv4, conntrack-INVALID) and with an unknown node (the capture cut the ports). */
  noNode: number;
  unknown: number;
  /** Direction flows and connections ended, every family and node (IPv6 included). */
  flowsTotal: number;
  connectionsTotal: number;
  /** Distinct (node, source address) pairs. */
  sourcesTotal: number;
}

export interface NativeSimResult {
  /** Packets decoded (the same every repeat). */
  packets: number;
  /** Wall seconds of each repeat: threads started, joined and their counters summed. */
  seconds: number[];
  /** The counters (the same every repeat). */
  counts: NativeSimCounts;
}

/** Builds pcap_sim into `<workDir>/native/` (warnings are errors: the source must build clean). */
export function buildNativeSim(workDir: string): string {
  return buildNative(workDir, 'pcap_sim.c', ['-pthread', '-Werror']);
}

/**
 * Builds the same pcap_sim.c for WebAssembly (buildWasi), for wasiSimulate:
 * the C job in our own runtime, on one thread.
 */
export function buildWasiSim(workDir: string): string {
  return buildWasi(workDir, 'pcap_sim.c', ['-Werror']);
}

/**
 * The byte ranges our engine's workers would read (planInputShares), with
 * the bounds it leaves implicit filled in: one share is the whole file after
 * the 24-byte header.
 */
export function captureRanges(file: string, parts: number): { start: number; end: number }[] {
  const size = statSync(file).size;
  return planInputShares({ kind: 'pcap', path: file }, parts).map((s) => {
    if (s.kind !== 'pcap') throw new Error(`planInputShares gave a ${s.kind} share for ${file}`);
    return { start: s.start ?? 24, end: s.end ?? size };
  });
}

/**
 * Runs `exe` on `file` with one thread per range (`start`/`end` byte offsets,
 * a record belongs to the range its header starts in), `repeats` times.
 * Throws if the program fails or if two repeats disagree on the counters.
 */
export function nativeSimulate(exe: string, file: string, ranges: { start: number; end: number }[], repeats = 1): NativeSimResult {
  return simulateWith(runNative, exe, file, ranges, repeats);
}

/**
 * nativeSimulate for the WebAssembly build (buildWasiSim), run by Node in a
 * fresh process: the ranges run one after another on one thread.
 */
export function wasiSimulate(wasm: string, file: string, ranges: { start: number; end: number }[], repeats = 1): NativeSimResult {
  return simulateWith(runWasi, wasm, resolve(file), ranges, repeats);
}

function simulateWith(run: (exe: string, args: string[]) => string, exe: string, file: string, ranges: { start: number; end: number }[], repeats: number): NativeSimResult {
  if (ranges.length === 0) throw new Error('nativeSimulate: no ranges');
  const args = [file, String(repeats), ...ranges.flatMap((r) => [String(r.start), String(r.end)])];
  const lines = run(exe, args).trim().split('\n');
  if (lines.length !== 2 * repeats) throw new Error(`${exe}: expected ${2 * repeats} lines, got ${lines.length}`);
  const seconds: number[] = [];
  let packetCount = -1, counts: NativeSimCounts | null = null, first = '';
  for (let r = 0; r < repeats; r++) {
    const m = /^(\d+) ([\d.]+)$/.exec(lines[2 * r]!);
    if (!m) throw new Error(`${exe}: bad timing line '${lines[2 * r]}'`);
    const pk = Number(m[1]);
    if (packetCount >= 0 && pk !== packetCount) throw new Error(`${exe}: repeat ${r} decoded ${pk} packets, repeat 0 ${packetCount}`);
    packetCount = pk;
    seconds.push(Number(m[2]));
    const json = lines[2 * r + 1]!;
    if (r === 0) { first = json; counts = JSON.parse(json) as NativeSimCounts; }
    else if (json !== first) throw new Error(`${exe}: repeat ${r} counted differently from repeat 0`);
  }
  return { packets: packetCount, seconds, counts: counts! };
}
