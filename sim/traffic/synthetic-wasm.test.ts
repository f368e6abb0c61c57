/**
 * The synthetic generator's WebAssembly path (synthetic-wasm.ts, gen.ts)
 * against its TypeScript loops (synthetic.ts), the reference: every scenario
 * (synflood and portscan through both sides' one-SYN loops), several seeds,
 * sizes and shares, batch capacities on both sides of the module's staging
 * chunk (so batch and chunk boundaries fall everywhere), batches reused from
 * an IPv6 fill, and a run whose active flows outgrow the module's first
 * memory and crowd its buckets. Every lane of every packet and the stats
 * must be the same.
 */
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createBatch, FAMILY_IPV6, type TupleBatch } from './batch.ts';
import { openSynthetic, SCENARIOS, type SyntheticOptions } from './synthetic.ts';
import { syntheticWasmSwitch } from './synthetic-wasm.ts';
import { buildWasm } from '../select/wasm/build.ts';

beforeAll(() => {
  // The module must be there to be tested (built by npm ci; rebuilt here when stale).
  expect(buildWasm().built).toBe(true);
});
afterEach(() => { syntheticWasmSwitch.on = true; });

const LANES = ['ts', 'wirelen', 'saddr', 'daddr', 'l4a', 'l4b', 'sport', 'dport', 'proto', 'family', 'flags', 'l4flags'] as const;

/** A batch whose slots hold IPv6 packets (family 6, non-zero address lanes), as one reused after an IPv6 capture. */
function dirtyBatch(capacity: number): TupleBatch {
  const b = createBatch(capacity);
  b.family.fill(FAMILY_IPV6);
  b.saddr6.fill(0x20010db8);
  b.daddr6.fill(0xfe800000);
  b.l4flags.fill(0xff);
  return b;
}

/** Every packet (all lanes, IPv6 ones included) and the stats, filling batches of `capacity`. */
function run(name: string, o: SyntheticOptions, capacity: number, wasm: boolean): { rows: string[]; stats: string } {
  syntheticWasmSwitch.on = wasm;
  const before = syntheticWasmSwitch.delivered;
  const src = openSynthetic(name, o);
  const b = dirtyBatch(capacity);
  const rows: string[] = [];
  while (src.fill(b) > 0) {
    for (let i = 0; i < b.count; i++) {
      const v6 = [...b.saddr6.subarray(i * 4, i * 4 + 4), ...b.daddr6.subarray(i * 4, i * 4 + 4)].join(':');
      rows.push(`${LANES.map((l) => b[l][i]).join(',')},${v6}`);
    }
  }
  const made = syntheticWasmSwitch.delivered - before;
  // CLUSTERIP_SIM_NO_WASM turns the module off (then both runs are the TypeScript loop)
  const viaWasm = wasm && !process.env.CLUSTERIP_SIM_NO_WASM;
  expect(made, `${name}: packets the module made`).toBe(viaWasm ? rows.length : 0);
  return { rows, stats: JSON.stringify(src.stats) };
}

function expectSame(name: string, o: SyntheticOptions, capTs: number, capWasm: number): number {
  const ts = run(name, o, capTs, false);
  const wasm = run(name, o, capWasm, true);
  // compare the first difference, not 10^5 rows at once (a readable failure)
  const first = wasm.rows.findIndex((r, i) => r !== ts.rows[i]);
  expect(first === -1 ? null : { at: first, ts: ts.rows[first], wasm: wasm.rows[first] }).toBeNull();
  expect(wasm.rows.length).toBe(ts.rows.length);
  expect(wasm.stats).toBe(ts.stats);
  return ts.rows.length;
}

describe('synthetic traffic: WebAssembly path = TypeScript path', () => {
  for (const name of Object.keys(SCENARIOS)) {
    it(`${name}: seeds, sizes, shares and batch capacities`, () => {
      const oneway = name === 'steady' || name === 'mix';
      const cases: [SyntheticOptions, number, number][] = [
        [{ seed: 1, packets: 40_000 }, 65536, 4095],
        [{ seed: 77, packets: 9_000 }, 1, 4097],
        [{ seed: -5, packets: 20_000, share: { index: 1, count: 3 } }, 8192, 333],
        [{ seed: 3, packets: 0 }, 100, 100],
      ];
      if (oneway) cases.push([{ seed: 9, flows: 3000 }, 4096, 65536]);
      if (name === 'steady') cases.push([{ seed: 2, flows: 500, duration_s: 7.5, tcp_share: 0.3, clients: 40, server: 0x0a0b0c0d, packets: 30_000 }, 777, 5000]);
      let total = 0;
      for (const [o, a, b] of cases) total += expectSame(name, o, a, b);
      expect(total).toBeGreaterThan(40_000);
    });
  }

  it('crowded buckets and a grown memory: still the same packets', () => {
    // A million flows started over steady's 20 s warm-up, their ~50,000 packets in 0.05 s: about
    // 60 packets per 64 us bucket (the module heapsorts a bucket of more than 32 flows: 275 of them
    // here, counted once by hand) and tens of thousands of flows active at once, against 1,024
    // flow records in the module's first 16 pages (it grew to 16 MB).
    const n = expectSame('steady', { seed: 4, flows: 1_000_000, duration_s: 0.05 }, 65536, 4096);
    expect(n).toBeGreaterThan(40_000);
  });
});
