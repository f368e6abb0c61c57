/**
 * `clusterip-sim report RESULT.json`: turns a saved result (simulate --json,
 * failover --json, or bench's JSON lines) into one self-contained HTML file,
 * and with --png into one picture per chart.
 */
import { readFile } from 'node:fs/promises';
import type { Command } from 'commander';
import type { BenchCase } from '../sim/core/result.ts';
import type { ReportInput } from '../reports/html.ts';
import { writeReport } from '../reports/write.ts';
import { DataError } from '../sim/core/errors.ts';

/**
 * Reads a result file: one JSON object with a `kind`, or JSON lines of bench
 * cases (what `npm run bench` writes), which become `{kind:'bench', cases}`.
 */
export async function readResultFile(path: string): Promise<ReportInput> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    throw new DataError(path, `cannot read: ${(e as NodeJS.ErrnoException).code ?? String(e)}`);
  }
  try {
    return JSON.parse(text) as ReportInput;
  } catch (whole) {
    const lines = text.split('\n');
    const cases: BenchCase[] = [];
    for (const [i, line] of lines.entries()) {
      if (!line.trim()) continue;
      let c: unknown;
      try {
        c = JSON.parse(line);
      } catch (e) {
        // Not JSON lines either: report the error of the whole-file parse when the first line fails.
        if (cases.length === 0) throw new DataError(path, `not JSON: ${(whole as Error).message}`);
        throw new DataError(`${path}:${i + 1}`, `not a JSON line: ${(e as Error).message}`);
      }
      const o = c as Partial<BenchCase>;
      if (!o || typeof o !== 'object' || typeof o.suite !== 'string' || typeof o.case !== 'string' || typeof o.ops_per_s !== 'number') {
        throw new DataError(`${path}:${i + 1}`, 'expected a bench case {"suite", "case", "ops_per_s", …}');
      }
      cases.push(o as BenchCase);
    }
    if (!cases.length) throw new DataError(path, 'empty file');
    return { kind: 'bench', cases };
  }
}

export function registerReport(program: Command): void {
  program
    .command('report')
    .description('write a self-contained HTML report (charts and tables, works offline) from a saved JSON result')
    .argument('<result>', 'a result saved with --json by simulate or failover, or the JSON lines written by bench')
    .option('--out <file.html>', 'where to write the report (default: the result name with .html)')
    .option('--png <dir>', 'also write each chart as a PNG into this folder (needs Chromium: apt-get install chromium)')
    .option('--json', 'print what was written as JSON')
    .addHelpText('after', `
The report holds the whole result (embedded as JSON), tables that read without
JavaScript, and charts drawn by chart.js inlined in the file: it makes no
network requests and can be mailed or attached to a ticket as it is.

Examples:
  clusterip-sim simulate --json > result.json && clusterip-sim report result.json --out report.html
  clusterip-sim report failover.json --out failover.html --png charts/
  clusterip-sim report out/bench/results.jsonl --out bench.html`)
    .action(async (result: string, o: { out?: string; png?: string; json?: boolean }) => {
      const input = await readResultFile(result);
      const out = o.out ?? result.replace(/\.(json|jsonl|ndjson)$/i, '') + '.html';
      let written;
      try {
        written = await writeReport(input, out, o.png);
      } catch (e) {
        // Name the file: the renderer only knows the field.
        if (e instanceof DataError && e.where.startsWith('$')) throw new DataError(`${result}: ${e.where}`, e.what);
        if (e instanceof DataError && e.where.startsWith('timeline')) throw new DataError(`${result}: $.${e.where}`, e.what);
        throw e;
      }
      if (o.json) process.stdout.write(JSON.stringify(written) + '\n');
      else process.stdout.write([`report: ${written.html}`, ...written.pngs.map((p) => `chart:  ${p}`)].join('\n') + '\n');
    });
}
