/** The worker's task function: one share in, one mergeable partial out (simulate or failover); or a simulation's merge. */
import { processShare, scanShare } from './share.ts';
import type { CtTransfer } from '../cluster/ct-model.ts';
import { processFailoverShare } from './failover-share.ts';
import { wasmModule } from '../select/wasm.ts';
import type { FailoverPartial } from '../cluster/timeline.ts';
import { runMerge, type MergedRun } from './merge.ts';
import type { CtScanTask, FailoverTask, MergeTask, SimPartial, SimTask } from './task.ts';

export default function runShare(task: SimTask | FailoverTask | MergeTask | CtScanTask): SimPartial | FailoverPartial | MergedRun | CtTransfer {
  if ('kind' in task && task.kind === 'failover') return processFailoverShare(task);
  if ('kind' in task && task.kind === 'ct-scan') return scanShare(task);
  if ('kind' in task && task.kind === 'merge') return runMerge(task);
  return processShare(task as SimTask);
}

/**
 * What this worker thread runs with (piscina `name: 'workerInfo'`): lets a
 * test see that the bundle still finds the WebAssembly module, which it
 * locates from its own module URL.
 */
export function workerInfo(): { wasm: boolean } {
  return { wasm: wasmModule() !== null };
}
