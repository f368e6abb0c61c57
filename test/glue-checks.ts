/**
 * Checks the glue kernel tests share: per-node counters that rose exactly
 * where the simulator sent the flows, and a status that matches the config.
 */
import { expect } from 'vitest';
import type { StatusReport } from '../kernel-glue/control/apply.ts';

/**
 * Between two status reads around a round of flows: on each host exactly the
 * node numbers its predicted flows hashed to counted more packets, and the
 * host dropped what others own.
 */
export function expectCountersFollow(before: StatusReport, after: StatusReport, numbers: readonly number[], predicted: readonly string[]): void {
  for (const h of after.hosts) {
    const prev = before.hosts.find((x) => x.host === h.host)!;
    const rose = Object.keys(h.counters).map(Number).filter((k) => h.counters[k]!.packets > (prev.counters[k]?.packets ?? 0));
    const hit = new Set(numbers.filter((_, i) => predicted[i] === h.host));
    expect(new Set(rose), `${h.host}: node numbers whose counters rose`).toEqual(hit);
    expect(h.dropped!.packets, `${h.host} drops what others own`).toBeGreaterThan(prev.dropped?.packets ?? 0);
  }
}

/** Every host reachable, as configured, no gaps; no orphaned or doubly owned node number; no drift. */
export function expectAsConfigured(s: StatusReport, names: readonly string[]): void {
  expect(s.hosts.map((h) => [h.host, h.reachable, h.matchesConfig, h.gaps])).toEqual(names.map((n) => [n, true, true, []]));
  expect(s.orphaned).toEqual([]);
  expect(s.doublyOwned).toEqual([]);
  expect(s.drift).toBe(false);
}
