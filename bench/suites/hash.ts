/**
 * `npm run bench -- hash`: selections per second of each selector against our
 * C reference (bench/native/hash.c, `cc -O2`), single-threaded, in one run.
 *
 * Input: pre-built TupleBatches of the synthetic mix (sim/traffic/synthetic.ts 'mix':
 * 80 % TCP, 17 % UDP, 2 % ICMP, 1 % ESP, all IPv4), 4 batches of 64k packets
 * reused until >= 10 million selections per pass. Each selector runs through
 * its default engine (the WebAssembly SIMD build reading batches in place),
 * as "[wasm-copy]" on batches in bare SharedArrayBuffers (copied in chunks, as
 * in a worker), and as "[ts]" through the TypeScript path, alternating with C
 * round by round. All read the same
 * struct-of-arrays lanes and write one int32 per packet. Before timing, the C
 * output of every batch is compared with ours, packet by packet: a mismatch
 * fails the suite (the ratio of two different functions means nothing).
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { buildSelector } from '../../sim/select/build.ts';
import type { Selector, SelectorSpec } from '../../sim/select/selector.ts';
import { BYTES_PER_PACKET, viewBatch, type TupleBatch } from '../../sim/traffic/batch.ts';
import { syntheticBatches } from '../../sim/traffic/synthetic.ts';
import { measureRounds, plan, ratioCase, timeOps, type BenchContext, type Contender, type Suite } from '../harness/harness.ts';
import { buildNative, runNative } from '../harness/native.ts';
import { buildWasm } from '../../sim/select/wasm/build.ts';
import { wasmModule } from '../../sim/select/wasm.ts';

export interface HashCase {
  name: string;
  spec: SelectorSpec;
  /** The same function's case string for bench/native/hash.c. */
  native: string;
}

export const HASH_CASES: HashCase[] = [
  { name: 'clusterip sourceip 6.1 LE', native: 'clusterip:0:5:0x12345678', spec: { backend: 'clusterip', hashmode: 'sourceip', totalNodes: 5, hashInit: 0x12345678, kernel: '6.1', endian: 'little' } },
  { name: 'clusterip sourceip-sourceport 6.1 LE', native: 'clusterip:1:5:0x12345678', spec: { backend: 'clusterip', hashmode: 'sourceip-sourceport', totalNodes: 5, hashInit: 0x12345678, kernel: '6.1', endian: 'little' } },
  { name: 'clusterip sourceip-sourceport-destport 6.1 LE', native: 'clusterip:2:5:0x12345678', spec: { backend: 'clusterip', hashmode: 'sourceip-sourceport-destport', totalNodes: 5, hashInit: 0x12345678, kernel: '6.1', endian: 'little' } },
  { name: 'xt_cluster 7 nodes', native: 'xt:7:0xdeadbeef', spec: { backend: 'xt_cluster', totalNodes: 7, hashSeed: 0xdeadbeef, kernel: '6.18', endian: 'little' } },
  { name: 'nft jhash ip saddr', native: 'nft:s:7:0x1', spec: { backend: 'nft', expr: 'jhash ip saddr mod 7 seed 0x1 offset 0', kernel: '6.18', endian: 'little' } },
  { name: 'nft jhash ip saddr . tcp sport . tcp dport', native: 'nft:s.sp.dp:7:0x1', spec: { backend: 'nft', expr: 'jhash ip saddr . tcp sport . tcp dport mod 7 seed 0x1 offset 0', kernel: '6.18', endian: 'little' } },
  { name: 'nft jhash ip saddr . ip daddr . tcp sport . tcp dport', native: 'nft:s.d.sp.dp:7:0x1', spec: { backend: 'nft', expr: 'jhash ip saddr . ip daddr . tcp sport . tcp dport mod 7 seed 0x1 offset 0', kernel: '6.18', endian: 'little' } },
];

/** Writes the batches in hash.c's data-file layout (see its header comment). */
export function writeHashData(file: string, batches: readonly TupleBatch[]): void {
  const cap = batches[0]!.capacity;
  const parts: Uint8Array[] = [];
  const hdr = new Uint32Array([0x42485343 /* "CSHB" little-endian */, 1, batches.length, cap]);
  parts.push(new Uint8Array(hdr.buffer), new Uint8Array(Uint32Array.from(batches, (b) => b.count).buffer));
  for (const b of batches) {
    if (b.capacity !== cap) throw new Error('hash bench: batches must share one capacity');
    for (const lane of [b.saddr, b.daddr, b.l4a, b.l4b, b.proto, b.family, b.flags, b.l4flags]) {
      parts.push(new Uint8Array(lane.buffer, lane.byteOffset, lane.byteLength).slice());
    }
  }
  writeFileSync(file, Buffer.concat(parts));
}

/** Runs `sel` over the batches, cycling, until `tuples` selections are done. Returns the count done. */
export function selectPass(sel: Selector, batches: readonly TupleBatch[], out: Int32Array, tuples: number): number {
  let done = 0;
  let k = 0;
  while (done < tuples) {
    const b = batches[k]!;
    sel.select(b, out, 0, b.count);
    done += b.count;
    k = k + 1 === batches.length ? 0 : k + 1;
  }
  return done;
}

/** Compares the C output of every batch with ours; returns the number of packets compared. Throws on the first mismatches. */
export function verifyAgainstNative(bin: string, dataFile: string, workDir: string, c: HashCase, sel: Selector, batches: readonly TupleBatch[]): number {
  const dump = join(workDir, 'hash-verify.bin');
  runNative(bin, [dataFile, 'dump', dump, c.native]);
  const buf = readFileSync(dump);
  const theirs = new Int32Array(buf.buffer, buf.byteOffset, buf.byteLength >> 2);
  let at = 0;
  const bad: string[] = [];
  for (const b of batches) {
    const out = new Int32Array(b.count);
    sel.select(b, out, 0, b.count);
    for (let i = 0; i < b.count; i++, at++) {
      if (out[i] !== theirs[at] && bad.length < 5) bad.push(`packet ${at}: ours ${out[i]}, C ${theirs[at]}`);
    }
  }
  if (at !== theirs.length) throw new Error(`${c.name}: C wrote ${theirs.length} results for ${at} packets`);
  if (bad.length) throw new Error(`${c.name}: the C reference disagrees with the selector:\n  ${bad.join('\n  ')}`);
  return at;
}

export const hashSuite: Suite = {
  name: 'hash',
  description: 'selections/s per selector (CLUSTERIP, xt_cluster, nft jhash) vs the same function in C (cc -O2)',
  async run(ctx: BenchContext): Promise<void> {
    const { repeats, warmup } = plan(ctx);
    const batchSize = ctx.quick ? 4096 : 65536;
    const tuples = ctx.quick ? 200_000 : 10_000_000;
    const batches = [...syntheticBatches('mix', { flows: 1_000_000, packets: 4 * batchSize, seed: 7 }, batchSize)];
    const sabBatches = batches.map((b) => {
      const buf = new SharedArrayBuffer(BYTES_PER_PACKET * b.capacity);
      new Uint8Array(buf).set(new Uint8Array(b.buffer, 0, BYTES_PER_PACKET * b.capacity));
      return viewBatch(buf, b.capacity, b.count);
    });
    const dataFile = join(ctx.workDir, 'hash-data.bin');
    writeHashData(dataFile, batches);
    const bin = buildNative(ctx.workDir, 'hash.c', ['-Werror']);
    const out = new Int32Array(batchSize);
    const wasm = buildWasm();
    if (!wasm.built) ctx.log(`no WebAssembly build (${wasm.reason}): measuring TypeScript only`);
    for (const c of HASH_CASES) {
      // wasm: batches in WebAssembly memory, read in place (what createBatch gives on this thread);
      // wasm-copy: the same batches in bare SharedArrayBuffers (as a worker sees them), copied in chunks;
      // ts: the TypeScript path.
      const engines: string[] = wasm.built && wasmModule() ? ['wasm', 'wasm-copy', 'ts'] : ['ts'];
      const sels = engines.map((e) => buildSelector(c.spec, { engine: e === 'ts' ? 'ts' : 'wasm' }));
      const data = engines.map((e) => (e === 'wasm-copy' ? sabBatches : batches));
      let checked = 0;
      sels.forEach((sel, k) => { checked = verifyAgainstNative(bin, dataFile, ctx.workDir, c, sel, data[k]!); });
      const ours: Contender[] = sels.map((sel, k) => ({
        name: engines[k]!,
        run: () => { let n = 0; return timeOps(tuples, () => { n = selectPass(sel, data[k]!, out, tuples); }) * (n / tuples); },
      }));
      const native: Contender = {
        name: 'c',
        run: () => {
          // One warm-up pass inside the process (page faults, caches), then one measured pass.
          const line = runNative(bin, [dataFile, 'time', String(tuples), '1', '1', c.native]).trim().split(/\s+/);
          return Number(line[1]);
        },
      };
      const samples = measureRounds([...ours, native], repeats, warmup);
      const n = samples[samples.length - 1]!;
      engines.forEach((engine, k) => {
        // The default engine's line carries the plain case name; the TypeScript reference gets "[ts]" when wasm is the default.
        const name = k === 0 ? c.name : `${c.name} [${engine}]`;
        ctx.emit(ratioCase('hash', name, samples[k]!, n, { engine, tuples_per_pass: tuples, batch: batchSize, verified_packets: checked }));
      });
    }
  },
};
