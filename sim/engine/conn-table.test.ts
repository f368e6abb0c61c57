/**
 * Connections with an idle timeout: the engine's counts must equal a plain
 * reference model (a Map, one entry per 5-tuple pair, rebuilt from scratch
 * here), and must not depend on how a capture is cut into byte ranges, even
 * when connections span the cuts and the timeout splits them.
 */
import { describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { createBatch, F } from '../traffic/batch.ts';
import { writeTupleV4 } from '../traffic/tuple.ts';
import { PcapWriter } from '../traffic/pcap-writer.ts';
import { runSimulation } from './run.ts';
import { analyse } from '../analysis/distribution.ts';
import { buildSelector } from '../select/build.ts';
import type { SelectorSpec } from '../select/selector.ts';
import { directionDependent, processShare } from './share.ts';
import { ConnTable, PK0, PK1, REC } from './conn-table.ts';
import { connKey } from '../cluster/conn-key.ts';
import { K, step, TH, V, type StepOut } from '../cluster/ct-model.ts';
import { writeTupleV6 } from '../traffic/tuple.ts';
import { fileDir } from '../../test/tmp.ts';

interface Pkt { ts: number; proto: number; s: number; sp: number; d: number; dp: number; len: number; syn: boolean }

function lcg(seed: number): () => number {
  let s = seed >>> 0;
  return () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 4294967296);
}

/** A stream over few endpoints (so 5-tuples recur) with idle gaps around the timeout. */
function stream(n: number, seed: number): Pkt[] {
  const rnd = lcg(seed);
  const out: Pkt[] = [];
  let ts = 1_700_000_000;
  for (let i = 0; i < n; i++) {
    // Mostly sub-second steps, sometimes a pause of several seconds (longer than the 2 s timeout used below).
    ts += rnd() < 0.002 ? 3 + rnd() * 3 : rnd() * 0.01;
    ts = Math.round(ts * 1e6) / 1e6; // pcap keeps microseconds
    const client = 0x0a000001 + Math.floor(rnd() * 40), server = 0xc000020a;
    const cport = 1024 + Math.floor(rnd() * 8), sport = rnd() < 0.5 ? 80 : 443;
    const up = rnd() < 0.6;
    const proto = rnd() < 0.8 ? 6 : 17;
    out.push(up
      ? { ts, proto, s: client, sp: cport, d: server, dp: sport, len: 60 + Math.floor(rnd() * 1400), syn: proto === 6 && rnd() < 0.05 }
      : { ts, proto, s: server, sp: sport, d: client, dp: cport, len: 60 + Math.floor(rnd() * 1400), syn: false });
  }
  return out;
}

/**
 * The rule, written plainly: a packet joins its 5-tuple pair's connection unless that was idle for more
 * than `timeout`; a packet conntrack marks INVALID joins none (which ones: the conntrack model's `step`,
 * tested on its own in cluster/ct-model.test.ts).
 */
function reference(pkts: Pkt[], timeout: number): { connections: number; flows: number } {
  const open = new Map<string, { last: number; dirs: Set<string> }>();
  const ct = new Map<string, { code: number; last: number }>();
  const o: StepOut = { code: 0, verdict: 0, assumed: false };
  let connections = 0, flows = 0;
  const close = (c: { dirs: Set<string> }): void => { connections++; flows += c.dirs.size; };
  for (const p of pkts) {
    const a = `${p.s}:${p.sp}`, b = `${p.d}:${p.dp}`;
    const key = `${p.proto}|${[a, b].sort().join('|')}`;
    const e = ct.get(key);
    step(e && p.ts - e.last <= timeout ? e.code : 0, p.proto === 6 ? K.TCP : K.OTHER, p.syn ? TH.SYN : TH.ACK, a <= b ? 0 : 1, true, o);
    if (o.verdict === V.INVALID) continue;
    ct.set(key, { code: o.code, last: p.ts });
    let c = open.get(key);
    if (c && p.ts - c.last > timeout) { close(c); c = undefined; }
    if (!c) { c = { last: p.ts, dirs: new Set() }; open.set(key, c); }
    c.dirs.add(a);
    c.last = Math.max(c.last, p.ts);
  }
  for (const c of open.values()) close(c);
  return { connections, flows };
}

function writePcap(path: string, pkts: Pkt[]): void {
  const w = new PcapWriter(path);
  const b = createBatch(1024);
  for (let i = 0; i < pkts.length; i += b.capacity) {
    const chunk = pkts.slice(i, i + b.capacity);
    chunk.forEach((p, j) => {
      writeTupleV4(b, j, p.proto, p.s, p.sp, p.d, p.dp, p.ts, p.len);
      if (p.proto === 6) b.flags[j] = (b.flags[j]! & ~(F.SYN | F.ACK)) | (p.syn ? F.SYN : F.ACK);
    });
    b.count = chunk.length;
    w.write(b);
  }
  w.close();
}

const SPECS: SelectorSpec[] = [
  { backend: 'clusterip', hashmode: 'sourceip-sourceport', totalNodes: 3, hashInit: 7, kernel: '6.1', endian: 'little' },
  { backend: 'xt_cluster', totalNodes: 3, hashSeed: 0x99, kernel: '6.18', endian: 'little' },
];

async function simulate(path: string, workers: number, flowTimeout: number): Promise<unknown> {
  const sels = SPECS.map((s) => buildSelector(s));
  const run = await runSimulation({ inputs: [{ kind: 'pcap', path }], selectors: SPECS, buckets: sels.map((s) => s.buckets), clusterIp: null, mixed: null, workers, flowTimeout });
  const { configs } = analyse(run.merged, sels, { ids: ['A', 'B'], dirDep: sels.map(directionDependent) });
  return { configs, totals: { flows: run.merged.flows.flows, connections: run.merged.flows.connections } };
}

describe('connections with an idle timeout', () => {
  const dir = fileDir('cipsim-conn-');
  const pkts = stream(40_000, 3);
  const path = join(dir, 's.pcap');
  writePcap(path, pkts);

  it('count as the plain reference model does', async () => {
    for (const timeout of [2, 1e6]) {
      const ref = reference(pkts, timeout);
      const r = (await simulate(path, 0, timeout)) as { totals: { flows: number; connections: number } };
      expect(r.totals, `timeout ${timeout}`).toEqual(ref);
    }
    // The timeout must have mattered, or this test proves nothing.
    expect(reference(pkts, 2).connections).toBeGreaterThan(reference(pkts, 1e6).connections);
  });

  it('count the same when the table is swept between small batches (in-place deletion)', () => {
    const ref = reference(pkts, 2);
    // 256-packet batches: the table is swept (every timeout/4 of capture time) many times mid-stream.
    const p = processShare({ input: { kind: 'pcap', path }, selectors: SPECS, clusterIp: null, mixed: null, flowTimeout: 2, chain: { input: 0, share: 0, first: true, last: true }, batchCapacity: 256 });
    expect({ flows: p.summary.flows, connections: p.summary.connections }).toEqual(ref);
  });

  it('do not depend on the file order of packets with the same timestamp (SYN bits and buckets of ties)', async () => {
    // Per connection: the server speaks first (t), then the client sends an ACK and a SYN in the same
    // microsecond (t + 1). The client's direction opened the connection only if the tie keeps its SYN,
    // whichever of the two the file has first; xt_cluster hashes the original direction's source.
    const mk = (synFirst: boolean): Pkt[] => {
      const rnd = lcg(11), out: Pkt[] = [];
      for (let k = 0; k < 300; k++) {
        const t = 1_700_000_000 + k * 0.01, client = 0x0a000001 + Math.floor(rnd() * 5000), cport = 1024 + k, server = 0xc000020a;
        const tie: Pkt[] = [
          { ts: t + 0.001, proto: 6, s: client, sp: cport, d: server, dp: 80, len: 60, syn: false },
          { ts: t + 0.001, proto: 6, s: client, sp: cport, d: server, dp: 80, len: 60, syn: true },
        ];
        out.push({ ts: t, proto: 6, s: server, sp: 80, d: client, dp: cport, len: 60, syn: false }, ...(synFirst ? tie.reverse() : tie));
      }
      return out;
    };
    const a = join(dir, 'tie-a.pcap'), b = join(dir, 'tie-b.pcap');
    writePcap(a, mk(false));
    writePcap(b, mk(true));
    expect(await simulate(a, 0, 120)).toEqual(await simulate(b, 0, 120));
  });

  it('hold only the connections within the timeout: memory goes down when they end', () => {
    const ended: number[] = [];
    const t = new ConnTable({ kw: 4, c: 1, timeout: 10, onEnd: (r) => ended.push(r.count) });
    const b = createBatch(4096), out = [new Int32Array(4096)], none = [null];
    const burst = (ts: number, first: number, n: number): void => {
      for (let i = 0; i < n; i += 4096) {
        b.count = Math.min(4096, n - i);
        for (let j = 0; j < b.count; j++) writeTupleV4(b, j, 17, 0x0a000000 + first + i + j, 5000, 0xc000020a, 53, ts, 100);
        t.sweep();
        for (let j = 0; j < b.count; j++) t.trackV4(b, j, out, none);
      }
    };
    burst(1000, 0, 200_000);
    const big = t.byteSize();
    expect(t.count).toBe(200_000);
    // Long after: a few new connections; the sweep ends the 200,000 idle ones and the arrays shrink.
    burst(1100, 1_000_000, 100);
    t.sweep();
    burst(1200, 2_000_000, 100);
    expect(t.count).toBeLessThanOrEqual(200);
    expect(t.byteSize()).toBeLessThan(big / 50);
    t.finish(true);
    expect(ended.reduce((a, n) => a + n, 0)).toBe(200_200);
  });

  it('give the same answer however the capture is cut into shares', async () => {
    const base = await simulate(path, 1, 2);
    for (const w of [2, 3]) expect(await simulate(path, w, 2)).toEqual(base);
  });
});

describe('ConnTable keys are the connection key of cluster/conn-key.ts', () => {
  it('the IPv4 path (connKey written out inline) and the IPv6 path store exactly connKey\'s words', () => {
    const rnd = lcg(7);
    const n = 400;
    const b = createBatch(n);
    for (let i = 0; i < n; i++) {
      const a = 0x0a000000 + Math.floor(rnd() * 6), z = 0x0a000000 + Math.floor(rnd() * 6);
      const sp = Math.floor(rnd() * 4), dp = Math.floor(rnd() * 4), proto = rnd() < 0.5 ? 6 : 17;
      if (i % 2 === 0) writeTupleV4(b, i, proto, a, sp, z, dp, i, 60);
      else writeTupleV6(b, i, proto, [0x20010db8, 0, a >>> 16, a], sp, [0x20010db8, 0, z >>> 16, z], dp, i, 80);
    }
    b.count = n;
    for (const kw of [4, 10]) {
      const t = new ConnTable({ kw, c: 1, timeout: 1e9, onEnd: () => {} });
      const zero = [new Int32Array(n)];
      const expected = new Set<string>();
      const k = new Uint32Array(10);
      for (let i = 0; i < n; i++) {
        if ((kw === 4) !== (i % 2 === 0)) continue;
        if (kw === 4) t.trackV4(b, i, zero, [null]); else t.trackV6(b, i, zero, [null]);
        connKey(b, i, k);
        expected.add([...k.subarray(0, kw)].join(','));
      }
      const stored = new Set<string>();
      for (let e = 0; e < t.count; e++) stored.add([...t.keys.subarray(e * kw, (e + 1) * kw)].join(','));
      expect(stored.size).toBeGreaterThan(10);
      expect(stored).toEqual(expected);
    }
  });
});

describe('a sweep', () => {
  it('ends exactly the idle entries and keeps every other one findable, whether it ends few (slots kept up) or many (slots rebuilt)', () => {
    const T = 100, CLIENT = 0x0a000000, SERVER = 0xc0000001;
    const b = createBatch(1);
    const zero = [new Int32Array(1)];
    const ended: number[] = [];
    let sent = 0, counted = 0;
    const t = new ConnTable({
      kw: 4, c: 1, timeout: T,
      onEnd: (r) => { for (let n = 0; n < r.count; n++) { ended.push(r.keys[n * 4 + 1]! - CLIENT); counted += r.rec[n * REC + PK0]! + r.rec[n * REC + PK1]!; } },
    });
    const send = (i: number, ts: number): void => {
      sent++;
      writeTupleV4(b, 0, 17, CLIENT + i, 1000, SERVER, 53, ts, 80);
      b.count = 1;
      t.trackV4(b, 0, zero, [null]);
    };
    const range = (from: number, to: number): number[] => Array.from({ length: to - from }, (_, i) => from + i);
    for (const i of range(0, 2000)) send(i, 0);
    t.sweep();
    for (const i of range(0, 1900)) send(i, 60);
    send(5000, 160);
    // Cutoff 160 - T - 5 = 55: the 100 entries last seen at 0 end (under a quarter of the table).
    t.sweep();
    expect(t.count).toBe(1901);
    for (const i of range(0, 1200)) send(i, 150);
    send(5001, 190);
    // Cutoff 85: the 700 entries last seen at 60 end (over a quarter), and the table is not
    // shrunk (so only the rebuild makes its slots right).
    t.sweep();
    expect(t.count).toBe(1202);
    // Every live entry is found again (no new entry), every ended key opens a new one.
    for (const i of [...range(0, 1200), 5000, 5001]) send(i, 195);
    expect(t.count).toBe(1202);
    for (const i of range(1200, 2000)) send(i, 195);
    expect(t.count).toBe(2002);
    // The sweeps ended those keys, in two groups (the ended chunk is handed over later).
    t.finish(true);
    expect(ended.length).toBe(800 + 2002);
    expect(ended.slice(0, 100).sort((x, y) => x - y)).toEqual(range(1900, 2000));
    expect(ended.slice(100, 800).sort((x, y) => x - y)).toEqual(range(1200, 1900));
    // And every packet was counted in a live entry (one found through a stale slot would be lost).
    expect(counted).toBe(sent);
  });
});
