/**
 * Boots the cached Debian 6.1 image (image.ts) under qemu and runs one job
 * script inside it. This is how kernel-level tests reach the real
 * ipt_CLUSTERIP module, which Linux 6.3 removed (kernel-semantics.md §11.2).
 *
 * Inside the guest, before `script` starts:
 *   - the modules of WANTED_MODULES are loaded (conntrack, ip_tables, mangle/
 *     filter/raw tables, ipt_CLUSTERIP, xt_cluster, NFLOG, connmark, ...);
 *   - a veth pair exists and is up: frames sent on `v0` arrive on `v1`
 *     (put CLUSTERIP rules on `-i v1`); IPv6 is off, rp_filter is 0;
 *   - tools: busybox (sh, ip, sysctl, ...), `iptables-legacy`,
 *     `iptables-legacy-restore`, `iptables-legacy-save` (also as plain
 *     `iptables*`), and `qtool` (test/qemu/qtool.c: `qtool write FILE DATA`
 *     reports errno, `qtool probe IFACE DSTMAC TUPLES GROUP SENTINEL` injects
 *     tuples and reads back which ones NFLOG saw);
 *   - the working directory is /job, holding script.sh and `files`.
 *
 * The script runs with busybox sh; its stdout is the result (`output`), its
 * stderr goes to the console together with kernel messages (`console`).
 * One call = one boot (about 10-20 s of TCG boot), so put a whole test file's
 * work into one script.
 *
 * Example:
 *   const r = await runGuest({ script: 'iptables-legacy -t mangle -S\ncat /proc/net/ipt_CLUSTERIP/* 2>&1\n' });
 *   if (!r.ok) throw new Error(r.console);
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, posix } from 'node:path';
import { gzipSync } from 'node:zlib';
import { cpioNewc, type CpioEntry } from './cpio.ts';
import { ensureImage, MARK, type ImageManifest } from './image.ts';

export interface GuestJob {
  /** busybox sh script run in /job after setup; its stdout becomes `output`. */
  script: string;
  /** Extra files for /job, by path relative to /job (e.g. `{ 'rules.txt': '...' }`). */
  files?: Record<string, string | Buffer>;
  /** Kill qemu after this long (boot included). Default 240 s. */
  timeoutMs?: number;
}

export interface GuestResult {
  /** True when the guest set up, ran the script to its end and the script exited 0. */
  ok: boolean;
  /** What the script wrote to stdout (the results serial port), '\r' removed. */
  output: string;
  /** The console (ttyS0): kernel messages and the script's stderr. */
  console: string;
  /** Wall time from starting qemu to its exit (or the kill). */
  elapsedMs: number;
  /** The script's exit status; null when it did not finish (setup failure, timeout, crash). */
  exitCode: number | null;
  /** From starting qemu until the guest reported READY (modules loaded, veth up); null if never. */
  bootMs: number | null;
  /** True when qemu was killed because timeoutMs passed. */
  timedOut: boolean;
  /** What was booted (kernel package and version, modules, ...). */
  image: ImageManifest;
}

/** q35, 1 vCPU, 512 MB, TCG unless $CLUSTERIP_SIM_QEMU_ACCEL says otherwise (KVM hangs on nested hosts, §11.2). */
function qemuArgs(kernel: string, initrd: string, consoleLog: string, resultsLog: string): string[] {
  const accel = process.env.CLUSTERIP_SIM_QEMU_ACCEL ?? 'tcg';
  return [
    '-M', 'q35', '-m', '512', '-smp', '1', '-accel', accel,
    '-nodefaults', '-no-user-config', '-display', 'none', '-no-reboot',
    '-kernel', kernel, '-initrd', initrd,
    '-append', 'console=ttyS0 panic=-1 rdinit=/init quiet mitigations=off',
    '-chardev', `file,id=con,path=${consoleLog}`, '-serial', 'chardev:con',
    '-chardev', `file,id=res,path=${resultsLog}`, '-serial', 'chardev:res',
  ];
}

/** The job segment: a second gzip'd cpio appended to the cached initramfs (the kernel unpacks both). */
function jobSegment(job: GuestJob): Buffer {
  const entries: CpioEntry[] = [{ path: 'job', type: 'dir', mode: 0o755 }];
  const dirs = new Set<string>(['job']);
  const add = (rel: string, data: Buffer, mode: number, user: boolean): void => {
    const p = posix.normalize(rel);
    if (p.startsWith('/') || p.startsWith('..') || p === '.' || (user && p === 'script.sh')) {
      throw new Error(`runGuest: file name '${rel}' must be a relative path inside /job (and not script.sh)`);
    }
    const parts = p.split('/');
    for (let i = 1; i < parts.length; i++) {
      const d = ['job', ...parts.slice(0, i)].join('/');
      if (!dirs.has(d)) { dirs.add(d); entries.push({ path: d, type: 'dir', mode: 0o755 }); }
    }
    entries.push({ path: `job/${p}`, type: 'file', mode, data });
  };
  add('script.sh', Buffer.from(job.script, 'utf8'), 0o755, false);
  for (const [name, v] of Object.entries(job.files ?? {})) add(name, typeof v === 'string' ? Buffer.from(v, 'utf8') : v, 0o644, true);
  return gzipSync(cpioNewc(entries));
}

/** Text between the begin and end markers of the results port, and the script's exit status. */
function parseResults(raw: string): { output: string; exitCode: number | null } {
  const text = raw.replace(/\r/g, '');
  const b = text.indexOf(MARK.begin + '\n');
  if (b < 0) return { output: '', exitCode: null };
  const body = text.slice(b + MARK.begin.length + 1);
  const e = body.lastIndexOf('\n' + MARK.end);
  if (e < 0) return { output: body, exitCode: null };
  const rc = /^(\d+)/.exec(body.slice(e + 1 + MARK.end.length));
  // init echoes one empty line before the end marker so that it starts a line.
  return { output: body.slice(0, e).replace(/\n$/, ''), exitCode: rc ? Number(rc[1]) : null };
}

/**
 * Boots the guest once and runs `job.script` (see the module comment for the
 * environment). Builds the image first if it is not cached. Always kills qemu
 * on timeout and removes its temporary files. Rejects only when qemu cannot
 * start or the image cannot be built; a failing script gives `ok: false`.
 */
export async function runGuest(job: GuestJob): Promise<GuestResult> {
  const img = await ensureImage();
  const tmp = mkdtempSync(join(tmpdir(), 'clusterip-sim-qemu-'));
  try {
    const base = readFileSync(img.initramfs);
    const initrd = join(tmp, 'initrd.gz');
    // Pad the first segment to 4 bytes so the kernel finds the second one.
    writeFileSync(initrd, Buffer.concat([base, Buffer.alloc((4 - (base.length % 4)) % 4), jobSegment(job)]));
    const consoleLog = join(tmp, 'console.log'), resultsLog = join(tmp, 'results.log');
    writeFileSync(consoleLog, '');
    writeFileSync(resultsLog, '');
    const timeoutMs = job.timeoutMs ?? 240_000;
    const t0 = Date.now();
    let bootMs: number | null = null;
    let timedOut = false;
    const qemuErr: Buffer[] = [];
    await new Promise<void>((res, rej) => {
      const p = spawn('qemu-system-x86_64', qemuArgs(img.kernel, initrd, consoleLog, resultsLog), { stdio: ['ignore', 'ignore', 'pipe'] });
      const killNow = (): void => { p.kill('SIGKILL'); };
      process.once('exit', killNow);
      p.stderr.on('data', (d: Buffer) => qemuErr.push(d));
      const timer = setTimeout(() => { timedOut = true; killNow(); }, timeoutMs);
      const poll = setInterval(() => {
        if (bootMs === null && existsSync(consoleLog) && readFileSync(consoleLog, 'latin1').includes(MARK.ready)) bootMs = Date.now() - t0;
      }, 100);
      p.on('error', (e) => {
        clearTimeout(timer); clearInterval(poll); process.removeListener('exit', killNow);
        rej(new Error(`qemu-system-x86_64: ${e.message} (apt-get install qemu-system-x86, see .ci/run)`));
      });
      p.on('close', () => { clearTimeout(timer); clearInterval(poll); process.removeListener('exit', killNow); res(); });
    });
    const elapsedMs = Date.now() - t0;
    let consoleText = readFileSync(consoleLog, 'utf8').replace(/\r/g, '');
    if (bootMs === null && consoleText.includes(MARK.ready)) bootMs = elapsedMs;
    const stderr = Buffer.concat(qemuErr).toString('utf8').trim();
    if (stderr) consoleText += `\n[qemu stderr] ${stderr}\n`;
    if (timedOut) consoleText += `\n[runGuest] killed qemu after ${timeoutMs} ms\n`;
    const { output, exitCode } = parseResults(readFileSync(resultsLog, 'utf8'));
    const ok = !timedOut && exitCode === 0 && !consoleText.includes(MARK.setupFailed);
    return { ok, output, console: consoleText, elapsedMs, exitCode, bootMs, timedOut, image: img.manifest };
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}
