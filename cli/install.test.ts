/**
 * What an installed user runs: bin/clusterip-sim.js starts the compiled
 * command line (dist/cli/, built by `npm ci`) when it is current, and gives
 * the same answers as the TypeScript run through tsx; the shipped systemd
 * unit starts that same entry with node. (Start-up speed is a benchmark:
 * `npm run bench -- startup`, never a timed test.)
 */
import { describe, expect, it, beforeAll } from 'vitest';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { bundleFresh } from '../sim/engine/bundle.ts';
import { buildCli, CLI_BUNDLE } from './build.ts';
import { ether, ipv4, tcp, writePcap } from '../test/frames.ts';
import { testDir } from '../test/tmp.ts';

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

  it('simulate over a capture with selector flags loads no config, YAML, report, zlib or readline modules and no ICU data (start-up it does not need)', () => {
    const dir = testDir('clusterip-sim-startup-');
    const cap = writePcap(join(dir, 'small.pcap'), Array.from({ length: 40 }, (_, k) => ({
      ts: [1_700_000_000, k * 1000] as [number, number],
      data: ether(ipv4({ proto: 6, src: `10.0.${k % 7}.${k + 1}`, dst: '192.0.2.10' }, tcp(1024 + k, 80, 0x02)), 0x0800),
    })));
    // A preload that lists every module the run loads (a loader hook) and counts Intl number formatters made.
    const preload = join(dir, 'watch.mjs');
    writeFileSync(preload, `
import { register } from 'node:module';
register('data:text/javascript,' + encodeURIComponent('export async function load(url, ctx, next) { process._rawDebug("loaded: " + url); return next(url, ctx); }'));
let intl = 0;
const NF = Intl.NumberFormat, tl = Number.prototype.toLocaleString;
Intl.NumberFormat = function (...a) { intl++; return new NF(...a); };
Number.prototype.toLocaleString = function (...a) { intl++; return tl.apply(this, a); };
process.on('exit', () => { process._rawDebug('intl formatters: ' + intl); process._rawDebug('builtins: ' + process.moduleLoadList.join(',')); });
`);
    const r = spawnSync(process.execPath, ['--import', pathToFileURL(preload).href, BIN, 'simulate', '--pcap', cap, '--backend', 'clusterip', '--hashmode', 'sourceip-sourceport', '--total-nodes', '4', '--cluster-ip', '192.0.2.10', '--json'], { encoding: 'utf8', timeout: 120_000 });
    expect(r.status, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout).input.packets).toBe(40);
    const loaded = r.stderr.split('\n').filter((l) => l.startsWith('loaded: ')).map((l) => l.slice(8));
    expect(loaded.some((u) => u.includes('/dist/cli/simulate-')), 'the compiled simulate module ran').toBe(true);
    expect(loaded.filter((u) => /node_modules\/(zod|yaml|piscina)\//.test(u))).toEqual([]);
    // esbuild marks each source's part of a chunk with a comment naming the source.
    const sources = loaded.filter((u) => u.includes('/dist/cli/')).flatMap((u) => readFileSync(fileURLToPath(u), 'utf8').match(/^\/\/ \S+\.ts$/gm) ?? []);
    expect(sources).toContain('// sim/engine/run.ts');
    expect(sources.filter((s) => /cluster-config|yaml-input|reports\/(write|html|page)/.test(s))).toEqual([]);
    expect(r.stderr).toContain('intl formatters: 0');
    // Node's own modules that only a compressed capture, a CSV input or a shard's partial file needs.
    const builtins = /^builtins: (.*)$/m.exec(r.stderr)![1]!.split(',');
    expect(builtins).toContain('NativeModule fs');
    expect(builtins.filter((m) => /^NativeModule (zlib|readline)$/.test(m))).toEqual([]);
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
