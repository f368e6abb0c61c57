/**
 * Rate control on a veth link, measured by the test itself: the receiving
 * end's rx_packets counter, sampled from /proc/<pid>/net/dev of a process
 * living in the receiver's namespace, over the middle of a 2 s replay at
 * 20,000 packets/s must be within 5 % of the request, and nothing is lost.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cleanupStale, sh } from '../../test/netns-cluster.ts';

const PREFIX = 'cipsim-rate-';
const A = `${PREFIX}a`, B = `${PREFIX}b`;
const ROOT = join(import.meta.dirname, '..', '..');
let dir = '';
let holder: ChildProcess | null = null;

function rxPackets(pid: number, iface: string): number {
  const line = readFileSync(`/proc/${pid}/net/dev`, 'utf8').split('\n').find((l) => l.trim().startsWith(`${iface}:`));
  if (!line) throw new Error(`no ${iface} in /proc/${pid}/net/dev`);
  return Number(line.split(':')[1]!.trim().split(/\s+/)[1]);
}

beforeAll(() => {
  cleanupStale(PREFIX);
  dir = mkdtempSync(join(tmpdir(), PREFIX));
  for (const n of [A, B]) {
    sh(['ip', 'netns', 'add', n]);
    sh(['ip', 'netns', 'exec', n, 'sysctl', '-qw', 'net.ipv6.conf.all.disable_ipv6=1']);
    sh(['ip', 'netns', 'exec', n, 'sysctl', '-qw', 'net.ipv6.conf.default.disable_ipv6=1']);
  }
  sh(['ip', 'netns', 'exec', A, 'ip', 'link', 'add', 'a0', 'type', 'veth', 'peer', 'name', 'b0', 'netns', B]);
  sh(['ip', 'netns', 'exec', A, 'ip', 'link', 'set', 'a0', 'up']);
  sh(['ip', 'netns', 'exec', B, 'ip', 'link', 'set', 'b0', 'up']);
  holder = spawn('ip', ['netns', 'exec', B, 'sleep', '120'], { stdio: 'ignore' });
});

afterAll(() => {
  if (holder?.pid && holder.exitCode === null) try { process.kill(holder.pid, 'SIGKILL'); } catch { /* gone */ }
  cleanupStale(PREFIX);
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('replay rate control', () => {
  it('holds 20,000 packets/s within 5 % on a veth link for 2 s, losing nothing', async () => {
    const pcap = join(dir, 'mix.pcap');
    const g = spawnSync(process.execPath, ['--import', 'tsx', 'sim/cli/main.ts', 'gen', 'default', '--packets', '1000', '--out', pcap], { cwd: ROOT, encoding: 'utf8' });
    expect(g.status, g.stderr).toBe(0);
    const cfg = join(dir, 'c.yaml');
    writeFileSync(cfg, 'cluster:\n  ip: 10.202.0.100\n  backend: nft\n  total_nodes: 1\nnodes:\n  - { name: n, owns: [1] }\n');
    // wait until the holder process is inside B
    const pid = holder!.pid!;
    for (let i = 0; i < 100 && !readFileSync(`/proc/${pid}/net/dev`, 'utf8').includes('b0:'); i++) await new Promise((r) => setTimeout(r, 20));
    const rx0 = rxPackets(pid, 'b0');
    const total = 40_000, pps = 20_000;
    const child = spawn('ip', ['netns', 'exec', A, process.execPath, '--import', 'tsx', 'sim/cli/main.ts', 'replay', '--pcap', pcap, '--config', cfg, '--via', 'a0', '--pps', String(pps), '--loop', '40', '--json'], { cwd: ROOT });
    let out = '', err = '';
    child.stdout.on('data', (d: Buffer) => (out += d));
    child.stderr.on('data', (d: Buffer) => (err += d));
    const exited = new Promise<number>((r) => child.on('close', (c) => r(c ?? -1)));
    const samples: [number, number][] = [];
    let running = true;
    void exited.then(() => (running = false));
    const deadline = performance.now() + 30_000;
    while (running && performance.now() < deadline) {
      const n = rxPackets(pid, 'b0') - rx0;
      samples.push([performance.now(), n]);
      await new Promise((r) => setTimeout(r, 5));
    }
    const code = await exited;
    expect(code, err).toBe(0);
    await new Promise((r) => setTimeout(r, 100));
    expect(rxPackets(pid, 'b0') - rx0, 'every frame arrived').toBe(total);
    // The middle 80 %: from the first sample past 10 % to the last below 90 %.
    const a = samples.find(([, n]) => n >= total * 0.1)!;
    const b = [...samples].reverse().find(([, n]) => n <= total * 0.9)!;
    expect(a && b && b[0] - a[0] > 1000, `samples: ${samples.length}`).toBe(true);
    const measured = ((b[1] - a[1]) / (b[0] - a[0])) * 1000;
    process.stderr.write(`replay rate: requested ${pps}/s, measured at the receiver ${measured.toFixed(0)}/s over ${((b[0] - a[0]) / 1000).toFixed(2)} s\n`);
    expect(Math.abs(measured / pps - 1), `measured ${measured.toFixed(0)} packets/s`).toBeLessThan(0.05);
    const rep = JSON.parse(out) as { rate: { sent: { sent: number; pps: number }; achievedShare: number } };
    expect(rep.rate.sent.sent).toBe(total);
    expect(Math.abs(rep.rate.achievedShare - 1), `sender reports ${rep.rate.sent.pps.toFixed(0)} packets/s`).toBeLessThan(0.05);
  });
});
