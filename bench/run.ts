/**
 * `npm run bench [-- SUITE...] [options]`: runs benchmark suites (all of them
 * when none is named), prints a table or one JSON line per case, saves the
 * lines (`--out`), and compares them with a saved run (`--baseline`, exit 3 on
 * a regression beyond the measured noise, so CI can gate on it).
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { SUITES } from './suites/index.ts';
import type { BenchCase, Suite } from './harness/harness.ts';
import { compareWithBaseline, readBenchLines } from './harness/baseline.ts';

const HELP = `usage: npm run bench -- [SUITE...] [options]

Runs the benchmark suites (all when none is named). Every case measures our
code and, in the same run, the native reference it is compared with, and
reports the median of the repeats, their spread and the ratio ours/native
(higher is better; 1.0 = as fast as C).

options:
  --json            one JSON object per case on stdout (suite, case, ops_per_s,
                    native_ops_per_s, ratio, spread, ...)
  --quick           small inputs and 2 repeats: a smoke run (what the unit test does)
  --repeats N       measured repeats per case (default 5; 2 with --quick)
  --warmup N        unmeasured warm-up runs per case (default 1; 0 with --quick)
  --out FILE        also write the JSON lines to FILE (feed it to --baseline
                    later, or to 'clusterip-sim report')
  --report FILE     write a self-contained HTML report of this run
  --png DIR         also render its charts as PNG files into DIR
  --baseline FILE   compare with a saved run; exit 3 when a case got slower by
                    more than the noise of both runs (ratio when both have one)
  --list            list the suites and exit
  -h, --help        this text

examples:
  npm run bench -- hash                       selections/s per selector vs C
  npm run bench -- hash --json --out out/bench/hash.jsonl
  npm run bench -- --baseline out/bench/hash.jsonl hash
  npm run bench -- schemes --quick

suites:
${SUITES.map((s) => `  ${s.name.padEnd(10)} ${s.description}`).join('\n')}
`;

export interface BenchOptions {
  suites: Suite[];
  json: boolean;
  quick: boolean;
  repeats?: number;
  warmup?: number;
  out?: string;
  baseline?: string;
  /** HTML report of this run (the report renderer), and PNG charts. */
  report?: string;
  png?: string;
}

class Usage extends Error {}

export function parseBenchArgs(argv: readonly string[]): BenchOptions | 'help' | 'list' {
  const o: Omit<BenchOptions, 'suites'> = { json: false, quick: false };
  const names: string[] = [];
  const value = (i: number, flag: string): string => {
    const v = argv[i + 1];
    if (v === undefined || v.startsWith('--')) throw new Usage(`${flag} needs a value`);
    return v;
  };
  const count = (v: string, flag: string, min: number): number => {
    if (!/^\d+$/.test(v) || Number(v) < min) throw new Usage(`${flag}: '${v}' is not an integer >= ${min}`);
    return Number(v);
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    switch (a) {
      case '-h': case '--help': return 'help';
      case '--list': return 'list';
      case '--json': o.json = true; break;
      case '--quick': o.quick = true; break;
      case '--repeats': o.repeats = count(value(i, a), a, 1); i++; break;
      case '--warmup': o.warmup = count(value(i, a), a, 0); i++; break;
      case '--out': o.out = value(i, a); i++; break;
      case '--baseline': o.baseline = value(i, a); i++; break;
      case '--report': o.report = value(i, a); i++; break;
      case '--png': o.png = value(i, a); i++; break;
      default:
        if (a.startsWith('-')) throw new Usage(`unknown option ${a} (see --help)`);
        names.push(a);
    }
  }
  const unknown = names.filter((n) => !SUITES.some((s) => s.name === n));
  if (unknown.length) throw new Usage(`unknown suite(s): ${unknown.join(', ')}; available: ${SUITES.map((s) => s.name).join(', ')}`);
  const suites = names.length ? SUITES.filter((s) => names.includes(s.name)) : SUITES;
  return { ...o, suites };
}

function fmtOps(x: number | undefined): string {
  if (x === undefined || !Number.isFinite(x)) return '-'.padStart(9);
  if (x >= 1e9) return `${(x / 1e9).toFixed(2)} G`.padStart(9);
  if (x >= 1e6) return `${(x / 1e6).toFixed(1)} M`.padStart(9);
  if (x >= 1e3) return `${(x / 1e3).toFixed(1)} k`.padStart(9);
  return x.toFixed(1).padStart(9);
}

function tableLine(c: BenchCase): string {
  const spread = c.spread !== undefined ? `±${((c.spread as number) * 50).toFixed(0)}%` : '';
  const ratio = c.ratio !== undefined ? (c.ratio as number).toFixed(2) : '-';
  const paired = typeof c.ratio_paired === 'number' ? ` (per round ${c.ratio_paired.toFixed(2)})` : '';
  return `${c.suite.padEnd(8)} ${c.case.padEnd(44)} ${fmtOps(c.ops_per_s)}/s ${spread.padStart(5)}  native ${fmtOps(c.native_ops_per_s)}/s  ratio ${ratio.padStart(5)}${paired}`;
}

/** Runs the chosen suites; returns the exit code (0, or 3 on a baseline regression). */
export async function runBench(o: BenchOptions): Promise<number> {
  const workDir = resolve('out/bench');
  mkdirSync(workDir, { recursive: true });
  const results: BenchCase[] = [];
  if (!o.json) process.stdout.write(`${'suite'.padEnd(8)} ${'case'.padEnd(44)} ${'ours'.padStart(11)} ${'±'.padStart(5)}  ${'native'.padStart(17)}  ratio (ours/native)\n`);
  for (const suite of o.suites) {
    await suite.run({
      quick: o.quick,
      workDir,
      repeats: o.repeats,
      warmup: o.warmup,
      log: (m) => void process.stderr.write(`[${suite.name}] ${m}\n`),
      emit: (c) => {
        results.push(c);
        process.stdout.write(o.json ? JSON.stringify(c) + '\n' : tableLine(c) + '\n');
      },
    });
  }
  if (o.out) {
    mkdirSync(dirname(resolve(o.out)), { recursive: true });
    writeFileSync(o.out, results.map((c) => JSON.stringify(c)).join('\n') + '\n');
    process.stderr.write(`wrote ${results.length} result lines to ${o.out}\n`);
  }
  if (o.report || o.png) {
    const { writeReport } = await import('../reports/write.ts');
    const w = await writeReport({ kind: 'bench', cases: results, generated_at: new Date().toISOString(), quick: o.quick, command: `npm run bench -- ${o.suites.map((x) => x.name).join(' ')}` }, o.report ?? 'out/bench/report.html', o.png);
    process.stderr.write(`report: ${w.html}${w.pngs.length ? ` and ${w.pngs.length} PNG charts in ${o.png}` : ''}\n`);
  }
  if (o.baseline) {
    const cmp = compareWithBaseline(results, readBenchLines(o.baseline));
    const bad = cmp.filter((c) => c.regression);
    for (const c of cmp) {
      process.stderr.write(`${c.regression ? 'REGRESSION' : 'ok        '} ${c.suite}/${c.case}: ${c.metric} ${c.before.toPrecision(4)} -> ${c.after.toPrecision(4)} (${(c.change * 100).toFixed(1)}%, noise ±${(c.noise * 100).toFixed(1)}%)\n`);
    }
    if (!cmp.length) process.stderr.write(`baseline ${o.baseline}: no case in common with this run\n`);
    if (bad.length) {
      process.stderr.write(`${bad.length} case(s) regressed beyond the noise against ${o.baseline}\n`);
      return 3;
    }
  }
  return 0;
}

export async function main(argv: readonly string[]): Promise<number> {
  let o: ReturnType<typeof parseBenchArgs>;
  try {
    o = parseBenchArgs(argv);
  } catch (e) {
    if (e instanceof Usage) {
      process.stderr.write(`bench: ${e.message}\n`);
      return 2;
    }
    throw e;
  }
  if (o === 'help') { process.stdout.write(HELP); return 0; }
  if (o === 'list') { for (const s of SUITES) process.stdout.write(`${s.name}\t${s.description}\n`); return 0; }
  try {
    return await runBench(o);
  } catch (e) {
    process.stderr.write(`bench: ${(e as Error).message}\n`);
    return 1;
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  process.exitCode = await main(process.argv.slice(2));
}
