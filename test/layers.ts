/**
 * The house rule, checked: every import points down.
 *
 * Floors, from the ground up (a module may import its own folder and any
 * floor below its own, never one above or beside it):
 *
 *   0  sim/core      errors with their place, the selector/config/result contracts, addresses
 *   1  sim/hash      jhash in every era            sim/traffic  batches, readers, decoders
 *   2  sim/select    a config compiled into "batch -> buckets"
 *   3  sim/cluster   ownership, policies and handovers, heartbeat timeline, conntrack model
 *   4  sim/engine    worker pool, shares, partials, merge
 *   5  sim/analysis  statistics, verdicts      sim/schemes  Maglev, rendezvous, jump
 *   6  sim/recommend searches configurations over the engine's per-flow results
 *   7  kernel-glue   rules on hosts, agent, replay      reports  HTML, PNG, JSON
 *   8  bench         suites and native references (renders its results through reports)
 *   9  cli           one thin file per command (the only users of commander)
 *
 * Also refused: any folder-level import cycle, any module that is not a CLI
 * module (one importing `commander`) importing one that is, and production
 * code importing test helpers. Tests (`*.test.ts`) and `test/` may import
 * anything: they stand outside the house.
 *
 * Run it alone with `npx tsx test/layers.ts`; test/layers.test.ts runs it in
 * the suite.
 */
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { dirname, join, normalize, relative, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

/** Floor of each top folder (the longest matching prefix wins). */
export const FLOORS: ReadonlyArray<readonly [prefix: string, floor: number]> = [
  ['sim/core', 0],
  ['sim/hash', 1],
  ['sim/traffic', 1],
  ['sim/select', 2],
  ['sim/cluster', 3],
  ['sim/engine', 4],
  ['sim/analysis', 5],
  ['sim/schemes', 5],
  ['sim/recommend', 6],
  ['kernel-glue', 7],
  ['reports', 7],
  ['bench', 8],
  ['cli', 9],
];

/** One module and what it imports (repo-relative, '/'-separated paths). */
export interface ModuleInfo {
  path: string;
  imports: string[];
  /** Imports the commander package. */
  isCli: boolean;
}

const isTest = (p: string): boolean => p.endsWith('.test.ts') || p.startsWith('test/');

/** Floor and top folder of a module, or null when it is outside the floors (tests, build output). */
export function floorOf(path: string): { floor: number; area: string } | null {
  let best: { floor: number; area: string } | null = null;
  for (const [prefix, floor] of FLOORS) {
    if ((path === prefix || path.startsWith(`${prefix}/`)) && (!best || prefix.length > best.area.length)) best = { floor, area: prefix };
  }
  return best;
}

/** Every problem with the import graph, one line each (empty: the house stands). */
export function checkLayers(modules: readonly ModuleInfo[]): string[] {
  const problems: string[] = [];
  const byPath = new Map(modules.map((m) => [m.path, m]));
  const folderEdges = new Map<string, Set<string>>();
  for (const m of modules) {
    if (isTest(m.path)) continue;
    const from = floorOf(m.path);
    for (const imp of m.imports) {
      if (imp.startsWith('test/')) problems.push(`${m.path} imports the test helper ${imp}`);
      const target = byPath.get(imp);
      if (target?.isCli && !m.isCli) problems.push(`${m.path} imports the CLI module ${imp} (only CLI modules may)`);
      const to = floorOf(imp);
      if (from && to && from.area !== to.area && to.floor >= from.floor) {
        problems.push(`${m.path} (${from.area}, floor ${from.floor}) imports ${imp} (${to.area}, floor ${to.floor}): ${to.floor > from.floor ? 'up' : 'sideways'}`);
      }
      const a = dirname(m.path), b = dirname(imp);
      if (a !== b && !isTest(imp)) {
        let s = folderEdges.get(a);
        if (!s) folderEdges.set(a, (s = new Set()));
        s.add(b);
      }
    }
  }
  for (const cycle of folderCycles(folderEdges)) problems.push(`folder cycle: ${cycle.join(' -> ')} -> ${cycle[0]}`);
  return problems;
}

/** Strongly connected folder groups of more than one folder (Tarjan), each as one cycle's members. */
function folderCycles(edges: Map<string, Set<string>>): string[][] {
  const index = new Map<string, number>(), low = new Map<string, number>(), onStack = new Set<string>();
  const stack: string[] = [];
  const out: string[][] = [];
  let next = 0;
  const visit = (v: string): void => {
    index.set(v, next); low.set(v, next); next++;
    stack.push(v); onStack.add(v);
    for (const w of edges.get(v) ?? []) {
      if (!index.has(w)) { visit(w); low.set(v, Math.min(low.get(v)!, low.get(w)!)); }
      else if (onStack.has(w)) low.set(v, Math.min(low.get(v)!, index.get(w)!));
    }
    if (low.get(v) === index.get(v)) {
      const group: string[] = [];
      let w: string;
      do { w = stack.pop()!; onStack.delete(w); group.push(w); } while (w !== v);
      if (group.length > 1) out.push(group.sort());
    }
  };
  for (const v of [...edges.keys()].sort()) if (!index.has(v)) visit(v);
  return out;
}

// Static and dynamic relative imports and re-exports (`import … from`, `export … from`, `import('…')`).
const IMPORT_RE = /(?:\bfrom\s*|\bimport\s*\(?\s*)(['"])(\.{1,2}\/[^'"]+)\1/g;
const COMMANDER_RE = /(?:\bfrom\s*|\bimport\s*\(?\s*)['"]commander['"]/;

/** Reads the repo's TypeScript modules (not node_modules, build output or WebAssembly sources). */
export function readModules(root: string): ModuleInfo[] {
  const out: ModuleInfo[] = [];
  const walk = (dir: string): void => {
    for (const name of readdirSync(dir)) {
      if (name === 'node_modules' || name.startsWith('.') || name === 'build' || name === 'out' || name === 'assembly') continue;
      const full = join(dir, name);
      if (statSync(full).isDirectory()) walk(full);
      else if (name.endsWith('.ts')) {
        const path = relative(root, full).split(sep).join('/');
        const text = readFileSync(full, 'utf8');
        const imports: string[] = [];
        for (const m of text.matchAll(IMPORT_RE)) imports.push(normalize(join(dirname(path), m[2]!)).split(sep).join('/'));
        out.push({ path, imports, isCli: COMMANDER_RE.test(text) });
      }
    }
  };
  for (const top of ['sim', 'cli', 'kernel-glue', 'reports', 'bench', 'test']) walk(join(root, top));
  return out;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const root = join(dirname(fileURLToPath(import.meta.url)), '..');
  const problems = checkLayers(readModules(root));
  for (const p of problems) process.stdout.write(`${p}\n`);
  process.stdout.write(problems.length ? `${problems.length} layering problem(s)\n` : 'layers: every import points down\n');
  process.exitCode = problems.length ? 1 : 0;
}
