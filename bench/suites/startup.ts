/**
 * startup: how long a command takes to start, as a multiple of `node -e ''`
 * started the same way in the same rounds (the goal: `--help` and a one-tuple
 * `hash` within 3x). Each sample is one process through bash, which also
 * reports the CPU seconds the child used (`times`): CPU is what the command
 * itself costs, wall time is what a user waits for on a shared machine.
 * Runs the installed entry, bin/clusterip-sim.js, so it measures the compiled
 * command line when dist/ is current (`npm run build`) and tsx otherwise
 * (the case says which).
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { measureRounds, plan, ratioCase, summarize, type Suite } from '../harness/harness.ts';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const BIN = join(ROOT, 'bin', 'clusterip-sim.js');

/** bash's `times` line for its children: "0m0.110s 0m0.020s" (user, system). */
const parseTimes = (line: string): number => [...line.matchAll(/(\d+)m([\d.]+)s/g)].reduce((a, m) => a + Number(m[1]) * 60 + Number(m[2]), 0);

/** Runs argv once through bash; returns wall and child CPU seconds. Throws when it fails. */
function runOnce(argv: string[]): { wall: number; cpu: number } {
  const quoted = argv.map((a) => `'${a.replace(/'/g, `'\\''`)}'`).join(' ');
  const t0 = process.hrtime.bigint();
  const r = spawnSync('bash', ['-c', `${quoted} >/dev/null 2>&1 || exit 97; times`], { encoding: 'utf8', env: { ...process.env, CLUSTERIP_SIM_DEBUG: '' } });
  const wall = Number(process.hrtime.bigint() - t0) / 1e9;
  if (r.status !== 0) throw new Error(`${argv.join(' ')} failed (exit ${r.status})`);
  const lines = r.stdout.trim().split('\n');
  return { wall, cpu: parseTimes(lines[1] ?? '') };
}

export const startupSuite: Suite = {
  name: 'startup',
  description: "start-up of `--help` and a one-tuple `hash`, as a multiple of `node -e ''` (wall and CPU, same rounds)",
  async run(ctx) {
    const { repeats, warmup } = plan(ctx);
    const compiled = existsSync(join(ROOT, 'dist', 'cli', 'main.mjs'));
    const check = spawnSync(process.execPath, [BIN, '--version'], { encoding: 'utf8', env: { ...process.env, CLUSTERIP_SIM_DEBUG: '1' } });
    const via = check.stderr.includes('through tsx') || !compiled ? 'tsx (dist/ missing or stale: npm run build)' : 'compiled dist/';
    ctx.log(`startup: bin/clusterip-sim.js runs ${via}`);
    const node = [process.execPath, '-e', ''];
    const cases: [string, string[]][] = [
      ['--help', [process.execPath, BIN, '--help']],
      ['hash, one tuple', [process.execPath, BIN, 'hash', '--backend', 'clusterip', '--hashmode', 'sourceip-sourceport', '--total-nodes', '4', 'tcp', '10.1.2.3:4000', '192.0.2.10:80']],
    ];
    for (const [name, argv] of cases) {
      const cpu: number[][] = [[], []];
      const contenders = [argv, node].map((a, k) => ({ name: k ? 'node' : name, run: () => { const t = runOnce(a); cpu[k]!.push(t.cpu); return 1 / t.wall; } }));
      const [ours, ref] = measureRounds(contenders, ctx.quick ? repeats : Math.max(repeats, 5), warmup);
      const c = ratioCase('startup', `${name} (${via})`, ours!, ref!);
      const wallX = summarize(ref!.map((r, i) => r / ours![i]!)).median;
      const skip = cpu[0]!.length - ours!.length;
      const cpuX = summarize(cpu[0]!.slice(skip).map((x, i) => x / Math.max(cpu[1]![skip + i]!, 1e-3))).median;
      c.times_node_wall = wallX;
      c.times_node_cpu = cpuX;
      c.goal = 3;
      ctx.log(`startup: ${name}: ${wallX.toFixed(2)}x node's wall time, ${cpuX.toFixed(2)}x its CPU time (goal <= 3)`);
      ctx.emit(c);
    }
  },
};
