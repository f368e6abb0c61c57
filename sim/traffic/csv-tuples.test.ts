/** CSV tuples: columns by header name in any order, extra columns ignored, RFC 4180 quoting, errors with their place. */
import { describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { readCsvTuples, splitCsvRecord } from './csv-tuples.ts';
import { openCsvInput } from './csv-input.ts';
import { createBatch } from './batch.ts';
import { formatIPv4 } from '../core/addr.ts';

/** Every tuple of a CSV text as "proto saddr:sport daddr:dport", through the streaming reader. */
async function read(text: string): Promise<string[]> {
  const out: string[] = [];
  for await (const { batch: b } of readCsvTuples('-', 4, Readable.from([text]))) {
    for (let i = 0; i < b.count; i++) out.push(`${b.proto[i]} ${formatIPv4(b.saddr[i]!)}:${b.sport[i]} ${formatIPv4(b.daddr[i]!)}:${b.dport[i]}`);
  }
  return out;
}

describe('CSV tuples', () => {
  it('splits RFC 4180 records: quoted commas, doubled quotes, empty fields', () => {
    expect(splitCsvRecord('a,"b,c",d', 'x:1')).toEqual(['a', 'b,c', 'd']);
    expect(splitCsvRecord('"say ""hi""",,3', 'x:1')).toEqual(['say "hi"', '', '3']);
    expect(splitCsvRecord('1,"",', 'x:1')).toEqual(['1', '', '']);
    expect(() => splitCsvRecord('1,"open', 'f.csv:7')).toThrow(/f\.csv:7.*column 2.*not closed/);
    expect(() => splitCsvRecord('"a"b,1', 'f.csv:2')).toThrow(/f\.csv:2.*after the closing quote/);
  });

  it('finds columns by header name in any order and ignores the others', async () => {
    const want = ['6 10.0.0.1:1234 192.0.2.10:80', '17 10.0.0.2:53 192.0.2.10:5353'];
    expect(await read('proto,saddr,sport,daddr,dport\n6,10.0.0.1,1234,192.0.2.10,80\nudp,10.0.0.2,53,192.0.2.10,5353\n')).toEqual(want);
    // `tuples` output (ts first, wirelen last) and `hash` output (node last), and a shuffled header with quotes.
    expect(await read('ts,proto,saddr,sport,daddr,dport,wirelen\n0.5,6,10.0.0.1,1234,192.0.2.10,80,60\n0.7,17,10.0.0.2,53,192.0.2.10,5353,90\n')).toEqual(want);
    expect(await read('proto,saddr,sport,daddr,dport,node\n6,10.0.0.1,1234,192.0.2.10,80,3\n17,10.0.0.2,53,192.0.2.10,5353,1\n')).toEqual(want);
    expect(await read('"Dport",note,DADDR,sport,saddr,proto\n80,"a, b",192.0.2.10,1234,10.0.0.1,tcp\n5353,"say ""x""",192.0.2.10,53,10.0.0.2,17\n')).toEqual(want);
    // No header: the positional order, as before.
    expect(await read('6,10.0.0.1,1234,192.0.2.10,80\n17,10.0.0.2,53,192.0.2.10,5353\n')).toEqual(want);
  });

  it('a header without a needed column, or a short record, is an error at its line and column', async () => {
    await expect(read('proto,saddr,daddr,dport\n6,10.0.0.1,192.0.2.10,80\n')).rejects.toThrow(/<stdin>:1.*no column sport/);
    await expect(read('# c\nfoo,bar,baz,qux,quux\n')).rejects.toThrow(/<stdin>:2.*names none of the columns/);
    await expect(read('saddr,daddr,proto,sport,dport\n10.0.0.1,192.0.2.10,6,1\n')).rejects.toThrow(/<stdin>:2.*no field for dport/);
    await expect(read('proto,saddr,sport,daddr,dport\n6,10.0.0.1,99999,192.0.2.10,80\n')).rejects.toThrow(/<stdin>:2.*sport/);
  });

  it('the workers\' reader takes ts and wirelen by name too', () => {
    const dir = mkdtempSync(join(tmpdir(), 'csv-src-'));
    try {
      const f = join(dir, 't.csv');
      writeFileSync(f, 'wirelen,dport,daddr,sport,saddr,proto,ts\n1500,80,192.0.2.10,1234,10.0.0.1,6,2.25\n60,53,192.0.2.10,5353,10.0.0.2,17,3.5\n');
      const src = openCsvInput(f);
      const b = createBatch(8);
      expect(src.fill(b)).toBe(2);
      expect([...b.ts.subarray(0, 2)]).toEqual([2.25, 3.5]);
      expect([...b.wirelen.subarray(0, 2)]).toEqual([1500, 60]);
      expect([b.sport[1], b.dport[1], b.proto[1]]).toEqual([5353, 53, 17]);
      expect(src.stats.bytes).toBe(1560);
      writeFileSync(f, 'proto,saddr,sport,daddr,dport,ts\n6,10.0.0.1,1,192.0.2.10,80,soon\n');
      expect(() => openCsvInput(f).fill(b)).toThrow(/t\.csv:2.*column ts: 'soon'/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
