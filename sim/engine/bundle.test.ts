/**
 * The worker bundle (bundle.ts): a changed input makes it stale, so nobody
 * runs old code after an edit, and a pool running it answers exactly what the
 * in-process run answers.
 */
import { describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { Piscina } from 'piscina';
import { buildBundle, bundleFresh, BUNDLE_PATH, readStamp, TSX_ENTRY, withoutTsx, workerEntry } from './bundle.ts';
import { wasmModule } from '../select/wasm.ts';
import { runCli } from '../../test/cli.ts';

/** A two-module project in a temp dir: a.ts imports b.ts, which reports its own import.meta.url. */
function project(): { dir: string; a: string; b: string; out: string } {
  const dir = mkdtempSync(join(tmpdir(), 'cipsim-bundle-'));
  mkdirSync(join(dir, 'src'));
  const a = join(dir, 'src', 'a.ts'), b = join(dir, 'src', 'b.ts');
  writeFileSync(a, "import { url, value } from './b.ts';\nexport default (): { url: string; value: number } => ({ url, value });\n");
  writeFileSync(b, 'export const value: number = 1;\nexport const url: string = import.meta.url;\n');
  return { dir, a, b, out: join(dir, 'build', 'a.mjs') };
}

/** What the bundle's default export returns, in a plain node process (no tsx, no vitest transform). */
function runBundle(out: string): { url: string; value: number } {
  const code = `import(${JSON.stringify(pathToFileURL(out).href)}).then((m) => process.stdout.write(JSON.stringify(m.default())))`;
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', code], { encoding: 'utf8' });
  expect(r.status, r.stderr).toBe(0);
  return JSON.parse(r.stdout) as { url: string; value: number };
}

/** Sets a file's times an hour back: older than the racy window, so the stamp keeps its mtime. */
const age = (f: string): void => utimesSync(f, new Date(Date.now() - 3600e3), new Date(Date.now() - 3600e3));

describe('worker bundle freshness', () => {
  it('is fresh after a build, stale after an edit, fresh again after a rebuild', async () => {
    const p = project();
    try {
      expect(bundleFresh(p.out)).toBe(false); // not built yet
      age(p.a); age(p.b);
      await buildBundle(p.a, p.out);
      expect(readStamp(p.out)!.inputs.map((i) => i.path)).toEqual(['../src/a.ts', '../src/b.ts']);
      expect(bundleFresh(p.out)).toBe(true);
      // Each module keeps its own import.meta.url inside the bundle (wasm.ts finds its .wasm this way).
      expect(runBundle(p.out)).toEqual({ url: pathToFileURL(p.b).href, value: 1 });

      // Touched (a checkout, an editor saving unchanged text): same text, still fresh.
      utimesSync(p.b, new Date(), new Date());
      expect(bundleFresh(p.out)).toBe(true);

      // Edited: stale, even when the size stays the same.
      writeFileSync(p.b, readFileSync(p.b, 'utf8').replace('= 1;', '= 2;'));
      expect(bundleFresh(p.out)).toBe(false);
      await buildBundle(p.a, p.out);
      expect(bundleFresh(p.out)).toBe(true);
      expect(runBundle(p.out).value).toBe(2);

      // Deleted input, unstamped or missing bundle: stale.
      rmSync(p.b);
      expect(bundleFresh(p.out)).toBe(false);
      writeFileSync(p.out, 'export default () => 0;\n');
      expect(bundleFresh(p.out)).toBe(false);
      rmSync(p.out);
      expect(bundleFresh(p.out)).toBe(false);
    } finally {
      rmSync(p.dir, { recursive: true, force: true });
    }
  });

  it('a file edited within its mtime tick is caught by its hash (racy-clean rule)', async () => {
    const p = project();
    try {
      await buildBundle(p.a, p.out); // b.ts was written just now: stamped without an mtime
      const before = statSync(p.b);
      writeFileSync(p.b, readFileSync(p.b, 'utf8').replace('= 1;', '= 3;'));
      utimesSync(p.b, before.atime, before.mtime); // same size, same mtime: only the text differs
      expect(bundleFresh(p.out)).toBe(false);
    } finally {
      rmSync(p.dir, { recursive: true, force: true });
    }
  });

  it('extra inputs (build options, tsconfig) are stamped too', async () => {
    const p = project();
    const extra = join(p.dir, 'tsconfig.json');
    try {
      writeFileSync(extra, '{}\n');
      age(p.a); age(p.b); age(extra);
      await buildBundle(p.a, p.out, [extra]);
      expect(bundleFresh(p.out)).toBe(true);
      writeFileSync(extra, '{ "compilerOptions": {} }\n');
      expect(bundleFresh(p.out)).toBe(false);
    } finally {
      rmSync(p.dir, { recursive: true, force: true });
    }
  });

  it('refuses import.meta.dirname/filename, which would name the bundle, not the module', async () => {
    const p = project();
    try {
      writeFileSync(p.b, 'export const value = 1;\nexport const url = import.meta.dirname;\n');
      await expect(buildBundle(p.a, p.out)).rejects.toThrow(/import\.meta\.dirname/);
    } finally {
      rmSync(p.dir, { recursive: true, force: true });
    }
  });

  it("drops only tsx's loader flags from the flags workers inherit", () => {
    const tsx = ['--require', '/x/node_modules/tsx/dist/preflight.cjs', '--import', 'file:///x/node_modules/tsx/dist/loader.mjs'];
    expect(withoutTsx([...tsx, '--conditions', 'development', '--import=tsx', '--require', './trace.cjs', '--max-old-space-size=4096']))
      .toEqual(['--conditions', 'development', '--require', './trace.cjs', '--max-old-space-size=4096']);
  });
});

describe('the pool through the bundle', () => {
  it('the real worker bundles and is used; a pool on it answers what the in-process run answers', async () => {
    // CLUSTERIP_SIM_NO_BUNDLE=1 (forcing tsx) turns this into the same check through tsx workers.
    const forcedTsx = Boolean(process.env.CLUSTERIP_SIM_NO_BUNDLE);
    const entry = await workerEntry();
    expect(entry.bundled).toBe(!forcedTsx);
    expect(entry.filename).toBe(forcedTsx ? TSX_ENTRY : pathToFileURL(BUNDLE_PATH).href);
    if (!forcedTsx) expect(bundleFresh(BUNDLE_PATH)).toBe(true);
    // The result as the CLI reports it (merged flow lists are in arrival order; the report is not).
    const simulate = async (workers: number): Promise<Record<string, unknown>> => {
      const args = ['simulate', '--synthetic', 'default', '--packets', '30000', '--seed', '7', '--backend', 'xt_cluster', '--total-nodes', '3', '--hash-seed', '0x1234',
        '--compare', '--backend clusterip --hashmode sourceip-sourceport', '--compare', '--backend nft --nft "jhash ip saddr . tcp dport mod 5 seed 0x9 offset 1"', '--json', '--workers', String(workers)];
      const r = await runCli(args);
      expect(r.code, r.stderr).toBe(0);
      const { run: _r, generated_at: _g, ...rest } = JSON.parse(r.stdout) as Record<string, unknown>;
      return rest;
    };
    const base = await simulate(0);
    expect((base.input as { packets: number }).packets).toBe(30_000);
    expect(await simulate(2)).toEqual(base);
  });

  it('bundled workers find the WebAssembly module like tsx workers do', async () => {
    const { filename, execArgv } = await workerEntry();
    const ask = async (file: string, argv?: string[]): Promise<{ wasm: boolean }> => {
      const pool = new Piscina({ filename: file, execArgv: argv, minThreads: 1, maxThreads: 1 });
      try {
        return (await pool.run(null, { name: 'workerInfo' })) as { wasm: boolean };
      } finally {
        await pool.destroy();
      }
    };
    const here = wasmModule() !== null;
    expect(await ask(filename, execArgv)).toEqual({ wasm: here });
    expect(await ask(TSX_ENTRY)).toEqual({ wasm: here });
  });
});
