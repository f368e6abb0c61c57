/**
 * Fuzzing the capture readers: thousands of seeded mutations of real captures
 * (pcap µs/ns, pcapng from editcap, hand-built frames of odd link types, gzip).
 * Every one must end in packets or a DataError naming a byte offset: never a
 * crash, another exception type or a hang; with `lenient` only file-level
 * damage (magic, header, link type) may still be an error.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createBatch } from './batch.ts';
import { openCaptureBuffer } from './capture.ts';
import { openSynthetic } from './synthetic.ts';
import { PcapWriter } from './pcap-writer.ts';
import { DataError } from '../core/errors.ts';
import * as fr from '../../test/frames.ts';

let dir = '';
const seeds: { name: string; data: Uint8Array }[] = [];

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'fuzz-test-'));
  const f = join(dir, 'g.pcap');
  const w = new PcapWriter(f, 120);
  const s = openSynthetic('default', { packets: 150, seed: 11 });
  const b = createBatch(256);
  while (s.fill(b) > 0) w.write(b);
  w.close();
  execFileSync('editcap', ['-F', 'pcapng', f, join(dir, 'g.pcapng')]);
  execFileSync('editcap', ['-F', 'nsecpcap', f, join(dir, 'g-ns.pcap')]);
  seeds.push({ name: 'pcap', data: new Uint8Array(readFileSync(f)) });
  seeds.push({ name: 'pcapng', data: new Uint8Array(readFileSync(join(dir, 'g.pcapng'))) });
  seeds.push({ name: 'nsecpcap', data: new Uint8Array(readFileSync(join(dir, 'g-ns.pcap'))) });
  const frag = fr.udp(1, 2, 3000);
  const pieces = [0, 1480, 2960].map((o, k) => fr.ipv4({ proto: 17, src: '10.0.0.1', dst: '10.0.0.2', id: 5, fragOff: o, mf: k < 2 }, frag.subarray(o, Math.min(o + 1480, frag.length))));
  seeds.push({ name: 'sll-fragments', data: fr.pcap([...pieces, ...pieces.reverse()].map((d, k) => ({ ts: [1, k], data: fr.sll(d, 0x800) })), { linktype: 113, le: false }) });
});
afterAll(() => { rmSync(dir, { recursive: true, force: true }); });

function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => { s = (Math.imul(s ^ (s >>> 15), 0x2c1b3c6d) + 0x6d2b79f5) >>> 0; s ^= s >>> 12; return (s >>> 0) / 4294967296; };
}

function mutate(src: Uint8Array, r: () => number): Uint8Array {
  let d = src.slice();
  const kinds = 1 + Math.floor(r() * 3);
  for (let k = 0; k < kinds; k++) {
    const at = Math.floor(r() * d.length);
    switch (Math.floor(r() * 7)) {
      case 0: for (let j = 0; j < 1 + r() * 16; j++) d[Math.floor(r() * d.length)] = Math.floor(r() * 256); break;
      case 1: d = d.subarray(0, at); break;
      case 2: { const v = [0, 0xffffffff, 0x7fffffff, 16, 1 << 20, Math.floor(r() * 2 ** 32)][Math.floor(r() * 6)]!; const o = at & ~3; if (o + 4 <= d.length) new DataView(d.buffer, d.byteOffset).setUint32(o, v, r() < 0.5); break; }
      case 3: { const n = Math.floor(r() * 64); const c = new Uint8Array(d.length + n); c.set(d.subarray(0, at)); c.set(d.subarray(at), at + n); d = c; break; }
      case 4: { const n = Math.floor(r() * 200); const tail = d.subarray(Math.min(d.length, at + n)); const c = new Uint8Array(at + tail.length); c.set(d.subarray(0, at)); c.set(tail, at); d = c; break; }
      case 5: d.fill(0, at, Math.min(d.length, at + Math.floor(r() * 40))); break;
      default: { const o = Math.floor(r() * 48); if (o + 4 <= d.length) new DataView(d.buffer, d.byteOffset).setUint32(o, Math.floor(r() * 2 ** 32), true); }
    }
  }
  return d;
}

/** Reads everything; returns 'ok', or the DataError's message. Anything else propagates and fails the test. */
function consume(data: Uint8Array, lenient: boolean): string {
  let steps = 0;
  try {
    const s = openCaptureBuffer(data, { lenient, label: 'fuzz' });
    const b = createBatch(97);
    while (s.fill(b) > 0) {
      if (++steps > data.length + 10) throw new Error('no progress: the reader is looping');
      for (let i = 0; i < b.count; i++) if (!(b.family[i] === 4 || b.family[i] === 6)) throw new Error(`bad family ${b.family[i]}`);
    }
    return 'ok';
  } catch (e) {
    if (e instanceof DataError) {
      if (!/^fuzz(: byte \d+|: compressed byte \d+)?$/.test(e.where)) throw new Error(`error without a place: ${e.message}`);
      return e.message;
    }
    throw e;
  }
}

describe('fuzz', () => {
  it('4000 mutated captures: packets or a DataError with a byte offset, never a crash or hang', () => {
    const r = rng(Number(process.env.FUZZ_SEED ?? 20261125));
    let errors = 0, lenientErrors = 0, ok = 0;
    for (let k = 0; k < Number(process.env.FUZZ_N ?? 4000); k++) {
      const seed = seeds[k % seeds.length]!;
      const m = mutate(seed.data, r);
      const strict = consume(m, false);
      if (strict === 'ok') ok++; else errors++;
      const len = consume(m, true);
      if (len !== 'ok') {
        lenientErrors++;
        // lenient mode fails only on file-level damage, or a format libpcap refuses (a section version, a link-type field)
        expect(len, `${seed.name} #${k}`).toMatch(/not a pcap or pcapng|pcap file header|pcap version|link type \d+ is not supported|empty file|byte-order magic|pcapng section version|link-type field 0x[0-9a-f]+ has reserved bits|section header|file ends inside a block header|block length/);
      }
    }
    // the mutations must actually exercise both outcomes
    expect(ok).toBeGreaterThan(200);
    expect(errors).toBeGreaterThan(1000);
    expect(lenientErrors).toBeLessThan(errors);
    // Sized by count, not time: 9 s alone here, past the default 60 s when the suite shares 2 cores with more.
  }, 600_000);

  it('300 damaged gzip streams', () => {
    const r = rng(7);
    let errs = 0;
    for (let k = 0; k < 300; k++) {
      const gz = gzipSync(seeds[k % seeds.length]!.data);
      const m = mutate(gz, r);
      if (consume(m, true) !== 'ok') errs++;
    }
    expect(errs).toBeGreaterThan(10);
  });
});
