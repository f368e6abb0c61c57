/** `doctor`: every optional part is reported, with a way to get it when missing, and the answers are this machine's. */
import { describe, expect, it } from 'vitest';
import { createRequire } from 'node:module';
import { existsSync } from 'node:fs';
import { runCli } from '../test/cli.ts';
import type { Check } from './doctor-checks.ts';

const checks = async (): Promise<Check[]> => {
  const r = await runCli(['doctor', '--json']);
  expect(r.code, r.stderr).toBe(0);
  return (JSON.parse(r.stdout) as { checks: Check[] }).checks;
};

describe('doctor', () => {
  it('reports live capture, PNG export, qemu and the kernel parts as they are here', async () => {
    const cs = await checks();
    for (const c of cs) {
      expect(c.found, c.part).not.toBe('');
      if (!c.ok) expect(c.fix, c.part).toBeTruthy();
    }
    const byPart = (s: string): Check => cs.find((c) => c.part.includes(s))!;
    let capLoads = true;
    try { createRequire(import.meta.url)('cap'); } catch { capLoads = false; }
    expect(byPart('live capture').ok).toBe(capLoads);
    expect(byPart('PNG export').ok).toBe(existsSync(process.env.CLUSTERIP_SIM_CHROMIUM ?? '/usr/bin/chromium'));
    for (const p of ['qemu', 'nftables jhash', 'cluster match', 'CLUSTERIP target', 'compiled command line']) expect(byPart(p), p).toBeDefined();
  });

  it('a missing part says how to get it, in the terminal form too', async () => {
    const saved = process.env.CLUSTERIP_SIM_CHROMIUM;
    process.env.CLUSTERIP_SIM_CHROMIUM = '/nonexistent/chromium';
    try {
      const png = (await checks()).find((c) => c.part.includes('PNG export'))!;
      expect(png).toMatchObject({ ok: false, found: 'no /nonexistent/chromium' });
      expect(png.fix).toMatch(/apt-get install chromium/);
      const t = await runCli(['doctor']);
      expect(t.stdout).toMatch(/^MISSING {2}PNG export .* no \/nonexistent\/chromium\n +how: apt-get install chromium/m);
      expect(t.stdout).toMatch(/optional parts? missing/);
    } finally {
      if (saved === undefined) delete process.env.CLUSTERIP_SIM_CHROMIUM; else process.env.CLUSTERIP_SIM_CHROMIUM = saved;
    }
  });
});
