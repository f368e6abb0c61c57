/**
 * Rendezvous hashing's defining property: minimal disruption. Removing a node
 * moves exactly the flows that node had; adding one moves exactly the flows
 * the new node wins; nothing else changes.
 */
import { describe, expect, it } from 'vitest';
import { rendezvousScheme } from './rendezvous.ts';
import { membership } from './scheme.ts';
import { collectFlows } from './flows.ts';
import { syntheticBatches } from '../traffic/synthetic.ts';

describe('rendezvous (highest random weight)', () => {
  it('moves exactly the failed node\'s flows, and exactly the flows a new node wins', async () => {
    const fs = await collectFlows(syntheticBatches('mix', { flows: 20000, seed: 3 }));
    const s = rendezvousScheme();
    const n = fs.flows.count;
    const base = new Int32Array(n), down = new Int32Array(n), grown = new Int32Array(n);
    s.assign(fs.flows, membership(5), base);
    s.assign(fs.flows, membership(5, 5, [2]), down);
    s.assign(fs.flows, membership(5, 6), grown);
    let onDead = 0, movedDown = 0, movedUp = 0;
    for (let i = 0; i < n; i++) {
      if (base[i] === 2) onDead++;
      if (base[i] !== down[i]) { movedDown++; expect(base[i]).toBe(2); }
      expect(down[i]).not.toBe(2);
      if (base[i] !== grown[i]) { movedUp++; expect(grown[i]).toBe(5); }
    }
    expect(movedDown).toBe(onDead);
    expect(onDead / n).toBeGreaterThan(0.17);
    expect(onDead / n).toBeLessThan(0.23);
    expect(movedUp / n).toBeGreaterThan(1 / 6 - 0.02);
    expect(movedUp / n).toBeLessThan(1 / 6 + 0.02);
  });
});
