/** Shell completion: the bash script completes commands, subcommands and options as registered. */
import { describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCli } from '../test/cli.ts';

describe('completion', () => {
  it('bash completes commands, subcommands and their options', async () => {
    const r = await runCli(['completion', 'bash']);
    expect(r.code, r.stderr).toBe(0);
    const dir = mkdtempSync(join(tmpdir(), 'cipsim-completion-'));
    try {
      const script = join(dir, 'c.bash');
      writeFileSync(script, r.stdout);
      /** What bash offers after these words (the last one being completed). */
      const complete = (...words: string[]): string[] => {
        const arr = ['clusterip-sim', ...words].map((w) => `'${w}'`).join(' ');
        const b = spawnSync('bash', ['-c', `source ${script}; COMP_WORDS=(${arr}); COMP_CWORD=${words.length}; _clusterip_sim; printf '%s\\n' "\${COMPREPLY[@]}"`], { encoding: 'utf8', cwd: dir });
        expect(b.status, b.stderr).toBe(0);
        return b.stdout.split('\n').filter(Boolean).sort();
      };
      expect(complete('sim')).toEqual(['simulate']);
      expect(complete('glue', 'ag')).toEqual(['agent']);
      expect(complete('glue', 'agent', '--health-')).toEqual(['--health-cmd', '--health-fails', '--health-interval']);
      expect(complete('simulate', '--max-')).toEqual(['--max-imbalance', '--max-migration']);
      expect(complete('tuples', '-')).toEqual(expect.arrayContaining(['-r', '-c', '-i', '--limit', '--json']));
      expect((await runCli(['completion', 'fish'])).code).toBe(2);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
