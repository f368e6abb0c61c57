/**
 * Live capture through `cap` in a network namespace: `tuples --live` on one
 * end of a veth pair sees exactly the pings sent from the other end, and the
 * BPF filter, duration and packet limit are honoured. Needs root and the
 * optional `cap` package (built against libpcap-dev).
 */
import { execFileSync, spawn } from 'node:child_process';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cleanupStale, deleteNetns, runPrefix } from '../../test/netns-cluster.ts';

const PREFIX = runPrefix('cipsim-live-');
const A = `${PREFIX}a`, B = `${PREFIX}b`;
const root = resolve(import.meta.dirname, '../..');
const ns = (n: string, ...a: string[]): string => execFileSync('ip', ['netns', 'exec', n, ...a], { encoding: 'utf8', timeout: 30_000 });
function cleanup(): void { cleanupStale(PREFIX); deleteNetns([A, B]); }

beforeAll(() => {
  cleanup();
  execFileSync('ip', ['netns', 'add', A]);
  execFileSync('ip', ['netns', 'add', B]);
  execFileSync('ip', ['link', 'add', 'lA', 'netns', A, 'type', 'veth', 'peer', 'name', 'lB', 'netns', B]);
  for (const [n, dev, me] of [[A, 'lA', 1], [B, 'lB', 2]] as const) {
    ns(n, 'ip', 'link', 'set', dev, 'up');
    ns(n, 'ip', 'addr', 'add', `10.78.0.${me}/24`, 'dev', dev);
  }
});
afterAll(cleanup);

/** Runs `tuples --live` in B while `traffic` runs in A; returns the CSV lines and stderr. */
async function live(args: string[], traffic: () => void): Promise<{ lines: string[]; err: string; code: number | null }> {
  const p = spawn('ip', ['netns', 'exec', B, process.execPath, '--import', 'tsx', join(root, 'cli/main.ts'), 'tuples', '--live', 'lB', ...args], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '', err = '';
  p.stdout.on('data', (d: Buffer) => { out += d.toString(); });
  p.stderr.on('data', (d: Buffer) => { err += d.toString(); });
  // The header is printed once libpcap has the interface open.
  for (let k = 0; k < 300 && !out.includes('ts,proto'); k++) await new Promise((r) => setTimeout(r, 100));
  traffic();
  const code = await new Promise<number | null>((r) => p.once('exit', r));
  return { lines: out.trim().split('\n'), err, code };
}

describe('live capture with cap', () => {
  it('sees the pings, filtered by BPF, until the duration ends', async () => {
    const r = await live(['--filter', 'icmp', '--duration', '5'], () => {
      ns(A, 'ping', '-c', '3', '-i', '0.2', '10.78.0.2');
      execFileSync('bash', ['-c', `ip netns exec ${A} bash -c 'echo hi > /dev/udp/10.78.0.2/9' || true`]);
    });
    expect(r.code, r.err).toBe(0);
    expect(r.lines[0]).toBe('ts,proto,saddr,sport,daddr,dport,wirelen,l4_id');
    const pings = r.lines.slice(1).map((l) => l.split(','));
    // requests and replies, ICMP only (the UDP datagram was filtered out; its port-unreachable is ICMP but has no echo id)
    // ICMP has no ports: the echo identifier and sequence are in l4_id (id=N/seq=N).
    expect(pings.every((f) => f[3] === '' && f[5] === '')).toBe(true);
    const echo = pings.filter((f) => (f[7] ?? '') !== '');
    expect(echo.map((f) => [f[1], f[2], f[4], /seq=(\d+)/.exec(f[7]!)![1]])).toEqual([
      ['1', '10.78.0.1', '10.78.0.2', '1'], ['1', '10.78.0.2', '10.78.0.1', '1'],
      ['1', '10.78.0.1', '10.78.0.2', '2'], ['1', '10.78.0.2', '10.78.0.1', '2'],
      ['1', '10.78.0.1', '10.78.0.2', '3'], ['1', '10.78.0.2', '10.78.0.1', '3'],
    ]);
    expect(pings.every((f) => f[1] === '1' && f[6] !== undefined && Number(f[6]) >= 42)).toBe(true);
  });

  it('holds fragments until their datagram completes: ping -s 3000 gives three rows a datagram, each with its echo id/seq', async () => {
    // 3,008 bytes of ICMP over a 1,500-byte MTU: fragments of 1,480, 1,480 and 48 bytes, request and reply.
    const r = await live(['--filter', 'icmp', '--duration', '5'], () => { ns(A, 'ping', '-c', '2', '-i', '0.3', '-s', '3000', '10.78.0.2'); });
    expect(r.code, r.err).toBe(0);
    const rows = r.lines.slice(1).map((l) => l.split(','));
    // Before: one row per datagram (the completing fragment) and the other two counted as unresolved.
    expect(r.err).toMatch(/skipped: nothing/);
    const seqs = rows.map((f) => [f[2], f[4], /seq=(\d+)/.exec(f[7] ?? '')?.[1]]);
    const want: (string | undefined)[][] = [];
    for (const seq of ['1', '2']) for (const [a, b] of [['10.78.0.1', '10.78.0.2'], ['10.78.0.2', '10.78.0.1']]) for (let k = 0; k < 3; k++) want.push([a, b, seq]);
    expect(seqs).toEqual(want);
    // Every fragment is a row of its own: the wire lengths of one datagram's three frames.
    expect(rows.slice(0, 3).map((f) => Number(f[6])).sort((x, y) => x - y)).toEqual([14 + 20 + 48, 14 + 1500, 14 + 1500]);
  });

  it('stops at the packet limit', async () => {
    const r = await live(['--limit', '2', '--duration', '20'], () => { ns(A, 'ping', '-c', '4', '-i', '0.2', '10.78.0.2'); });
    expect(r.code, r.err).toBe(0);
    expect(r.lines).toHaveLength(3);
  });
});
