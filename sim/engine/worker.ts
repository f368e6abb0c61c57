/** The worker's task function: one share in, one mergeable partial out. */
import { processShare } from './share.ts';
import type { SimPartial, SimTask } from './task.ts';

export default function runShare(task: SimTask): SimPartial {
  return processShare(task);
}
