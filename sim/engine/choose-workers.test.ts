/**
 * The automatic worker count: small inputs run in-process, large ones on one
 * worker per CPU, and a capture's packets are estimated from its records.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createBatch } from '../traffic/batch.ts';
import { PcapWriter } from '../traffic/pcap-writer.ts';
import { openSynthetic } from '../traffic/synthetic.ts';
import { chooseWorkers, defaultWorkers, IN_PROCESS_IDLE_PACKETS, IN_PROCESS_PACKETS } from './run.ts';

let dir = '';
beforeAll(() => { dir = mkdtempSync(join(tmpdir(), 'choose-workers-test-')); });
afterAll(() => { rmSync(dir, { recursive: true, force: true }); });

function capture(name: string, packets: number, snaplen: number): string {
  const f = join(dir, name);
  const w = new PcapWriter(f, snaplen);
  const src = openSynthetic('uniform', { seed: 1, packets });
  const b = createBatch(4096);
  while (src.fill(b) > 0) w.write(b);
  w.close();
  return f;
}

it('runs small inputs in-process and large ones on every CPU', () => {
  expect(chooseWorkers([{ kind: 'synthetic', name: 'default', seed: 1, packets: 200_000 }])).toEqual({ workers: 0, packets: 200_000 });
  expect(chooseWorkers([{ kind: 'synthetic', name: 'default', seed: 1, packets: IN_PROCESS_PACKETS }]).workers).toBe(defaultWorkers());
  // two inputs add up
  const half = { kind: 'synthetic' as const, name: 'default', seed: 1, packets: IN_PROCESS_PACKETS / 2 };
  expect(chooseWorkers([half, half]).workers).toBe(defaultWorkers());
});

it('estimates a capture\'s packets from its records (within a factor of 2: a capture\'s start has smaller packets than the rest), whatever the snaplen', () => {
  for (const snaplen of [262144, 96]) {
    const f = capture(`u-${snaplen}.pcap`, 30_000, snaplen);
    const c = chooseWorkers([{ kind: 'pcap', path: f }]);
    expect(c.workers).toBe(0);
    expect(c.packets).toBeGreaterThan(30_000 / 2);
    expect(c.packets).toBeLessThan(30_000 * 2);
    expect(chooseWorkers([{ kind: 'pcap', path: f, limit: 10 }]).packets).toBe(10);
  }
});

it('chooses one worker for a large capture on two cores (the conntrack first pass over the earlier range costs more than the second core gives), every core with more', () => {
  const f = capture('big.pcap', 1000, 96);
  const big = { kind: 'pcap' as const, path: f, limit: IN_PROCESS_PACKETS };
  expect(chooseWorkers([big], { cores: 2, byteRanges: true })).toMatchObject({ workers: 1, packets: IN_PROCESS_PACKETS });
  expect(chooseWorkers([big], { cores: 2, byteRanges: true }).why).toMatch(/conntrack state/);
  expect(chooseWorkers([big], { cores: 8, byteRanges: true })).toEqual({ workers: 8, packets: IN_PROCESS_PACKETS });
  // No conntrack (nothing carried across an edge) or synthetic traffic (split by flows): every core.
  expect(chooseWorkers([{ ...big, noDefrag: true }], { cores: 2, byteRanges: true }).workers).toBe(2);
  // failover splits by flow, each partition reading the whole capture: nothing crosses an edge.
  expect(chooseWorkers([big], { cores: 2 }).workers).toBe(2);
  expect(chooseWorkers([{ kind: 'synthetic', name: 'default', seed: 1, packets: IN_PROCESS_PACKETS }], { cores: 2, byteRanges: true }).workers).toBe(2);
});

it('keeps a mid-sized capture in-process on two cores when the main thread has nothing of its own to do (no SHA-256 beside the run)', () => {
  const f = capture('idle.pcap', 1000, 96);
  const mid = { kind: 'pcap' as const, path: f, limit: IN_PROCESS_IDLE_PACKETS - 1 };
  const c = chooseWorkers([mid], { cores: 2, byteRanges: true, mainIdle: true });
  expect(c.workers).toBe(0);
  expect(c.why).toMatch(/starting a worker costs more/);
  // The main thread hashing the capture: one worker, so the hash runs beside it.
  expect(chooseWorkers([mid], { cores: 2, byteRanges: true }).workers).toBe(1);
  // Past the limit (no progress line in-process) and on more cores: as before.
  expect(chooseWorkers([{ ...mid, limit: IN_PROCESS_IDLE_PACKETS }], { cores: 2, byteRanges: true, mainIdle: true }).workers).toBe(1);
  expect(chooseWorkers([mid], { cores: 8, byteRanges: true, mainIdle: true }).workers).toBe(8);
});
