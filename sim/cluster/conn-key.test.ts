import { describe, expect, it } from 'vitest';
import { createBatch } from '../traffic/batch.ts';
import { writeTupleV4, writeTupleV6 } from '../traffic/tuple.ts';
import { connectionHash, connKey, connKeyWords } from './conn-key.ts';

describe('connection key: one entry for both directions', () => {
  it('a packet and its reply give the same key and hash, with opposite directions', () => {
    const b = createBatch(4);
    writeTupleV4(b, 0, 6, 0x0a000001, 40000, 0xc000020a, 80);
    writeTupleV4(b, 1, 6, 0xc000020a, 80, 0x0a000001, 40000);
    writeTupleV6(b, 2, 17, [0x20010db8, 0, 0, 1], 5353, [0x20010db8, 0, 0, 2], 53);
    writeTupleV6(b, 3, 17, [0x20010db8, 0, 0, 2], 53, [0x20010db8, 0, 0, 1], 5353);
    b.count = 4;
    const k = (i: number): { key: number[]; d: number } => { const o = new Uint32Array(10); const d = connKey(b, i, o); return { key: [...o.subarray(0, connKeyWords(b, i))], d }; };
    expect(k(0).key).toEqual(k(1).key);
    expect(k(0).key).toEqual([(4 << 8) | 6, 0x0a000001, 0xc000020a, ((40000 << 16) | 80) >>> 0]);
    expect([k(0).d, k(1).d]).toEqual([0, 1]);
    expect(k(2).key).toEqual(k(3).key);
    expect(k(2).key.length).toBe(10);
    expect([k(2).d, k(3).d]).toEqual([0, 1]);
    expect(connectionHash(b, 0)).toBe(connectionHash(b, 1));
    expect(connectionHash(b, 2)).toBe(connectionHash(b, 3));
    expect(connectionHash(b, 0)).not.toBe(connectionHash(b, 2));
  });

  it('same addresses, ports decide; a different protocol is a different connection', () => {
    const b = createBatch(3);
    writeTupleV4(b, 0, 17, 0x0a000001, 9, 0x0a000001, 7);
    writeTupleV4(b, 1, 17, 0x0a000001, 7, 0x0a000001, 9);
    writeTupleV4(b, 2, 6, 0x0a000001, 7, 0x0a000001, 9);
    const o = new Uint32Array(10), p = new Uint32Array(10), q = new Uint32Array(10);
    expect(connKey(b, 0, o)).toBe(1);
    expect(connKey(b, 1, p)).toBe(0);
    connKey(b, 2, q);
    expect([...o]).toEqual([...p]);
    expect(q[0]).not.toBe(o[0]);
  });
});
