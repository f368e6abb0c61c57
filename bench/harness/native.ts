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
  const src = join(NATIVE_SRC_DIR, source);
  if (!existsSync(src)) throw new Error(`native source ${src} not found`);
  const outDir = join(workDir, 'native');
  mkdirSync(outDir, { recursive: true });
  const bin = join(outDir, binName ?? basename(source).replace(/\.c$/, ''));
  const headers = readdirSync(NATIVE_SRC_DIR).filter((f) => f.endsWith('.h')).map((f) => join(NATIVE_SRC_DIR, f));
  const newest = Math.max(...[src, ...headers].map((f) => statSync(f).mtimeMs));
  if (existsSync(bin) && statSync(bin).mtimeMs >= newest) return bin;
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

/** Runs a native binary, returns its stdout; a non-zero exit throws with its stderr. */
export function runNative(bin: string, args: string[]): string {
  const r = spawnSync(bin, args, { encoding: 'utf8', maxBuffer: 64 << 20 });
  if (r.error) throw r.error;
  if (r.status !== 0) throw new Error(`${bin} ${args.join(' ')} exited ${r.status}: ${r.stderr}`);
  return r.stdout;
}
