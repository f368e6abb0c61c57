/**
 * Capture fixtures made by real tools for the replay tests: tcpdump on a veth
 * in a private namespace pair, with real TCP connections, UDP datagrams large
 * enough to be fragmented, fragmented pings. VLAN-tagged originals come from
 * tcpreplay's tcprewrite (802.1Q tag added to every frame): the test kernel
 * may have no 8021q module for a real VLAN device.
 *
 *   <p>ta  a0 10.201.0.1/24, 10.201.7.1/24 + 10.201.7.20..39 (sources)
 *   <p>tb  b0 10.201.0.2/24, 10.201.7.2/24, TCP server on :8080, tcpdump -i b0
 */
import { execFileSync, spawn } from 'node:child_process';
import { cleanupStale, deleteNetns, listNetns, runPrefix, sh } from './netns-cluster.ts';

const ns = (n: string, argv: string[], input?: string): string => sh(['ip', 'netns', 'exec', n, ...argv], input);

function waitFor(p: ReturnType<typeof spawn>, re: RegExp, what: string, ms = 10_000): Promise<void> {
  return new Promise((resolve, reject) => {
    let seen = '';
    const t = setTimeout(() => reject(new Error(`${what} not ready: ${seen}`)), ms);
    const on = (d: Buffer): void => {
      seen += d.toString();
      if (re.test(seen)) { clearTimeout(t); resolve(); }
    };
    p.stdout?.on('data', on);
    p.stderr?.on('data', on);
    p.on('exit', (c) => { clearTimeout(t); reject(new Error(`${what} exited ${c}: ${seen}`)); });
  });
}

/** Records real traffic into `out` (pcap). Namespaces `${runPrefix(base)}ta/tb` exist only during the call. */
export async function captureRealTraffic(base: string, out: string): Promise<void> {
  const prefix = runPrefix(base);
  cleanupStale(prefix);
  const a = `${prefix}ta`, b = `${prefix}tb`;
  deleteNetns(listNetns(`${prefix}t`));
  const procs: ReturnType<typeof spawn>[] = [];
  try {
    for (const n of [a, b]) {
      sh(['ip', 'netns', 'add', n]);
      ns(n, ['ip', 'link', 'set', 'lo', 'up']);
      for (const k of ['net.ipv6.conf.all.disable_ipv6=1', 'net.ipv6.conf.default.disable_ipv6=1', 'net.ipv4.conf.all.rp_filter=0', 'net.ipv4.conf.default.rp_filter=0']) ns(n, ['sysctl', '-qw', k]);
    }
    ns(a, ['ip', 'link', 'add', 'a0', 'type', 'veth', 'peer', 'name', 'b0', 'netns', b]);
    for (const [n, i, x] of [[a, 'a0', '1'], [b, 'b0', '2']] as const) {
      ns(n, ['ip', 'link', 'set', i, 'up']);
      ns(n, ['ip', 'addr', 'add', `10.201.0.${x}/24`, 'dev', i]);
      ns(n, ['ip', 'addr', 'add', `10.201.7.${x}/24`, 'dev', i]);
    }
    for (let h = 20; h < 40; h++) ns(a, ['ip', 'addr', 'add', `10.201.7.${h}/32`, 'dev', 'a0']);
    const server = spawn('ip', ['netns', 'exec', b, process.execPath, '-e',
      "const net=require('net');net.createServer(s=>{s.on('error',()=>{});s.on('data',()=>{});s.end('hi\\n')}).listen(8080,'0.0.0.0',()=>console.log('ready'))"], { stdio: ['ignore', 'pipe', 'pipe'] });
    procs.push(server);
    await waitFor(server, /ready/, 'TCP server');
    const dump = spawn('ip', ['netns', 'exec', b, 'tcpdump', '-i', 'b0', '--immediate-mode', '-U', '-n', '-w', out], { stdio: ['ignore', 'pipe', 'pipe'] });
    procs.push(dump);
    await waitFor(dump, /listening on/, 'tcpdump');
    // TCP from 20 sources over the VLAN and from the plain address; UDP big (fragmented) and small; fragmented pings.
    const traffic = `const net=require('net'),dgram=require('dgram');
const conn=(src,dst)=>new Promise(r=>{const s=net.connect({host:dst,port:8080,localAddress:src});s.on('error',r);s.on('connect',()=>s.write('hello'));s.on('data',()=>{});s.on('close',r)});
(async()=>{
 for(let h=20;h<40;h++){await conn('10.201.7.'+h,'10.201.7.2');}
 await conn('10.201.0.1','10.201.0.2');
 for(let h=20;h<30;h++){await new Promise(r=>{const u=dgram.createSocket('udp4');u.bind(0,'10.201.7.'+h,()=>{u.send(Buffer.alloc(h%2?4000:200,7),9999,'10.201.7.2',()=>{u.close();r()})})})}
 await new Promise(r=>{const u=dgram.createSocket('udp4');u.bind(5353,'10.201.0.1',()=>{u.send(Buffer.alloc(3000,1),9999,'10.201.0.2',()=>{u.close();r()})})});
})()`;
    ns(a, [process.execPath, '-e', traffic]);
    ns(a, ['ping', '-q', '-c', '2', '-i', '0.2', '-s', '3000', '-I', '10.201.7.21', '10.201.7.2']);
    ns(a, ['ping', '-q', '-c', '1', '-s', '56', '10.201.0.2']);
    await new Promise((r) => setTimeout(r, 300));
    let log = '';
    dump.stderr!.on('data', (d: Buffer) => (log += d.toString()));
    const exited = new Promise<void>((r) => dump.on('exit', () => r()));
    dump.kill('SIGINT');
    await exited;
    if (process.env.DEBUG_FIXTURES) process.stderr.write(log);
  } finally {
    for (const p of procs) if (p.exitCode === null && p.pid) try { process.kill(p.pid, 'SIGKILL'); } catch { /* gone */ }
    deleteNetns([a, b]);
  }
}

/** tcprewrite adds an 802.1Q tag (VLAN 7) to every frame. */
export function addVlanTag(src: string, dst: string, vlan = 7): void {
  execFileSync('tcprewrite', ['--enet-vlan=add', `--enet-vlan-tag=${vlan}`, '--enet-vlan-cfi=0', '--enet-vlan-pri=0', '-i', src, '-o', dst]);
}

/** `editcap -F pcapng`: the same capture as pcapng (the replay reads both). */
export function toPcapng(src: string, dst: string): void {
  execFileSync('editcap', ['-F', 'pcapng', src, dst]);
}
