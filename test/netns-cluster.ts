/**
 * A small real cluster in network namespaces, for kernel-level tests:
 *
 *   <p>br   bridge br0 (multicast snooping off, so frames to the cluster MAC reach every port)
 *   <p>c    client, eth0 10.200.0.2/24 plus extra source addresses
 *   <p>n1.. nodes, eth0 10.200.0.1K/24 plus the shared cluster IP
 *
 * Every veth is created inside the bridge namespace with its peer moved
 * straight into the node namespace: no interface or address ever appears in
 * the host's namespace. IPv6 off, rp_filter 0 (kernel-semantics §11.3);
 * with `ipv6: true` IPv6 stays on and every namespace also gets an address in
 * fd00::/16 (ULA, never routed out), the cluster address fd00:200::100.
 *
 * Namespace names are per run (`runPrefix`): two runs of the same test file
 * (two `.ci/run`s, or `npm test` beside one) never share a namespace, and
 * `cleanupStale` removes only what a run that has died left behind.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync, readFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const SUBNET = '10.200.0';
export const CLUSTER_IP = `${SUBNET}.100`;
export const CLIENT_IP = `${SUBNET}.2`;
export const nodeIp = (i: number): string => `${SUBNET}.${10 + i}`;
export const SUBNET6 = 'fd00:200::';
export const CLUSTER_IP6 = `${SUBNET6}100`;
export const CLIENT_IP6 = `${SUBNET6}2`;
export const nodeIp6 = (i: number): string => `${SUBNET6}${(0x10 + i).toString(16)}`;
/**
 * The client's extra IPv6 source address for host number h: each in its own
 * /32 (fd00:2XX::h), since xt_cluster hashes only an IPv6 source's first 32
 * bits (sim/select/xt-cluster.ts). Nodes reach them through an on-link fd00::/16 route.
 */
export const clientIp6 = (h: number): string => `fd00:${(0x200 + h).toString(16)}::${h.toString(16)}`;

export function sh(argv: string[], input?: string): string {
  return execFileSync(argv[0]!, argv.slice(1), { encoding: 'utf8', input, stdio: ['pipe', 'pipe', 'pipe'] });
}

export function tryRun(argv: string[]): boolean {
  try {
    sh(argv);
    return true;
  } catch {
    return false;
  }
}

/** Namespaces whose name starts with `prefix` (as `ip netns list` shows them). */
export function listNetns(prefix: string): string[] {
  return sh(['ip', 'netns', 'list']).split('\n').map((l) => l.split(' ')[0]!).filter((n) => n && n.startsWith(prefix));
}

/**
 * The namespace prefix of this run: `<stem>.<pid>-` for a base like
 * `cipsim-glue-`. Each test file names its namespaces with it (`${prefix}n1`,
 * ...), so concurrent runs never collide, and the pid in the name tells
 * `cleanupStale` whether the run that made them is still alive. The dot keeps
 * the name outside the plain `<base>` prefix that older copies of the tests
 * deleted wholesale. Only namespace and temporary directory names derive from
 * it: interfaces inside the namespaces have fixed short names (p0.., eth0),
 * so the 15-character interface-name limit (IFNAMSIZ) never applies to it.
 */
export function runPrefix(base: string): string {
  return `${stemOf(base)}.${process.pid}-`;
}

const stemOf = (base: string): string => base.replace(/-+$/, '');

/** True while a process with this pid exists (signal 0 only checks; EPERM means it exists). */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Kills the processes in each namespace, then deletes it; names that do not exist are passed over. */
export function deleteNetns(names: string[]): void {
  const present = new Set(listNetns(''));
  for (const ns of names) {
    if (!present.has(ns)) continue;
    for (const pid of sh(['ip', 'netns', 'pids', ns]).split('\n').filter(Boolean)) {
      try {
        process.kill(Number(pid), 'SIGKILL');
      } catch { /* already gone */ }
    }
    tryRun(['ip', 'netns', 'del', ns]);
  }
}

/**
 * Removes namespaces that a killed run of the same test left: those named by
 * `runPrefix(base)` in another process whose pid no longer exists. Live runs'
 * namespaces (and this run's) are never touched. `base` may be given as the
 * base or as this run's prefix.
 */
export function cleanupStale(base: string): void {
  const stem = stemOf(base.endsWith(`.${process.pid}-`) ? base.slice(0, -`.${process.pid}-`.length) : base);
  const owned = new RegExp(`^${stem.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\\.(\\d+)-`);
  deleteNetns(listNetns(stem).filter((ns) => {
    const m = owned.exec(ns);
    return m !== null && Number(m[1]) !== process.pid && !alive(Number(m[1]));
  }));
}

export interface TopologyOptions {
  /** This run's namespace prefix (`runPrefix(base)`). */
  prefix: string;
  nodes: number;
  /** Extra client source addresses (10.200.0.X for X in this list; with ipv6 also clientIp6(X)). */
  clientHosts: number[];
  /** Keep IPv6 on and add the fd00:200::/64 addresses (nodad: every node holds the cluster address, so DAD would fail it). */
  ipv6?: boolean;
}

export class ClusterNet {
  readonly br: string;
  readonly client: string;
  readonly nodes: string[];
  readonly dir: string;
  private procs: ChildProcess[] = [];

  constructor(readonly o: TopologyOptions) {
    this.br = `${o.prefix}br`;
    this.client = `${o.prefix}c`;
    this.nodes = Array.from({ length: o.nodes }, (_, i) => `${o.prefix}n${i + 1}`);
    this.dir = mkdtempSync(join(tmpdir(), `${o.prefix}`));
  }

  /**
   * A cluster set up in its namespaces, then `prepare`d (servers, files,
   * rules): if either step throws, everything made so far is torn down
   * before the error goes on, so a failed beforeAll leaves nothing behind.
   */
  static async open(o: TopologyOptions, prepare: (net: ClusterNet) => void | Promise<void> = () => {}): Promise<ClusterNet> {
    const net = new ClusterNet(o);
    try {
      net.setup();
      await prepare(net);
      return net;
    } catch (e) {
      net.teardown();
      throw e;
    }
  }

  ns(name: string, argv: string[], input?: string): string {
    return sh(['ip', 'netns', 'exec', name, ...argv], input);
  }

  setup(): void {
    cleanupStale(this.o.prefix);
    deleteNetns(listNetns(this.o.prefix));
    const all = [this.br, this.client, ...this.nodes];
    for (const n of all) {
      sh(['ip', 'netns', 'add', n]);
      this.ns(n, ['ip', 'link', 'set', 'lo', 'up']);
      const v6 = this.o.ipv6 ? [] : ['net.ipv6.conf.all.disable_ipv6=1', 'net.ipv6.conf.default.disable_ipv6=1'];
      for (const k of [...v6, 'net.ipv4.conf.all.rp_filter=0', 'net.ipv4.conf.default.rp_filter=0']) {
        this.ns(n, ['sysctl', '-qw', k]);
      }
    }
    this.ns(this.br, ['ip', 'link', 'add', 'br0', 'type', 'bridge', 'mcast_snooping', '0']);
    this.ns(this.br, ['ip', 'link', 'set', 'br0', 'up']);
    [this.client, ...this.nodes].forEach((n, i) => {
      const port = `p${i}`;
      this.ns(this.br, ['ip', 'link', 'add', port, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', n]);
      this.ns(this.br, ['ip', 'link', 'set', port, 'master', 'br0', 'up']);
      this.ns(n, ['sysctl', '-qw', 'net.ipv4.conf.eth0.rp_filter=0']);
      this.ns(n, ['ip', 'link', 'set', 'eth0', 'up']);
    });
    this.ns(this.client, ['ip', 'addr', 'add', `${CLIENT_IP}/24`, 'dev', 'eth0']);
    for (const h of this.o.clientHosts) this.ns(this.client, ['ip', 'addr', 'add', `${SUBNET}.${h}/32`, 'dev', 'eth0']);
    this.nodes.forEach((n, i) => {
      this.ns(n, ['ip', 'addr', 'add', `${nodeIp(i + 1)}/24`, 'dev', 'eth0']);
      this.ns(n, ['ip', 'addr', 'add', `${CLUSTER_IP}/32`, 'dev', 'eth0']);
    });
    if (this.o.ipv6) {
      this.ns(this.client, ['ip', '-6', 'addr', 'add', `${CLIENT_IP6}/64`, 'dev', 'eth0', 'nodad']);
      for (const h of this.o.clientHosts) this.ns(this.client, ['ip', '-6', 'addr', 'add', `${clientIp6(h)}/128`, 'dev', 'eth0', 'nodad']);
      this.nodes.forEach((n, i) => {
        this.ns(n, ['ip', '-6', 'addr', 'add', `${nodeIp6(i + 1)}/64`, 'dev', 'eth0', 'nodad']);
        this.ns(n, ['ip', '-6', 'addr', 'add', `${CLUSTER_IP6}/128`, 'dev', 'eth0', 'nodad']);
        this.ns(n, ['ip', '-6', 'route', 'add', 'fd00::/16', 'dev', 'eth0']);
      });
    }
  }

  /** Starts a long-running process in a namespace; it is killed by teardown. Resolves when it prints `ready`. */
  startDaemon(ns: string, argv: string[], ready: RegExp, timeoutMs = 10_000): Promise<ChildProcess> {
    const p = spawn('ip', ['netns', 'exec', ns, ...argv], { stdio: ['ignore', 'pipe', 'pipe'] });
    this.procs.push(p);
    return new Promise((resolve, reject) => {
      let seen = '';
      const t = setTimeout(() => reject(new Error(`${argv[0]} in ${ns} not ready after ${timeoutMs} ms: ${seen}`)), timeoutMs);
      const on = (d: Buffer): void => {
        seen += d.toString();
        if (ready.test(seen)) {
          clearTimeout(t);
          resolve(p);
        }
      };
      p.stdout!.on('data', on);
      p.stderr!.on('data', on);
      p.on('exit', (code) => {
        clearTimeout(t);
        reject(new Error(`${argv.join(' ')} in ${ns} exited with ${code}: ${seen}`));
      });
    });
  }

  /** A TCP server on ip:port (default CLUSTER_IP) in every node namespace that answers with the node's name. */
  async startNameServers(names: string[], port: number, ip = CLUSTER_IP): Promise<void> {
    const code = "const net=require('net');const [name,ip,port]=process.argv.slice(1);net.createServer(s=>{s.on('error',()=>{});s.end(name+'\\n')}).listen(Number(port),ip,()=>console.log('ready'))";
    await Promise.all(this.nodes.map((ns, i) => this.startDaemon(ns, [process.execPath, '-e', code, names[i]!, ip, String(port)], /ready/)));
  }

  /**
   * From the client namespace, opens one TCP connection per (source address,
   * source port) to ip:port (default CLUSTER_IP) and returns each answer ('' when none came).
   */
  connectAll(flows: { src: string; sport: number }[], port: number, timeoutMs = 3000, ip = CLUSTER_IP): string[] {
    const code = `const net=require('net');const flows=JSON.parse(require('fs').readFileSync(0,'utf8'));const out=new Array(flows.length).fill('');let next=0;
function one(i){return new Promise(res=>{const f=flows[i];let buf='';const s=net.connect({host:${JSON.stringify(ip)},port:${port},localAddress:f.src,localPort:f.sport});
const t=setTimeout(()=>{s.destroy();res()},${timeoutMs});s.on('data',d=>buf+=d);s.on('error',()=>{});s.on('close',()=>{clearTimeout(t);out[i]=buf.trim();res()})})}
async function worker(){while(next<flows.length){await one(next++)}}
Promise.all(Array.from({length:16},worker)).then(()=>process.stdout.write(JSON.stringify(out)))`;
    return JSON.parse(this.ns(this.client, [process.execPath, '-e', code], JSON.stringify(flows))) as string[];
  }

  /**
   * sshd in a node namespace with a throwaway host key and client key; returns
   * the ssh options a config needs (identity, known_hosts).
   */
  async startSshd(nodeIndex: number): Promise<{ identity: string; known_hosts: string; dest: string }> {
    const d = join(this.dir, 'ssh');
    mkdirSync(d, { recursive: true, mode: 0o700 });
    mkdirSync('/run/sshd', { recursive: true, mode: 0o755 });
    sh(['ssh-keygen', '-q', '-t', 'ed25519', '-N', '', '-f', join(d, 'hostkey')]);
    sh(['ssh-keygen', '-q', '-t', 'ed25519', '-N', '', '-f', join(d, 'id')]);
    writeFileSync(join(d, 'authorized_keys'), readFileSync(join(d, 'id.pub')), { mode: 0o600 });
    const ip = nodeIp(nodeIndex + 1);
    writeFileSync(join(d, 'known_hosts'), `${ip} ${readFileSync(join(d, 'hostkey.pub'), 'utf8').split(' ').slice(0, 2).join(' ')}\n`);
    writeFileSync(
      join(d, 'sshd_config'),
      [`ListenAddress ${ip}`, 'Port 22', `HostKey ${join(d, 'hostkey')}`, `AuthorizedKeysFile ${join(d, 'authorized_keys')}`, 'PermitRootLogin prohibit-password',
        'PasswordAuthentication no', 'KbdInteractiveAuthentication no', 'UsePAM no', 'StrictModes no',
        // Remote commands run root's shell, which reads ~/.bashrc; on machines whose .bashrc runs
        // `pyenv init`, a stale rehash lock would stall every command for 60 s.
        'SetEnv PYENV_REHASH_TIMEOUT=1', `PidFile ${join(d, 'sshd.pid')}`, 'LogLevel VERBOSE', ''].join('\n'),
    );
    await this.startDaemon(this.nodes[nodeIndex]!, ['/usr/sbin/sshd', '-D', '-e', '-f', join(d, 'sshd_config')], /Server listening/);
    return { identity: join(d, 'id'), known_hosts: join(d, 'known_hosts'), dest: `root@${ip}` };
  }

  teardown(): void {
    for (const p of this.procs) {
      if (p.exitCode === null && p.pid) {
        try {
          process.kill(p.pid, 'SIGKILL');
        } catch { /* gone */ }
      }
    }
    this.procs = [];
    deleteNetns(listNetns(this.o.prefix));
    rmSync(this.dir, { recursive: true, force: true });
  }
}
