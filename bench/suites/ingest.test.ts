/**
 * Smoke test of the ingest bench in --quick mode: it builds the C reader,
 * generates both captures and emits one well-formed line per case with the
 * C and tcpdump comparisons. No speed is asserted (unit tests never time).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import type { BenchCase } from '../harness/harness.ts';
import { ingest } from './ingest.ts';

it('ingest --quick emits both cases with native and tcpdump ratios', async () => {
  const workDir = mkdtempSync(join(tmpdir(), 'bench-ingest-'));
  try {
    const out: BenchCase[] = [];
    await ingest.run({ quick: true, workDir, log: () => {}, emit: (c) => out.push(c) });
    expect(out.map((c) => c.case)).toEqual(['internet-mix 200000 packets', 'snaplen-96 200000 packets']);
    for (const c of out) {
      expect(c.suite).toBe('ingest');
      for (const k of ['ops_per_s', 'native_ops_per_s', 'ratio', 'tcpdump_ops_per_s', 'ratio_tcpdump'] as const) {
        expect(typeof c[k], k).toBe('number');
        expect(Number.isFinite(c[k] as number) && (c[k] as number) > 0, k).toBe(true);
      }
      expect(c.ratio).toBeCloseTo(c.ops_per_s / c.native_ops_per_s!, 6);
    }
    expect(out[1]!.file_bytes as number).toBeLessThan(out[0]!.file_bytes as number);
  } finally {
    rmSync(workDir, { recursive: true, force: true });
  }
}, 180_000);
