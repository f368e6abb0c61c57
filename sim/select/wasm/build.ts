/**
 * Builds the project's AssemblyScript modules with SIMD enabled:
 * sim/select/wasm/assembly/select.ts into sim/select/wasm/build/select.wasm
 * (the selectors) and sim/traffic/wasm/assembly/pcap.ts into
 * sim/traffic/wasm/build/pcap.wasm (the pcap reader's hot loop) and
 * sim/traffic/wasm/assembly/gen.ts into sim/traffic/wasm/build/gen.wasm (the
 * synthetic generator's general path). Run by
 * `npm ci` (the `prepare` script) and by `npm run build:wasm`; the benches and
 * the wasm tests rebuild a module when its source is newer.
 *
 * Without AssemblyScript installed (a production install) it says so and
 * exits 0: the TypeScript paths then run.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, renameSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { WASM_PATH } from '../wasm.ts';
import { PCAP_WASM_PATH } from '../../traffic/pcap-wasm.ts';
import { GEN_WASM_PATH } from '../../traffic/synthetic-wasm.ts';

const HERE = dirname(fileURLToPath(import.meta.url));
export const WASM_SOURCE = join(HERE, 'assembly', 'select.ts');
/** Every module: its source and where the build writes it (git-ignored). */
export const WASM_MODULES: readonly { source: string; out: string }[] = [
  { source: WASM_SOURCE, out: WASM_PATH },
  { source: join(HERE, '..', '..', 'traffic', 'wasm', 'assembly', 'pcap.ts'), out: PCAP_WASM_PATH },
  { source: join(HERE, '..', '..', 'traffic', 'wasm', 'assembly', 'gen.ts'), out: GEN_WASM_PATH },
];

/** The flags the module is built with (part of what the tests pin). */
export const ASC_FLAGS = ['-O3', '--runtime', 'stub', '--noAssert', '--enable', 'simd', '--enable', 'threads', '--importMemory', '--sharedMemory', '--initialMemory', '1', '--maximumMemory', '65536'];

/** True when a module is missing or older than its source. */
export function wasmStale(): boolean {
  return WASM_MODULES.some((m) => stale(m.out, m.source));
}

function stale(out: string, source: string): boolean {
  return !existsSync(out) || statSync(out).mtimeMs < statSync(source).mtimeMs;
}

/**
 * Builds the module if it is stale. Returns false (and why) when
 * AssemblyScript is not installed; throws with the compiler's output on a
 * compile error.
 */
export function buildWasm(force = false): { built: boolean; reason?: string } {
  if (!force && !wasmStale()) return { built: true };
  let ascBin: string;
  try {
    ascBin = join(dirname(createRequire(import.meta.url).resolve('assemblyscript/package.json')), 'bin', 'asc.js');
  } catch {
    return { built: false, reason: 'assemblyscript is not installed (a devDependency); the TypeScript selectors run instead' };
  }
  for (const { source, out } of WASM_MODULES) {
    if (!force && !stale(out, source)) continue;
    mkdirSync(dirname(out), { recursive: true });
    // Build beside it and rename: test files running in parallel may build and load at once.
    const tmp = `${out}.${process.pid}.tmp`;
    const r = spawnSync(process.execPath, [ascBin, source, ...ASC_FLAGS, '-o', tmp], { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`asc ${source} failed (exit ${r.status}):\n${r.stderr}${r.stdout}`);
    renameSync(tmp, out);
  }
  return { built: true };
}

if (process.argv[1] && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  const r = buildWasm(process.argv.includes('--force'));
  process.stderr.write(r.built ? `wasm modules: ${WASM_MODULES.map((m) => m.out).join(', ')}\n` : `wasm modules not built: ${r.reason}\n`);
}
