/**
 * Errors and warnings a user meets, the same in every command: a missing file
 * exits 1 everywhere, a worker count far above the cores is capped with a
 * warning, and surprising results come with a word why (replies hashed for want
 * of a cluster IP, scripted events after the traffic ended).
 */
import { describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCli } from '../test/cli.ts';
import type { FailoverResult, SimulateResult } from '../sim/core/result.ts';
import { maxWorkers } from './workers.ts';

describe('errors and warnings', () => {
  it('a missing input file exits 1 (bad input) in every command that reads one', async () => {
    const missing = join(tmpdir(), 'cipsim-errors-no-such-file.pcap');
    const runs = [
      ['simulate', '--pcap', missing],
      ['simulate', '--csv', missing],
      ['failover', '--pcap', missing],
      ['tuples', missing],
      ['hash', '--backend', 'clusterip', '--hashmode', 'sourceip', '--total-nodes', '2', '--input', missing],
      ['report', missing],
      ['simulate', '--config', missing],
    ];
    for (const args of runs) {
      const r = await runCli(args);
      expect(r.code, `${args.join(' ')}: ${r.stderr}`).toBe(1);
      expect(r.stderr, args.join(' ')).toContain('cipsim-errors-no-such-file.pcap');
      expect(r.stdout, args.join(' ')).toBe('');
    }
  });

  it('--workers far above the cores is capped with a warning; a non-number is a usage error', async () => {
    const many = String(maxWorkers() + 100);
    const r = await runCli(['simulate', '--packets', '2000', '--workers', many, '--json']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toContain(`warning: --workers ${many} is far above this machine's ${availableParallelism()} cores: using ${maxWorkers()}`);
    expect((JSON.parse(r.stdout) as SimulateResult).run.workers).toBeLessThanOrEqual(maxWorkers());
    expect((await runCli(['simulate', '--workers', 'lots'])).code).toBe(2);
    expect((await runCli(['failover', '--workers', '1.5'])).code).toBe(2);
  });

  it('simulate on a capture without a cluster IP warns that replies are hashed too, in the terminal and the JSON', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'cipsim-errors-'));
    try {
      const csv = join(dir, 'f.csv');
      writeFileSync(csv, 'proto,saddr,sport,daddr,dport\n6,10.0.0.1,1000,192.0.2.10,80\n6,192.0.2.10,80,10.0.0.1,1000\n');
      const args = ['simulate', '--csv', csv, '--backend', 'clusterip', '--hashmode', 'sourceip', '--total-nodes', '2', '--workers', '0', '--json'];
      const without = await runCli(args);
      expect(without.code, without.stderr).toBe(0);
      expect(without.stderr).toMatch(/warning: no --cluster-ip .* the servers' replies too/);
      expect((JSON.parse(without.stdout) as SimulateResult).warnings?.[0]).toMatch(/no --cluster-ip/);
      // A bad row: hash --json prints no half document; the CSV form keeps its rows and says how far it got.
      writeFileSync(join(dir, 'bad.csv'), 'proto,saddr,sport,daddr,dport\n6,10.0.0.1,1000,192.0.2.10,80\n6,10.0.0.999,1,192.0.2.10,80\n');
      const sel = ['hash', '--backend', 'clusterip', '--hashmode', 'sourceip', '--total-nodes', '2', '--input', join(dir, 'bad.csv')];
      const hj = await runCli([...sel, '--json']);
      expect(hj.code).toBe(1);
      expect(hj.stdout).toBe('');
      expect(hj.stderr).toMatch(/bad\.csv:3: field saddr/);
      const hc = await runCli(sel);
      expect(hc.code).toBe(1);
      expect(hc.stderr).toMatch(/bad\.csv:3: .*complete up to there: 0 tuples/);
      const withIp = await runCli([...args, '--cluster-ip', '192.0.2.10']);
      expect(withIp.stderr).not.toContain('warning');
      expect((JSON.parse(withIp.stdout) as SimulateResult).warnings).toBeUndefined();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('failover whose events fall after the traffic says so; synthetic traffic is described by its packets', async () => {
    const r = await runCli(['failover', '--synthetic', 'default', '--packets', '3000', '--workers', '0']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).not.toContain('undefined');
    expect(r.stdout).toMatch(/Traffic: {2}synthetic \('default', 3000 packets, seed \d+\)/);
    expect(r.stderr).toMatch(/warning: the traffic ends at [\d.]+ s but every scripted event at 20 s, 40 s comes after it/);
    const j = await runCli(['failover', '--synthetic', 'default', '--packets', '3000', '--workers', '0', '--json']);
    expect((JSON.parse(j.stdout) as FailoverResult).warnings?.[0]).toMatch(/traffic ends at/);
    // The built-in run's traffic covers its events: no warning.
    const ok = await runCli(['failover', '--flows', '300', '--workers', '0']);
    expect(ok.code, ok.stderr).toBe(0);
    expect(ok.stderr).not.toContain('warning');
  });
});
