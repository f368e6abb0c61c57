/**
 * `simulate --live IFACE --duration S` in network namespaces: UDP datagrams
 * the test sends from one end of a veth pair (30 source ports, known tuples)
 * are captured on the other end through the same live source `tuples --live`
 * uses, and the per-node counts equal `simulate --csv` of the tuples the test
 * sent (written by the test itself). Needs root and the optional `cap` package.
 */
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, readdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cleanupStale, deleteNetns, runPrefix } from '../test/netns-cluster.ts';
import { fileDir } from '../test/tmp.ts';
import { runCli } from '../test/cli.ts';
import type { SimulateResult } from '../sim/core/result.ts';

const PREFIX = runPrefix('cipsim-slive-');
const A = `${PREFIX}a`, B = `${PREFIX}b`;
const ROOT = resolve(import.meta.dirname, '..');
const SEL = ['--backend', 'nft', '--nft', 'jhash ip saddr . th sport mod 3 seed 0x5 offset 1', '--cluster-ip', '10.79.0.2'];
const SPORTS = Array.from({ length: 30 }, (_, i) => 41000 + i * 7);
const dir = fileDir('cipsim-slive-');
const ns = (n: string, ...a: string[]): string => execFileSync('ip', ['netns', 'exec', n, ...a], { encoding: 'utf8', timeout: 30_000 });

beforeAll(() => {
  cleanupStale(PREFIX);
  for (const n of [A, B]) execFileSync('ip', ['netns', 'add', n]);
  execFileSync('ip', ['link', 'add', 'sA', 'netns', A, 'type', 'veth', 'peer', 'name', 'sB', 'netns', B]);
  for (const [n, dev, me] of [[A, 'sA', 1], [B, 'sB', 2]] as const) {
    ns(n, 'ip', 'link', 'set', dev, 'up');
    ns(n, 'ip', 'addr', 'add', `10.79.0.${me}/24`, 'dev', dev);
  }
});
afterAll(() => deleteNetns([A, B]));

describe('simulate --live', () => {
  it('counts per node what the same tuples give from a CSV file, and leaves no temporary directory', async () => {
    const tmp = join(dir, 'tmp');
    execFileSync('mkdir', ['-p', tmp]);
    const p = spawn('ip', ['netns', 'exec', B, process.execPath, join(ROOT, 'bin/clusterip-sim.js'), 'simulate', '--live', 'sB', '--filter', 'udp', '--duration', '4', ...SEL, '--json'],
      { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, TMPDIR: tmp } });
    let out = '', err = '';
    p.stdout.on('data', (d: Buffer) => { out += d.toString(); });
    p.stderr.on('data', (d: Buffer) => { err += d.toString(); });
    const ended = new Promise<number | null>((r) => p.once('exit', r));
    // "capturing on" is printed once libpcap has the interface open (bounded: 300 x 100 ms).
    for (let k = 0; k < 300 && !err.includes('capturing on') && p.exitCode === null; k++) await new Promise((r) => setTimeout(r, 100));
    expect(err).toContain('capturing on sB');
    const send = `const d=require('dgram');(async()=>{for(const sp of ${JSON.stringify(SPORTS)}){await new Promise(r=>{const u=d.createSocket('udp4');u.bind(sp,'10.79.0.1',()=>u.send(Buffer.alloc(100,1),9,'10.79.0.2',()=>{u.close();r()}))})}})()`;
    ns(A, process.execPath, '-e', send);
    const code = await ended;
    expect(code, err).toBe(0);
    const live = JSON.parse(out) as SimulateResult;
    expect(live.input.kind).toBe('live');
    expect(live.input.packets).toBe(SPORTS.length);

    const csv = join(dir, 'sent.csv');
    writeFileSync(csv, 'proto,saddr,sport,daddr,dport\n' + SPORTS.map((sp) => `17,10.79.0.1,${sp},10.79.0.2,9`).join('\n') + '\n');
    const file = await runCli(['simulate', '--csv', csv, ...SEL, '--json']);
    expect(file.code, file.stderr).toBe(0);
    const want = (JSON.parse(file.stdout) as SimulateResult).configs[0]!.nodes.map((n) => [n.node, n.packets]);
    expect(want.reduce((s, [, n]) => s + n!, 0)).toBe(SPORTS.length);
    expect(live.configs[0]!.nodes.map((n) => [n.node, n.packets])).toEqual(want);
    expect(existsSync(tmp) && readdirSync(tmp).filter((d) => !/^tsx-\d+$/.test(d))).toEqual([]);
  });

  it('refuses --duration without --live, and --live with another input', async () => {
    expect((await runCli(['simulate', '--duration', '3', ...SEL])).stderr).toMatch(/--duration and --filter go with --live/);
    expect((await runCli(['simulate', '--live', 'sB', '--synthetic', 'default', ...SEL])).stderr).toMatch(/got --live and --synthetic/);
  });
});
