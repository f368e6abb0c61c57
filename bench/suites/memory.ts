/**
 * memory: what a million flows cost in the simulate flow table (keys, values,
 * hash slots; typed arrays only, capacity included: the table doubles when
 * full), and the insert rate. The flow table is what grows with
 * a capture; everything per packet is reused.
 */
import { plan, summarize, type Suite } from '../harness.ts';
import { createBatch } from '../../sim/traffic/batch.ts';
import { writeTupleV4 } from '../../sim/traffic/tuple.ts';
import { FlowTable } from '../../sim/engine/flow-table.ts';

export const memorySuite: Suite = {
  name: 'memory',
  description: 'flow table: bytes per flow and MiB per million flows, insert rate',
  async run(ctx) {
    const { repeats } = plan(ctx);
    const flows = ctx.quick ? 100_000 : 1_000_000;
    const b = createBatch(65536);
    const rates: number[] = [];
    let bytesPerFlow = 0;
    for (let r = 0; r < repeats; r++) {
      const t = new FlowTable(1 << 14);
      let s = 0x1234567 + r;
      const t0 = performance.now();
      for (let done = 0; done < flows; ) {
        const n = Math.min(b.capacity, flows - done);
        for (let i = 0; i < n; i++) {
          s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
          writeTupleV4(b, i, 6, s, (done + i) & 0xffff, 0xc000020a, 443);
        }
        b.count = n;
        for (let i = 0; i < n; i++) t.upsert(b, i);
        done += n;
      }
      rates.push(flows / ((performance.now() - t0) / 1000));
      bytesPerFlow = t.byteSize() / t.count;
    }
    const m = summarize(rates);
    ctx.emit({ suite: 'memory', case: `flow table, ${flows} flows`, ops_per_s: m.median, spread: m.spread, bytes_per_flow: bytesPerFlow, mib_per_million_flows: (bytesPerFlow * 1e6) / 2 ** 20 });
  },
};
