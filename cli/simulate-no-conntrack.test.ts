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
import * as fr from '../test/frames.ts';
import type { SimulateResult } from '../sim/core/result.ts';
import { buildSelector } from '../sim/select/build.ts';
import { createBatch } from '../sim/traffic/batch.ts';
import { writeTupleV4 } from '../sim/traffic/tuple.ts';

const dir = mkdtempSync(join(tmpdir(), 'cipsim-noct-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const DST = '192.0.2.10', DST_N = 0xc000020a, NODES = 3;
const PORTS = 'jhash ip saddr . th sport . th dport mod 3 seed 0x5';
const ADDRS = 'jhash ip saddr mod 3 seed 0x5';

/** One frame as the rule sees it without defragmentation: its source and the 4 bytes at its own transport offset. */
interface Frame { src: number; proto: number; l4word: number; dgram: number; wire: number }

const frames: Frame[] = [];
let datagrams = 0;
const capture = ((): string => {
  const recs: fr.Rec[] = [];
  let t = 0;
  for (let k = 0; k < 90; k++) {
    const src = `10.9.${k % 5}.${1 + k}`, srcN = ((10 << 24) | (9 << 16) | ((k % 5) << 8) | (1 + k)) >>> 0;
    const nfrag = 1 + (k % 3);
    const tcp = k % 4 === 3;
    const proto = tcp ? 6 : 17;
    const l4 = tcp ? fr.tcp(30000 + k, 443, 0x18, 8 * 24 * nfrag) : fr.udp(30000 + k, 53, 8 * 24 * nfrag - 8);
    // Payload bytes differ per datagram, so non-first fragments' "ports" differ too.
    for (let i = tcp ? 20 : 8; i < l4.length; i++) l4[i] = (l4[i]! ^ (k * 37 + i)) & 255;
    if (!tcp) { l4[6] = 0; l4[7] = 0; }
    const edges = Array.from({ length: nfrag + 1 }, (_, j) => Math.min(l4.length, j * 192));
    const built: { data: Uint8Array; off: number }[] = [];
    for (let j = 0; j < nfrag; j++) {
      const ip = nfrag === 1
        ? fr.ipv4({ proto, src, dst: DST }, l4)
        : fr.ipv4({ proto, src, dst: DST, id: 0x200 + k, fragOff: edges[j]!, mf: j + 1 < nfrag }, l4.subarray(edges[j]!, edges[j + 1]!));
      built.push({ data: fr.ether(ip, 0x0800), off: edges[j]! });
    }
    // Out of order for every third datagram (last fragment first).
    if (k % 3 === 2) built.reverse();
    for (const b of built) {
      const p = b.off;
      const word = ((l4[p]! << 24) | (l4[p + 1]! << 16) | (l4[p + 2]! << 8) | l4[p + 3]!) >>> 0;
      frames.push({ src: srcN, proto, l4word: word, dgram: k, wire: b.data.length });
      recs.push({ ts: [1700000000 + Math.floor(t / 1e6), t % 1e6], data: b.data });
      t += 500;
    }
    datagrams++;
  }
  return fr.writePcap(join(dir, 'frags.pcap'), recs);
})();

/** The node (bucket) of each frame under `expr`, hashing the key the kernel reads from that frame alone. */
function framesNodes(expr: string): number[] {
  const sel = buildSelector({ backend: 'nft', expr, kernel: '6.18', endian: 'little' });
  const b = createBatch(1), out = new Int32Array(1);
  return frames.map((f) => {
    writeTupleV4(b, 0, f.proto, f.src, f.l4word >>> 16, DST_N, f.l4word & 0xffff);
    b.count = 1;
    sel.select(b, out);
    return out[0]!;
  });
}

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
