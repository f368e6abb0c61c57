/**
 * memory: what the simulate connection table costs per connection it holds
 * (keys, the 8-float record, one configuration's buckets; capacity included:
 * the table keeps a load factor of at most 1/2), and the insert rate. The
 * table holds the connections of the last flow timeout, not of the whole
 * capture, so this times the busiest minute is what a run needs.
 */
import { plan, summarize, type Suite } from '../harness/harness.ts';
import { createBatch } from '../../sim/traffic/batch.ts';
import { writeTupleV4 } from '../../sim/traffic/tuple.ts';
import { ConnTable } from '../../sim/engine/conn-table.ts';

export const memorySuite: Suite = {
  name: 'memory',
  description: 'connection table: bytes per connection and MiB per million connections held, insert rate',
  async run(ctx) {
    const { repeats } = plan(ctx);
    const flows = ctx.quick ? 100_000 : 1_000_000;
    const b = createBatch(65536);
    const outO = [new Int32Array(b.capacity)];
    const outR = [null];
    const rates: number[] = [];
    let bytesPerFlow = 0;
    for (let r = 0; r < repeats; r++) {
      // One timestamp for all: nothing expires, the table holds every connection.
      const t = new ConnTable({ kw: 4, c: 1, timeout: 120, onEnd: () => {} });
      let s = 0x1234567 + r;
      const t0 = performance.now();
      for (let done = 0; done < flows; ) {
        const n = Math.min(b.capacity, flows - done);
        for (let i = 0; i < n; i++) {
          s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
          writeTupleV4(b, i, 6, s, (done + i) & 0xffff, 0xc000020a, 443, 1);
        }
        b.count = n;
        for (let i = 0; i < n; i++) t.trackV4(b, i, outO, outR);
        done += n;
      }
      rates.push(flows / ((performance.now() - t0) / 1000));
      bytesPerFlow = t.byteSize() / t.count;
    }
    const m = summarize(rates);
    ctx.emit({ suite: 'memory', case: `connection table, ${flows} connections`, ops_per_s: m.median, spread: m.spread, bytes_per_flow: bytesPerFlow, mib_per_million_flows: (bytesPerFlow * 1e6) / 2 ** 20 });
  },
};
