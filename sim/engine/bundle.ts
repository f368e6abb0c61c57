/**
 * The pool's workers run one prebuilt ESM file (build/worker.mjs, git-ignored)
 * instead of worker.mjs, which registers tsx and transpiles every module in
 * every thread: ~200 ms a worker, which dominated short runs (measured: a
 * 1,000-packet run took ~230 ms on one worker, ~370 ms on two).
 *
 * Nobody has to remember to rebuild: the bundle's first line is a stamp of
 * every file that went into it (size, mtime, and a hash of the exact text
 * esbuild was given). Before each pool, workerEntry() stats those files
 * (well under a millisecond) and rebuilds in-process when one changed
 * (~100 ms), so editing a .ts file and rerunning never runs stale code. When
 * the bundle cannot be built or written (a read-only install, no esbuild), the
 * pool silently uses worker.mjs (tsx) as before; CLUSTERIP_SIM_DEBUG=1 says
 * why, CLUSTERIP_SIM_NO_BUNDLE=1 forces tsx.
 *
 * `npm ci` builds it (the `prepare` script runs this file), so the first run
 * is fast too.
 */
import { createHash, randomBytes } from 'node:crypto';
import { closeSync, existsSync, mkdirSync, openSync, readdirSync, readFileSync, readSync, renameSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { basename, dirname, extname, isAbsolute, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { threadId } from 'node:worker_threads';
import type { Loader, Plugin } from 'esbuild';

const HERE = dirname(fileURLToPath(import.meta.url));
/** What the pool loads when the bundle is fresh. */
export const BUNDLE_PATH = join(HERE, 'build', 'worker.mjs');
const ENTRY = join(HERE, 'worker.ts');
/** The fallback entry: tsx in each worker thread. */
export const TSX_ENTRY = pathToFileURL(join(HERE, 'worker.mjs')).href;
/**
 * Files that shape the bundle without being modules of it: this file (the
 * build options) and the tsconfig esbuild reads.
 */
const BUILD_INPUTS = [fileURLToPath(import.meta.url), resolve(HERE, '..', '..', 'tsconfig.json')];

const STAMP_PREFIX = '// clusterip-sim worker bundle ';
/**
 * A file modified this recently before it was read may change again within
 * the same mtime tick (file times come from a coarse clock) without its mtime
 * moving; such files are stamped without an mtime, so the check compares
 * their hash every time (git's "racy clean" rule).
 */
const RACY_MS = 3000;

interface StampInput {
  /** Relative to the bundle's folder, '/'-separated: the tree can move as a whole. */
  path: string;
  size: number;
  /** -1 when racy (see RACY_MS). */
  mtimeMs: number;
  /** sha256 of the text bundled. */
  hash: string;
}
interface Stamp { inputs: StampInput[] }

/** An input was edited while it was being bundled: the output is stale already and must not replace anything. */
class InputChanged extends Error {}

const sha256 = (b: Uint8Array | string): string => createHash('sha256').update(b).digest('hex');
const relFrom = (dir: string, file: string): string => relative(dir, file).split(sep).join('/');

/** The stamp on the first line of `outfile`, or null when missing or unreadable. */
export function readStamp(outfile: string): Stamp | null {
  let fd: number;
  try {
    fd = openSync(outfile, 'r');
  } catch {
    return null;
  }
  try {
    // The stamp is the first line only: read until its newline, not the whole bundle.
    let text = '';
    const buf = Buffer.alloc(64 * 1024);
    for (let pos = 0; ; ) {
      const n = readSync(fd, buf, 0, buf.length, pos);
      if (n === 0) return null;
      pos += n;
      text += buf.toString('latin1', 0, n);
      const nl = text.indexOf('\n');
      if (nl < 0) continue;
      const line = text.slice(0, nl);
      if (!line.startsWith(STAMP_PREFIX)) return null;
      const s = JSON.parse(Buffer.from(line.slice(STAMP_PREFIX.length), 'latin1').toString('utf8')) as Stamp;
      return Array.isArray(s.inputs) && s.inputs.length > 0 ? s : null;
    }
  } catch {
    return null;
  } finally {
    closeSync(fd);
  }
}

/**
 * True when every file stamped in `outfile` still has the text that was
 * bundled: same size and mtime, or (mtime moved, e.g. a touch or a checkout)
 * the same hash. A missing file or bundle means stale.
 */
export function bundleFresh(outfile: string): boolean {
  const stamp = readStamp(outfile);
  if (!stamp) return false;
  const dir = dirname(outfile);
  for (const i of stamp.inputs) {
    const file = resolve(dir, i.path);
    let st;
    try {
      st = statSync(file);
    } catch {
      return false;
    }
    if (st.size !== i.size) return false;
    if (st.mtimeMs === i.mtimeMs) continue;
    try {
      if (sha256(readFileSync(file)) !== i.hash) return false;
    } catch {
      return false;
    }
  }
  return true;
}

const LOADERS: Record<string, Loader> = { '.ts': 'ts', '.mts': 'ts', '.cts': 'ts', '.tsx': 'tsx', '.js': 'js', '.mjs': 'js', '.cjs': 'js', '.json': 'json' };

/** esbuild, from the project's node_modules or else through tsx (whose dependency it is). */
async function loadEsbuild(): Promise<typeof import('esbuild')> {
  try {
    return await import('esbuild');
  } catch {
    const viaTsx = createRequire(createRequire(import.meta.url).resolve('tsx/package.json')).resolve('esbuild');
    return (await import(pathToFileURL(viaTsx).href)) as typeof import('esbuild');
  }
}

/** Written beside `file`, then renamed over it: readers see the old file or the new one, never half of one. */
function writeAtomic(file: string, data: string): void {
  const tmp = `${file}.${process.pid}-${threadId}-${randomBytes(4).toString('hex')}.tmp`;
  try {
    writeFileSync(tmp, data);
    renameSync(tmp, file);
  } catch (e) {
    try { unlinkSync(tmp); } catch { /* never written */ }
    throw e;
  }
}

/**
 * Bundles `entry` and every module it imports (npm packages and node
 * built-ins stay imports) into `outfile`, ESM for node 20, stamped with its
 * inputs and with `extraInputs` (files that change the output without being
 * modules). Throws when esbuild is missing, the build fails, or an input
 * changed while it was being built (the result would be stale already).
 */
/**
 * With `split`, more entries (name -> source) are built beside `outfile` and
 * code they share, and every dynamic import(), goes to chunk files in the same
 * folder: a module (and the npm packages it imports) then loads only when the
 * code that imports it dynamically runs. The stamp covers every input of every
 * output and sits on `outfile`, written last.
 */
export interface SplitOptions { entries: Record<string, string> }

export async function buildBundle(entry: string, outfile: string, extraInputs: string[] = [], split?: SplitOptions): Promise<void> {
  const { build } = await loadEsbuild();
  const outDir = dirname(outfile);
  const seen = new Map<string, { input: StampInput; mtimeMs: number }>();
  const stampFile = (file: string, text: Buffer | string, st: { size: number; mtimeMs: number }, readAt: number): void => {
    seen.set(file, { input: { path: relFrom(outDir, file), size: st.size, mtimeMs: readAt - st.mtimeMs < RACY_MS ? -1 : st.mtimeMs, hash: sha256(text) }, mtimeMs: st.mtimeMs });
  };
  const readStamped = (file: string): Buffer => {
    // Stat before reading: if the file changes after the stat its mtime moves, so the check hashes it.
    const st = statSync(file);
    const readAt = Date.now();
    const bytes = readFileSync(file);
    stampFile(file, bytes, st, readAt);
    return bytes;
  };
  const stamper: Plugin = {
    name: 'stamp-inputs',
    setup(b) {
      b.onLoad({ filter: /.*/, namespace: 'file' }, (args) => {
        const loader = LOADERS[extname(args.path)];
        if (!loader) return undefined;
        let text = readStamped(args.path).toString('utf8');
        // (The message is built from the match so that this file, bundled into the CLI, passes its own check.)
        const named = /\bimport\.meta\.(dirname|filename)\b/.exec(text);
        if (named) throw new Error(`${args.path}: import.meta.${named[1]} would name the bundle, not this module; use import.meta's url`);
        // In one bundle every module's import.meta.url would be the bundle's: give each its own
        // URL back, relative to the bundle so that the tree can move (wasm.ts finds its .wasm by it).
        const rel = relFrom(outDir, args.path);
        text = text.replace(/\bimport\.meta\.url\b/g, `new URL(${JSON.stringify(rel)}, import.meta.url).href`);
        return { contents: text, loader };
      });
    },
  };
  for (const f of extraInputs) if (existsSync(f)) readStamped(f);
  const mainName = basename(outfile, extname(outfile));
  const r = await build({
    ...(split
      ? { entryPoints: { ...split.entries, [mainName]: entry }, outdir: outDir, splitting: true, entryNames: '[name]', chunkNames: '[name]-[hash]', outExtension: { '.js': extname(outfile) } }
      : { entryPoints: [entry], outfile }),
    bundle: true, platform: 'node', format: 'esm', target: 'node20',
    packages: 'external', metafile: true, write: false, logLevel: 'silent', plugins: [stamper],
  });
  // Any input esbuild loaded itself (an unusual extension) is stamped as it is now.
  for (const p of Object.keys(r.metafile.inputs)) {
    const file = isAbsolute(p) ? p : resolve(process.cwd(), p);
    if (!seen.has(file)) readStamped(file);
  }
  const js = split ? r.outputFiles.find((f) => resolve(f.path) === resolve(outfile)) : r.outputFiles.find((f) => f.path.endsWith('.mjs') || f.path.endsWith('.js'));
  if (!js) throw new Error(`esbuild wrote no JavaScript for ${entry}`);
  // A file edited while esbuild ran: this output is stale already and must not replace a bundle.
  for (const [file, s] of seen) {
    const st = statSync(file);
    if (st.size !== s.input.size || st.mtimeMs !== s.mtimeMs) throw new InputChanged(`${file} changed while it was being bundled`);
  }
  const stamp: Stamp = { inputs: [...seen.values()].map((s) => s.input).sort((a, b) => a.path.localeCompare(b.path)) };
  mkdirSync(outDir, { recursive: true });
  // Chunks and other entries first: the stamped entry names only chunks that are already there.
  if (split) for (const f of r.outputFiles) if (f !== js && !f.path.endsWith('.map')) writeAtomic(f.path, f.text);
  writeAtomic(outfile, `${STAMP_PREFIX}${JSON.stringify(stamp)}\n${js.text}`);
  if (split) removeStaleChunks(outDir, new Set(r.outputFiles.map((f) => basename(f.path))));
}

/** How long a chunk no build wrote is kept: a process started before the rebuild may still import it lazily. */
const STALE_CHUNK_MS = 10 * 60_000;

/**
 * Chunk names carry their content hash, so every rebuild after an edit leaves the previous
 * chunks behind (hundreds after a day of work). Removes those this build did not write, once
 * they are old enough that no running command can still be about to load one.
 */
function removeStaleChunks(outDir: string, written: Set<string>): void {
  const now = Date.now();
  for (const name of readdirSync(outDir)) {
    if (written.has(name) || !/-[A-Z0-9]{8}\.mjs$/.test(name)) continue;
    const file = join(outDir, name);
    try {
      if (now - statSync(file).mtimeMs > STALE_CHUNK_MS) unlinkSync(file);
    } catch {
      // Removed by a concurrent build meanwhile: nothing to do.
    }
  }
}

/** Builds the worker bundle (forced, or only when stale). */
export async function buildWorkerBundle(force = false): Promise<void> {
  if (!force && bundleFresh(BUNDLE_PATH)) return;
  try {
    await buildBundle(ENTRY, BUNDLE_PATH, BUILD_INPUTS);
  } catch (e) {
    // Edited mid-build: once more, from the edited files.
    if (!(e instanceof InputChanged)) throw e;
    await buildBundle(ENTRY, BUNDLE_PATH, BUILD_INPUTS);
  }
}

/** Set after a failed build: this process keeps to tsx rather than paying for a failing esbuild per pool. */
let unbuildable = false;
/** One build at a time in this process (concurrent runs share it). */
let building: Promise<void> | null = null;

const LOADER_FLAGS = new Set(['--require', '-r', '--import', '--loader', '--experimental-loader']);
const isTsx = (spec: string): boolean => spec === 'tsx' || spec.startsWith('tsx/') || /[\\/]tsx[\\/]dist[\\/]/.test(spec);

/**
 * This process's node flags without tsx's loader (`tsx file.ts` runs node
 * with `--require .../tsx/dist/preflight.cjs --import .../tsx/dist/loader.mjs`,
 * and worker threads inherit the flags): a bundled worker needs no
 * TypeScript loader, and loading it anyway cost ~200 ms a worker (measured),
 * all that the bundle saves. Other flags stay.
 */
export function withoutTsx(argv: readonly string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const eq = a.indexOf('=');
    if (eq > 0 && LOADER_FLAGS.has(a.slice(0, eq)) && isTsx(a.slice(eq + 1))) continue;
    if (LOADER_FLAGS.has(a) && i + 1 < argv.length && isTsx(argv[i + 1]!)) { i++; continue; }
    out.push(a);
  }
  return out;
}

/** What piscina should load: `filename` and, for the bundle, the worker's node flags. */
export interface WorkerEntry { filename: string; execArgv?: string[]; bundled: boolean }

/** The bundle when fresh (rebuilt if needed), else the tsx entry. */
export async function workerEntry(): Promise<WorkerEntry> {
  const tsx: WorkerEntry = { filename: TSX_ENTRY, bundled: false };
  if (process.env.CLUSTERIP_SIM_NO_BUNDLE) return tsx;
  const bundle: WorkerEntry = { filename: pathToFileURL(BUNDLE_PATH).href, execArgv: withoutTsx(process.execArgv), bundled: true };
  try {
    if (bundleFresh(BUNDLE_PATH)) return bundle;
    if (unbuildable) return tsx;
    building ??= buildWorkerBundle().finally(() => { building = null; });
    await building;
    return bundle;
  } catch (e) {
    unbuildable = true;
    if (process.env.CLUSTERIP_SIM_DEBUG) process.stderr.write(`worker bundle not used (${e instanceof Error ? e.message : String(e)}); workers run through tsx\n`);
    return tsx;
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  try {
    await buildWorkerBundle(process.argv.includes('--force'));
    process.stderr.write(`worker bundle: ${BUNDLE_PATH}\n`);
  } catch (e) {
    // Like the wasm build: not fatal to an install, the workers then run through tsx.
    process.stderr.write(`worker bundle not built (${e instanceof Error ? e.message : String(e)}); workers will run through tsx\n`);
  }
}
