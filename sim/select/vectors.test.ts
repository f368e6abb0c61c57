/**
 * Every row of every golden-vector file, recorded from real kernels
 * (CLUSTERIP on 6.1.192 under qemu; xt_cluster and nft jhash on 6.18.44;
 * all three on Debian's big-endian 6.1.176 s390x kernel under qemu), must
 * come out of our selectors exactly. No sample, no tolerance.
 * Twice: through the TypeScript selectors and through the WebAssembly build.
 */
import { describe, expect, it, afterAll, beforeAll } from 'vitest';
import { buildWasm } from './wasm/build.ts';
import { wasmModule, type Engine } from './wasm.ts';
import { batchMemory, BYTES_PER_PACKET, createBatch, viewBatch } from '../traffic/batch.ts';
import { writeTupleV4 } from '../traffic/tuple.ts';
import { formatIPv4 } from '../core/addr.ts';
import { buildSelector } from './build.ts';
import { VECTOR_FILES, VECTOR_ROWS, loadVectorFile } from '../../test/vectors.ts';

// wasm reads batches in place (createBatch puts them in WebAssembly memory); wasm-copy runs
// the same kernels on a batch in a bare SharedArrayBuffer, which they copy chunk by chunk.
for (const mode of ['ts', 'wasm', 'wasm-copy'] as const) describe(`golden vectors from real kernels (${mode} selectors)`, () => {
  const engine: Engine = mode === 'ts' ? 'ts' : 'wasm';
  let totalPassed = 0;
  beforeAll(() => {
    if (engine !== 'wasm') return;
    // The wasm path must exist to be tested: a missing build fails here, it is not skipped.
    const r = buildWasm();
    expect(r.built, r.reason).toBe(true);
    expect(wasmModule()).not.toBeNull();
  });
  for (const [file, expectCounts] of Object.entries(VECTOR_FILES)) {
    it(`${file}: every row equals the kernel's answer`, () => {
      const { configs, rows } = loadVectorFile(file);
      expect(rows).toBe(expectCounts.rows);
      const mismatches: string[] = [];
      let passed = 0;
      for (const cfg of configs) {
        // Per-configuration row counts from the vectors README.
        const n = cfg.lines.length;
        const per = expectCounts.perConfig;
        const want = typeof per === 'number' ? per : cfg.mode.includes(' tcp ') ? per.tcp : per.udp;
        expect(n, `${file} ${cfg.key}`).toBe(want);
        const batch = mode === 'wasm-copy' ? viewBatch(new SharedArrayBuffer(BYTES_PER_PACKET * n), n, 0) : createBatch(n);
        expect(batchMemory(batch.buffer) !== undefined).toBe(mode !== 'wasm-copy');
        for (let i = 0; i < n; i++) writeTupleV4(batch, i, cfg.proto[i]!, cfg.saddr[i]!, cfg.sport[i]!, cfg.daddr[i]!, cfg.dport[i]!);
        batch.count = n;
        const out = new Int32Array(n);
        buildSelector(cfg.spec, { engine }).select(batch, out);
        for (let i = 0; i < n; i++) {
          if (out[i] === cfg.bucket[i]) passed++;
          else if (mismatches.length < 20) {
            mismatches.push(`${file}:${cfg.lines[i]} [${cfg.key}] proto ${cfg.proto[i]} ${formatIPv4(cfg.saddr[i]!)}:${cfg.sport[i]} -> ${formatIPv4(cfg.daddr[i]!)}:${cfg.dport[i]}: kernel ${cfg.bucket[i]! + cfg.offset}, ours ${out[i]! + cfg.offset}`);
          }
        }
      }
      expect(mismatches, mismatches.join('\n')).toEqual([]);
      expect(passed).toBe(expectCounts.rows);
      totalPassed += passed;
    });
  }
  afterAll(() => {
    // Printed so that a reader of the CI log sees the whole set ran.
    console.log(`golden vectors (${mode} selectors): ${totalPassed} of ${VECTOR_ROWS} rows match the kernel (130130 x86_64, 130470 s390x)`);
    expect(VECTOR_ROWS).toBe(130130 + 130470);
    expect(totalPassed).toBe(VECTOR_ROWS);
  });
});
