/**
 * The pcap fast loops, the compiled JavaScript one (pcap-fast.ts) and the
 * WebAssembly one (pcap-wasm.ts), against the general path (decode.ts through
 * capture.ts): random Ethernet frames biased to every boundary the fast loops
 * test (caplen, IPv4 total length, header length, fragments, protocols, ICMP
 * types, wire length shorter than the capture), read with each loop and with
 * none; every lane, the stats and the errors must be the same.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { BYTES_PER_PACKET, createBatch, type TupleBatch } from './batch.ts';
import { openCapture, openCaptureBuffer, type CaptureOptions } from './capture.ts';
import { planShares } from './share-plan.ts';
import { fastPcapSwitch } from './pcap-fast.ts';
import { wasmPcapFor } from './pcap-wasm.ts';
import { buildWasm } from '../select/wasm/build.ts';
import { DataError } from '../core/errors.ts';
import * as fr from '../../test/frames.ts';

let dir = '';
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'pcap-fast-test-'));
  // The WebAssembly loop must be there to be tested (built by npm ci; rebuilt here when stale).
  expect(buildWasm().built).toBe(true);
});
afterAll(() => { rmSync(dir, { recursive: true, force: true }); });

function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => { s = (Math.imul(s ^ (s >>> 15), 0x2c1b3c6d) + 0x6d2b79f5) >>> 0; s ^= s >>> 12; return (s >>> 0) / 4294967296; };
}
const pick = <T>(r: () => number, xs: readonly T[]): T => xs[Math.floor(r() * xs.length)]!;

/** One record: mostly plain IPv4 TCP/UDP/ICMP, with every field the fast loop checks sometimes off by one. */
function randomRecord(r: () => number, k: number, frags: boolean): fr.Rec {
  const proto = r() < 0.9 ? pick(r, [6, 6, 6, 17, 17, 1]) : pick(r, [132, 33, 136, 47, 50, 51, 58, 0, 255]);
  const l4len = proto === 6 ? pick(r, [20, 20, 32, 0, 8, 13, 14, 19, 40]) : pick(r, [8, 8, 12, 0, 4, 7, 20]);
  const payload = r() < 0.5 ? 0 : Math.floor(r() * 1400);
  const l4 = new Uint8Array(l4len + payload);
  for (let i = 0; i < l4.length; i++) l4[i] = Math.floor(r() * 256);
  if (proto === 1 && l4.length > 0) l4[0] = pick(r, [8, 0, 3, 11, 13]);
  const opts = r() < 0.05 ? [1, 1, 1, 0] : undefined;
  const flags = r();
  let ip = fr.ipv4({ proto, src: '10.1.2.3', dst: `192.0.2.${k & 255}`, id: k & 0xffff, options: opts, mf: frags && flags < 0.02, fragOff: frags && flags > 0.98 ? 8 : 0 }, l4);
  const dv = new DataView(ip.buffer, ip.byteOffset);
  if (r() < 0.05) dv.setUint16(6, 0x4000); // DF only: still not a fragment
  if (r() < 0.08) dv.setUint16(2, pick(r, [0, 19, 27, 28, 39, 40, ip.length + 1, ip.length - 1, 0xffff]));
  if (r() < 0.03) ip[0] = pick(r, [0x44, 0x46, 0x55, 0x65, 0x4f]);
  if (r() < 0.02) ip = ip.subarray(0, Math.floor(r() * ip.length));
  const et = r() < 0.95 ? 0x0800 : pick(r, [0x86dd, 0x0806, 0x8100]);
  const frame = r() < 0.03 ? fr.ether(ip, 0x0800, [0x8100]) : fr.ether(ip, et);
  let caplen = frame.length;
  const c = r();
  if (c < 0.25) caplen = Math.min(frame.length, pick(r, [0, 13, 14, 33, 34, 41, 42, 43, 47, 48, 49, 53, 54, 55, 60, 96]));
  else if (c < 0.3) caplen = Math.floor(r() * frame.length);
  let wire = frame.length;
  const w = r();
  if (w < 0.05) wire = caplen > 0 ? caplen - 1 : 0;
  else if (w < 0.1) wire = frame.length + Math.floor(r() * 3000);
  else if (w < 0.12) wire = pick(r, [0, 13, 14, 0xffffffff]);
  return { ts: [1700000000 + (k >> 4), Math.floor(r() * 1e6)], data: frame, caplen, wire };
}

/**
 * Without `frags`, no fragments: a fragment whose datagram never completes holds back every later
 * packet, which the reader then reads ahead one at a time into its fragment ring, not into the batch.
 */
function records(seed: number, n: number, frags = true): fr.Rec[] {
  const r = rng(seed);
  return Array.from({ length: n }, (_, k) => randomRecord(r, k, frags));
}

const LANES = ['ts', 'wirelen', 'saddr', 'daddr', 'saddr6', 'daddr6', 'l4a', 'l4b', 'sport', 'dport', 'proto', 'family', 'flags', 'l4flags'] as const;

/** Which loop reads: none (the general path), the JavaScript fast loop, or the WebAssembly one. */
type Mode = 'general' | 'js' | 'wasm';

/** Everything a reader delivers: every lane of every packet, batch sizes, stats, or the error. */
function readAll(open: () => { fill(b: TupleBatch): number; stats: unknown; close(): void }, capacity: number, mode: Mode): unknown {
  fastPcapSwitch.on = mode !== 'general';
  fastPcapSwitch.wasm = mode === 'wasm';
  try {
    const s = open();
    const b = createBatch(capacity);
    const lanes: Record<string, number[]> = Object.fromEntries(LANES.map((l) => [l, []]));
    const sizes: number[] = [];
    // Batches are reused: a lane the reader forgets to write keeps this. (Only the lanes: past
    // them the batch's memory holds the reader's window, batch.ts.)
    const garbage = (): void => { new Uint8Array(b.buffer, 0, BYTES_PER_PACKET * b.capacity).fill(0xa5); };
    let n: number;
    garbage();
    while ((n = s.fill(b)) > 0) {
      sizes.push(n);
      for (const l of LANES) {
        const w = l === 'saddr6' || l === 'daddr6' ? 4 : 1;
        lanes[l]!.push(...Array.from(b[l].subarray(0, n * w)));
      }
      garbage();
    }
    s.close();
    if (mode === 'wasm') wasmDelivered += wasmPcapFor(b)!.delivered;
    return { lanes, sizes, stats: s.stats };
  } catch (e) {
    if (e instanceof DataError) return { error: e.message, where: e.where };
    throw e;
  } finally {
    fastPcapSwitch.on = true;
    fastPcapSwitch.wasm = true;
  }
}

/** Packets the WebAssembly loops of this thread have delivered (over the batches they served). */
let wasmDelivered = 0;

function expectSame(open: () => { fill(b: TupleBatch): number; stats: unknown; close(): void }, capacity: number): void {
  const general = readAll(open, capacity, 'general');
  expect(readAll(open, capacity, 'js')).toEqual(general);
  expect(readAll(open, capacity, 'wasm')).toEqual(general);
}

describe('pcap fast loops = general path', () => {
  beforeEach(() => { wasmDelivered = 0; });
  // Each case must have run the WebAssembly loop, not only fallen back to the others.
  afterEach(() => { expect(wasmDelivered).toBeGreaterThan(100); });

  it('random boundary frames, both byte orders, several batch sizes', () => {
    for (let seed = 1; seed <= 12; seed++) {
      const recs = records(seed, 400);
      for (const le of [true, false]) {
        const data = fr.pcap(recs, { le });
        for (const cap of [1, 7, 64, 4096]) expectSame(() => openCaptureBuffer(data), cap);
        expectSame(() => openCaptureBuffer(data, { lenient: true }), 64);
      }
    }
  });

  it('files larger than the read window, with time windows, limits and shares', () => {
    const recs = records(99, 6000);
    const f = join(dir, 'big.pcap');
    writeFileSync(f, fr.pcap(recs));
    const ts = recs.map((r) => r.ts[0] + r.ts[1] * 1e-6).sort((a, b) => a - b);
    const variants: CaptureOptions[] = [{}, { from: ts[1000]!, to: ts[5000]! }, { from: ts[3000]! }, { to: ts[20]! }, { limit: 777 }];
    for (const o of variants) expectSame(() => openCapture(f, o), 4096);
    for (const sh of planShares(f, 3)) expectSame(() => openCapture(f, sh), 1000);
  });

  it('readers one after another share a window and its compiled loop; a closed reader reads nothing more into it', () => {
    // Files of the same size class get the same spare window and so the same compiled loop: each
    // must still read as the general path does, whichever file the window and the loop served before.
    const files = [1, 2, 3].map((seed) => { const f = join(dir, `seq${seed}.pcap`); writeFileSync(f, fr.pcap(records(seed, 3000, false), { le: seed !== 2 })); return f; });
    const want = files.map((f) => readAll(() => openCapture(f), 512, 'general'));
    for (const mode of ['js', 'wasm'] as const) {
      for (const order of [[0, 1, 2, 0], [2, 0, 1, 1]]) for (const i of order) expect(readAll(() => openCapture(files[i]!), 512, mode)).toEqual(want[i]);
    }
    // A reader used after close must not write into the window it gave back, now another reader's.
    const b = createBatch(512), c = createBatch(512);
    const done = openCapture(files[0]!);
    done.fill(b);
    done.close();
    const live = openCapture(files[1]!);
    const got: number[] = [];
    let n: number;
    while ((n = live.fill(c)) > 0) {
      got.push(...Array.from(c.saddr.subarray(0, n)));
      // (It may still hand out packets it decoded before closing: fragments waiting in its own ring.)
      done.fill(b);
    }
    live.close();
    expect(got).toEqual((want[1] as { lanes: { saddr: number[] } }).lanes.saddr);
  });

  it('readers that take turns on one batch, and a reader that takes turns on two batches', () => {
    // The WebAssembly loop reads a reader's window in the batch's memory (byte-input.ts useWindow):
    // a second reader filling the same batch moves the first one's unread bytes out, and a reader
    // filling another batch moves its own; no byte may be lost or read twice.
    const files = [4, 5].map((seed) => { const f = join(dir, `turns${seed}.pcap`); writeFileSync(f, fr.pcap(records(seed, 3000, false), { le: seed !== 5 })); return f; });
    const want = files.map((f) => (readAll(() => openCapture(f), 300, 'general') as { lanes: { saddr: number[] } }).lanes.saddr);
    const shared = createBatch(300), other = createBatch(300);
    const readers = files.map((f) => openCapture(f));
    const got: number[][] = [[], []];
    for (let turn = 0, live = 2; live > 0; turn++) {
      live = 0;
      for (let r = 0; r < 2; r++) {
        // Reader 0 alternates between the two batches; reader 1 always fills the shared one.
        const b = r === 0 && turn % 2 === 1 ? other : shared;
        const n = readers[r]!.fill(b);
        if (n > 0) live++;
        got[r]!.push(...Array.from(b.saddr.subarray(0, n)));
      }
    }
    for (const s of readers) s.close();
    expect(got).toEqual(want);
    wasmDelivered += wasmPcapFor(shared)!.delivered + wasmPcapFor(other)!.delivered;
  });

  it('a reused batch: slots that held IPv6 packets get zero IPv6 lanes for the IPv4 packets after them', () => {
    // The loops skip zeroing the IPv6 lanes of a slot that already holds an IPv4 packet (no garbage
    // between fills here, unlike readAll): runs of IPv6 and IPv4 records that move across slots.
    const r = rng(5);
    const recs: fr.Rec[] = [];
    for (let k = 0; k < 4000; k++) {
      const v6 = Math.floor(k / 37) % 3 === 1 || r() < 0.1;
      const l4 = fr.tcp(1000 + (k & 1023), 80, 0x10);
      const ip = v6 ? fr.ipv6(`2001:db8::${(k & 0xffff).toString(16)}`, '2001:db8:1::1', [], 6, l4) : fr.ipv4({ proto: 6, src: `10.0.${k >> 8 & 255}.${k & 255}`, dst: '192.0.2.1' }, l4);
      recs.push({ ts: [1700000000 + (k >> 6), k], data: fr.ether(ip, v6 ? 0x86dd : 0x0800) });
    }
    const f = join(dir, 'mixed.pcap');
    writeFileSync(f, fr.pcap(recs));
    const got: Record<string, number[][]> = {};
    for (const mode of ['general', 'js', 'wasm'] as const) {
      fastPcapSwitch.on = mode !== 'general';
      fastPcapSwitch.wasm = mode === 'wasm';
      try {
        const b = createBatch(100);
        const s = openCapture(f);
        const lanes: number[][] = [[], [], []];
        let n: number;
        while ((n = s.fill(b)) > 0) {
          lanes[0]!.push(...b.family.subarray(0, n));
          lanes[1]!.push(...b.saddr6.subarray(0, 4 * n));
          lanes[2]!.push(...b.daddr6.subarray(0, 4 * n));
        }
        s.close();
        if (mode === 'wasm') wasmDelivered += wasmPcapFor(b)!.delivered;
        got[mode] = lanes;
      } finally {
        fastPcapSwitch.on = true;
        fastPcapSwitch.wasm = true;
      }
    }
    expect(got.general![0]!.filter((x) => x === 6).length).toBeGreaterThan(1000);
    expect(got.js).toEqual(got.general);
    expect(got.wasm).toEqual(got.general);
  });

  it('a cut or damaged file: the same packets before the same error', () => {
    // Ends with a TCP record of 48 captured bytes: its last byte (the TCP flags) is the one the fast loop reads.
    const last: fr.Rec = { ts: [1700000000, 5], data: fr.ether(fr.ipv4({ proto: 6, src: '10.0.0.1', dst: '10.0.0.2' }, fr.tcp(1, 2, 0x12)), 0x0800), caplen: 48 };
    const data = fr.pcap([...records(7, 300), last, last]);
    for (let cut = data.length - 2 * 64; cut <= data.length; cut++) expectSame(() => openCaptureBuffer(data.subarray(0, cut)), 64);
    for (const cut of [5000, 30]) expectSame(() => openCaptureBuffer(data.subarray(0, cut)), 64);
    const bad = data.slice();
    new DataView(bad.buffer).setUint32(24 + 16 * 50 + 8, 0x7fffffff, true); // somewhere inside: a record header or frame bytes
    expectSame(() => openCaptureBuffer(bad), 64);
    expectSame(() => openCaptureBuffer(bad, { lenient: true }), 64);
  });
});
