/**
 * Running real capture tools in network namespaces for kernel tests: a
 * command with a timeout, the same inside a namespace, and tcpdump started
 * (resolved once it listens) and stopped (every packet written).
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { rmSync } from 'node:fs';
import { deleteNetns } from './netns-cluster.ts';

/** Runs a command (30 s at most); its stdout. `input` goes to its stdin. */
export function sh(args: string[], input?: string): string {
  return execFileSync(args[0]!, args.slice(1), { encoding: 'utf8', input, stdio: [input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'], timeout: 30_000 });
}
export const inNs = (ns: string, ...args: string[]): string => sh(['ip', 'netns', 'exec', ns, ...args]);

/** Starts tcpdump in namespace `ns` writing `file`; resolves once it listens. */
export async function startTcpdump(ns: string, args: string[], file: string): Promise<ChildProcess> {
  // --immediate-mode: without it libpcap hands packets over a TPACKET_V3 block at a
  // time, and the last block (the end of the traffic) is lost when tcpdump is stopped.
  const p = spawn('ip', ['netns', 'exec', ns, 'tcpdump', '--immediate-mode', '-U', '-n', ...args, '-w', file], { stdio: ['ignore', 'ignore', 'pipe'] });
  await new Promise<void>((res, rej) => {
    let err = '';
    const t = setTimeout(() => rej(new Error(`tcpdump did not start: ${err}`)), 10_000);
    p.stderr!.on('data', (d: Buffer) => { err += d.toString(); if (err.includes('listening on')) { clearTimeout(t); res(); } });
    p.once('exit', (c) => { clearTimeout(t); rej(new Error(`tcpdump exited ${c}: ${err}`)); });
  });
  return p;
}

/** Stops a tcpdump startTcpdump started (SIGINT, so it writes what it has); throws if it had already ended. */
export async function stopTcpdump(p: ChildProcess): Promise<void> {
  if (p.exitCode !== null || p.signalCode !== null) throw new Error(`tcpdump ended before the traffic was done (exit ${p.exitCode}, signal ${p.signalCode}): something on this machine killed it`);
  const done = new Promise<void>((res) => p.once('exit', () => res()));
  p.kill('SIGINT');
  await Promise.race([done, new Promise((r) => setTimeout(r, 5000))]);
  if (p.exitCode === null) p.kill('SIGKILL');
}

/** Namespaces are deleted one way for every kernel test (their processes killed first). */
export { deleteNetns };

/**
 * Namespaces `a` and `b` (created here, after deleting leftovers of the same
 * names) joined by a veth pair vA-vB, both up with lo, addresses `${v4}.1/24`
 * and `${v4}.2/24`, `${v6}1/64` and `${v6}2/64` (no DAD). With `macs` the
 * devices get 02:00:00:00:00:01 and :02, the MACs test/frames.ts ether() writes.
 */
export function vethPair(a: string, b: string, v4: string, v6: string, macs = false): void {
  deleteNetns([a, b]);
  sh(['ip', 'netns', 'add', a]);
  sh(['ip', 'netns', 'add', b]);
  sh(['ip', 'link', 'add', 'vA', 'netns', a, 'type', 'veth', 'peer', 'name', 'vB', 'netns', b]);
  for (const [ns, dev, me] of [[a, 'vA', 1], [b, 'vB', 2]] as const) {
    inNs(ns, 'ip', 'link', 'set', 'lo', 'up');
    if (macs) inNs(ns, 'ip', 'link', 'set', dev, 'address', `02:00:00:00:00:0${me}`);
    inNs(ns, 'ip', 'link', 'set', dev, 'up', 'mtu', '1500');
    inNs(ns, 'ip', 'addr', 'add', `${v4}.${me}/24`, 'dev', dev);
    inNs(ns, 'ip', '-6', 'addr', 'add', `${v6}${me}/64`, 'dev', dev, 'nodad');
  }
}

/** Removes a test's capture directory, or keeps it and says where when KEEP_CAPTURES is set. */
export function removeCaptures(dir: string): void {
  if (!dir) return;
  if (process.env.KEEP_CAPTURES) console.log('captures kept in', dir);
  else rmSync(dir, { recursive: true, force: true });
}

/** Runs `traffic` while tcpdump captures in namespace `ns`, one for each [arguments, file]; every capture is stopped whatever happens. */
export async function capturing(ns: string, dumps: [string[], string][], traffic: () => Promise<void>): Promise<void> {
  const started: ChildProcess[] = [];
  try {
    for (const [args, file] of dumps) started.push(await startTcpdump(ns, args, file));
    await traffic();
  } finally {
    for (const d of started) await stopTcpdump(d);
  }
}
