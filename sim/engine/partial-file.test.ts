/** The partial file: what goes in comes out (typed arrays of every kind, non-finite numbers), and the header is checked. */
import { describe, expect, it } from 'vitest';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { readPartial, readPartialHeader, writePartial } from './partial-file.ts';
import type { SimPartial } from './task.ts';
import { fileDir } from '../../test/tmp.ts';

const dir = fileDir('cipsim-partial-');
const header = { shard: { index: 1, count: 3 }, plan: { count: 3, mode: 'files' as const, inputs: ['a.pcap', 'b.pcap', 'c.pcap'] }, job: { configs: [], mixed: null, flowTimeout: 120, topSources: true }, files: [] };

describe('partial file', () => {
  it('round-trips typed arrays (odd lengths, views into larger buffers), non-finite numbers and plain data', () => {
    const big = new Float64Array(100).map((_, i) => i * 1.5);
    const value = [{
      a: new Float64Array([1, -0.5, 1e300]), b: new Uint32Array([0xffffffff, 7, 9]), c: new Int32Array([-1, -2]), d: new Uint8Array([1, 2, 3, 4, 5]),
      e: new Int16Array([-300]), f: big.subarray(10, 13), g: Infinity, h: -Infinity, i: { nested: [1, 'two', null, true] }, j: 0,
    }];
    const path = join(dir, 'rt.part');
    const bytes = writePartial(path, header, value as unknown as SimPartial[]);
    expect(readFileSync(path).length).toBe(bytes);
    const back = readPartial(path);
    expect(back.parts).toEqual(value);
    expect((back.parts[0] as unknown as { b: unknown }).b).toBeInstanceOf(Uint32Array);
    expect(back.header.shard).toEqual(header.shard);
    expect(back.header.plan).toEqual(header.plan);
  });

  it('compresses what merges: a million zero counters take a few kilobytes', () => {
    const path = join(dir, 'zeros.part');
    expect(writePartial(path, header, [{ z: new Float64Array(1 << 20) }] as unknown as SimPartial[])).toBeLessThan(16_384);
  });

  it('refuses a header that lies about its length, naming the file and byte', () => {
    const path = join(dir, 'rt.part');
    const b = Buffer.from(readFileSync(path));
    b.writeUInt32LE(1 << 30, 12);
    const bad = join(dir, 'long-header.part');
    writeFileSync(bad, b);
    expect(() => readPartialHeader(bad)).toThrow(new RegExp(`${bad}: byte \\d+: partial is cut short inside its header`));
  });
});
