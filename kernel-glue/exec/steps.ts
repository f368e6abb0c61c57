/**
 * Executes plans on a runner, step by step, stopping at the first failure
 * with an error that names the host and the command. A dry run evaluates the
 * read-only guards (`unless`, `onlyIf`) for real and only reports the actions.
 */
import { DataError } from '../../sim/core/errors.ts';
import { describeStep, isRun, isWrite, shellJoin, type Plan, type Step } from '../plan.ts';
import type { Runner } from './runner.ts';

/** A command failed on a host: exit 1, naming host, place and command. */
export class StepError extends DataError {
  constructor(readonly host: string, readonly place: string, readonly command: string, readonly code: number, readonly stderr: string) {
    const hint = code === 255 && place.startsWith('ssh') ? ' (ssh could not connect or log in: BatchMode never prompts; check identity, known_hosts and that sshd runs)' : code === 127 ? ' (command not found on that host)' : '';
    super(`${host} (${place})`, `'${command}' failed (exit ${code})${hint}${stderr.trim() ? `: ${stderr.trim().split('\n').slice(-3).join(' | ')}` : ''}`);
  }
}

export interface StepLog {
  step: string;
  /** ran, skipped (guard said so), would-run (dry run). */
  outcome: 'ran' | 'skipped' | 'would-run';
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Runs argv and throws StepError unless it exits 0; returns stdout. */
export async function mustRun(r: Runner, argv: readonly string[], stdin?: string): Promise<string> {
  const res = await r.run(argv, stdin);
  if (res.code !== 0) throw new StepError(r.host, r.where, shellJoin(argv), res.code, res.stderr || res.stdout);
  return res.stdout;
}

/** Reads a file on the host; null when it does not exist (or cannot be read). */
export async function readFileOn(r: Runner, path: string): Promise<string | null> {
  const res = await r.run(['cat', path]);
  return res.code === 0 ? res.stdout : null;
}

export async function runStep(r: Runner, s: Step, dryRun = false): Promise<StepLog> {
  const step = describeStep(s);
  if (isRun(s)) {
    if (s.unless && (await r.run(s.unless)).code === 0) return { step, outcome: 'skipped' };
    if (s.onlyIf && (await r.run(s.onlyIf)).code !== 0) return { step, outcome: 'skipped' };
    if (dryRun) return { step, outcome: 'would-run' };
    await mustRun(r, s.argv, s.stdin);
    return { step, outcome: 'ran' };
  }
  if (dryRun) return { step, outcome: 'would-run' };
  if (isWrite(s)) {
    // tee writes its stdin in one write(2); /proc/net/ipt_CLUSTERIP answers each write on its own.
    const res = await r.run(['tee', s.write], s.data);
    if (res.code !== 0) throw new StepError(r.host, r.where, `write ${JSON.stringify(s.data)} > ${s.write}`, res.code, res.stderr);
    return { step, outcome: 'ran' };
  }
  const deadline = Date.now() + s.timeoutMs;
  for (;;) {
    const res = await r.run(['test', '-e', s.waitAbsent]);
    if (res.code === 1) return { step, outcome: 'ran' };
    if (res.code !== 0) throw new StepError(r.host, r.where, `test -e ${s.waitAbsent}`, res.code, res.stderr);
    if (Date.now() > deadline) throw new StepError(r.host, r.where, `wait for ${s.waitAbsent} to disappear`, 1, `still there after ${s.timeoutMs} ms`);
    await sleep(50);
  }
}

/** Runs every step in order; throws StepError (with `done` holding what already ran) at the first failure. */
export async function runPlan(r: Runner, p: Plan, dryRun = false, log: StepLog[] = []): Promise<StepLog[]> {
  for (const s of p.steps) log.push(await runStep(r, s, dryRun));
  return log;
}
