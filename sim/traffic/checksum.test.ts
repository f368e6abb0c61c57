import { describe, expect, it } from 'vitest';
import { checksumOf, internetChecksum, onesSum } from './checksum.ts';

describe('Internet checksum', () => {
  it('RFC 1071 §3 example: words 0001 f203 f4f5 f6f7 sum to ddf2, checksum 220d', () => {
    const b = Uint8Array.from([0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7]);
    expect(checksumOf(onesSum(b, 0, b.length))).toBe(0xffff - 0xddf2);
    expect(internetChecksum(b, 0, b.length)).toBe(0x220d);
  });

  it('a header with its checksum filled in sums to zero, odd lengths pad with a zero byte', () => {
    // A real IPv4 header (checksum b861 as tshark shows it).
    const h = Uint8Array.from([0x45, 0, 0, 0x73, 0, 0, 0x40, 0, 0x40, 0x11, 0xb8, 0x61, 0xc0, 0xa8, 0, 1, 0xc0, 0xa8, 0, 0xc7]);
    expect(internetChecksum(h, 0, 20)).toBe(0);
    h[10] = 0; h[11] = 0;
    expect(internetChecksum(h, 0, 20)).toBe(0xb861);
    expect(onesSum(Uint8Array.from([1, 2, 3]), 0, 3)).toBe(0x0102 + 0x0300);
    // Chaining a partial sum equals summing the concatenation.
    const a = Uint8Array.from([9, 8, 7, 6]), c = Uint8Array.from([5, 4, 3, 2, 1, 0]);
    expect(internetChecksum(c, 0, 6, onesSum(a, 0, 4))).toBe(internetChecksum(Uint8Array.from([...a, ...c]), 0, 10));
  });
});
