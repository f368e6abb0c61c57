/**
 * Rate control on a veth link, measured by the test itself: the receiving
 * end's rx_packets counter, sampled from /proc/<pid>/net/dev of a process
 * living in the receiver's namespace, over the middle of a 2 s replay at
 * 20,000 packets/s must be within 5 % of the request, and nothing is lost;
 * the same for 40 Mbit/s (bytes) and for the capture's own timing x4.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cleanupStale, deleteNetns, sh, runPrefix } from '../../test/netns-cluster.ts';
import { sendFrames } from './sender.ts';
import type { Rewritten } from './rewrite.ts';

const PREFIX = runPrefix('cipsim-rate-');
const A = `${PREFIX}a`, B = `${PREFIX}b`;
const ROOT = join(import.meta.dirname, '..', '..');
let dir = '';
let holder: ChildProcess | null = null;


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
  deleteNetns([A, B]);
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** rx packets and bytes of b0, read from the holder's /proc/<pid>/net/dev (no process spawned per sample). */
function rx(pid: number): [number, number] {
  const line = readFileSync(`/proc/${pid}/net/dev`, 'utf8').split('\n').find((l) => l.trim().startsWith('b0:'))!;
  const f = line.split(':')[1]!.trim().split(/\s+/);
  return [Number(f[1]), Number(f[0])];
}

interface Run { samples: [number, number, number][]; report: { rate: { sent: { sent: number; bytes: number; pps: number; mbps: number }; achievedShare: number } }; rx: [number, number] }

/** Runs one replay from A while sampling the receiver every ~5 ms. */
async function measuredReplay(args: string[]): Promise<Run> {
  const pid = holder!.pid!;
  for (let i = 0; i < 100 && !readFileSync(`/proc/${pid}/net/dev`, 'utf8').includes('b0:'); i++) await new Promise((r) => setTimeout(r, 20));
  const [p0, b0] = rx(pid);
  const child = spawn('ip', ['netns', 'exec', A, process.execPath, '--import', 'tsx', 'cli/main.ts', 'replay', '--pcap', pcap, '--config', cfg, '--via', 'a0', '--json', ...args], { cwd: ROOT });
  let out = '', err = '';
  child.stdout.on('data', (d: Buffer) => (out += d));
  child.stderr.on('data', (d: Buffer) => (err += d));
  const exited = new Promise<number>((r) => child.on('close', (c) => r(c ?? -1)));
  const samples: [number, number, number][] = [];
  let running = true;
  void exited.then(() => (running = false));
  const deadline = performance.now() + 30_000;
  while (running && performance.now() < deadline) {
    const [p, b] = rx(pid);
    samples.push([performance.now(), p - p0, b - b0]);
    await new Promise((r) => setTimeout(r, 5));
  }
  const code = await exited;
  expect(code, err).toBe(0);
  await new Promise((r) => setTimeout(r, 100));
  const [p1, b1] = rx(pid);
  return { samples, report: JSON.parse(out) as Run['report'], rx: [p1 - p0, b1 - b0] };
}

/** Rate over the middle 80 % of the packets (lane 1 = packets, 2 = bytes), per second. */
function middleRate(run: Run, total: number, lane: 1 | 2): { rate: number; seconds: number } {
  const a = run.samples.find((x) => x[1] >= total * 0.1)!;
  const b = [...run.samples].reverse().find((x) => x[1] <= total * 0.9)!;
  expect(a && b && b[0] - a[0] > 500, `samples: ${run.samples.length}`).toBe(true);
  return { rate: ((b[lane] - a[lane]) / (b[0] - a[0])) * 1000, seconds: (b[0] - a[0]) / 1000 };
}

let pcap = '', cfg = '';

describe('replay rate control', () => {
  beforeAll(() => {
    pcap = join(dir, 'mix.pcap');
    const g = spawnSync(process.execPath, ['--import', 'tsx', 'cli/main.ts', 'gen', 'default', '--packets', '1000', '--out', pcap], { cwd: ROOT, encoding: 'utf8' });
    expect(g.status, g.stderr).toBe(0);
    cfg = join(dir, 'c.yaml');
    writeFileSync(cfg, 'cluster:\n  ip: 10.202.0.100\n  backend: nft\n  total_nodes: 1\nnodes:\n  - { name: n, owns: [1] }\n');
  });

  it('holds 20,000 packets/s within 5 % on a veth link for 2 s, losing nothing', async () => {
    const total = 40_000, pps = 20_000;
    const run = await measuredReplay(['--pps', String(pps), '--loop', '40']);
    expect(run.rx[0], 'every frame arrived').toBe(total);
    const m = middleRate(run, total, 1);
    process.stderr.write(`replay rate: requested ${pps}/s, measured at the receiver ${m.rate.toFixed(0)}/s over ${m.seconds.toFixed(2)} s\n`);
    expect(Math.abs(m.rate / pps - 1), `measured ${m.rate.toFixed(0)} packets/s`).toBeLessThan(0.05);
    expect(run.report.rate.sent.sent).toBe(total);
    expect(Math.abs(run.report.rate.achievedShare - 1), `sender reports ${run.report.rate.sent.pps.toFixed(0)} packets/s`).toBeLessThan(0.05);
  });

  it('holds 40 Mbit/s within 5 % (frame bytes at the receiver)', async () => {
    const run = await measuredReplay(['--mbps', '40', '--loop', '8']);
    const total = 8000;
    expect(run.rx[0]).toBe(total);
    const m = middleRate(run, total, 2);
    const mbps = (m.rate * 8) / 1e6;
    process.stderr.write(`replay rate: requested 40 Mbit/s, measured at the receiver ${mbps.toFixed(2)} Mbit/s over ${m.seconds.toFixed(2)} s\n`);
    expect(Math.abs(mbps / 40 - 1)).toBeLessThan(0.05);
    expect(Math.abs(run.report.rate.achievedShare - 1)).toBeLessThan(0.05);
  });

  it('reports frames sent while it sends (what replay\'s progress bar shows), never going back, ending at most at the total', async () => {
    // 200 blank 60-byte frames x 5 loops at 2,000/s: about half a second, so the first report
    // (the sender reports at once, then every 100 ms) always comes, whatever the load.
    const n = 200, len = 60, loops = 5;
    const rw = { bytes: new Uint8Array(n * len), start: Uint32Array.from({ length: n }, (_, i) => i * len), len: new Uint32Array(n).fill(len), ts: new Float64Array(n), count: n } as unknown as Rewritten;
    const seen: number[] = [];
    const r = await sendFrames(rw, { iface: 'a0', rate: { mode: 'pps', value: 2000 }, loops, prefix: ['ip', 'netns', 'exec', A], onProgress: (k) => seen.push(k) });
    expect(r.sent).toBe(n * loops);
    expect(seen.length).toBeGreaterThan(0);
    for (let i = 1; i < seen.length; i++) expect(seen[i]!).toBeGreaterThanOrEqual(seen[i - 1]!);
    expect(seen.at(-1)!).toBeLessThanOrEqual(n * loops);
  });

  it("--multiplier 4 plays the capture's own timing 4x faster", async () => {
    const run = await measuredReplay(['--multiplier', '4']);
    const first = run.samples.find((x) => x[1] >= 1)!, last = run.samples.find((x) => x[1] >= 1000)!;
    const span = spawnSync('capinfos', ['-u', '-M', pcap], { encoding: 'utf8' }).stdout.match(/duration:\s+([\d.]+)/)![1]!;
    const want = Number(span) / 4, got = (last[0] - first[0]) / 1000;
    process.stderr.write(`replay rate: capture span ${span} s at x4 -> wanted ${want.toFixed(3)} s, took ${got.toFixed(3)} s\n`);
    expect(Math.abs(got / want - 1)).toBeLessThan(0.05);
    expect(Math.abs(run.report.rate.achievedShare - 1)).toBeLessThan(0.05);
  });
});
