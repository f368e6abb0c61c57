/**
 * Loading the traffic layer's WebAssembly modules (pcap-wasm.ts,
 * synthetic-wasm.ts): each is compiled once per thread from the file the
 * build wrote (sim/select/wasm/build.ts), or not at all when
 * CLUSTERIP_SIM_NO_WASM is set or the file is missing (a production install
 * without AssemblyScript), and its callers then run their TypeScript loops.
 */
import { existsSync, readFileSync } from 'node:fs';

/** The slice of the WebAssembly JS API used here (the project's `lib` has no DOM types). */
export interface WasmApi {
  Module: new (bytes: Uint8Array) => object;
  Instance: new (module: object, imports: Record<string, Record<string, unknown>>) => { exports: Record<string, unknown> };
  Memory: new (d: { initial: number; maximum: number; shared: true }) => { buffer: SharedArrayBuffer };
}
export const WA = (globalThis as unknown as { WebAssembly: WasmApi }).WebAssembly;

const compiled = new Map<string, object | null>();

/** The module built at `path`, compiled once; null when turned off, not built, or refused by this engine. */
export function wasmModuleAt(path: string): object | null {
  const hit = compiled.get(path);
  if (hit !== undefined) return hit;
  let m: object | null = null;
  if (!process.env.CLUSTERIP_SIM_NO_WASM && existsSync(path)) {
    try {
      m = new WA.Module(readFileSync(path));
    } catch {
      m = null;
    }
  }
  compiled.set(path, m);
  return m;
}
