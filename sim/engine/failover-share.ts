/** One worker's part of a failover run: its connections through every policy's ownership timeline. */
import { createBatch, DEFAULT_BATCH_CAPACITY } from '../traffic/batch.ts';
import { buildSelector } from '../select/build.ts';
import { FailoverEvaluator, type FailoverPartial } from '../cluster/timeline.ts';
import { openInput } from './inputs.ts';
import { keepPartition } from './partition.ts';
import { keepToClusterIp } from './cluster-filter.ts';
import type { FailoverTask } from './task.ts';

export function processFailoverShare(t: FailoverTask): FailoverPartial {
  const cap = t.batchCapacity ?? DEFAULT_BATCH_CAPACITY;
  const ev = new FailoverEvaluator(t.timelines, buildSelector(t.selector), t.eval, cap);
  const batch = createBatch(cap);
  const src = openInput(t.input);
  const progress = t.progress ? new Float64Array(t.progress.buffer) : null;
  let read = 0;
  try {
    while (src.fill(batch) > 0) {
      read += batch.count;
      if (progress) progress[t.progress!.slot] = read;
      if (t.clusterIp !== null && (keepToClusterIp(batch, t.clusterIp), batch.count === 0)) continue;
      if (t.partition && keepPartition(batch, t.partition.index, t.partition.count) === 0) continue;
      ev.add(batch);
    }
  } finally {
    src.close();
  }
  return ev.partial();
}
