/**
 * `npm run bench [-- SUITE...] [--json] [--quick]`: runs benchmark suites and
 * prints one JSON line per case (with --json) or a table.
 */
import { mkdirSync } from 'node:fs';
import { resolve } from 'node:path';
import { SUITES } from './suites/index.ts';
import type { BenchCase } from './harness.ts';

const args = process.argv.slice(2);
const json = args.includes('--json');
const quick = args.includes('--quick');
const names = args.filter((a) => !a.startsWith('--'));
const unknown = names.filter((n) => !SUITES.some((s) => s.name === n));
if (unknown.length) {
  process.stderr.write(`unknown suite(s): ${unknown.join(', ')}; available: ${SUITES.map((s) => s.name).join(', ')}\n`);
  process.exit(2);
}
const chosen = names.length ? SUITES.filter((s) => names.includes(s.name)) : SUITES;
const workDir = resolve('out/bench');
mkdirSync(workDir, { recursive: true });
const results: BenchCase[] = [];
for (const suite of chosen) {
  await suite.run({
    quick,
    workDir,
    log: (m) => void process.stderr.write(`[${suite.name}] ${m}\n`),
    emit: (c) => {
      results.push(c);
      if (json) process.stdout.write(JSON.stringify(c) + '\n');
      else process.stdout.write(`${c.suite.padEnd(10)} ${c.case.padEnd(40)} ${c.ops_per_s.toExponential(3)} ops/s${c.ratio !== undefined ? `  ratio ${c.ratio.toFixed(2)}` : ''}\n`);
    },
  });
}
