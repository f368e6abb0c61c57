/** The worker's task function: one share in, one mergeable partial out (simulate or failover). */
import { processShare } from './share.ts';
import { processFailoverShare } from './failover-share.ts';
import type { FailoverPartial } from '../cluster/timeline.ts';
import type { FailoverTask, SimPartial, SimTask } from './task.ts';

export default function runShare(task: SimTask | FailoverTask): SimPartial | FailoverPartial {
  return 'kind' in task && task.kind === 'failover' ? processFailoverShare(task) : processShare(task as SimTask);
}
