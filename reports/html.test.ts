import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { DataError } from '../sim/core/errors.ts';
import { readResultFile } from '../cli/report.ts';
import { benchFixture, failoverFixture, simulateFixture } from './fixtures.ts';
import { esc, jsonForScript } from './format.ts';
import { peerThroughputs, renderReport, renderSimulateHtml, timelineSeries } from './html.ts';

/** The JSON block of a report, parsed back. */
function embedded(html: string): { charts: { id: string; config: unknown }[]; result: unknown } {
  const m = /<script type="application\/json" id="report-data">([\s\S]*?)<\/script>/.exec(html);
  expect(m).not.toBeNull();
  return JSON.parse(m![1]!);
}

describe('report HTML', () => {
  it('escapes every input string and keeps the embedded JSON from closing its script element', () => {
    const r = simulateFixture();
    r.input.files[0]!.path = 'evil</script><img src=x onerror=alert(1)>.pcap';
    r.configs[0]!.nodes[0]!.name = '<b>alpha</b> & "co"';
    const html = renderSimulateHtml(r);
    expect(html).not.toContain('<img src=x');
    expect(html).not.toContain('<b>alpha</b>');
    expect(html).toContain(esc('evil</script><img src=x onerror=alert(1)>.pcap'));
    expect(html).toContain('&lt;b&gt;alpha&lt;/b&gt; &amp; &quot;co&quot;');
    // Three script elements (data, chart.js, ours) and the data round-trips exactly.
    expect(html.match(/<\/script>/g)!.length).toBe(3);
    expect(embedded(html).result).toEqual(r);
    expect(JSON.parse(jsonForScript('a</script>\u2028b'))).toBe('a</script>\u2028b');
  });

  it('is self-contained: chart.js inlined, no URL to fetch, a CSP that forbids fetching', () => {
    for (const r of [simulateFixture(), failoverFixture(), benchFixture()]) {
      const html = renderReport(r);
      expect(html).toContain("default-src 'none'");
      expect(html).toMatch(/Chart\.js v4\.\d+\.\d+/);
      expect(html).not.toMatch(/<(script|link|img|iframe)[^>]+(src|href)=/i);
      expect(html).not.toMatch(/sourceMappingURL/);
      expect(html).not.toMatch(/@import|url\(\s*['"]?https?:/i);
    }
  });

  it('failover: the handover section gives each order\'s window and cost', () => {
    const r = failoverFixture();
    const html = renderReport(r);
    expect(html).toContain('id="handover"');
    for (const m of r.handover!.per_mode) for (const v of [m.lost_packets, m.duplicated_packets, m.broken_connections]) expect(html).toContain(`data-v="${v}"`);
    expect(renderReport({ ...r, handover: undefined })).not.toContain('id="handover"');
  });

  it('one chart per metric and config, a comparison, the migration matrix', () => {
    const r = simulateFixture();
    const html = renderReport(r);
    const charts = embedded(html).charts;
    expect(charts.length).toBe(1 + 3 * r.configs.length);
    for (const [i, m] of r.migrations.entries()) {
      expect(html).toContain(`id="migration-${i}"`);
      for (const row of m.matrix) for (const v of row) expect(html).toContain(`data-v="${v}"`);
    }
    // The band from randomness alone is centred on the mean and reaches max/mean p95.
    const cfg = charts[1]!.config as { options: { plugins: { cisBand: { lo: number; hi: number; mean: number } } } };
    const st = r.configs[0]!.stats.find((s) => s.metric === 'packets')!;
    expect(cfg.options.plugins.cisBand.hi).toBeCloseTo(st.mean * st.random_max_over_mean_p95, 6);
    expect(cfg.options.plugins.cisBand.mean).toBe(st.mean);
  });

  it('reads the failover timeline per node, in either orientation, and rejects a mismatch', () => {
    const t = failoverFixture().timeline;
    const transposed = { ...t, per_node: t.lost.map((_, i) => t.per_node.map((s) => s[i]!)) };
    expect(timelineSeries(t)).toEqual(t.per_node);
    expect(timelineSeries(transposed)).toEqual(t.per_node);
    expect(() => timelineSeries({ ...t, per_node: [[1, 2, 3]] })).toThrow(DataError);
  });

  it('finds peer tools in bench cases', () => {
    const c = benchFixture().cases.find((x) => x.suite === 'ingest')!;
    expect(peerThroughputs(c)).toEqual({ tcpdump: 2_950_000, tshark: 410_000 });
  });

  it('names what is wrong with a result it cannot render', () => {
    expect(() => renderReport({ kind: 'nope' })).toThrow(/\$\.kind: unknown report kind "nope"/);
    expect(() => renderReport([])).toThrow(DataError);
    expect(() => renderReport({ kind: 'simulate', input: {} })).toThrow(/\$\.configs/);
    expect(() => renderReport({ kind: 'bench' })).toThrow(/\$\.cases/);
  });
});

describe('readResultFile', () => {
  it('reads a JSON result, bench JSON lines, and names the bad line', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'clusterip-sim-report-'));
    try {
      const b = benchFixture();
      await writeFile(join(dir, 'r.json'), JSON.stringify(failoverFixture()));
      await writeFile(join(dir, 'b.jsonl'), b.cases.map((c) => JSON.stringify(c)).join('\n') + '\n');
      await writeFile(join(dir, 'bad.jsonl'), JSON.stringify(b.cases[0]) + '\n{"suite":"x"}\n');
      await writeFile(join(dir, 'junk.json'), '{"kind": "simulate",');
      expect((await readResultFile(join(dir, 'r.json'))).kind).toBe('failover');
      expect(await readResultFile(join(dir, 'b.jsonl'))).toEqual({ kind: 'bench', cases: b.cases });
      await expect(readResultFile(join(dir, 'bad.jsonl'))).rejects.toThrow(/bad\.jsonl:2: expected a bench case/);
      await expect(readResultFile(join(dir, 'junk.json'))).rejects.toThrow(/junk\.json: not JSON/);
      await expect(readResultFile(join(dir, 'missing.json'))).rejects.toThrow(/missing\.json: cannot read: ENOENT/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
