/**
 * Builds sim/select/wasm/assembly/select.ts into sim/select/wasm/build/select.wasm
 * with AssemblyScript (an npm devDependency) and SIMD enabled. Run by `npm ci`
 * (the `prepare` script) and by `npm run build:wasm`; the hash bench and the
 * wasm test rebuild when the source is newer than the module.
 *
 * Without AssemblyScript installed (a production install) it says so and
 * exits 0: the selectors then run their TypeScript paths.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, renameSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { WASM_PATH } from '../wasm.ts';

const HERE = dirname(fileURLToPath(import.meta.url));
export const WASM_SOURCE = join(HERE, 'assembly', 'select.ts');

/** The flags the module is built with (part of what the tests pin). */
export const ASC_FLAGS = ['-O3', '--runtime', 'stub', '--noAssert', '--enable', 'simd', '--enable', 'threads', '--importMemory', '--sharedMemory', '--initialMemory', '1', '--maximumMemory', '65536'];

/** True when the module is missing or older than its source. */
export function wasmStale(): boolean {
  return !existsSync(WASM_PATH) || statSync(WASM_PATH).mtimeMs < statSync(WASM_SOURCE).mtimeMs;
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
  mkdirSync(dirname(WASM_PATH), { recursive: true });
  // Build beside it and rename: test files running in parallel may build and load at once.
  const tmp = `${WASM_PATH}.${process.pid}.tmp`;
  const r = spawnSync(process.execPath, [ascBin, WASM_SOURCE, ...ASC_FLAGS, '-o', tmp], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`asc ${WASM_SOURCE} failed (exit ${r.status}):\n${r.stderr}${r.stdout}`);
  renameSync(tmp, WASM_PATH);
  return { built: true };
}

if (process.argv[1] && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  const r = buildWasm(process.argv.includes('--force'));
  process.stderr.write(r.built ? `wasm selectors: ${WASM_PATH}\n` : `wasm selectors not built: ${r.reason}\n`);
}
