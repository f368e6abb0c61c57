import { afterEach, describe, expect, it, vi } from 'vitest';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { main } from './main.ts';

const EXAMPLE = join(import.meta.dirname, '../kernel-glue/examples/cluster.yaml');

async function run(args: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '', err = '';
  const o = vi.spyOn(process.stdout, 'write').mockImplementation((s: string | Uint8Array) => ((out += String(s)), true));
  const e = vi.spyOn(process.stderr, 'write').mockImplementation((s: string | Uint8Array) => ((err += String(s)), true));
  try {
    const code = await main(args);
    process.exitCode = undefined;
    return { code, out, err };
  } finally {
    o.mockRestore();
    e.mockRestore();
  }
}

afterEach(() => {
  process.exitCode = undefined;
});

describe('clusterip-sim glue', () => {
  it('plan --offline --json gives one plan per node and the migration share', async () => {
    const r = await run(['glue', 'plan', '--config', EXAMPLE, '--offline', '--json']);
    expect(r.code).toBe(0);
    const j = JSON.parse(r.out) as { plans: { host: string; where: string; steps: unknown[] }[]; migration: { share: number; sample: number } };
    expect(j.plans.map((p) => [p.host, p.where])).toEqual([['node1', 'local'], ['node2', 'ssh root@198.51.100.2'], ['node3', 'ssh root@198.51.100.3']]);
    expect(j.migration.sample).toBe(65536);
    expect(j.migration.share).toBeGreaterThan(0.5);
  });

  it('plan --script prints a POSIX sh script per selected host', async () => {
    const r = await run(['glue', 'plan', '--config', EXAMPLE, '--script', '--host', 'node3']);
    expect(r.code).toBe(0);
    expect(r.out.startsWith('#!/bin/sh\n')).toBe(true);
    expect(r.out).toContain("printf '%s' 'table ip clusterip_sim {}");
    expect(r.out).toContain('elements = { 3 }');
  });

  it('usage errors exit 2; an unknown node names the choices', async () => {
    expect((await run(['glue', 'move', '--config', EXAMPLE, '--bucket', 'two', '--to', 'node2'])).code).toBe(2);
    expect((await run(['glue', 'apply'])).code).toBe(2);
    const r = await run(['glue', 'plan', '--config', EXAMPLE, '--offline', '--host', 'node9']);
    expect(r.code).toBe(1);
    expect(r.err).toContain("no node named 'node9' in the config (nodes: node1, node2, node3)");
  });

  it('apply refuses a config failing validation (exit 1, file:line named) without contacting any host', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'glue-cli-'));
    try {
      const f = join(dir, 'bad.yaml');
      writeFileSync(f, 'cluster: { ip: 10.0.0.1, backend: nft, total_nodes: 2 }\nnodes:\n  - { name: a, owns: [1, 1], host: { ssh: root@192.0.2.99 } }\n');
      const r = await run(['glue', 'apply', '--config', f]);
      expect(r.code).toBe(1);
      expect(r.err).toMatch(/refusing to change hosts \(--force to apply anyway\)/);
      expect(r.err).toMatch(/bad\.yaml:3: nodes\[0\]\.owns\[1\]: node number 1 is also owned by a/);
      expect(r.err).toMatch(/node number 2 owned by no node/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('glue with a file of several clusters (kernel-glue/examples/clusters.yaml)', () => {
  const MULTI = join(import.meta.dirname, '../kernel-glue/examples/clusters.yaml');
  it('plan --offline shows each cluster with its own tables and chain; --cluster picks one', async () => {
    const all = await run(['glue', 'plan', '--offline', '--config', MULTI, '--host', 'node1']);
    expect(all.code).toBe(0);
    expect(all.out).toMatch(/== cluster web \(192\.0\.2\.10, nft\)[\s\S]*clusterip_sim_web[\s\S]*== cluster dns \(192\.0\.2\.11, xt_cluster\)[\s\S]*CLUSTERIP_SIM_DNS/);
    const one = await run(['glue', 'plan', '--offline', '--config', MULTI, '--host', 'node1', '--cluster', 'dns']);
    expect(one.out).not.toContain('clusterip_sim_web');
    expect(one.out).toContain('CLUSTERIP_SIM_DNS');
  });
  it('move without --cluster and an unknown --cluster are usage errors', async () => {
    expect((await run(['glue', 'move', '--config', MULTI, '--bucket', '1', '--to', 'node2'])).code).toBe(2);
    const bad = await run(['glue', 'status', '--config', MULTI, '--cluster', 'mail']);
    expect(bad.code).toBe(2);
    expect(bad.err).toMatch(/--cluster mail: no cluster of that name .*clusters: web, dns/);
  });
});
