/**
 * The checks behind `clusterip-sim doctor` (and the install-time line about
 * live capture, cli/build.ts): which optional parts work on this machine (live
 * capture, PNG export, the compiled command line, qemu, the kernel's cluster
 * modules and tools) and, for each that does not, how to get it. Checks only
 * look (load a package, stat a file, ask a tool for its version): nothing is
 * installed or changed.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';

export interface Check {
  /** What it enables, e.g. "live capture (simulate/tuples --live)". */
  part: string;
  ok: boolean;
  /** What was found (a version, a path) or what is missing. */
  found: string;
  /** How to get it, when missing. */
  fix?: string;
}

const run = (cmd: string, args: string[]): { ok: boolean; out: string } => {
  const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: 10_000 });
  return { ok: r.status === 0, out: `${r.stdout ?? ''}${r.stderr ?? ''}`.trim() };
};
const firstLine = (s: string): string => s.split('\n')[0]!.trim();

/** Live capture needs the optional native `cap` package (built against libpcap at `npm ci`). */
export function checkCap(): Check {
  const part = 'live capture (tuples --live: the optional cap package)';
  try {
    createRequire(import.meta.url)('cap');
    const root = typeof process.getuid === 'function' && process.getuid() === 0;
    return { part, ok: true, found: `cap loads${root ? '' : '; capturing needs root or CAP_NET_RAW'}` };
  } catch (e) {
    return { part, ok: false, found: `cap does not load (${firstLine(e instanceof Error ? e.message : String(e))})`, fix: 'apt-get install libpcap-dev build-essential, then npm rebuild cap (or npm ci)' };
  }
}

function checkChromium(): Check {
  const path = process.env.CLUSTERIP_SIM_CHROMIUM ?? '/usr/bin/chromium';
  const part = 'PNG export (--png) and the report browser tests: Chromium';
  if (!existsSync(path)) return { part, ok: false, found: `no ${path}`, fix: 'apt-get install chromium (or set CLUSTERIP_SIM_CHROMIUM to a Chromium binary)' };
  const v = run(path, ['--version']);
  return { part, ok: v.ok, found: v.ok ? firstLine(v.out) : `${path} does not run: ${firstLine(v.out)}`, ...(v.ok ? {} : { fix: 'apt-get install --reinstall chromium' }) };
}

function checkCompiled(): Check {
  const part = 'fast start: the compiled command line (dist/cli)';
  const main = new URL('../dist/cli/main.mjs', import.meta.url);
  if (!existsSync(main)) return { part, ok: false, found: 'dist/cli/main.mjs is missing: commands start through tsx (~1 s)', fix: 'npm run build (npm ci does it)' };
  return { part, ok: true, found: 'dist/cli/main.mjs (the bin runs it while it matches the sources, tsx otherwise)' };
}

function tool(part: string, cmd: string, args: string[], fix: string): Check {
  const v = run(cmd, args);
  return v.ok ? { part, ok: true, found: firstLine(v.out) } : { part, ok: false, found: `${cmd} not found or failing`, fix };
}

/** The running kernel's build config (/proc/config.gz, else /boot/config-<release>), or '' when neither is readable. */
function kernelConfig(): string {
  const z = run('zcat', ['/proc/config.gz']);
  if (z.ok) return z.out;
  const release = firstLine(run('uname', ['-r']).out);
  const b = run('cat', [`/boot/config-${release}`]);
  return b.ok ? b.out : '';
}

/** A kernel feature: loaded now, built in or a module per the kernel's config, or found by modinfo. */
function module(part: string, name: string, symbol: string, fix: string, config: string): Check {
  if (run('grep', ['-qw', `^${name}`, '/proc/modules']).ok) return { part, ok: true, found: `${name}: loaded` };
  const m = new RegExp(`^CONFIG_${symbol}=([ym])$`, 'm').exec(config);
  if (m) return { part, ok: true, found: `${name}: ${m[1] === 'y' ? 'built into the kernel' : 'a module of this kernel'} (CONFIG_${symbol}=${m[1]})` };
  const info = run('modinfo', ['-F', 'filename', name]);
  if (info.ok) return { part, ok: true, found: `${name}: available (${firstLine(info.out)})` };
  return { part, ok: false, found: `${name}: not in this kernel (${firstLine(run('uname', ['-r']).out)}${config ? `; CONFIG_${symbol} unset` : ''})`, fix };
}

/** Every check, in the order doctor prints them. */
export function doctorChecks(): Check[] {
  const config = kernelConfig();
  return [
    checkCompiled(),
    checkCap(),
    checkChromium(),
    tool('kernel tests and glue on old kernels: qemu', 'qemu-system-x86_64', ['--version'], 'apt-get install qemu-system-x86 busybox-static cpio'),
    module('nft backend: nftables jhash', 'nf_tables', 'NF_TABLES', 'a kernel with nftables (every Debian kernel since 9)', config),
    module('xt_cluster backend: the cluster match', 'xt_cluster', 'NETFILTER_XT_MATCH_CLUSTER', 'a kernel built with CONFIG_NETFILTER_XT_MATCH_CLUSTER (Debian: yes)', config),
    module('clusterip backend: the CLUSTERIP target', 'ipt_CLUSTERIP', 'IP_NF_TARGET_CLUSTERIP', 'CLUSTERIP was removed in Linux 6.3: use xt_cluster or nft, or a kernel before 6.3 (the qemu tests boot one)', config),
    tool('nft command', 'nft', ['--version'], 'apt-get install nftables'),
    tool('iptables-legacy (xt_cluster, clusterip)', 'iptables-legacy', ['--version'], 'apt-get install iptables'),
    tool('tcpdump (comparisons, replay fixtures)', 'tcpdump', ['--version'], 'apt-get install tcpdump'),
    tool('tshark (tuples cross-check, replay tests)', 'tshark', ['--version'], 'apt-get install tshark'),
    tool('C compiler (replay sender, bench references)', 'cc', ['--version'], 'apt-get install build-essential'),
  ];
}

export function formatChecks(checks: readonly Check[]): string {
  const w = Math.max(...checks.map((c) => c.part.length));
  let s = '';
  for (const c of checks) {
    s += `${c.ok ? 'ok     ' : 'MISSING'}  ${c.part.padEnd(w)}  ${c.found}\n`;
    if (!c.ok && c.fix) s += `${' '.repeat(9 + w + 2)}how: ${c.fix}\n`;
  }
  const missing = checks.filter((c) => !c.ok).length;
  s += `\n${missing ? `${missing} optional part${missing > 1 ? 's' : ''} missing; everything else works here.` : 'everything works here.'}\n`;
  return s;
}

