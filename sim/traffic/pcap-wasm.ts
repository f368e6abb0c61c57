/**
 * The WebAssembly form of the classic-pcap hot loop (AssemblyScript source:
 * sim/traffic/wasm/assembly/pcap.ts, built by `npm ci` with the selectors).
 * It runs when the batch being filled lives in a WebAssembly memory (batch.ts
 * createBatch) and the reader's window has moved into that batch's read
 * window (byte-input.ts useWindow): file bytes and lanes are then in one
 * memory. Otherwise, or without the build, the compiled JavaScript loop
 * (pcap-fast.ts) runs; both decode exactly what decode.ts does.
 */
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { batchMemory, batchReadWindow, type TupleBatch } from './batch.ts';
import { fastPcapSwitch } from './pcap-fast.ts';
import { WA, wasmModuleAt } from './wasm-module.ts';

/** Where the build writes the module (git-ignored). */
export const PCAP_WASM_PATH = join(dirname(fileURLToPath(import.meta.url)), 'wasm', 'build', 'pcap.wasm');

type LoopFn = (win: number, pos: number, stop: number, lim: number, n: number, max: number, maxCap: number, le: number, from: number, to: number, out: number) => number;
type LanesFn = (...offsets: number[]) => void;

/** The loop over one batch: its read window, and what the last run reported. */
export interface WasmPcapLoop {
  /** The batch's read window; the loop reads only a ByteInput whose buf is this view. */
  readonly window: Uint8Array;
  /**
   * Decodes records from window offset `pos` while `pos <= stop` and `n < max`
   * into the batch's lanes n.. (the same contract as pcap-fast.ts's loop);
   * returns the new n. `le`: record headers little-endian. Then `stopped`,
   * `bytes` and `truncated` say where it stopped and what it delivered.
   */
  run(pos: number, stop: number, lim: number, n: number, max: number, maxCap: number, le: boolean, from: number, to: number): number;
  readonly stopped: number;
  readonly bytes: number;
  readonly truncated: number;
  /** Packets this loop has delivered in all its runs (tests check that it ran). */
  readonly delivered: number;
}

const abort = (): never => { throw new Error('pcap.wasm aborted'); };
const loops = new WeakMap<SharedArrayBuffer, WasmPcapLoop | null>();

/** The WebAssembly loop for batch `b`, or null (not built, turned off, or the batch has no WebAssembly memory). */
export function wasmPcapFor(b: TupleBatch): WasmPcapLoop | null {
  if (!fastPcapSwitch.wasm) return null;
  const hit = loops.get(b.buffer);
  if (hit !== undefined) return hit;
  const m = wasmModuleAt(PCAP_WASM_PATH);
  const memory = batchMemory(b.buffer);
  const window = batchReadWindow(b);
  let loop: WasmPcapLoop | null = null;
  if (m && memory && window) {
    const x = new WA.Instance(m, { env: { memory, abort } }).exports as { pcapFast: LoopFn; lanes: LanesFn };
    x.lanes(b.ts.byteOffset, b.wirelen.byteOffset, b.saddr.byteOffset, b.daddr.byteOffset, b.saddr6.byteOffset, b.daddr6.byteOffset, b.l4a.byteOffset, b.l4b.byteOffset, b.sport.byteOffset, b.dport.byteOffset, b.proto.byteOffset, b.family.byteOffset, b.flags.byteOffset, b.l4flags.byteOffset);
    const win = window.byteOffset, out = win - 64;
    const f64 = new Float64Array(b.buffer, out, 1), i32 = new Int32Array(b.buffer, out + 8, 2);
    const fn = x.pcapFast;
    let delivered = 0;
    loop = {
      window,
      run: (pos, stop, lim, n, max, maxCap, le, from, to) => {
        const k = fn(win, pos, stop, lim, n, max, maxCap, le ? 1 : 0, from, to, out);
        delivered += k - n;
        return k;
      },
      get delivered() { return delivered; },
      get stopped() { return i32[1]!; },
      get bytes() { return f64[0]!; },
      get truncated() { return i32[0]!; },
    };
  }
  loops.set(b.buffer, loop);
  return loop;
}
