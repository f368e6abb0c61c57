/**
 * `--workers N` as simulate and failover take it. A count far above the
 * cores only adds threads that fight for them (measured: `--workers 256` on 2
 * cores ran 80x slower and took 3.4 GiB), so it is capped with a warning; the
 * default count is the engine's (sim/engine/run.ts, issue 22).
 */
import { availableParallelism } from 'node:os';
import { UsageError } from '../sim/core/errors.ts';

/** The most workers a run takes: 4 per core, at least 8 (tests exercise 4-way merges on small machines). */
export const maxWorkers = (): number => Math.max(8, 4 * availableParallelism());

/** The worker count from the flag's text (undefined: `dflt()`), capped at maxWorkers() with a warning on `warn`. */
export function workerCount(text: string | undefined, dflt: () => number, warn: (line: string) => void, flag = '--workers'): number {
  if (text === undefined) return dflt();
  if (!/^\d+$/.test(text.trim())) throw new UsageError(`${flag}: '${text}' must be a whole number (0 = in-process)`);
  const n = Number(text);
  const max = maxWorkers();
  if (n > max) {
    warn(`warning: ${flag} ${n} is far above this machine's ${availableParallelism()} cores: using ${max} (more threads only compete for the cores and each holds its own tables)\n`);
    return max;
  }
  return n;
}
