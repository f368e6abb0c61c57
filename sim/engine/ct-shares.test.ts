/**
 * Conntrack validity across share boundaries (issue 17): a capture whose
 * connections all run across every byte range the workers read. A
 * connection's FIN, its last ACKs and an echo reply sit in a later share than
 * the SYN or the request that opened it; judged there from a fresh table they
 * would be INVALID (no node under xt_cluster, ct keys and CLUSTERIP). The
 * result must equal the single pass for 0, 1, 2 and 3 workers, and the single
 * pass must count exactly the packets conntrack accepts.
 */
import { describe, expect, it } from 'vitest';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCli } from '../../test/cli.ts';
import { icmpEcho, ipv4, tcp, writePcap, type Rec } from '../../test/frames.ts';
import type { SimulateResult } from '../core/result.ts';

const dir = mkdtempSync(join(tmpdir(), 'cipsim-ctshares-'));
const CIP = '192.0.2.10';
const { FIN, SYN, RST, ACK, PSH } = { FIN: 1, SYN: 2, RST: 4, PSH: 8, ACK: 16 };

function ether(ip: Uint8Array): Uint8Array {
  const b = new Uint8Array(14 + ip.length);
  b.set([1, 0, 0x5e, 0, 0, 0x20, 2, 0, 0, 0, 0, 2, 8, 0]);
  b.set(ip, 14);
  return b;
}

/**
 * `conns` TCP conversations opened first, then their packets round-robin, so
 * each one spans the whole capture; `oneWay` of them without the server's
 * packets; an echo request per client answered at the end; a lone FIN, RST and
 * SYN|ACK per 10 clients. Returns the capture and the packets to the cluster
 * IP conntrack accepts.
 */
function capture(conns: number, oneWay: number): { path: string; valid: number; rotated: string[] } {
  const recs: Rec[] = [];
  let t = 0, valid = 0;
  const push = (src: string, dst: string, l4: Uint8Array, proto: number, ok: boolean): void => {
    recs.push({ ts: [1_700_000_000 + Math.floor(t / 1000), (t % 1000) * 1000], data: ether(ipv4({ src, dst, proto, id: recs.length & 0xffff }, l4)) });
    t++;
    if (dst === CIP && ok) valid++;
  };
  const cl = (i: number): string => `10.9.${i >> 8}.${1 + (i & 255) % 250}`;
  const port = (i: number): number => 20000 + i;
  const seq: [number, 'c' | 's', number][] = [];
  for (let i = 0; i < conns; i++) seq.push([i, 'c', SYN], [i, 's', SYN | ACK]);
  for (const [f, who] of [[ACK, 'c'], [ACK | PSH, 'c'], [ACK | PSH, 's'], [ACK, 'c'], [FIN | ACK, 's'], [ACK, 'c'], [FIN | ACK, 'c'], [ACK, 's']] as const) {
    for (let i = 0; i < conns; i++) seq.push([i, who, f]);
  }
  for (let i = 0; i < conns; i++) push(cl(i), CIP, icmpEcho(8, i, 1), 1, true);
  for (const [i, who, f] of seq) {
    if (who === 's' && i < oneWay) continue;
    if (who === 'c') push(cl(i), CIP, tcp(port(i), 80, f, f & PSH ? 50 : 0), 6, true);
    else push(CIP, cl(i), tcp(80, port(i), f, f & PSH ? 50 : 0), 6, true);
    if (i % 10 === 0 && who === 'c' && f === (ACK | PSH)) {
      for (const g of [FIN | ACK, RST, SYN | ACK]) push(`10.8.0.${1 + (i % 200)}`, CIP, tcp(40000 + g, 80, g), 6, false);
    }
  }
  // The clients answer the cluster's echo requests they never got: INVALID. And echo requests the cluster answers.
  for (let i = 0; i < conns; i++) push(cl(i), CIP, icmpEcho(0, 5000 + i, 1), 1, false);
  for (let i = 0; i < conns; i++) push(CIP, cl(i), icmpEcho(0, i, 1), 1, true);
  const path = writePcap(join(dir, `conv-${conns}-${oneWay}.pcap`), recs);
  // The same capture rotated into three files (one stream, as tcpdump -C writes it).
  const third = Math.ceil(recs.length / 3);
  const rotated = [0, 1, 2].map((k) => writePcap(join(dir, `conv-${conns}-${oneWay}.${k}.pcap`), recs.slice(k * third, (k + 1) * third)));
  return { path, valid, rotated };
}

function comparable(r: SimulateResult): unknown {
  const { run: _run, generated_at: _g, ...rest } = r;
  return rest;
}

async function simulate(args: string[], workers: number): Promise<SimulateResult> {
  const r = await runCli(['simulate', ...args, '--cluster-ip', CIP, '--no-hash', '--json', '--workers', String(workers)]);
  expect(r.code, r.stderr).toBe(0);
  return JSON.parse(r.stdout) as SimulateResult;
}

const SEL = ['--backend', 'xt_cluster', '--total-nodes', '3', '--hash-seed', '0x1234',
  '--compare', '--backend clusterip --hashmode sourceip-sourceport --total-nodes 3',
  '--compare', '--backend nft --nft "jhash ct original ip saddr mod 3 seed 0x9 offset 1"'];

describe('conntrack state across share boundaries', () => {
  it('connections cut by every boundary: 0, 1, 2 and 3 workers give the single pass, which counts what conntrack accepts', async () => {
    const { path, valid } = capture(300, 60);
    const base = await simulate(['--pcap', path, ...SEL], 0);
    for (const c of base.configs) expect(c.nodes.reduce((s, n) => s + n.packets, 0), c.id).toBe(valid);
    // The one-way connections' missing SYN|ACKs are assumed and said.
    expect(base.warnings?.some((w) => /60 TCP connections went on after the SYN/.test(w))).toBe(true);
    for (const w of [1, 2, 3]) expect(comparable(await simulate(['--pcap', path, ...SEL], w))).toEqual(comparable(base));
  });
  it('rotated files: each file\'s end state is the next one\'s start (0 and 1 workers run them in order without a first pass; 2 and 3 scan)', async () => {
    const { path, rotated } = capture(300, 60);
    const base = comparable(await simulate(['--pcap', path, ...SEL], 0));
    const files = rotated.flatMap((f) => ['--pcap', f]);
    for (const w of [0, 1, 2, 3]) {
      const r = comparable(await simulate([...files, ...SEL], w)) as { input?: unknown };
      // The input block names the files; every count must be the single file's.
      expect({ ...r, input: null }, `workers ${w}`).toEqual({ ...(base as object), input: null });
    }
  });
  it('nf_conntrack_tcp_loose=0 changes nothing for connections seen from their SYN, also across boundaries', async () => {
    const { path, valid } = capture(200, 0);
    const base = await simulate(['--pcap', path, ...SEL, '--tcp-loose', '0'], 0);
    for (const c of base.configs) expect(c.nodes.reduce((s, n) => s + n.packets, 0), c.id).toBe(valid);
    for (const w of [2, 3]) expect(comparable(await simulate(['--pcap', path, ...SEL, '--tcp-loose', '0'], w))).toEqual(comparable(base));
  });
});
