/**
 * Per-run namespace names (issue 19: two runs side by side must not collide):
 * cleanupStale removes what a dead run left, never a live run's namespaces,
 * nor names it did not make.
 */
import { spawn } from 'node:child_process';
import { afterAll, describe, expect, it } from 'vitest';
import { cleanupStale, deleteNetns, listNetns, runPrefix, sh } from './netns-cluster.ts';

const BASE = 'cipsim-nsc-';
const STEM = 'cipsim-nsc';
afterAll(() => deleteNetns(listNetns(STEM)));

/** A pid that existed and is gone now: a child that has exited (bounded wait). */
async function deadPid(): Promise<number> {
  const p = spawn('true');
  await new Promise((r) => p.once('exit', r));
  return p.pid!;
}

describe('runPrefix and cleanupStale', () => {
  it('names carry this process id, and differ from the plain base', () => {
    expect(runPrefix(BASE)).toBe(`${STEM}.${process.pid}-`);
    expect(runPrefix(BASE).startsWith(BASE)).toBe(false);
  });

  it('removes a dead run\'s namespaces and keeps a live run\'s, this run\'s and foreign ones', async () => {
    const live = spawn('sleep', ['120'], { stdio: 'ignore' });
    try {
      const dead = await deadPid();
      const names = [`${STEM}.${dead}-n1`, `${STEM}.${dead}-br`, `${STEM}.${live.pid}-n1`, `${runPrefix(BASE)}n1`, `${STEM}-n1`, `${STEM}.x-n1`];
      for (const n of names) sh(['ip', 'netns', 'add', n]);
      cleanupStale(BASE);
      expect(listNetns(STEM).sort()).toEqual(names.slice(2).sort());
      cleanupStale(runPrefix(BASE));
      expect(listNetns(STEM).sort()).toEqual(names.slice(2).sort());
    } finally {
      live.kill('SIGKILL');
    }
    await new Promise((r) => (live.exitCode !== null || live.signalCode !== null ? r(null) : live.once('exit', r)));
    cleanupStale(BASE);
    expect(listNetns(STEM).sort()).toEqual([`${runPrefix(BASE)}n1`, `${STEM}-n1`, `${STEM}.x-n1`].sort());
  });
});
