/**
 * Reading what is really on a host: the kernel release, then the config's
 * backend reads its own objects (kernel-glue/backends/<name>/state.ts), with
 * their counters and a snapshot that rollback can restore.
 */
import type { ClusterConfig } from '../../sim/core/cluster-config.ts';
import { backendOf } from '../backends/index.ts';
import type { HostState } from '../backends/shared/backend.ts';
import { StepError } from '../exec/steps.ts';
import type { Runner } from '../exec/runner.ts';

export type { HostState } from '../backends/shared/backend.ts';

/**
 * Reads the host. Throws StepError only when the host cannot be reached at
 * all (the first command fails to run); missing objects are simply absent.
 */
export async function readHostState(r: Runner, c: ClusterConfig, expectFp: string): Promise<HostState> {
  const uname = await r.run(['uname', '-r']);
  if (uname.code !== 0) {
    throw new StepError(r.host, r.where, 'uname -r', uname.code, uname.stderr);
  }
  const st = await backendOf(c).readState(r, c, expectFp);
  return { host: r.host, where: r.where, kernel: uname.stdout.trim(), ...st, complete: st.gaps.length === 0 };
}
