/** The progress line (percentage, ETA) and the packet estimate behind a capture's "~" percentage. */
import { describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { clock, estimatePackets, progressLine } from './progress.ts';
import { runCli } from '../test/cli.ts';
import { openCapture } from '../sim/traffic/capture.ts';

describe('progress', () => {
  it('shows the bar, percentage and ETA from the rate so far; none without a total', () => {
    // 250k of 1M packets in 10 s: 25 %, 25k/s, 30 s to go.
    const l = progressLine(250_000, 10, 1_000_000, false, 300 * 2 ** 20);
    expect(l).toMatch(/^\[######\.+\]  25% 250\.0k packets {2}25\.0k\/s {2}300 MiB {2}10 s {2}ETA 30 s$/);
    expect(progressLine(250_000, 10, 1_000_000, true)).toMatch(/~ 25% .*ETA ~30 s$/);
    expect(progressLine(250_000, 10, 0, false)).toBe('250.0k packets  25.0k/s  10 s');
    expect([clock(42.4), clock(187), clock(3723)]).toEqual(['42 s', '3:07', '1:02:03']);
  });

  it('estimates a capture\'s packets from its size and 8 shares spread over it', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'cipsim-progress-'));
    try {
      const f = join(dir, 'g.pcap');
      expect((await runCli(['gen', 'default', '--packets', '30000', '--seed', '5', '--out', f])).code).toBe(0);
      const src = openCapture(f);
      const b = { n: 0 };
      const batch = (await import('../sim/traffic/batch.ts')).createBatch(8192);
      for (let k; (k = src.fill(batch)) > 0; ) b.n += k;
      src.close();
      const est = estimatePackets([f]);
      expect(Math.abs(est - b.n) / b.n, `estimate ${est} vs ${b.n}`).toBeLessThan(0.15);
      expect(estimatePackets([join(dir, 'missing.pcap')])).toBe(0);
      expect(estimatePackets(['x.pcap.gz'])).toBe(0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
