/** `glue probe` refuses what it cannot do before touching a host or opening a socket (exit 2, the flag named). */
import { afterAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCli } from '../test/cli.ts';

const dir = mkdtempSync(join(tmpdir(), 'cipsim-probe-cli-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function file(name: string, text: string): string {
  const p = join(dir, name);
  writeFileSync(p, text);
  return p;
}

// Hosts that do not exist: any attempt to reach them would fail with exit 1, not 2.
const nodes = 'nodes:\n  - { name: a, owns: [1], host: { netns: cipsim-probe-cli-none-a } }\n  - { name: b, owns: [2], host: { netns: cipsim-probe-cli-none-b } }\n';
const nft = file('nft.yaml', `cluster: { ip: 10.200.0.100, backend: nft, seed: 1, total_nodes: 2 }\n${nodes}`);
const cip = file('cip.yaml', `cluster: { ip: 10.200.0.100, backend: clusterip, hashmode: sourceip-sourceport, seed: 1, total_nodes: 2 }\n${nodes}`);
const two = file('two.yaml', `clusters:\n  - cluster: { name: x, ip: 10.200.0.100, mac: "01:00:5e:00:00:20", backend: nft, seed: 1, total_nodes: 2 }\n    ${nodes.replace(/\n {2}/g, '\n      ')}  - cluster: { name: y, ip: 10.200.0.101, mac: "01:00:5e:00:00:21", backend: nft, seed: 2, total_nodes: 2 }\n    ${nodes.replace(/\n {2}/g, '\n      ')}`);

describe('glue probe flags', () => {
  it.each([
    [['--config', nft, '--sources', '10.201.0.0/24', '--port', '0'], /--port 0: expected 1\.\.65535/],
    [['--config', nft, '--sources', '10.201.0/24'], /--sources 10\.201\.0\/24: expected an IPv4 address or prefix/],
    [['--config', nft, '--sources', '10.201.0.9/32'], /--sources 10\.201\.0\.9\/32: no candidate tuple .* node number\(s\) \d/],
    [['--config', nft, '--sources', '10.201.0.0/24', '--proto', 'icmp', '--port', '80'], /--port applies to --proto tcp only/],
    [['--config', cip, '--sources', '10.201.0.0/24', '--proto', 'icmp'], /--proto icmp: CLUSTERIP hashmode sourceip-sourceport/],
    [['--config', two, '--sources', '10.201.0.0/24'], /holds 2 clusters: add --cluster NAME/],
    [['--config', two, '--cluster', 'z', '--sources', '10.201.0.0/24'], /--cluster z: no cluster of that name/],
  ])('%j', async (args, msg) => {
    const r = await runCli(['glue', 'probe', ...args]);
    expect(r.stderr).toMatch(msg);
    expect(r.code).toBe(2);
  });
});
