import { afterAll, describe, expect, it } from 'vitest';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCli } from '../test/cli.ts';

const dir = mkdtempSync(join(tmpdir(), 'glue-agent-cli-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function files(o: { addresses?: boolean; keyMode?: number; keyFile?: boolean; owns3?: string } = {}): string {
  const key = join(dir, `k${Math.random().toString(36).slice(2)}.key`);
  writeFileSync(key, 'a-test-key-of-enough-length-0123\n');
  chmodSync(key, o.keyMode ?? 0o600);
  const addr = (i: number): string => (o.addresses === false ? '' : `, address: 10.9.0.${i}`);
  const cfg = join(dir, `c${Math.random().toString(36).slice(2)}.yaml`);
  writeFileSync(cfg, `cluster: { ip: 10.9.0.100, backend: nft, seed: 1, total_nodes: 3 }
nodes:
  - { name: node1, owns: [1]${addr(1)} }
  - { name: node2, owns: [2]${addr(2)} }
  - { name: node3, owns: ${o.owns3 ?? '[3]'}${addr(3)} }
heartbeat: { interval_s: 0.2, dead_after: 3${o.keyFile === false ? '' : `, key_file: ${key}`} }
`);
  return cfg;
}

describe('glue agent: refuses to start, naming the place', () => {
  it('without a heartbeat key: usage error (exit 2) that says how to make one', async () => {
    const r = await runCli(['glue', 'agent', '--config', files({ keyFile: false }), '--node', 'node1']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/heartbeat\.key_file.*--key-file.*chmod 600/s);
  });

  it('with a key file others can read (exit 1)', async () => {
    const r = await runCli(['glue', 'agent', '--config', files({ keyMode: 0o644 }), '--node', 'node1']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/heartbeat\.key_file .*\.key: mode 644 lets every user read the key; chmod 600/);
  });

  it('without node addresses (exit 1, every missing key named)', async () => {
    const r = await runCli(['glue', 'agent', '--config', files({ addresses: false }), '--node', 'node1']);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('nodes[0].address, nodes[1].address, nodes[2].address');
  });

  it('for a node the config does not have (exit 1)', async () => {
    const r = await runCli(['glue', 'agent', '--config', files(), '--node', 'node9']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/--node node9: no node named 'node9' .*node1, node2, node3/);
  });

  it('on a config that fails validation (exit 1, the problem named)', async () => {
    const r = await runCli(['glue', 'agent', '--config', files({ owns3: '[2]' }), '--node', 'node1']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/refuses to run.*nodes\[2\]\.owns\[0\]: node number 2 is also owned by node2/s);
  });

  it('bad numeric flags are usage errors', async () => {
    const r = await runCli(['glue', 'agent', '--config', files(), '--node', 'node1', '--health-fails', '0']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("--health-fails: '0' is not a number >= 1");
  });
});
