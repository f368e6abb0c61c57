/**
 * The compiled command line: cli/main.ts and everything it imports, bundled
 * by esbuild into dist/cli/ (git-ignored), what bin/clusterip-sim.js runs.
 * Each command's module is its own chunk, loaded only when that command runs
 * (see commands.ts); npm packages stay imports of node_modules. `fresh.mjs`
 * is bundle.ts's stamp check, which the bin runs before trusting main.mjs:
 * after an edit to any source the bin runs the TypeScript through tsx
 * instead, so stale code never runs (`npm run build` makes it fast again).
 *
 * Run by `npm ci` (the prepare script) and `npm run build`.
 */
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { buildBundle } from '../sim/engine/bundle.ts';
import { checkCap } from './doctor-checks.ts';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
/** The compiled entry the bin imports. */
export const CLI_BUNDLE = join(ROOT, 'dist', 'cli', 'main.mjs');

/** Builds dist/cli/ from the sources (about a second). */
export async function buildCli(): Promise<void> {
  await buildBundle(join(ROOT, 'cli', 'main.ts'), CLI_BUNDLE, [fileURLToPath(import.meta.url), join(ROOT, 'tsconfig.json'), join(ROOT, 'package.json')], {
    entries: { fresh: join(ROOT, 'sim', 'engine', 'bundle.ts') },
  });
}

if (process.argv[1] && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  try {
    await buildCli();
    process.stderr.write(`command line compiled: ${CLI_BUNDLE}\n`);
    // Said at install time, not first when --live fails: the optional cap package builds only with libpcap headers.
    const cap = checkCap();
    if (!cap.ok) process.stderr.write(`clusterip-sim: live capture will not work: ${cap.found}. To get it: ${cap.fix}. (clusterip-sim doctor lists every optional part.)\n`);
  } catch (e) {
    // Not fatal to an install: the bin then runs the TypeScript through tsx (slower to start).
    process.stderr.write(`clusterip-sim: the command line was NOT compiled (${e instanceof Error ? e.message : String(e)}); it will run through tsx, slower to start\n`);
  }
}
