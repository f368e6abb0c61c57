/**
 * Plans: what kernel-glue will do on one host, as plain data.
 *
 * A plan is a list of steps, each an argv array (never a shell string built
 * from config values), a file write (/proc and /proc/sys), or a bounded wait
 * for a /proc entry to disappear. Being data, a plan can be printed (`glue
 * plan`), compared, executed locally, inside a network namespace, over ssh,
 * or turned into a POSIX sh script for a busybox guest (the qemu CLUSTERIP
 * harness) by `planToShellScript`.
 */
import type { Backend } from '../sim/select/selector.ts';

/** Run a program. `unless`: skip when this probe succeeds; `onlyIf`: run only when this probe succeeds. */
export interface RunStep {
  argv: string[];
  /** Fed to the program's standard input (rulesets for `nft -f -`, `iptables-legacy-restore`). */
  stdin?: string;
  unless?: string[];
  onlyIf?: string[];
  /** One line: why this step exists (shown by `glue plan`, a comment in scripts). */
  why: string;
}

/** Write `data` to a file in one write(2) (the /proc/net/ipt_CLUSTERIP protocol needs exactly that). */
export interface WriteStep {
  write: string;
  data: string;
  why: string;
}

/** Poll (bounded) until a path no longer exists: CLUSTERIP's /proc entry after its last rule is gone (§4.6). */
export interface WaitAbsentStep {
  waitAbsent: string;
  timeoutMs: number;
  why: string;
}

export type Step = RunStep | WriteStep | WaitAbsentStep;

export interface Plan {
  /** The node name from the config. */
  host: string;
  /** Where the node is reached: "local", "netns ns1", "ssh root@h". */
  where: string;
  backend: Backend;
  /** Human notes and warnings that belong to this plan (not executed). */
  notes: string[];
  steps: Step[];
}

export const isRun = (s: Step): s is RunStep => 'argv' in s;
export const isWrite = (s: Step): s is WriteStep => 'write' in s;
export const isWait = (s: Step): s is WaitAbsentStep => 'waitAbsent' in s;

const SAFE_WORD = /^[A-Za-z0-9_@%+=:,./-]+$/;

/** POSIX sh quoting: a word the shell reads back as exactly `s` (no expansion of any kind). */
export function shellQuote(s: string): string {
  if (s !== '' && SAFE_WORD.test(s)) return s;
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

export function shellJoin(argv: readonly string[]): string {
  return argv.map(shellQuote).join(' ');
}

/** One line for humans (stdin shown as a here-document marker; the text follows in `formatPlan`). */
export function describeStep(s: Step): string {
  if (isRun(s)) {
    let t = shellJoin(s.argv);
    if (s.stdin !== undefined) t += ' <<EOF';
    if (s.unless) t += `   # unless: ${shellJoin(s.unless)}`;
    if (s.onlyIf) t += `   # only if: ${shellJoin(s.onlyIf)}`;
    return t;
  }
  if (isWrite(s)) return `write ${JSON.stringify(s.data)} > ${s.write}`;
  return `wait until ${s.waitAbsent} is gone (at most ${s.timeoutMs} ms)`;
}

/** The whole plan as readable text: each step, why, and its stdin. */
export function formatPlan(p: Plan): string {
  const out: string[] = [`# ${p.host} (${p.where}), backend ${p.backend}: ${p.steps.length} step${p.steps.length === 1 ? '' : 's'}`];
  for (const n of p.notes) out.push(`#   note: ${n}`);
  p.steps.forEach((s, i) => {
    out.push(`  ${i + 1}. ${describeStep(s)}`);
    out.push(`     # ${s.why}`);
    if (isRun(s) && s.stdin !== undefined) {
      for (const line of s.stdin.replace(/\n$/, '').split('\n')) out.push(`       | ${line}`);
    }
  });
  return out.join('\n');
}

/**
 * A POSIX sh script that performs the plan (busybox ash compatible): `set -eu`,
 * every argument single-quoted where needed, stdin fed by `printf '%s'` of a
 * quoted word (no here-document delimiter can collide with the content),
 * /proc writes as one `printf` into the file, waits as bounded loops.
 */
export function planToShellScript(p: Plan): string {
  const out: string[] = [
    '#!/bin/sh',
    `# clusterip-sim glue plan for ${p.host.replace(/[\r\n]/g, ' ')} (${p.backend}), generated; do not edit.`,
    ...p.notes.map((n) => `# note: ${n.replace(/[\r\n]/g, ' ')}`),
    'set -eu',
  ];
  for (const s of p.steps) {
    out.push(`# ${s.why.replace(/[\r\n]/g, ' ')}`);
    if (isRun(s)) {
      let cmd = shellJoin(s.argv);
      if (s.stdin !== undefined) cmd = `printf '%s' ${shellQuote(s.stdin)} | ${cmd}`;
      if (s.unless) cmd = `if ! ${shellJoin(s.unless)} >/dev/null 2>&1; then ${cmd}; fi`;
      if (s.onlyIf) cmd = `if ${shellJoin(s.onlyIf)} >/dev/null 2>&1; then ${cmd}; fi`;
      out.push(cmd);
    } else if (isWrite(s)) {
      out.push(`printf '%s' ${shellQuote(s.data)} > ${shellQuote(s.write)}`);
    } else {
      const rounds = Math.max(1, Math.ceil(s.timeoutMs / 50));
      out.push(
        `i=0; while [ -e ${shellQuote(s.waitAbsent)} ]; do i=$((i+1)); if [ "$i" -gt ${rounds} ]; then echo ${shellQuote(`timeout waiting for ${s.waitAbsent} to disappear`)} >&2; exit 1; fi; sleep 0.05; done`,
      );
    }
  }
  out.push('');
  return out.join('\n');
}
