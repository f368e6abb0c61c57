import { describe, expect, it } from 'vitest';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { planToShellScript, shellQuote, formatPlan, type Plan } from './plan.ts';

const NASTY = ["it's", '$HOME', '`id`', 'a b', '"q"', '\\n', 'x;rm -rf /', '', '*', 'line1\nline2', '$(echo pwned)'];

describe('shellQuote', () => {
  it('leaves plain words alone and quotes everything the shell would interpret', () => {
    expect(shellQuote('iptables-legacy')).toBe('iptables-legacy');
    expect(shellQuote('10.0.0.1/32')).toBe('10.0.0.1/32');
    expect(shellQuote('a b')).toBe("'a b'");
    expect(shellQuote("it's")).toBe("'it'\\''s'");
    expect(shellQuote('')).toBe("''");
    expect(shellQuote('$x')).toBe("'$x'");
  });
});

describe('planToShellScript', () => {
  const shells = ['/bin/sh', '/bin/busybox'].filter((s) => existsSync(s));
  it.each(shells)('round-trips argv, stdin and /proc-style writes exactly through %s', (sh) => {
    const dir = mkdtempSync(join(tmpdir(), 'glue-script-'));
    try {
      const target = join(dir, "we'ird file");
      const stdin = "*mangle\n-A X -m comment --comment \"it's $HOME `id`\"\nCOMMIT\n";
      const plan: Plan = {
        host: "node'1",
        where: 'local',
        backend: 'clusterip',
        notes: ['a note\nwith a newline'],
        steps: [
          { argv: ['printf', '<%s>\\n', ...NASTY], why: 'args' },
          { argv: ['cat'], stdin, why: 'stdin' },
          { write: target, data: '+3', why: 'write' },
          { argv: ['echo', 'skipped'], unless: ['true'], why: 'unless true' },
          { argv: ['echo', 'ran-unless'], unless: ['false'], why: 'unless false' },
          { argv: ['echo', 'ran-onlyif'], onlyIf: ['test', '-e', target], why: 'only if present' },
          { waitAbsent: join(dir, 'never-there'), timeoutMs: 200, why: 'wait' },
        ],
      };
      const script = planToShellScript(plan);
      const args = sh.endsWith('busybox') ? ['sh', '-c', script] : ['-c', script];
      const outText = execFileSync(sh, args, { encoding: 'utf8' });
      const expected = NASTY.map((a) => `<${a}>\n`).join('') + stdin + 'ran-unless\nran-onlyif\n';
      expect(outText).toBe(expected);
      expect(readFileSync(target, 'utf8')).toBe('+3');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('fails the script (set -e) when a step fails, and times out bounded waits', () => {
    const dir = mkdtempSync(join(tmpdir(), 'glue-script-'));
    try {
      const plan: Plan = { host: 'n', where: 'local', backend: 'nft', notes: [], steps: [{ waitAbsent: dir, timeoutMs: 100, why: 'w' }, { argv: ['echo', 'not reached'], why: 'x' }] };
      let code = 0, stderr = '';
      try {
        execFileSync('/bin/sh', ['-c', planToShellScript(plan)], { encoding: 'utf8', stdio: 'pipe' });
      } catch (e) {
        code = (e as { status: number }).status;
        stderr = String((e as { stderr: string }).stderr);
      }
      expect(code).toBe(1);
      expect(stderr).toContain('timeout waiting for');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('formatPlan shows every step, why, and its stdin', () => {
    const t = formatPlan({ host: 'h', where: 'netns x', backend: 'nft', notes: ['n1'], steps: [{ argv: ['nft', '-f', '-'], stdin: 'table ip t {}\n', why: 'because' }] });
    expect(t).toContain('1. nft -f - <<EOF');
    expect(t).toContain('# because');
    expect(t).toContain('| table ip t {}');
    expect(t).toContain('note: n1');
  });
});
