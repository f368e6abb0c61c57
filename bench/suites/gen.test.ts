/**
 * The gen bench compares like with like: bench/native/gen.c makes exactly our
 * packets for every scenario it implements (a checksum over every lane of
 * every packet), and the suite's quick run emits a well-formed ratio line.
 * No speed is asserted (unit tests never time).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import type { BenchCase } from '../harness/harness.ts';
import { buildNative } from '../harness/native.ts';
import { genSuite, generatedChecksum, nativeChecksum, NATIVE_GEN_SCENARIOS } from './gen.ts';

it('gen.c makes the same packets as our generator, every scenario, two seeds; the quick bench emits its ratio', async () => {
  const workDir = mkdtempSync(join(tmpdir(), 'bench-gen-'));
  try {
    const bin = buildNative(workDir, 'gen.c', ['-Werror', '-lm']);
    for (const sc of NATIVE_GEN_SCENARIOS) {
      for (const seed of [1, 77]) {
        const ours = generatedChecksum(sc, 60_000, seed);
        expect(nativeChecksum(bin, sc, 60_000, seed), `${sc} seed ${seed}`).toBe(ours);
      }
    }
    // a different input gives a different checksum (the check is not vacuous)
    expect(generatedChecksum('default', 60_000, 2)).not.toBe(generatedChecksum('default', 60_000, 1));
    const out: BenchCase[] = [];
    await genSuite.run({ quick: true, workDir, log: () => {}, emit: (c) => out.push(c) });
    expect(out.map((c) => c.case)).toEqual(['default 200000 packets, 1 thread']);
    expect(out[0]!.ratio).toBeCloseTo(out[0]!.ops_per_s / out[0]!.native_ops_per_s!, 6);
  } finally {
    rmSync(workDir, { recursive: true, force: true });
  }
}, 180_000);
