/**
 * Builds the C references in bench/native/ with the system compiler
 * (`cc -O2`, as the issue asks: no -march=native, the same flags a distro
 * build would use) into the git-ignored work dir, and runs them.
 * Rebuilds only when the source (or a header beside it) is newer than the binary.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, statSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** Folder with the C sources. */
export const NATIVE_SRC_DIR = resolve(dirname(fileURLToPath(import.meta.url)), '..', 'native');

/** Compiler flags of every native reference (permissive dialect; a suite may add -Werror for its own source). */
export const NATIVE_CFLAGS = ['-O2', '-std=gnu11', '-Wall', '-Wextra'];

/**
 * Compiles `bench/native/<source>` to `<workDir>/native/<name>` and returns the
 * binary's path. `extra` adds flags (`-Werror`, `-DX=1`; libraries such as
 * `-lpcap` go after the source). A rebuild happens when the source or a header
 * in bench/native/ is newer than the binary (flags are not tracked: pass
 * `binName` to keep differently built binaries apart).
 * Throws with the compiler's message when it fails or when `cc` is missing.
 */
export function buildNative(workDir: string, source: string, extra: string[] = [], binName?: string): string {
  const { src, bin, fresh } = target(workDir, source, binName ?? basename(source).replace(/\.c$/, ''));
  if (fresh) return bin;
  try {
    // Flags before the source, libraries (-l...) after it, as the linker wants.
    const pre = extra.filter((f) => !f.startsWith('-l')), libs = extra.filter((f) => f.startsWith('-l'));
    execFileSync('cc', [...NATIVE_CFLAGS, ...pre, '-o', bin, src, ...libs], { stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (e) {
    const err = e as { stderr?: Buffer; code?: string };
    if (err.code === 'ENOENT') throw new Error('cc not found: install build-essential (it is in .ci/run APT_PACKAGES)');
    throw new Error(`cc ${NATIVE_CFLAGS.join(' ')} ${src} failed:\n${err.stderr?.toString() ?? String(e)}`);
  }
  return bin;
}

/**
 * The source `bench/native/<source>` (which must exist), the output
 * `<workDir>/native/<name>` (its folder made), and whether that output was
 * built after the source and every header beside it last changed.
 */
function target(workDir: string, source: string, name: string): { src: string; bin: string; fresh: boolean } {
  const src = join(NATIVE_SRC_DIR, source);
  if (!existsSync(src)) throw new Error(`native source ${src} not found`);
  const outDir = join(workDir, 'native');
  mkdirSync(outDir, { recursive: true });
  const bin = join(outDir, name);
  const headers = readdirSync(NATIVE_SRC_DIR).filter((f) => f.endsWith('.h')).map((f) => join(NATIVE_SRC_DIR, f));
  const newest = Math.max(...[src, ...headers].map((f) => statSync(f).mtimeMs));
  return { src, bin, fresh: existsSync(bin) && statSync(bin).mtimeMs >= newest };
}

/**
 * Linear memory of a WebAssembly build, fixed: 2 GiB from the start, never
 * grown. Node 20's WASI crashed the process (SIGSEGV in a keyed load of its
 * own JavaScript) on the first write to stdout after the module's memory had
 * grown past its start (pcap_sim on 1M packets, 2026-12-07); reserved up
 * front, pages are still only touched as malloc hands them out. A program
 * that needs more fails with its own out-of-memory message.
 */
const WASM_MEMORY = 2 ** 31;

/**
 * Compiles `bench/native/<source>` to WebAssembly (`clang --target=wasm32-wasi
 * -O2`, Debian's wasi-libc) as `<workDir>/native/<name>.wasm`, for
 * runWasi: the same C, run by Node. Rebuilds as buildNative does.
 * Throws naming the packages when clang or wasi-libc is missing.
 */
export function buildWasi(workDir: string, source: string, extra: string[] = []): string {
  const { src, bin, fresh } = target(workDir, source, basename(source).replace(/\.c$/, '.wasm'));
  if (fresh) return bin;
  const args = ['--target=wasm32-wasi', '--sysroot=/usr', ...NATIVE_CFLAGS, ...extra, '-Wl,-z,stack-size=8388608', `-Wl,--initial-memory=${WASM_MEMORY}`, `-Wl,--max-memory=${WASM_MEMORY}`, '-o', bin, src];
  try {
    execFileSync('clang', args, { stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (e) {
    const err = e as { stderr?: Buffer; code?: string };
    if (err.code === 'ENOENT') throw new Error(`clang not found: install ${WASI_PACKAGES} (they are in .ci/run APT_PACKAGES)`);
    throw new Error(`clang ${args.join(' ')} failed (it needs ${WASI_PACKAGES}):\n${err.stderr?.toString() ?? String(e)}`);
  }
  return bin;
}

/** Debian packages behind buildWasi. */
export const WASI_PACKAGES = 'clang lld wasi-libc libclang-rt-14-dev-wasm32';

/**
 * Runs a WebAssembly build under Node's WASI in a fresh process
 * (wasi-run.mjs: plain JavaScript, so the process starts as fast as a user's
 * would), returns its stdout; a non-zero exit throws with its stderr. Paths in
 * `args` must be absolute (the whole file system is the program's root).
 */
export function runWasi(wasm: string, args: string[]): string {
  const r = spawnSync(process.execPath, wasiArgv(wasm, args), { encoding: 'utf8', maxBuffer: 64 << 20 });
  if (r.error) throw r.error;
  if (r.status !== 0) throw new Error(`${wasm} ${args.join(' ')} exited ${r.status ?? r.signal}: ${r.stderr}`);
  return r.stdout;
}

/** bench/harness/wasi-run.mjs. */
const WASI_RUNNER = join(dirname(fileURLToPath(import.meta.url)), 'wasi-run.mjs');

/** Node's arguments that run `wasm` with `args` (runWasi; a bench that times the process spawns them itself). */
export function wasiArgv(wasm: string, args: string[]): string[] {
  return ['--no-warnings', WASI_RUNNER, wasm, ...args];
}

/** Runs a native binary, returns its stdout; a non-zero exit throws with its stderr. */
export function runNative(bin: string, args: string[]): string {
  const r = spawnSync(bin, args, { encoding: 'utf8', maxBuffer: 64 << 20 });
  if (r.error) throw r.error;
  if (r.status !== 0) throw new Error(`${bin} ${args.join(' ')} exited ${r.status}: ${r.stderr}`);
  return r.stdout;
}
