/**
 * What an installed user runs: bin/clusterip-sim.js starts the compiled
 * command line (dist/cli/, built by `npm ci`) when it is current, and gives
 * the same answers as the TypeScript run through tsx; the shipped systemd
 * unit starts that same entry with node. (Start-up speed is a benchmark:
 * `npm run bench -- startup`, never a timed test.)
 */
import { describe, expect, it, beforeAll } from 'vitest';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { bundleFresh } from '../sim/engine/bundle.ts';
import { buildCli, CLI_BUNDLE } from './build.ts';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const BIN = join(ROOT, 'bin', 'clusterip-sim.js');
const HASH = ['hash', '--backend', 'clusterip', '--hashmode', 'sourceip-sourceport', '--total-nodes', '5', 'tcp', '10.1.2.3:4000', '192.0.2.10:80'];

function run(args: string[], env: Record<string, string> = {}): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', env: { ...process.env, CLUSTERIP_SIM_DEBUG: '1', ...env }, timeout: 120_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe('the installed command line', () => {
  beforeAll(async () => {
    // `npm ci` built it; after an edit of any source it is stale and rebuilt here.
    if (!bundleFresh(CLI_BUNDLE)) await buildCli();
  }, 120_000);

  it('runs the compiled bundle when current, with the same answers as tsx', () => {
    expect(bundleFresh(CLI_BUNDLE)).toBe(true);
    const compiled = run(HASH);
    expect(compiled.code, compiled.stderr).toBe(0);
    expect(compiled.stderr).not.toContain('through tsx');
    const viaTsx = run(HASH, { CLUSTERIP_SIM_NO_BUNDLE: '1' });
    expect(viaTsx.code, viaTsx.stderr).toBe(0);
    expect(viaTsx.stderr).toContain('running the TypeScript through tsx: CLUSTERIP_SIM_NO_BUNDLE is set');
    expect(compiled.stdout).toBe(viaTsx.stdout);
    expect(compiled.stdout).toMatch(/^proto,saddr,sport,daddr,dport,node\n6,10\.1\.2\.3,4000,192\.0\.2\.10,80,[1-5]\n$/);
  }, 120_000);

  it('the overview lists every command with its summary; a command\'s help is its own', () => {
    const help = run(['--help']);
    expect(help.code).toBe(0);
    for (const c of ['simulate', 'failover', 'hash', 'tuples', 'gen', 'compare-schemes', 'glue', 'replay', 'report']) expect(help.stdout).toMatch(new RegExp(`^  ${c} `, 'm'));
    const hash = run(['help', 'hash']);
    expect(hash.code).toBe(0);
    expect(hash.stdout).toContain('--total-nodes');
    const typo = run(['hsah']);
    expect(typo.code).toBe(2);
    expect(typo.stderr).toContain('(Did you mean hash?)');
  }, 120_000);

  it('the shipped systemd unit starts the compiled entry with node, not npx', () => {
    const unit = readFileSync(join(ROOT, 'kernel-glue', 'examples', 'clusterip-agent.service'), 'utf8');
    const exec = /^ExecStart=(\S+) (\S+) (.*)$/m.exec(unit);
    expect(exec).not.toBeNull();
    expect(exec![1]).toBe('/usr/bin/node');
    expect(exec![2]).toBe('/opt/clusterip-sim/bin/clusterip-sim.js');
    expect(exec![3]).toMatch(/^glue agent --config \S+ --node %H/);
    expect(unit.split('\n').filter((l) => !l.startsWith('#')).join('\n')).not.toMatch(/npx|tsx/);
    // The options it passes are the agent's own.
    const agentHelp = run(['glue', 'agent', '--help']);
    for (const flag of exec![3]!.match(/--[a-z-]+/g)!) expect(agentHelp.stdout, flag).toContain(flag);
    expect(existsSync(BIN)).toBe(true);
  }, 120_000);
});
