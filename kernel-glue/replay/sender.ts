/**
 * The raw-frame sender: a small C program (sender.c) compiled with the system
 * C compiler at first use and cached by the hash of its source, fed the
 * rewritten frames over a pipe. Why not an npm native module: `raw-socket`
 * and `cap` need node-gyp and a matching toolchain at install time and are
 * optional; a 200-line C file needs only `cc`, which CI has (gcc), and keeps
 * the timing loop (clock_nanosleep on absolute deadlines, sendmmsg) out of
 * Node's event loop, where 50 µs intervals are not reachable.
 */
import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DataError } from '../../sim/core/errors.ts';
import type { Rewritten } from './rewrite.ts';

const SOURCE = join(dirname(fileURLToPath(import.meta.url)), 'sender.c');

export type Rate =
  | { mode: 'pps'; value: number }
  | { mode: 'mbps'; value: number }
  | { mode: 'mult'; value: number }
  | { mode: 'top' };

export interface SendResult {
  sent: number;
  bytes: number;
  /** Send times of the first and last frame, ns after the sender started its schedule. */
  firstNs: number;
  lastNs: number;
  elapsedNs: number;
  /** sendmmsg calls retried after ENOBUFS/EAGAIN. */
  retries: number;
  /** Achieved packets per second and megabits per second (over first..last send). */
  pps: number;
  mbps: number;
}

function cacheDir(): string {
  return process.env.CLUSTERIP_SIM_CACHE ?? join(process.env.XDG_CACHE_HOME ?? join(homedir(), '.cache'), 'clusterip-sim');
}

/** Path of the compiled sender, building it when missing. `$CC` picks the compiler (default cc). */
export function ensureSender(): string {
  const src = readFileSync(SOURCE);
  const tag = createHash('sha256').update(src).digest('hex').slice(0, 12);
  const dir = cacheDir();
  const bin = join(dir, `replay-sender-${tag}`);
  if (existsSync(bin)) return bin;
  mkdirSync(dir, { recursive: true });
  const tmp = `${bin}.${process.pid}.tmp`;
  const cc = process.env.CC ?? 'cc';
  const r = spawnSync(cc, ['-O2', '-Wall', '-o', tmp, SOURCE], { encoding: 'utf8' });
  if (r.error || r.status !== 0) {
    const why = r.error ? ((r.error as NodeJS.ErrnoException).code === 'ENOENT' ? `${cc}: not found` : r.error.message) : r.stderr.trim();
    throw new DataError(SOURCE, `cannot build the replay sender with ${cc} (install gcc, or set CC): ${why}`);
  }
  renameSync(tmp, bin);
  return bin;
}

/** The sender's stdin: [u32 length][u64 capture ns][frame] per frame. */
export function serializeFrames(rw: Rewritten): Buffer {
  let total = 0;
  for (let i = 0; i < rw.count; i++) total += 12 + rw.len[i]!;
  const out = Buffer.allocUnsafe(total);
  let o = 0;
  for (let i = 0; i < rw.count; i++) {
    const l = rw.len[i]!;
    out.writeUInt32LE(l, o);
    out.writeBigUInt64LE(BigInt(Math.round(rw.ts[i]! * 1e9)), o + 4);
    out.set(rw.bytes.subarray(rw.start[i]!, rw.start[i]! + l), o + 12);
    o += 12 + l;
  }
  return out;
}

export interface SendOptions {
  iface: string;
  rate: Rate;
  loops: number;
  /** Run the sender through this prefix (e.g. ['ip', 'netns', 'exec', 'ns1']). */
  prefix?: string[];
  /** Called with the frames sent so far, at most ten times a second (the sender reports them). */
  onProgress?: (sent: number) => void;
}

/** Sends the frames; resolves with what the sender measured. */
export function sendFrames(rw: Rewritten, o: SendOptions): Promise<SendResult> {
  const bin = ensureSender();
  const v = o.rate.mode === 'top' ? '0' : String(o.rate.value);
  const argv = [...(o.prefix ?? []), bin, o.iface, o.rate.mode, v, String(o.loops), ...(o.onProgress ? ['progress'] : [])];
  return new Promise((resolve, reject) => {
    const child = spawn(argv[0]!, argv.slice(1), { stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '', err = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => {
      out += d;
      if (!o.onProgress) return;
      // Progress lines ("P <sent>") come before the result line; only whole lines count.
      let nl: number;
      while ((nl = out.indexOf('\n')) >= 0 && out.startsWith('P ')) {
        o.onProgress(Number(out.slice(2, nl)));
        out = out.slice(nl + 1);
      }
    });
    child.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
    child.on('error', (e) => reject(new DataError(`--via ${o.iface}`, `cannot start the sender: ${e.message}`)));
    child.on('close', (code) => {
      if (code !== 0) return reject(new DataError(`--via ${o.iface}`, `sender failed (exit ${code}): ${err.trim()}`));
      try {
        const j = JSON.parse(out.trim().split('\n').pop()!) as { sent: number; bytes: number; first_ns: number; last_ns: number; elapsed_ns: number; retries: number };
        const span = (j.last_ns - j.first_ns) / 1e9;
        resolve({
          sent: j.sent, bytes: j.bytes, firstNs: j.first_ns, lastNs: j.last_ns, elapsedNs: j.elapsed_ns, retries: j.retries,
          pps: span > 0 ? (j.sent - 1) / span : 0,
          mbps: span > 0 ? (j.bytes * 8 * ((j.sent - 1) / Math.max(1, j.sent))) / span / 1e6 : 0,
        });
      } catch {
        reject(new DataError(`--via ${o.iface}`, `sender printed no result: ${out.trim()} ${err.trim()}`));
      }
    });
    child.stdin.on('error', () => { /* exit code tells */ });
    child.stdin.end(serializeFrames(rw));
  });
}
