/**
 * The GNU parallel recipe (shard-over-ssh.sh) for real: three hosts in
 * network namespaces, each running its own sshd and holding some of the
 * rotated capture files in a directory of its own; parallel, started in a
 * client namespace, runs every shard over ssh on the host that has its file
 * (the joblog says where each ran); the merged partials equal the single
 * run over all the files on one machine.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { chmodSync, mkdirSync, readdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { ClusterNet, nodeIp, sh, runPrefix } from '../../test/netns-cluster.ts';
import { runCli } from '../../test/cli.ts';
import type { SimulateResult } from '../../sim/core/result.ts';

const HERE = dirname(fileURLToPath(import.meta.url));
const REPO = join(HERE, '..', '..');
const PREFIX = runPrefix('cipsim-gpar-');
const SEL = ['--backend', 'xt_cluster', '--total-nodes', '3', '--hash-seed', '0x9e3779b9', '--compare', '--backend nft --nft \'jhash ip saddr . th sport mod 5 seed 0x1 offset 1\'', '--flow-timeout', '2'];

let net: ClusterNet;
let files: string[] = [];
const inventory: string[] = [];

async function cli(args: string[]): Promise<string> {
  const r = await runCli(args);
  if (r.code !== 0) throw new Error(`${args.join(' ')}: exit ${r.code}\n${r.stderr}`);
  return r.stdout;
}

beforeAll(async () => {
  net = new ClusterNet({ prefix: PREFIX, nodes: 3, clientHosts: [] });
  net.setup();
  // One client key and one host key for all three sshd (each listens on its own namespace's address).
  const d = join(net.dir, 'ssh');
  mkdirSync(d, { recursive: true, mode: 0o700 });
  mkdirSync('/run/sshd', { recursive: true, mode: 0o755 });
  sh(['ssh-keygen', '-q', '-t', 'ed25519', '-N', '', '-f', join(d, 'hostkey')]);
  sh(['ssh-keygen', '-q', '-t', 'ed25519', '-N', '', '-f', join(d, 'id')]);
  writeFileSync(join(d, 'authorized_keys'), readFileSync(join(d, 'id.pub')), { mode: 0o600 });
  const hostKey = readFileSync(join(d, 'hostkey.pub'), 'utf8').split(' ').slice(0, 2).join(' ');
  writeFileSync(join(d, 'known_hosts'), [1, 2, 3].map((i) => `${nodeIp(i)} ${hostKey}\n`).join(''));
  for (let i = 0; i < 3; i++) {
    const conf = join(d, `sshd_config.${i}`);
    writeFileSync(conf, [`ListenAddress ${nodeIp(i + 1)}`, 'Port 22', `HostKey ${join(d, 'hostkey')}`, `AuthorizedKeysFile ${join(d, 'authorized_keys')}`,
      'PermitRootLogin prohibit-password', 'PasswordAuthentication no', 'KbdInteractiveAuthentication no', 'UsePAM no', 'StrictModes no',
      'SetEnv PYENV_REHASH_TIMEOUT=1', `PidFile ${join(d, `sshd.${i}.pid`)}`, ''].join('\n'));
    await net.startDaemon(net.nodes[i]!, ['/usr/sbin/sshd', '-D', '-e', '-f', conf], /Server listening/);
  }
  // Rotated captures (editcap -c), dealt to the hosts in time order: host 1 the first three, and so on.
  const one = join(net.dir, 'one.pcap');
  await cli(['gen', 'default', '--out', one, '--packets', '9000', '--snaplen', '96']);
  const rot = join(net.dir, 'rot');
  mkdirSync(rot);
  execFileSync('editcap', ['-F', 'pcap', '-c', '1000', one, join(rot, 'edge.pcap')]);
  const rotated = readdirSync(rot).sort();
  files = rotated.map((f, k) => {
    const host = 1 + Math.floor((k * 3) / rotated.length);
    mkdirSync(join(net.dir, `host${host}`), { recursive: true });
    const to = join(net.dir, `host${host}`, f);
    renameSync(join(rot, f), to);
    inventory.push(`root@${nodeIp(host)}\t${to}`);
    return to;
  });
}, 120_000);

afterAll(() => net?.teardown());

describe('GNU parallel over ssh (examples/gnu-parallel/shard-over-ssh.sh)', () => {
  it('runs every shard on the host holding its file, and the merge equals the single-machine run', async () => {
    expect(files.length).toBeGreaterThanOrEqual(9);
    const inv = join(net.dir, 'inventory.tsv');
    writeFileSync(inv, inventory.join('\n') + '\n');
    const wrapper = join(net.dir, 'clusterip-sim');
    writeFileSync(wrapper, `#!/bin/sh\nexec ${process.execPath} ${join(REPO, 'bin', 'clusterip-sim.js')} "$@"\n`);
    chmodSync(wrapper, 0o755);
    const out = join(net.dir, 'parts');
    const ssh = `ssh -i ${join(net.dir, 'ssh', 'id')} -o UserKnownHostsFile=${join(net.dir, 'ssh', 'known_hosts')} -o StrictHostKeyChecking=yes -o BatchMode=yes -o ConnectTimeout=10`;
    // parallel runs in the client namespace: the hosts are reachable only over the namespaces' bridge.
    execFileSync('ip', ['netns', 'exec', net.client, 'sh', join(HERE, 'shard-over-ssh.sh'), inv, out, ...SEL], {
      env: { ...process.env, PARALLEL_SSH: ssh, CLUSTERIP_SIM: wrapper, HOME: net.dir },
      stdio: ['ignore', 'ignore', 'pipe'],
      timeout: 600_000,
    });
    // Every shard ran where its file is.
    const log = readFileSync(join(out, 'joblog'), 'utf8').trim().split('\n').slice(1).map((l) => l.split('\t'));
    expect(log).toHaveLength(files.length);
    for (const row of log) {
      const shard = Number(/--shard (\d+)\//.exec(row[8]!)?.[1]);
      expect(row[6], `exit of shard ${shard}`).toBe('0');
      expect(row[1], `host of shard ${shard}`).toBe(inventory[shard]!.split('\t')[0]);
    }
    expect(new Set(log.map((r) => r[1])).size).toBe(3);
    const parts = files.map((_, k) => join(out, `shard-${k}.part`));
    const merged = JSON.parse(await cli(['merge', ...parts, '--json'])) as Partial<SimulateResult>;
    const single = JSON.parse(await cli(['simulate', '--pcap', ...files, ...SEL, '--json'])) as Partial<SimulateResult>;
    for (const r of [merged, single]) { delete r.generated_at; delete r.run; }
    expect(merged.input!.packets).toBe(9000);
    expect(merged).toEqual(single);
  }, 600_000);
});
