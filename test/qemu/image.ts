/**
 * Builds (once, cached) the boot image for kernel-level CLUSTERIP tests: the
 * CLUSTERIP target was removed in Linux 6.3, so these tests boot Debian
 * bookworm's 6.1 kernel (`linux-image-6.1.0-*-amd64`) under
 * qemu with a small initramfs (kernel-semantics.md §11.2, §11.3).
 *
 * What goes into the initramfs, all taken from Debian packages fetched with
 * `apt-get download` (never from the host's own files, which may differ):
 *   - busybox-static (the shell, `ip`, `modprobe`, `sysctl`, ...),
 *   - iptables 1.8.9 (`xtables-legacy-multi` and its extensions; iptables-nft
 *     refuses CLUSTERIP, §4.5) plus exactly the shared libraries its ELF
 *     NEEDED entries name, resolved inside the extracted packages,
 *   - the netfilter modules in WANTED_MODULES and their dependencies from the
 *     kernel package, with a `modules.dep` made by busybox depmod (the .deb
 *     ships none: Debian generates it in postinst),
 *   - `qtool`, a rule-independent static C helper (test/qemu/qtool.c) compiled
 *     with the host's `cc -static`: AF_PACKET injector, NFLOG reader, /proc
 *     writer reporting errno,
 *   - /init (INIT_SCRIPT below).
 *
 * The cache key covers every package version, qtool.c and this file, so any
 * change to the recipe rebuilds. Downloaded .deb files are kept in
 * `<cache>/debs` and reused.
 *
 * Cache root: `test/.cache/qemu` (git-ignored), or $CLUSTERIP_SIM_QEMU_CACHE.
 * Kernel package: the newest `linux-image-6.1.0-N-amd64` apt knows, or
 * $CLUSTERIP_SIM_QEMU_KERNEL_PKG (e.g. `linux-image-6.1.0-56-amd64`).
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  chmodSync, copyFileSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, readdirSync,
  readlinkSync, renameSync, rmSync, statSync, symlinkSync, writeFileSync,
} from 'node:fs';
import { dirname, join, posix, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import { readElfDeps } from './elf.ts';
import { cpioNewc, type CpioEntry } from './cpio.ts';

const HERE = dirname(fileURLToPath(import.meta.url));

/**
 * Modules loaded at boot, in this order (modprobe pulls in dependencies).
 * crc32c_generic first: nf_conntrack's libcrc32c asks the crypto API for
 * "crc32c" by alias, and nothing in the guest would load it on demand (§11.3).
 * nfnetlink_log must be explicit too: xt_NFLOG finds its logger at run time.
 */
export const WANTED_MODULES = [
  'crc32c_generic', 'veth',
  'nf_conntrack', 'nfnetlink', 'nfnetlink_log',
  'x_tables', 'ip_tables', 'iptable_mangle', 'iptable_filter', 'iptable_raw',
  'ipt_CLUSTERIP', 'xt_cluster',
  'xt_NFLOG', 'xt_connmark', 'xt_mark', 'xt_conntrack', 'xt_state', 'xt_tcpudp',
  'xt_comment', 'xt_multiport', 'xt_addrtype', 'xt_CT',
] as const;

/** Packages besides the kernel; their libraries are used only as ELF NEEDED asks. */
const USER_PACKAGES = [
  'busybox-static', 'iptables', 'libxtables12', 'libip4tc2', 'libip6tc2',
  'libnetfilter-conntrack3', 'libnfnetlink0', 'libmnl0', 'libnftnl11', 'libc6',
] as const;

/** Where the guest's library search looks (Debian bookworm is not merged-/usr inside its packages). */
const LIB_DIRS = ['/lib/x86_64-linux-gnu', '/usr/lib/x86_64-linux-gnu', '/lib64', '/lib', '/usr/lib'];

/** Markers the guest prints; guest.ts looks for them. */
export const MARK = {
  alive: '@@QEMU-GUEST ALIVE',
  ready: '@@QEMU-GUEST READY',
  setupFailed: '@@QEMU-GUEST SETUP FAILED',
  begin: '@@QEMU-JOB BEGIN',
  end: '@@QEMU-JOB END rc=',
} as const;

/**
 * The guest's /init (busybox sh). Console on ttyS0, job results on ttyS1.
 * Loads the modules, makes the veth pair v0 (sender) - v1 (receiver), runs
 * /job/script.sh from the job segment with stdout on ttyS1 and stderr on the
 * console, then `reboot -f`, which ends qemu (started with -no-reboot).
 */
const INIT_SCRIPT = `#!/bin/sh
export PATH=/sbin:/bin:/usr/sbin:/usr/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mkdir -p /dev/pts /run /tmp /var/run
echo "${MARK.alive} $(uname -r)" > /dev/ttyS0
stty -F /dev/ttyS1 raw -echo 2>/dev/null
fail() { echo "${MARK.setupFailed}: $*" > /dev/ttyS0; echo "${MARK.setupFailed}: $*" > /dev/ttyS1; sync; reboot -f; sleep 5; }
for m in $(cat /etc/qemu-modules); do modprobe "$m" || fail "modprobe $m"; done
ip link set lo up
# busybox ip ignores "peer name", so rename the kernel's vethN to v1 (§11.3).
ip link add v0 type veth peer name v1 || fail "ip link add veth"
if [ ! -e /sys/class/net/v1 ]; then
  for d in /sys/class/net/veth*; do [ -e "$d" ] && ip link set "\${d##*/}" name v1 && break; done
fi
[ -e /sys/class/net/v1 ] || fail "no v1"
sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
sysctl -qw net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.default.rp_filter=0
sysctl -qw net.core.netdev_max_backlog=100000 net.core.rmem_max=33554432
ip link set v0 up && ip link set v1 up || fail "link up"
sysctl -qw net.ipv4.conf.v1.rp_filter=0 net.ipv4.conf.v0.rp_filter=0
echo "${MARK.ready}" > /dev/ttyS0
if [ -f /job/script.sh ]; then
  echo "${MARK.begin}" > /dev/ttyS1
  cd /job && /bin/sh /job/script.sh < /dev/null > /dev/ttyS1 2> /dev/ttyS0
  rc=$?
  echo "" > /dev/ttyS1
  echo "${MARK.end}$rc" > /dev/ttyS1
fi
sync
reboot -f
sleep 5
`;

export interface ImageManifest {
  key: string;
  /** e.g. linux-image-6.1.0-56-amd64 */
  kernelPackage: string;
  /** Debian package version, e.g. 6.1.192-2 */
  kernelPackageVersion: string;
  /** `uname -r` in the guest, e.g. 6.1.0-56-amd64 */
  kernelRelease: string;
  packages: Record<string, string>;
  /** Every .ko in the image (wanted modules and their dependencies), relative to /lib/modules/<release>. */
  modules: string[];
  /** Shared objects and binaries copied from the packages, by guest path. */
  files: string[];
  initramfsBytes: number;
  /** How long this build took (download + extract + pack), ms. */
  buildMs: number;
  downloadMs: number;
  builtAt: string;
}

export interface GuestImage {
  dir: string;
  kernel: string;
  initramfs: string;
  manifest: ImageManifest;
}

export function cacheRoot(): string {
  return process.env.CLUSTERIP_SIM_QEMU_CACHE ?? resolve(HERE, '../.cache/qemu');
}

/** Runs a command (argv array); resolves stdout, rejects with the command and its stderr. */
export function run(cmd: string, args: string[], opts: { cwd?: string; input?: Buffer } = {}): Promise<string> {
  return new Promise((res, rej) => {
    const p = spawn(cmd, args, { cwd: opts.cwd, stdio: ['pipe', 'pipe', 'pipe'] });
    const out: Buffer[] = [], err: Buffer[] = [];
    p.stdout.on('data', (d: Buffer) => out.push(d));
    p.stderr.on('data', (d: Buffer) => err.push(d));
    p.on('error', (e) => rej(new Error(`${cmd}: ${e.message}${(e as NodeJS.ErrnoException).code === 'ENOENT' ? ' (not installed? see .ci/run)' : ''}`)));
    p.on('close', (code) => {
      if (code === 0) res(Buffer.concat(out).toString('utf8'));
      else rej(new Error(`${cmd} ${args.join(' ')} exited ${code}: ${Buffer.concat(err).toString('utf8').trim().slice(-2000)}`));
    });
    p.stdin.end(opts.input);
  });
}

/** Candidate versions from `apt-cache policy` (a package without a candidate is left out). */
async function candidates(pkgs: readonly string[]): Promise<Map<string, string>> {
  const text = await run('apt-cache', ['policy', ...pkgs]);
  const map = new Map<string, string>();
  let cur: string | null = null;
  for (const line of text.split('\n')) {
    const head = /^(\S+):$/.exec(line);
    if (head) { cur = head[1]!; continue; }
    const cand = /^\s+Candidate:\s+(\S+)/.exec(line);
    if (cand && cur && cand[1] !== '(none)') map.set(cur, cand[1]!);
  }
  return map;
}

/** The newest linux-image-6.1.0-N-amd64 with a candidate version (largest ABI number N). */
async function pickKernel(): Promise<{ name: string; version: string }> {
  const forced = process.env.CLUSTERIP_SIM_QEMU_KERNEL_PKG;
  const names = forced
    ? [forced]
    : (await run('apt-cache', ['pkgnames', 'linux-image-6.1.0-']))
      .split('\n').filter((n) => /^linux-image-6\.1\.0-\d+-amd64$/.test(n))
      .sort((a, b) => Number(b.split('-')[3]) - Number(a.split('-')[3]));
  if (names.length === 0) {
    throw new Error('apt knows no linux-image-6.1.0-*-amd64 package: is a Debian bookworm source configured and `apt-get update` done?');
  }
  const cand = await candidates(names);
  for (const n of names) {
    const v = cand.get(n);
    if (v && v.startsWith('6.1.')) return { name: n, version: v };
  }
  throw new Error(`none of ${names.slice(0, 5).join(', ')}${names.length > 5 ? ', ...' : ''} has a 6.1 candidate version in apt-cache policy`);
}

/** apt-get download names files name_version_arch.deb with ':' as %3a. */
function debPrefix(name: string, version: string): string {
  return `${name}_${version.replace(/:/g, '%3a')}_`;
}

async function download(debs: string, name: string, version: string): Promise<string> {
  const find = (): string | undefined => readdirSync(debs).find((f) => f.startsWith(debPrefix(name, version)) && f.endsWith('.deb'));
  let f = find();
  if (!f) {
    // Downloaded into a directory of this process's own, then renamed into place: a concurrent
    // build never sees (or writes into) a half-downloaded .deb.
    const own = mkdtempSync(join(debs, '.dl-'));
    try {
      await run('apt-get', ['download', '-q', `${name}=${version}`], { cwd: own });
      for (const d of readdirSync(own)) if (d.endsWith('.deb')) renameSync(join(own, d), join(debs, d));
    } catch (e) {
      throw new Error(`downloading ${name}=${version} failed (network or apt sources?): ${(e as Error).message}`);
    } finally {
      rmSync(own, { recursive: true, force: true });
    }
    f = find();
    if (!f) throw new Error(`apt-get download ${name}=${version} succeeded but no ${debPrefix(name, version)}*.deb is in ${debs}`);
  }
  return join(debs, f);
}

/** Extracts selected members of a .deb's data tarball into dest (dpkg-deb | tar, no shell). */
function extractDeb(deb: string, dest: string, members: string[] = []): Promise<void> {
  mkdirSync(dest, { recursive: true });
  return new Promise((res, rej) => {
    const d = spawn('dpkg-deb', ['--fsys-tarfile', deb], { stdio: ['ignore', 'pipe', 'pipe'] });
    const t = spawn('tar', ['-x', '-C', dest, ...(members.length ? ['--wildcards', ...members] : [])], { stdio: ['pipe', 'ignore', 'pipe'] });
    d.stdout.pipe(t.stdin);
    let err = '';
    d.stderr.on('data', (b: Buffer) => { err += b.toString(); });
    t.stderr.on('data', (b: Buffer) => { err += b.toString(); });
    let left = 2, bad = false;
    const done = (who: string) => (code: number | null) => {
      if (code !== 0 && !bad) { bad = true; rej(new Error(`extracting ${deb}: ${who} exited ${code}: ${err.trim().slice(-1000)}`)); }
      if (--left === 0 && !bad) res();
    };
    d.on('error', (e) => rej(new Error(`dpkg-deb: ${e.message}`)));
    t.on('error', (e) => rej(new Error(`tar: ${e.message}`)));
    d.on('close', done('dpkg-deb'));
    t.on('close', done('tar'));
  });
}

/**
 * Resolves a path inside an extracted root, following symlinks (absolute ones
 * relative to the root), so nothing from the host leaks in.
 */
function resolveIn(root: string, guestPath: string, depth = 0): string | null {
  if (depth > 20) return null;
  const parts = guestPath.split('/').filter(Boolean);
  let cur = '/';
  for (let i = 0; i < parts.length; i++) {
    const next = posix.join(cur, parts[i]!);
    const host = join(root, next);
    let st;
    try { st = lstatSync(host); } catch { return null; }
    if (st.isSymbolicLink()) {
      const target = readlinkSync(host);
      const abs = target.startsWith('/') ? target : posix.join(cur, target);
      const rest = parts.slice(i + 1).join('/');
      return resolveIn(root, rest ? posix.join(abs, rest) : abs, depth + 1);
    }
    cur = next;
  }
  return cur;
}

function sha256(...parts: (string | Buffer)[]): string {
  const h = createHash('sha256');
  for (const p of parts) h.update(p);
  return h.digest('hex');
}

let inflight: Promise<GuestImage> | null = null;

/**
 * Returns the cached image for the current package versions, building it
 * first if needed. Throws (never skips) when a tool, a package or the network
 * is missing, naming what failed.
 */
export function ensureImage(log: (msg: string) => void = () => {}): Promise<GuestImage> {
  inflight ??= buildImage(log).finally(() => { inflight = null; });
  return inflight;
}

async function buildImage(log: (msg: string) => void): Promise<GuestImage> {
  const t0 = Date.now();
  const root = cacheRoot();
  const kernel = await pickKernel();
  const cand = await candidates(USER_PACKAGES);
  const packages: Record<string, string> = { [kernel.name]: kernel.version };
  for (const p of USER_PACKAGES) {
    const v = cand.get(p);
    if (!v) throw new Error(`apt-cache policy ${p}: no candidate version (apt sources or apt-get update missing?)`);
    packages[p] = v;
  }
  const qtoolSrc = readFileSync(join(HERE, 'qtool.c'));
  const recipe = [readFileSync(fileURLToPath(import.meta.url)), readFileSync(join(HERE, 'elf.ts')), readFileSync(join(HERE, 'cpio.ts'))];
  const key = sha256(JSON.stringify(packages), qtoolSrc, ...recipe).slice(0, 16);
  const dir = join(root, 'images', key);
  const done = loadManifest(dir);
  if (done) return done;

  mkdirSync(join(root, 'debs'), { recursive: true });
  mkdirSync(join(root, 'images'), { recursive: true });
  const stage = mkdtempSync(join(root, 'images', `.build-${key}-`));
  try {
    log(`qemu image ${key}: ${kernel.name} ${kernel.version}`);
    const tDl = Date.now();
    const debFiles: Record<string, string> = {};
    for (const [name, version] of Object.entries(packages)) debFiles[name] = await download(join(root, 'debs'), name, version);
    const downloadMs = Date.now() - tDl;

    // Kernel: vmlinuz and only the module directories our modules live in.
    const kroot = join(stage, 'kernel');
    await extractDeb(debFiles[kernel.name]!, kroot, [
      './boot/vmlinuz-*', './lib/modules/*/kernel/net/*', './lib/modules/*/kernel/crypto/*',
      './lib/modules/*/kernel/lib/*', './lib/modules/*/kernel/drivers/net/veth.ko',
      './lib/modules/*/modules.builtin', './lib/modules/*/modules.builtin.modinfo', './lib/modules/*/modules.order',
    ]);
    const releases = readdirSync(join(kroot, 'lib/modules'));
    if (releases.length !== 1) throw new Error(`${kernel.name}: expected one /lib/modules/<release>, found ${releases.join(', ') || 'none'}`);
    const release = releases[0]!;
    const vmlinuz = join(kroot, 'boot', `vmlinuz-${release}`);
    if (!existsSync(vmlinuz)) throw new Error(`${kernel.name}: no /boot/vmlinuz-${release}`);

    // Userspace packages into one sysroot.
    const sysroot = join(stage, 'sysroot');
    for (const p of USER_PACKAGES) await extractDeb(debFiles[p]!, sysroot);
    const busybox = join(sysroot, 'bin/busybox');
    if (!existsSync(busybox)) throw new Error('busybox-static: no /bin/busybox in the package');

    // The .deb has no modules.dep; busybox depmod (the package's own binary) makes one.
    await run(busybox, ['depmod', '-b', kroot, release]);
    const deps = parseModulesDep(readFileSync(join(kroot, 'lib/modules', release, 'modules.dep'), 'utf8'));
    const byName = new Map<string, string>();
    for (const m of deps.keys()) byName.set(posix.basename(m, '.ko').replace(/-/g, '_'), m);
    const want = new Set<string>();
    const add = (m: string): void => {
      if (want.has(m)) return;
      want.add(m);
      for (const d of deps.get(m) ?? []) add(d);
    };
    for (const name of WANTED_MODULES) {
      const m = byName.get(name);
      if (!m) throw new Error(`${kernel.name} ${kernel.version}: module ${name} not found (built in, renamed or missing?)`);
      add(m);
    }

    // The initramfs tree.
    const tree = join(stage, 'root');
    for (const d of ['bin', 'sbin', 'usr/bin', 'usr/sbin', 'etc', 'proc', 'sys', 'dev', 'run', 'tmp', 'var/run', 'job', 'root']) {
      mkdirSync(join(tree, d), { recursive: true });
    }
    const modDir = join(tree, 'lib/modules', release);
    for (const m of want) {
      mkdirSync(dirname(join(modDir, m)), { recursive: true });
      copyFileSync(join(kroot, 'lib/modules', release, m), join(modDir, m));
    }
    for (const f of ['modules.builtin', 'modules.builtin.modinfo', 'modules.order']) {
      copyFileSync(join(kroot, 'lib/modules', release, f), join(modDir, f));
    }
    await run(busybox, ['depmod', '-b', tree, release]);

    copyFileSync(busybox, join(tree, 'bin/busybox'));
    chmodSync(join(tree, 'bin/busybox'), 0o755);
    const applets = (await run(busybox, ['--list-full'])).split('\n').filter(Boolean);
    for (const a of applets) {
      const p = join(tree, a);
      if (existsSync(p)) continue;
      mkdirSync(dirname(p), { recursive: true });
      symlinkSync(relative(dirname(p), join(tree, 'bin/busybox')), p);
    }

    // iptables-legacy and every extension, with libraries chosen by ELF NEEDED.
    const copied = new Set<string>();
    const copyElf = (guestPath: string): void => {
      if (copied.has(guestPath)) return;
      const real = resolveIn(sysroot, guestPath);
      if (!real) throw new Error(`${guestPath} not found in the extracted packages (${USER_PACKAGES.join(', ')})`);
      copied.add(guestPath);
      const dest = join(tree, guestPath);
      mkdirSync(dirname(dest), { recursive: true });
      copyFileSync(join(sysroot, real), dest);
      chmodSync(dest, 0o755);
      const { needed, interp } = readElfDeps(readFileSync(join(sysroot, real)), guestPath);
      if (interp) copyElf(interp);
      for (const lib of needed) {
        const hit = LIB_DIRS.map((d) => posix.join(d, lib)).find((p) => resolveIn(sysroot, p));
        if (!hit) throw new Error(`${guestPath} needs ${lib}, which none of ${USER_PACKAGES.join(', ')} provides`);
        copyElf(hit);
      }
    };
    const multi = '/usr/sbin/xtables-legacy-multi';
    copyElf(multi);
    const extDir = '/usr/lib/x86_64-linux-gnu/xtables';
    const exts = readdirSync(join(sysroot, extDir)).filter((f) => f.endsWith('.so'));
    if (!exts.includes('libipt_CLUSTERIP.so')) throw new Error('iptables package has no libipt_CLUSTERIP.so');
    for (const e of exts) copyElf(posix.join(extDir, e));
    for (const n of ['iptables', 'iptables-restore', 'iptables-save', 'ip6tables', 'ip6tables-restore', 'ip6tables-save']) {
      for (const name of [n, n.replace(/^(ip6?tables)/, '$1-legacy')]) {
        const p = join(tree, 'usr/sbin', name);
        if (!existsSync(p)) symlinkSync('xtables-legacy-multi', p);
      }
    }

    // The static helper.
    await run('cc', ['-static', '-O2', '-Wall', '-o', join(tree, 'bin/qtool'), join(HERE, 'qtool.c')]);

    writeFileSync(join(tree, 'init'), INIT_SCRIPT, { mode: 0o755 });
    writeFileSync(join(tree, 'etc/qemu-modules'), WANTED_MODULES.join('\n') + '\n');
    writeFileSync(join(tree, 'etc/protocols'), PROTOCOLS);
    writeFileSync(join(tree, 'etc/passwd'), 'root:x:0:0:root:/root:/bin/sh\n');
    writeFileSync(join(tree, 'etc/group'), 'root:x:0:\n');

    const initramfs = gzipSync(cpioNewc(walkTree(tree)), { level: 6 });
    mkdirSync(join(stage, 'out'));
    copyFileSync(vmlinuz, join(stage, 'out', 'vmlinuz'));
    writeFileSync(join(stage, 'out', 'initramfs.gz'), initramfs);
    const manifest: ImageManifest = {
      key, kernelPackage: kernel.name, kernelPackageVersion: kernel.version, kernelRelease: release, packages,
      modules: [...want].sort(), files: [...copied].sort(), initramfsBytes: initramfs.length,
      buildMs: Date.now() - t0, downloadMs, builtAt: new Date().toISOString(),
    };
    writeFileSync(join(stage, 'out', 'manifest.json'), JSON.stringify(manifest, null, 2) + '\n');
    // Another run on this cache (a second `.ci/run` or `npm test` beside this one) may have
    // finished the same image meanwhile and be booting it: keep that one, never delete it
    // under its feet. A half-made directory (no manifest) is replaced; the rename is atomic.
    const other = loadManifest(dir);
    if (other) return other;
    rmSync(dir, { recursive: true, force: true });
    try {
      renameSync(join(stage, 'out'), dir);
    } catch (e) {
      const raced = loadManifest(dir);
      if (raced) return raced;
      throw e;
    }
    prune(root, key, Object.entries(packages).map(([n, v]) => debPrefix(n, v)));
    log(`qemu image ${key}: built in ${manifest.buildMs} ms (download ${downloadMs} ms), initramfs ${initramfs.length} bytes`);
    const img = loadManifest(dir);
    if (!img) throw new Error(`${dir}: image vanished right after it was built`);
    return img;
  } finally {
    rmSync(stage, { recursive: true, force: true });
  }
}

/** Keeps the cache bounded: drops images of other recipes and .deb files of other package versions. */
function prune(root: string, key: string, debPrefixes: string[]): void {
  for (const d of readdirSync(join(root, 'images'))) {
    if (d !== key && !d.startsWith('.build-')) rmSync(join(root, 'images', d), { recursive: true, force: true });
  }
  for (const f of readdirSync(join(root, 'debs'))) {
    // .dl-* are downloads in progress (download()), possibly another run's.
    if (!f.startsWith('.') && !debPrefixes.some((p) => f.startsWith(p))) rmSync(join(root, 'debs', f), { force: true });
  }
}

function loadManifest(dir: string): GuestImage | null {
  const m = join(dir, 'manifest.json'), k = join(dir, 'vmlinuz'), i = join(dir, 'initramfs.gz');
  if (!existsSync(m) || !existsSync(k) || !existsSync(i)) return null;
  return { dir, kernel: k, initramfs: i, manifest: JSON.parse(readFileSync(m, 'utf8')) as ImageManifest };
}

/** modules.dep: "kernel/a.ko: kernel/b.ko kernel/c.ko" per line. */
function parseModulesDep(text: string): Map<string, string[]> {
  const map = new Map<string, string[]>();
  for (const line of text.split('\n')) {
    const i = line.indexOf(':');
    if (i < 0) continue;
    map.set(line.slice(0, i).trim(), line.slice(i + 1).trim().split(/\s+/).filter(Boolean));
  }
  return map;
}

/** Every file, directory and symlink under `tree`, as cpio entries with guest paths (sorted: reproducible). */
function walkTree(tree: string): CpioEntry[] {
  const out: CpioEntry[] = [];
  const walk = (rel: string): void => {
    for (const name of readdirSync(join(tree, rel)).sort()) {
      const r = rel ? `${rel}/${name}` : name;
      const host = join(tree, r);
      const st = lstatSync(host);
      if (st.isSymbolicLink()) out.push({ path: r, type: 'symlink', target: readlinkSync(host) });
      else if (st.isDirectory()) { out.push({ path: r, type: 'dir', mode: 0o755 }); walk(r); }
      else out.push({ path: r, type: 'file', mode: statSync(host).mode & 0o777, data: readFileSync(host) });
    }
  };
  walk('');
  return out;
}

/** Enough of /etc/protocols for iptables' `-p name` lookups. */
const PROTOCOLS = `ip 0 IP
icmp 1 ICMP
ipencap 4 IP-ENCAP
tcp 6 TCP
udp 17 UDP
ipv6 41 IPv6
gre 47 GRE
esp 50 IPSEC-ESP
ah 51 IPSEC-AH
dccp 33 DCCP
sctp 132 SCTP
udplite 136 UDPLite
`;
