/**
 * The WebAssembly (SIMD) build of the selectors' hottest forms, from our own
 * AssemblyScript source (sim/select/wasm/assembly/select.ts), four packets
 * per instruction. `npm ci` builds it (the `prepare` script runs
 * sim/select/wasm/build.ts); without the build the TypeScript paths run.
 *
 * A batch lives in its own SharedArrayBuffer, which WebAssembly cannot
 * address, so each chunk's lanes are copied into the module's memory and the
 * answers copied back: ~0.3 ns a packet, measured, against ~2 ns for the hash.
 *
 * The TypeScript selectors stay the reference: sim/select/wasm.test.ts runs
 * every golden vector and the mixed-flag batches through both.
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { TupleBatch } from '../traffic/batch.ts';
import type { Selector } from './selector.ts';

/** Where the build writes the module (git-ignored). */
export const WASM_PATH = join(dirname(fileURLToPath(import.meta.url)), 'wasm', 'build', 'select.wasm');

/** The slice of the WebAssembly JS API used here (the project's `lib` has no DOM types). */
interface WasmApi {
  Module: new (bytes: Uint8Array) => object;
  Instance: new (module: object, imports: Record<string, Record<string, unknown>>) => { exports: Record<string, unknown> };
}
const WA = (globalThis as unknown as { WebAssembly: WasmApi }).WebAssembly;

interface Exports {
  memory: { buffer: ArrayBuffer };
  CHUNK: { value: number };
  clusterip(count: number, mode: number, s: number, n: number, little: number): number;
  xtCluster(count: number, k: number, n: number, little: number): number;
  nft(count: number, nwords: number, w0: number, w1: number, w2: number, w3: number, init: number, mod: number, needV4: number, proto: number, needL4: number, needCt: number): number;
}

interface Module {
  x: Exports;
  chunk: number;
  u32: Uint32Array;
  u8: Uint8Array;
  i32: Int32Array;
}

let mod: Module | null | undefined;

/** The instantiated module, or null when it was not built (or this engine lacks SIMD). One instance per thread. */
export function wasmModule(): Module | null {
  if (mod !== undefined) return mod;
  mod = null;
  if (process.env.CLUSTERIP_SIM_NO_WASM) return mod;
  if (!existsSync(WASM_PATH)) return mod;
  try {
    const inst = new WA.Instance(new WA.Module(readFileSync(WASM_PATH)), { env: { abort: () => { throw new Error('wasm abort'); } } });
    const x = inst.exports as unknown as Exports;
    const chunk = x.CHUNK.value;
    const buf = x.memory.buffer;
    mod = { x, chunk, u32: new Uint32Array(buf), u8: new Uint8Array(buf), i32: new Int32Array(buf) };
  } catch {
    mod = null;
  }
  return mod;
}

/** Which lanes a kernel reads. */
export interface Lanes { saddr?: boolean; daddr?: boolean; l4a?: boolean; l4b?: boolean; proto?: boolean; flags?: boolean }

/**
 * Runs `call(count)` over [start, end) of the batch chunk by chunk: copies the
 * needed lanes in (family and l4flags always), calls, copies `out` back.
 * `call` returns how many packets it left as -3 (forms the module does not
 * handle, e.g. IPv6 for xt_cluster), or nothing; `fallback` (the TypeScript
 * selector) answers those one by one.
 */
export function wasmSelect(m: Module, lanes: Lanes, call: (count: number) => number | void, fallback?: Selector['select']): Selector['select'] {
  const C = m.chunk;
  const { u32, u8, i32 } = m;
  // Lane offsets, in elements of their own width (see select.ts's layout).
  const SADDR = 0, DADDR = C, L4A = 2 * C, L4B = 3 * C, OUT = 4 * C;
  const FAMILY = 20 * C, L4FLAGS = 21 * C, PROTO = 22 * C, FLAGS = 23 * C;
  return (b: TupleBatch, out: Int32Array, start = 0, end = b.count): void => {
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
      // Byte lanes are tested 16 packets at a time: clear the family of the padding so it hashes nothing.
      const pad = (n + 15) & ~15;
      u8.fill(0, FAMILY + n, FAMILY + pad);
      const left = call(n) ?? 0;
      out.set(i32.subarray(OUT, OUT + n), at);
      if (left > 0) {
        if (!fallback) throw new Error('wasm selector left packets without a fallback');
        for (let i = at; i < stop; i++) if (out[i] === -3) fallback(b, out, i, i + 1);
      }
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
