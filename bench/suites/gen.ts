/**
 * `npm run bench -- gen`: synthetic traffic into batches, packets per second
 * on one thread, against bench/native/gen.c doing the same work (the same
 * flows, draws, heap and lanes: the two agree on a checksum over every
 * packet, checked before anything is timed). Both sides report CPU time
 * (ours: the process's, which counts V8's compiler and GC threads too), since
 * the machine is shared; rounds alternate ours and C.
 */
import { createBatch } from '../../sim/traffic/batch.ts';
import { openSynthetic, SYNTHETIC_EPOCH } from '../../sim/traffic/synthetic.ts';
import { buildNative, runNative } from '../harness/native.ts';
import { measureRounds, plan, ratioCase, type Suite } from '../harness/harness.ts';

/** The scenarios gen.c implements (the capture-like ones; steady and mix have no C twin). */
export const NATIVE_GEN_SCENARIOS = ['default', 'uniform', 'cidr', 'zipf', 'nat', 'portscan', 'synflood'] as const;

/**
 * The checksum gen.c prints with GEN_CHECK set: FNV-1a-style over each
 * packet's microsecond time (two words) and wire lanes, in order.
 */
export function generatedChecksum(scenario: string, packets: number, seed: number): number {
  const b = createBatch(65536);
  const src = openSynthetic(scenario, { seed, packets });
  let h = 0x811c9dc5;
  const mix = (x: number): void => { h = Math.imul(h ^ x, 0x01000193) >>> 0; };
  while (src.fill(b) > 0) {
    for (let i = 0; i < b.count; i++) {
      const us = Math.round((b.ts[i]! - SYNTHETIC_EPOCH) * 1e6);
      mix(us >>> 0); mix(Math.floor(us / 4294967296) >>> 0);
      mix(b.wirelen[i]!); mix(b.saddr[i]!); mix(b.daddr[i]!); mix(b.l4a[i]!); mix(b.l4b[i]!);
      mix(b.sport[i]!); mix(b.dport[i]!); mix(b.proto[i]!); mix(b.flags[i]!);
    }
  }
  return h;
}

/** gen.c's checksum for the same input. */
export function nativeChecksum(bin: string, scenario: string, packets: number, seed: number): number {
  const prev = process.env.GEN_CHECK;
  process.env.GEN_CHECK = '1';
  try {
    return Number(runNative(bin, [scenario, String(packets), String(seed), '1']).trim().split(/\s+/)[2]);
  } finally {
    if (prev === undefined) delete process.env.GEN_CHECK; else process.env.GEN_CHECK = prev;
  }
}

function cpuSeconds(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
}

/** Packets per CPU second of our generator over one whole scenario. */
function ours(scenario: string, packets: number, seed: number): number {
  const b = createBatch(65536);
  const t0 = cpuSeconds();
  const src = openSynthetic(scenario, { seed, packets });
  let n = 0;
  for (;;) { const k = src.fill(b); if (k === 0) break; n += k; }
  return n / (cpuSeconds() - t0);
}

export const genSuite: Suite = {
  name: 'gen',
  description: 'synthetic traffic into batches: packets/s per thread against the same generator in C (bench/native/gen.c)',
  async run(ctx) {
    const { repeats, warmup } = plan(ctx);
    const bin = buildNative(ctx.workDir, 'gen.c', ['-Werror', '-lm']);
    const packets = ctx.quick ? 200_000 : 5_000_000;
    const seed = 1;
    for (const scenario of ctx.quick ? ['default'] : ['default', 'uniform', 'synflood']) {
      const want = nativeChecksum(bin, scenario, 100_000, seed), got = generatedChecksum(scenario, 100_000, seed);
      if (want !== got) throw new Error(`gen bench: ${scenario}: our packets and gen.c's differ (checksum ${got} against ${want}): not the same work`);
      const samples = measureRounds([
        { name: 'ours', run: () => ours(scenario, packets, seed) },
        {
          name: 'c',
          run: () => {
            const [n, s] = runNative(bin, [scenario, String(packets), String(seed), '1']).trim().split(/\s+/).map(Number);
            return n! / s!;
          },
        },
      ], repeats, warmup);
      const c = ratioCase('gen', `${scenario} ${packets} packets, 1 thread`, samples[0]!, samples[1]!, { packets, cpu_time: true });
      ctx.log(`gen ${scenario}: ours ${(c.ops_per_s / 1e6).toFixed(2)} M packets/s, C ${((c.native_ops_per_s ?? 0) / 1e6).toFixed(2)} M/s, ratio ${c.ratio?.toFixed(3)} (paired ${(c.ratio_paired as number | undefined)?.toFixed(3)})`);
      ctx.emit(c);
    }
  },
};
