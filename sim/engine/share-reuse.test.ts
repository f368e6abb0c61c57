/**
 * A thread reuses one batch across the shares it runs (batch.ts takeBatch) and
 * one compiled loop per rule (select/compile.ts): a share must give the same
 * partial whatever ran on that thread before it, here after an IPv6 share
 * left IPv6 slots in the spare batch and the same rules were compiled.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { processShare } from './share.ts';
import type { SimTask } from './task.ts';
import type { SelectorSpec } from '../select/selector.ts';
import { createBatch, releaseBatch, takeBatch, FAMILY_IPV6 } from '../traffic/batch.ts';

const SPECS: SelectorSpec[] = [
  { backend: 'clusterip', hashmode: 'sourceip-sourceport', totalNodes: 4, hashInit: 0, kernel: '6.1', endian: 'little' },
  { backend: 'xt_cluster', totalNodes: 3, hashSeed: 7, kernel: '6.18', endian: 'little' },
];

const task = (input: SimTask['input']): SimTask => ({
  input, selectors: SPECS, clusterIp: null, mixed: null, flowTimeout: 120, topSources: true,
  chain: { input: 0, share: 0, first: true, last: true },
});

it('takeBatch hands back the released spare, emptied; another capacity gets its own batch', () => {
  const b = takeBatch(1024);
  b.count = 17;
  releaseBatch(b);
  const again = takeBatch(1024);
  expect(again).toBe(b);
  expect(again.count).toBe(0);
  expect(takeBatch(1024)).not.toBe(b); // the spare was taken: a second caller gets a new one
  expect(takeBatch(2048).capacity).toBe(2048);
  releaseBatch(again);
  expect(createBatch(1024)).not.toBe(b); // createBatch never hands out the spare
});

it('a share after an IPv6 share on the same thread gives what it gave before', () => {
  const dir = mkdtempSync(join(tmpdir(), 'cipsim-reuse-'));
  try {
    const v4 = task({ kind: 'synthetic', name: 'default', seed: 3, packets: 20_000 });
    const first = processShare(v4);
    // An IPv6 share (CSV) runs next and leaves IPv6 slots in the thread's spare batch.
    const csv = join(dir, 'v6.csv');
    const rows: string[] = [];
    for (let i = 0; i < 5000; i++) rows.push(`6,2001:db8::${(i % 700).toString(16)},${1024 + i},2001:db8:1::a,443,${i / 100},100`);
    writeFileSync(csv, rows.join('\n'));
    const v6 = processShare(task({ kind: 'csv', path: csv }));
    expect(v6.ingest.packets).toBe(5000);
    const spare = takeBatch();
    expect(spare.family[0]).toBe(FAMILY_IPV6); // the reuse this test is about did happen
    releaseBatch(spare);
    const second = processShare(v4);
    expect(second.ingest.packets).toBe(20_000);
    expect(second.configs).toEqual(first.configs);
    expect(second.summary).toEqual(first.summary);
    expect(second.exports).toEqual(first.exports);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
