/** One worker's part of a failover run: its connections through every policy's ownership timeline. */
import { createBatch, DEFAULT_BATCH_CAPACITY } from '../traffic/batch.ts';
import { buildSelector } from '../select/build.ts';
import { FailoverEvaluator, type FailoverPartial } from '../cluster/timeline.ts';
import { openInput } from './inputs.ts';
import { keepPartition } from './partition.ts';
import { keepToClusterIp } from './cluster-filter.ts';
import type { FailoverTask } from './task.ts';
import { Judge } from '../cluster/ct-model.ts';
import { judges } from './share.ts';
import { DEFAULT_FLOW_TIMEOUT } from './conn-table.ts';

export function processFailoverShare(t: FailoverTask): FailoverPartial {
  const cap = t.batchCapacity ?? DEFAULT_BATCH_CAPACITY;
  const ev = new FailoverEvaluator(t.timelines, buildSelector(t.selector), t.eval, cap);
  const batch = createBatch(cap);
  // The same conntrack validity as simulate (cluster/ct-model.ts), over the whole stream before any packet is
  // set aside: every worker reads it all and keeps its partition, so each judges every connection alike.
  const judge = judges(t.input) ? new Judge(t.eval.conntrack.tcp_loose, DEFAULT_FLOW_TIMEOUT) : null;
  const src = openInput(t.input);
  const progress = t.progress ? new Float64Array(t.progress.buffer) : null;
  let read = 0;
  try {
    while (src.fill(batch) > 0) {
      read += batch.count;
      if (progress) progress[t.progress!.slot] = read;
      judge?.judge(batch);
      if (t.clusterIp !== null && (keepToClusterIp(batch, t.clusterIp), batch.count === 0)) continue;
      if (t.partition && keepPartition(batch, t.partition.index, t.partition.count) === 0) continue;
      ev.add(batch);
    }
  } finally {
    src.close();
  }
  return ev.partial();
}
