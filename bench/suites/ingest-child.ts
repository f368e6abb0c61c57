/**
 * One measurement of our reader in a process of its own, the way the C
 * reader is measured: `ingest-child.ts FILE` reads FILE once unmeasured
 * (page cache, JIT), then once measured, and prints `packets cpu_s wall_s`.
 *
 * Why a child: in the bench process, every spawn of the C reader or tcpdump
 * made our next passes slower, for seconds after (measured on the snaplen-96
 * capture: ~31 ns a packet before a spawn of `true`, ~43-46 after, in the
 * fast loop, not in read(2); the cause looks like the fork's effect on the
 * memory the process already had). A process that never forks measures the
 * reader, not the bench.
 */
import { ours } from './ingest.ts';

const file = process.argv[2];
if (!file) {
  process.stderr.write('usage: ingest-child.ts FILE\n');
  process.exit(2);
}
const pass = ours(file);
pass();
const c0 = process.cpuUsage(), w0 = performance.now();
const n = pass();
const c = process.cpuUsage(c0), w = performance.now() - w0;
process.stdout.write(`${n} ${(c.user + c.system) / 1e6} ${w / 1e3}\n`);
