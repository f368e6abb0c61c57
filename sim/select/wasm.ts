/**
 * The WebAssembly (SIMD) build of the selectors' hottest forms, from our own
 * AssemblyScript source (sim/select/wasm/assembly/select.ts), four packets
 * per instruction. `npm ci` builds it (the `prepare` script runs
 * sim/select/wasm/build.ts); without the build the TypeScript paths run.
 *
 * The module imports a shared memory. A batch made by createBatch on this
 * thread lives in such a memory (sim/traffic/batch.ts): the module is
 * instantiated over it once and reads the lanes in place. Any other batch
 * (e.g. one a worker received as a bare SharedArrayBuffer) is copied chunk
 * by chunk into a scratch memory (~0.5 ns a packet, measured).
 *
 * The TypeScript selectors stay the reference: sim/select/vectors.test.ts and
 * fast-paths.test.ts run every golden vector and mixed-flag batches through both.
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { batchMemory, BYTES_PER_PACKET, type TupleBatch } from '../traffic/batch.ts';
import type { Selector } from './selector.ts';

/** Where the build writes the module (git-ignored). */
export const WASM_PATH = join(dirname(fileURLToPath(import.meta.url)), 'wasm', 'build', 'select.wasm');

/** The slice of the WebAssembly JS API used here (the project's `lib` has no DOM types). */
interface WasmApi {
  Module: new (bytes: Uint8Array) => object;
  Instance: new (module: object, imports: Record<string, Record<string, unknown>>) => { exports: Record<string, unknown> };
  Memory: new (d: { initial: number; maximum: number; shared: true }) => { buffer: SharedArrayBuffer };
}
const WA = (globalThis as unknown as { WebAssembly: WasmApi }).WebAssembly;

/** The module's exports (see select.ts). */
export interface Exports {
  CHUNK: { value: number };
  lanes(saddr: number, daddr: number, l4a: number, l4b: number, out: number, family: number, l4flags: number, proto: number, flags: number): void;
  clusterip(count: number, mode: number, s: number, n: number, little: number): number;
  xtCluster(count: number, k: number, n: number, little: number): number;
  nft(count: number, nwords: number, w0: number, w1: number, w2: number, w3: number, init: number, mod: number, needV4: number, proto: number, needL4: number, needCt: number): number;
}

interface Scratch {
  x: Exports;
  chunk: number;
  u32: Uint32Array;
  u8: Uint8Array;
  i32: Int32Array;
}

/** The compiled module and this thread's scratch instance. */
export interface Module {
  module: object;
  scratch: Scratch;
  /** Instances over batch memories, by buffer. */
  inPlace: WeakMap<SharedArrayBuffer, Exports>;
}

let mod: Module | null | undefined;
const abort = (): never => { throw new Error('wasm abort'); };

/** The compiled module, or null when it was not built (or this engine lacks SIMD or shared memory). */
export function wasmModule(): Module | null {
  if (mod !== undefined) return mod;
  mod = null;
  if (process.env.CLUSTERIP_SIM_NO_WASM) return mod;
  if (!existsSync(WASM_PATH)) return mod;
  try {
    const module = new WA.Module(readFileSync(WASM_PATH));
    const probe = new WA.Memory({ initial: 1, maximum: 1, shared: true });
    const chunk = (new WA.Instance(module, { env: { memory: probe, abort } }).exports as unknown as Exports).CHUNK.value;
    const pages = Math.ceil((24 * chunk + 64) / 65536);
    const memory = new WA.Memory({ initial: pages, maximum: pages, shared: true });
    const x = new WA.Instance(module, { env: { memory, abort } }).exports as unknown as Exports;
    const buf = memory.buffer;
    mod = { module, scratch: { x, chunk, u32: new Uint32Array(buf), u8: new Uint8Array(buf), i32: new Int32Array(buf) }, inPlace: new WeakMap() };
  } catch {
    mod = null;
  }
  return mod;
}

/** An instance over the memory of batch `b`, or null when the batch does not live in one. */
function inPlaceInstance(m: Module, b: TupleBatch): Exports | null {
  const hit = m.inPlace.get(b.buffer);
  if (hit) return hit;
  const memory = batchMemory(b.buffer);
  if (!memory) return null;
  const x = new WA.Instance(m.module, { env: { memory, abort } }).exports as unknown as Exports;
  m.inPlace.set(b.buffer, x);
  return x;
}

/** Which lanes a kernel reads (the copy path copies only these). */
export interface Lanes { saddr?: boolean; daddr?: boolean; l4a?: boolean; l4b?: boolean; proto?: boolean; flags?: boolean }

/**
 * A select() that runs `call(x, count)` over [start, end) of the batch, in
 * place when the batch lives in a WebAssembly memory, else chunk by chunk
 * through the scratch memory. `call` returns how many packets it left as -3
 * (forms the module does not handle, e.g. IPv6 for xt_cluster), or nothing;
 * `fallback` (the TypeScript selector) answers those one by one.
 */
export function wasmSelect(m: Module, lanes: Lanes, call: (x: Exports, count: number) => number | void, fallback?: Selector['select']): Selector['select'] {
  const S = m.scratch;
  const C = S.chunk;
  const { u32, u8, i32 } = S;
  // Scratch layout, in elements of each lane's width (see select.ts).
  const SADDR = 0, DADDR = C, L4A = 2 * C, L4B = 3 * C, OUT = 4 * C;
  const FAMILY = 20 * C, L4FLAGS = 21 * C, PROTO = 22 * C, FLAGS = 23 * C;
  const finish = (b: TupleBatch, out: Int32Array, at: number, stop: number, left: number): void => {
    if (left <= 0) return;
    if (!fallback) throw new Error('wasm selector left packets without a fallback');
    for (let i = at; i < stop; i++) if (out[i] === -3) fallback(b, out, i, i + 1);
  };
  return (b: TupleBatch, out: Int32Array, start = 0, end = b.count): void => {
    if (end <= start) return;
    const x = fallback ? inPlaceInstance(m, b) : null;
    if (x) {
      // In place: pointers to packet `start` of each lane; output in the batch's
      // scratch at the range's own slots, whole groups of 16 only, so that two
      // threads selecting disjoint ranges of one batch never write each other's
      // slots. The last < 16 packets go to the TypeScript path.
      const n = (end - start) & ~15;
      if (n > 0) {
        const outByte = BYTES_PER_PACKET * b.capacity + 4 * start;
        x.lanes(b.saddr.byteOffset + 4 * start, b.daddr.byteOffset + 4 * start, b.l4a.byteOffset + 4 * start, b.l4b.byteOffset + 4 * start, outByte,
          b.family.byteOffset + start, b.l4flags.byteOffset + start, b.proto.byteOffset + start, b.flags.byteOffset + start);
        const left = call(x, n) ?? 0;
        out.set(new Int32Array(b.buffer, outByte, n), start);
        finish(b, out, start, start + n, left);
      }
      if (start + n < end) fallback!(b, out, start + n, end);
      return;
    }
    S.x.lanes(4 * SADDR, 4 * DADDR, 4 * L4A, 4 * L4B, 4 * OUT, FAMILY, L4FLAGS, PROTO, FLAGS);
    for (let at = start; at < end; at += C) {
      const stop = Math.min(end, at + C);
      const n = stop - at;
      if (lanes.saddr) u32.set(b.saddr.subarray(at, stop), SADDR);
      if (lanes.daddr) u32.set(b.daddr.subarray(at, stop), DADDR);
      if (lanes.l4a) u32.set(b.l4a.subarray(at, stop), L4A);
      if (lanes.l4b) u32.set(b.l4b.subarray(at, stop), L4B);
      u8.set(b.family.subarray(at, stop), FAMILY);
      u8.set(b.l4flags.subarray(at, stop), L4FLAGS);
      if (lanes.proto) u8.set(b.proto.subarray(at, stop), PROTO);
      if (lanes.flags) u8.set(b.flags.subarray(at, stop), FLAGS);
      // Packets go 16 at a time: clear the family of the padding so it counts as nothing.
      u8.fill(0, FAMILY + n, FAMILY + ((n + 15) & ~15));
      const left = call(S.x, n) ?? 0;
      out.set(i32.subarray(OUT, OUT + n), at);
      finish(b, out, at, stop, left);
    }
  };
}

/** Which implementation a selector runs: `auto` = WebAssembly when built, else TypeScript. */
export type Engine = 'auto' | 'ts' | 'wasm';

/** Options every selector constructor takes. */
export interface SelectorOptions {
  /** Force the general TypeScript code (no compiled fast path, no wasm): the reference for tests. */
  reference?: boolean;
  /** Default `auto`. `wasm` throws when the module is not built. */
  engine?: Engine;
}

/** The module to use for `opts`, or null for TypeScript. */
export function wasmFor(opts: SelectorOptions): Module | null {
  if (opts.reference || opts.engine === 'ts') return null;
  const m = wasmModule();
  if (!m && opts.engine === 'wasm') throw new Error(`the WebAssembly selectors are not built (${WASM_PATH}); run npm run build:wasm`);
  return m;
}
