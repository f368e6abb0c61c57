/** The worker's task function: one share in, one mergeable partial out (simulate or failover). */
import { processShare } from './share.ts';
import { processFailoverShare } from './failover-share.ts';
import { wasmModule } from '../select/wasm.ts';
import type { FailoverPartial } from '../cluster/timeline.ts';
import type { FailoverTask, SimPartial, SimTask } from './task.ts';

export default function runShare(task: SimTask | FailoverTask): SimPartial | FailoverPartial {
  return 'kind' in task && task.kind === 'failover' ? processFailoverShare(task) : processShare(task as SimTask);
}

/**
 * What this worker thread runs with (piscina `name: 'workerInfo'`): lets a
 * test see that the bundle still finds the WebAssembly module, which it
 * locates from its own module URL.
 */
export function workerInfo(): { wasm: boolean } {
  return { wasm: wasmModule() !== null };
}
