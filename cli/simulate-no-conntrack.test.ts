/**
 * `simulate --no-conntrack`: a namespace without conntrack defragments
 * nothing, so every fragment is a packet and a non-first fragment's "ports"
 * are its payload's first bytes (capture.ts ownL4, measured 6.18.44). In the
 * default mode the same capture gives one packet per datagram and a warning
 * that counts the datagrams the no-conntrack case would split. Expected
 * numbers are computed here from the frames we build, hashing each frame's key
 * as the kernel reads it.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCli } from '../test/cli.ts';
import { buildFragCapture, FRAG_DST, frameBuckets } from '../test/frag-capture.ts';
import type { SimulateResult } from '../sim/core/result.ts';

const dir = mkdtempSync(join(tmpdir(), 'cipsim-noct-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const NODES = 3;
const DST = FRAG_DST;
const PORTS = 'jhash ip saddr . th sport . th dport mod 3 seed 0x5';
const ADDRS = 'jhash ip saddr mod 3 seed 0x5';
const { path: capture, frames, datagrams } = buildFragCapture(dir);
const framesNodes = (expr: string): number[] => frameBuckets(expr, frames);

async function simulate(expr: string, extra: string[]): Promise<SimulateResult> {
  const r = await runCli(['simulate', '--pcap', capture, '--backend', 'nft', '--nft', expr, '--cluster-ip', DST, '--json', ...extra]);
  expect(r.stderr).not.toMatch(/error/i);
  expect(r.code).toBe(0);
  return JSON.parse(r.stdout) as SimulateResult;
}

describe('simulate --no-conntrack', () => {
  it('counts every fragment as a packet on the node its own bytes hash to, for 0 and 2 workers', async () => {
    const nodes = framesNodes(PORTS);
    const exp = Array.from({ length: NODES }, () => [0, 0, 0]);
    frames.forEach((f, i) => { const e = exp[nodes[i]!]!; e[0]! += 1; e[1]! += 1; e[2]! += f.wire; });
    const seen: string[] = [];
    for (const w of ['0', '2']) {
      const j = await simulate(PORTS, ['--no-conntrack', '--workers', w]);
      expect(j.input.no_conntrack).toBe(true);
      expect(j.input.skipped['unresolved-fragment'] ?? 0).toBe(0);
      const got = j.configs[0]!.nodes.map((n) => [n.packets, n.frames, n.bytes]);
      expect(got).toEqual(exp);
      expect(j.warnings ?? []).toEqual([]);
      seen.push(JSON.stringify(got));
    }
    expect(new Set(seen).size).toBe(1);
  });

  it('an address-only key keeps every fragment of a datagram on one node', async () => {
    const nodes = framesNodes(ADDRS);
    const j = await simulate(ADDRS, ['--no-conntrack', '--workers', '0']);
    const byDgram = new Map<number, Set<number>>();
    frames.forEach((f, i) => byDgram.set(f.dgram, (byDgram.get(f.dgram) ?? new Set()).add(nodes[i]!)));
    expect([...byDgram.values()].every((s) => s.size === 1)).toBe(true);
    const exp = Array.from({ length: NODES }, () => 0);
    for (const n of nodes) exp[n]!++;
    expect(j.configs[0]!.nodes.map((n) => n.packets)).toEqual(exp);
    expect(j.configs[0]!.nodes.map((n) => n.frames)).toEqual(exp);
  });

  it('refuses rules that need conntrack, and inputs without fragments, with exit 2 naming the flag', async () => {
    const cases: string[][] = [
      ['--pcap', capture, '--backend', 'clusterip', '--hashmode', 'sourceip', '--total-nodes', '3'],
      ['--pcap', capture, '--backend', 'xt_cluster', '--total-nodes', '3', '--hash-seed', '1'],
      ['--pcap', capture, '--backend', 'nft', '--nft', 'jhash ct original ip saddr mod 3 seed 0x1 offset 1'],
      ['--pcap', capture, '--backend', 'nft', '--nft', PORTS, '--compare', '--backend xt_cluster --total-nodes 3 --hash-seed 1'],
      ['--synthetic', 'uniform', '--backend', 'nft', '--nft', PORTS],
    ];
    for (const c of cases) {
      const r = await runCli(['simulate', ...c, '--no-conntrack', '--json']);
      expect(r.code, c.join(' ')).toBe(2);
      expect(r.stderr).toContain('--no-conntrack');
      expect(r.stdout).toBe('');
    }
  });
});

describe('simulate with conntrack (default) on fragments', () => {
  it('one packet per datagram, and a warning with the number of datagrams --no-conntrack would split', async () => {
    const nodes = framesNodes(PORTS);
    const per = new Map<number, Set<number>>();
    frames.forEach((f, i) => per.set(f.dgram, (per.get(f.dgram) ?? new Set()).add(nodes[i]!)));
    const split = [...per.values()].filter((s) => s.size > 1).length;
    expect(split).toBeGreaterThan(0);
    const j = await simulate(PORTS, ['--workers', '0']);
    const nodesJ = j.configs[0]!.nodes;
    expect(nodesJ.reduce((a, n) => a + n.packets, 0)).toBe(datagrams);
    expect(nodesJ.reduce((a, n) => a + n.frames, 0)).toBe(frames.length);
    const w = (j.warnings ?? []).filter((x) => x.includes('would be split'));
    expect(w).toHaveLength(1);
    expect(w[0]).toContain(`${split} fragmented datagrams would be split across nodes`);
  });

  it('no such warning where it cannot happen (an address-only key, or a rule that needs conntrack)', async () => {
    const j = await simulate(ADDRS, ['--workers', '0']);
    expect((j.warnings ?? []).some((x) => x.includes('would be split'))).toBe(false);
    const r = await runCli(['simulate', '--pcap', capture, '--backend', 'xt_cluster', '--total-nodes', '3', '--hash-seed', '1', '--cluster-ip', DST, '--json', '--workers', '0']);
    expect(r.code).toBe(0);
    expect(((JSON.parse(r.stdout) as SimulateResult).warnings ?? []).some((x) => x.includes('would be split'))).toBe(false);
  });
});
