/**
 * Opens generated reports in real headless Chromium (Debian's /usr/bin/chromium
 * through playwright-core): every chart draws, nothing is logged as an error,
 * no network request is made, and the numbers the tables show are the result's.
 * One browser serves the whole file. Without Chromium this fails, by design.
 */
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Page } from 'playwright-core';
import { benchFixture, failoverFixture, simulateFixture } from './fixtures.ts';
import { failoverHeadline } from '../sim/analysis/verdict.ts';
import { CHROMIUM_PATH, launchChromium, renderPngs, waitForCharts, type Browser } from './png.ts';
import { writeReport } from './write.ts';
import { timelineSeries, type SchemesReport } from './html.ts';
import { runCli } from '../test/cli.ts';
import type { FailoverEvent } from '../sim/core/result.ts';

let browser: Browser;
let dir: string;

const MISSING = `Chromium not found at ${CHROMIUM_PATH}: the report tests need a real browser. Install it with 'apt-get install chromium' (.ci/run does this).`;

// Without Chromium every test below fails with MISSING (a failure, never a skip).
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'clusterip-sim-reports-'));
  if (existsSync(CHROMIUM_PATH)) browser = await launchChromium();
}, 60_000);

afterAll(async () => {
  await browser?.close();
  if (dir && !process.env.KEEP_REPORTS) await rm(dir, { recursive: true, force: true });
});

interface Opened {
  page: Page;
  problems: string[];
  requests: string[];
}

/** Loads a report file, recording console errors/warnings, page errors, failed and all network requests. */
async function open(file: string, colorScheme: 'light' | 'dark' = 'light'): Promise<Opened> {
  if (!browser) throw new Error(MISSING);
  const page = await browser.context.newPage();
  await page.emulateMedia({ colorScheme });
  const problems: string[] = [];
  const requests: string[] = [];
  page.on('console', (m) => { if (m.type() === 'error' || m.type() === 'warning') problems.push(`console ${m.type()}: ${m.text()}`); });
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  page.on('requestfailed', (r) => problems.push(`request failed: ${r.url()}`));
  page.on('request', (r) => requests.push(r.url()));
  const url = pathToFileURL(file).href;
  await page.goto(url);
  await waitForCharts(page);
  // Anything beyond the document itself would be a network (or file) fetch.
  expect(requests.filter((u) => u !== url)).toEqual([]);
  return { page, problems, requests };
}

/**
 * Per canvas: share of pixels that differ from the canvas's own background
 * (its top-left pixel), read back from the page.
 */
async function inkPerCanvas(page: Page): Promise<{ id: string; ink: number; width: number }[]> {
  return page.evaluate(`[...document.querySelectorAll('canvas')].map((c) => {
    const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
    let ink = 0;
    for (let i = 0; i < d.length; i += 4) if (Math.abs(d[i] - d[0]) + Math.abs(d[i + 1] - d[1]) + Math.abs(d[i + 2] - d[2]) > 30) ink++;
    return { id: c.id, ink: ink / (c.width * c.height), width: c.width };
  })`);
}

async function chartsAllDrew(page: Page, expected: number): Promise<void> {
  const ink = await inkPerCanvas(page);
  expect(ink.length).toBe(expected);
  for (const c of ink) {
    expect(c.width, c.id).toBeGreaterThan(200);
    // Axes, labels and data cover well over 1 % of a drawn chart; an empty canvas has none.
    expect(c.ink, `${c.id} looks empty`).toBeGreaterThan(0.01);
  }
}

/** Cell texts of a table's body rows (th and td). */
async function rows(page: Page, id: string): Promise<string[][]> {
  const r = await page.evaluate<string[][]>(`[...document.querySelectorAll(${JSON.stringify(`#${id} tbody tr`)})].map((tr) => [...tr.children].map((c) => c.textContent.trim()))`);
  expect(r.length, `table #${id}`).toBeGreaterThan(0);
  return r;
}

/** The number a cell shows: "1,234" -> 1234, "12.34 %" -> 0.1234, "1.50 s" -> 1.5. */
function shown(text: string): number {
  const t = text.replace(/,/g, '').trim();
  const m = /^(-?[\d.]+(?:e[+-]?\d+)?)\s*(%|s)?/.exec(t);
  if (!m) throw new Error(`no number in '${text}'`);
  return m[2] === '%' ? Number(m[1]) / 100 : Number(m[1]);
}

/** Asserts the shown text equals `v` to the precision it is shown with. */
function same(text: string, v: number, what: string): void {
  const t = text.replace(/,/g, '');
  const dec = /\.(\d+)/.exec(t)?.[1]?.length ?? 0;
  const tol = (t.includes('%') ? 0.01 : 1) * 0.5 * 10 ** -dec + 1e-12;
  expect(Math.abs(shown(text) - v), `${what}: shown '${text}', result ${v}`).toBeLessThanOrEqual(tol);
}

describe('reports in headless Chromium', () => {
  it('simulate: 4-node distribution, 3 configs, migrations — charts drew, tables show the result', async () => {
    const r = simulateFixture();
    const file = join(dir, 'simulate.html');
    await writeReport(r, file);
    const { page, problems } = await open(file);
    await chartsAllDrew(page, 1 + 3 * r.configs.length);

    // The embedded data is the result itself; the page did not turn input strings into markup.
    const embedded = await page.evaluate(`JSON.parse(document.getElementById('report-data').textContent).result`);
    expect(embedded).toEqual(r);
    expect(await page.locator('dmz').count()).toBe(0);
    const files = await rows(page, 'input-files');
    expect(files.map((f) => f[0])).toEqual(r.input.files.map((f) => f.path));
    files.forEach((f, i) => { expect(f[2]).toBe(r.input.files[i]!.sha256); same(f[1]!, r.input.files[i]!.bytes, 'file bytes'); });

    for (const [i, c] of r.configs.entries()) {
      const nodes = await rows(page, `config-${i}-nodes`);
      const tp = c.nodes.reduce((a, n) => a + n.packets, 0);
      expect(nodes.length).toBe(c.nodes.length);
      nodes.forEach((row, k) => {
        const n = c.nodes[k]!;
        same(row[0]!, n.node, 'node');
        expect(row[1]).toBe(n.name);
        same(row[2]!, n.packets, 'packets'); same(row[3]!, n.packets / tp, 'packet share'); same(row[4]!, n.frames, 'frames');
        same(row[5]!, n.bytes, 'bytes'); same(row[7]!, n.flows, 'flows'); same(row[9]!, n.connections, 'connections');
        same(row[10]!, n.new_connections_per_s, 'new conn/s');
      });
      const stats = await rows(page, `config-${i}-stats`);
      stats.forEach((row, k) => {
        const s = c.stats[k]!;
        expect(row[0]).toBe(s.metric);
        same(row[1]!, s.total, 'total'); same(row[2]!, s.mean, 'mean'); same(row[3]!, s.max_over_mean, 'max/mean'); same(row[4]!, s.min_over_mean, 'min/mean');
        same(row[5]!, s.cv, 'cv'); same(row[6]!, s.jain, 'jain'); same(row[7]!, s.chi2, 'chi2'); same(row[8]!, s.chi2_df, 'df'); same(row[10]!, s.random_max_over_mean_p95, 'seeds p95');
        same(row[11]!, s.independent_max_over_mean_p95, 'random p95');
        // The verdict is the one the result carries (sim/analysis decided it), word for word.
        expect(row[12]).toBe(s.verdict.text);
      });
      const top = await rows(page, `config-${i}-top`);
      const want = c.nodes.flatMap((n) => n.top_sources.map((s) => ({ n, s })));
      expect(top.length).toBe(want.length);
      top.forEach((row, k) => { same(row[0]!, want[k]!.n.node, 'node'); expect(row[3]).toBe(want[k]!.s.addr); same(row[4]!, want[k]!.s.packets, 'src packets'); same(row[5]!, want[k]!.s.bytes, 'src bytes'); });
      const facts = await rows(page, `config-${i}-facts`);
      expect(facts.map((f) => f[0])).toEqual(c.selector.facts.map((f) => f.topic));
      facts.forEach((f, k) => expect(f[1]).toBe(c.selector.facts[k]!.evidence === 'source' ? 'read from source' : c.selector.facts[k]!.evidence));

      // The bars are the per-node numbers too.
      const ids = [2, 3, 4].map((j) => `chart-${j + 3 * i}`);
      const bars = await page.evaluate<number[][]>(`${JSON.stringify(ids)}.map((id) => Chart.getChart(document.getElementById(id)).data.datasets[0].data)`);
      expect(bars).toEqual([c.nodes.map((n) => n.packets), c.nodes.map((n) => n.bytes), c.nodes.map((n) => n.flows)]);
    }

    for (const [i, m] of r.migrations.entries()) {
      const mx = await rows(page, `migration-${i}`);
      expect(mx.length).toBe(m.from_nodes.length);
      mx.forEach((row, a) => {
        expect(row[0]).toBe(`node ${m.from_nodes[a]}`);
        m.matrix[a]!.forEach((v, b) => same(row[1 + b]!, v, `matrix[${a}][${b}]`));
        same(row[1 + m.to_nodes.length]!, m.matrix[a]!.reduce((x, y) => x + y, 0), 'row total');
      });
      const shares = await page.evaluate<number[]>(`[...document.querySelectorAll('#migration-${i}-shares .big')].map((e) => e.textContent)`);
      [m.flows_moved_share, m.connections_moved_share, m.packets_moved_share, m.bytes_moved_share].forEach((v, k) => same(String(shares[k]), v, 'moved share'));
    }
    const cmp = await rows(page, 'comparison');
    cmp.forEach((row, k) => { expect(row[0]).toBe(r.configs[k]!.id); same(row[3]!, r.configs[k]!.stats[0]!.max_over_mean, 'cmp max/mean'); });
    expect(problems).toEqual([]);
    await page.close();
  });

  it('simulate report draws in the dark colour scheme too', async () => {
    const file = join(dir, 'simulate-dark.html');
    await writeReport(simulateFixture(), file);
    const { page, problems } = await open(file, 'dark');
    const bg = await page.evaluate<string>(`getComputedStyle(document.body).backgroundColor`);
    const [rr, gg, bb] = bg.match(/\d+/g)!.map(Number);
    expect(rr! + gg! + bb!, `dark background, got ${bg}`).toBeLessThan(150);
    await chartsAllDrew(page, 10);
    expect(problems).toEqual([]);
    await page.close();
  });

  it('failover: crash of node2 at 10 s, recovery — timeline, events and totals match the result; PNGs written', async () => {
    const r = failoverFixture();
    const file = join(dir, 'failover.html');
    await writeReport(r, file);
    const { page, problems } = await open(file);
    await chartsAllDrew(page, 4);
    expect(await page.title()).toContain('crash & recover <node2>');
    for (const [id, v] of [['total-lost', r.totals.lost_packets], ['total-dup', r.totals.duplicated_packets], ['total-broken', r.totals.broken_connections], ['total-recovery', r.totals.recovery_s]] as const) {
      same(await page.locator(`#${id} .big`).innerText(), v, id);
    }
    const ev = await rows(page, 'events');
    ev.forEach((row, k) => { same(row[0]!, r.events[k]!.t, 't'); expect(row[1]).toBe(r.events[k]!.kind); expect(row[2]).toBe(r.events[k]!.node); });
    const tl = await rows(page, 'timeline');
    const series = timelineSeries(r.timeline);
    expect(tl.length).toBe(r.timeline.lost.length);
    tl.forEach((row, i) => {
      same(row[0]!, r.timeline.t0 + i * r.timeline.bin_s, 'bin start');
      series.forEach((s, k) => same(row[1 + k]!, s[i]!, `${r.timeline.nodes[k]} bin ${i}`));
      const n = series.length;
      same(row[1 + n]!, r.timeline.lost[i]!, 'lost'); same(row[2 + n]!, r.timeline.duplicated[i]!, 'dup'); same(row[3 + n]!, r.timeline.broken[i]!, 'broken');
    });
    const ph = await rows(page, 'phases');
    const want = r.phases.flatMap((p) => p.per_node.map((x) => ({ p, x })));
    ph.forEach((row, k) => { expect(row[0]).toBe(want[k]!.p.phase); expect(row[3]).toBe(want[k]!.x.node); same(row[4]!, want[k]!.x.packets, 'phase packets'); same(row[6]!, want[k]!.x.share, 'phase share'); });
    // Event markers are drawn at the events' times on the load chart.
    const markers = await page.evaluate<number[]>(`Chart.getChart(document.getElementById('chart-1')).options.plugins.cisEvents.items.map((e) => e.x)`);
    expect(markers).toEqual([...new Set(r.events.map((e) => e.t))]);
    expect(problems).toEqual([]);
    await page.close();

    const pngs = await renderPngs(file, join(dir, 'png'), browser);
    expect(pngs.map((p) => p.replace(/^.*\//, ''))).toEqual(['01-failover-load.png', '02-failover-lost-duplicated.png', '03-failover-broken.png', '04-failover-phases.png']);
    for (const p of pngs) {
      const head = (await readFile(p)).subarray(0, 24);
      expect(head.subarray(1, 4).toString()).toBe('PNG');
      expect(head.readUInt32BE(16), 'PNG width').toBeGreaterThanOrEqual(900);
      expect((await stat(p)).size).toBeGreaterThan(10_000);
    }
  });

  it('bench: throughput per suite against native and peer tools', async () => {
    const r = benchFixture();
    const file = join(dir, 'bench.html');
    await writeReport(r, file);
    const { page, problems } = await open(file);
    const suites = [...new Set(r.cases.map((c) => c.suite))];
    await chartsAllDrew(page, suites.length);
    for (const [i, s] of suites.entries()) {
      const cs = r.cases.filter((c) => c.suite === s);
      const t = await rows(page, `suite-${i}-cases`);
      t.forEach((row, k) => {
        const c = cs[k]!;
        expect(row[0]).toBe(c.case);
        same(row[1]!, c.ops_per_s, 'ops/s'); same(row[2]!, c.native_ops_per_s!, 'native'); same(row[3]!, c.ratio!, 'ratio'); same(row[4]!, c.spread!, 'spread');
      });
      const labels = await page.evaluate<string[]>(`Chart.getChart(document.getElementById('chart-${i + 1}')).data.datasets.map((d) => d.label)`);
      expect(labels.slice(0, 2)).toEqual(['clusterip-sim', 'native C reference']);
      if (s === 'ingest') expect(labels.slice(2).sort()).toEqual(['tcpdump', 'tshark']);
    }
    expect(problems).toEqual([]);
    await page.close();
  });

  describe('the report defects of issue 19, each as a user met it', () => {
    it('simulate: the headline and run line as the terminal words them; no empty name columns', async () => {
      const r = simulateFixture();
      for (const c of r.configs) for (const n of c.nodes) delete n.name;
      const file = join(dir, 'simulate-unnamed.html');
      await writeReport(r, file);
      const { page, problems } = await open(file);
      expect(await page.locator('#headline').innerText()).toBe(r.headline);
      // MiB as the terminal prints it (the report said "187 MB" for the terminal's "178.3 MiB").
      expect(await page.locator('p.note', { hasText: 'peak RSS' }).innerText()).toContain('peak RSS 178.3 MiB');
      for (const id of ['config-0-nodes', 'config-0-top']) {
        const heads = await page.evaluate<string[]>(`[...document.querySelectorAll('#${id} thead th')].map((t) => t.textContent.trim())`);
        expect(heads, id).not.toContain('name');
        const cells = await rows(page, id);
        for (const row of cells) expect(row.length).toBe(heads.length);
      }
      expect(problems).toEqual([]);
      await page.close();
    });

    it('simulate: per node, frames beside packets and bytes, with a caption saying which is which', async () => {
      const r = simulateFixture();
      // Fragmented traffic: more capture records (frames) than datagrams (packets) on some nodes.
      r.configs[0]!.nodes.forEach((n, k) => { n.frames = n.packets + 3 * k; });
      const file = join(dir, 'simulate-frames.html');
      await writeReport(r, file);
      const { page, problems } = await open(file);
      const heads = await page.evaluate<string[]>(`[...document.querySelectorAll('#config-0-nodes thead th')].map((t) => t.textContent.trim())`);
      expect(heads.slice(2, 6)).toEqual(['packets', 'share', 'frames', 'bytes']);
      const cells = await rows(page, 'config-0-nodes');
      cells.forEach((row, k) => { same(row[2]!, r.configs[0]!.nodes[k]!.packets, 'packets'); same(row[4]!, r.configs[0]!.nodes[k]!.frames, 'frames'); same(row[5]!, r.configs[0]!.nodes[k]!.bytes, 'bytes'); });
      const caption = await page.locator('#config-0-nodes caption').innerText();
      expect(caption).toMatch(/packets = what the node's netfilter counter .* shows \(one per datagram/);
      expect(caption).toMatch(/frames = the capture records behind those packets \(each fragment is a frame\)/);
      expect(caption).toMatch(/bytes = those frames' wire bytes/);
      // The caption is visible, not clipped to nothing.
      expect((await page.locator('#config-0-nodes caption').boundingBox())!.height).toBeGreaterThan(0);
      expect(problems).toEqual([]);
      await page.close();
    });

    it('failover: the lead counts scripted events, legends show rounded seconds, a few duplicates are visible, labels neither overlap nor leave the canvas', async () => {
      const r = failoverFixture();
      r.headline = failoverHeadline(r);
      r.phases[1]!.to_s = 40.53299096;
      r.phases[2]!.from_s = 40.53299096;
      // Events crowded into two seconds, as a flapping node gives them.
      const extra: FailoverEvent[] = [];
      for (let k = 0; k < 8; k++) extra.push({ t: 14 + k * 0.25, kind: k % 2 ? 'rejoin' : 'heartbeat-loss', node: `node${1 + (k % 4)}`, detail: 'flap' });
      r.events.push(...extra);
      r.timeline.duplicated.fill(0);
      r.timeline.duplicated[15] = 2;
      const file = join(dir, 'failover-defects.html');
      await writeReport(r, file);
      await renderPngs(file, join(dir, 'png-defects'), browser);
      const { page, problems } = await open(file);
      // The failover headline, as the terminal and the JSON word it.
      expect(await page.locator('#headline').innerText()).toBe(r.headline);
      expect(r.headline).toMatch(/^\d+ scripted events?: [\d,]+ packets? lost/);
      const lead = await page.locator('p.lead', { hasText: 'Policy' }).innerText();
      expect(lead).toContain(`${(r.scenario.events as unknown[]).length} scripted events`);
      expect(lead).toContain(`${r.events.length} on the timeline`);
      const legend = await page.evaluate<string[]>(`Chart.getChart(document.getElementById('chart-4')).data.datasets.map((d) => d.label)`);
      expect(legend).toContain('during (10–40.53 s)');
      for (const l of legend) expect(l).not.toMatch(/\d\.\d{3}/);
      // 2 duplicated packets next to thousands lost: a bar of their own axis's full height, not a pixel.
      const dup = await page.evaluate<{ h: number; area: number }>(`(() => { const ch = Chart.getChart(document.getElementById('chart-2')); const bar = ch.getDatasetMeta(1).data[15]; return { h: Math.abs(bar.base - bar.y), area: ch.chartArea.bottom - ch.chartArea.top }; })()`);
      expect(dup.h, 'duplicated bar height (px)').toBeGreaterThan(dup.area * 0.3);
      for (const id of ['chart-1', 'chart-2', 'chart-3']) {
        const boxes = await page.evaluate<{ x: number; y: number; w: number; h: number; text: string }[]>(`Chart.getChart(document.getElementById('${id}')).cisEventLabels`);
        const width = await page.evaluate<number>(`Chart.getChart(document.getElementById('${id}')).width`);
        const hidden = await page.evaluate<number>(`Chart.getChart(document.getElementById('${id}')).cisEventsHidden`);
        // Every marker has its label, or is counted in the "+n more events" note.
        expect(boxes.length - (hidden ? 1 : 0) + hidden, id).toBe(new Set(r.events.map((e) => e.t)).size);
        if (hidden) expect(boxes.at(-1)!.text).toBe(`+${hidden} more event${hidden > 1 ? 's' : ''}: see the Events table`);
        expect(boxes.length - (hidden ? 1 : 0), `${id}: labels shown`).toBeGreaterThanOrEqual(3);
        for (const [a, b1] of boxes.entries()) {
          expect(b1.x, `${id} '${b1.text}' left edge`).toBeGreaterThanOrEqual(0);
          expect(b1.x + b1.w, `${id} '${b1.text}' right edge`).toBeLessThanOrEqual(width + 0.5);
          for (const b2 of boxes.slice(a + 1)) {
            const overlap = b1.x < b2.x + b2.w && b2.x < b1.x + b1.w && b1.y < b2.y + b2.h && b2.y < b1.y + b1.h;
            expect(overlap, `${id}: '${b1.text}' and '${b2.text}' overlap`).toBe(false);
          }
        }
      }
      expect(problems).toEqual([]);
      await page.close();
    });

    it('compare-schemes: the lead sentence reads as text, balance axes start at 1, every terminal column is in the table', async () => {
      const run = await runCli(['compare-schemes', '--nodes', '4', '--flows', '3000', '--json']);
      expect(run.code, run.stderr).toBe(0);
      const r = JSON.parse(run.stdout) as SchemesReport;
      const file = join(dir, 'schemes.html');
      await writeReport(r, file);
      const { page, problems } = await open(file);
      const body = await page.locator('body').innerText();
      expect(body).not.toContain('[object Object]');
      expect(await page.locator('p.lead', { hasText: 'flows' }).innerText()).toContain(`${r.flows.toLocaleString('en-US')} flows, ${r.packets.toLocaleString('en-US')} packets`);
      const yMin = await page.evaluate<number>(`Chart.getChart(document.getElementById('chart-1')).scales.y.min`);
      expect(yMin).toBe(1);
      const heads = await page.evaluate<string[]>(`[...document.querySelectorAll('#schemes thead th')].map((t) => t.textContent.trim())`);
      expect(heads).toEqual(expect.arrayContaining(['+1 node (flows)', 'moved on return', 'one node down (flows)']));
      const t = await rows(page, 'schemes');
      const col = heads.indexOf('moved on return');
      t.forEach((row, k) => { const d = r.schemes[k]!.disruption.return; if (d) same(row[col]!, d.moved, 'moved on return'); });
      expect(problems).toEqual([]);
      await page.close();
    });
  });
});
