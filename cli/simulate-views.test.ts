/**
 * One verdict everywhere: the built-in `simulate` run shows the same headline
 * and the same verdict per configuration and metric in the terminal, the JSON,
 * the HTML tables and the charts (whose subtitles the PNGs are drawn from).
 * The verdicts are sim/analysis's; every view must print them, not re-decide.
 */
import { describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCli } from '../test/cli.ts';
import type { SimulateResult } from '../sim/core/result.ts';
import { decideVerdict } from '../sim/analysis/verdict.ts';

/** Text of an HTML fragment: tags dropped, the entities esc() writes decoded. */
const text = (html: string): string =>
  html.replace(/<[^>]*>/g, '').replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&quot;/g, '"').replace(/&#39;/g, "'").replace(/&amp;/g, '&').trim();

/** Body rows of the table with this id, as cell texts. */
function tableRows(html: string, id: string): string[][] {
  const start = html.indexOf(`id="${id}"`);
  expect(start, `table #${id}`).toBeGreaterThan(0);
  const body = html.slice(html.indexOf('<tbody>', start), html.indexOf('</tbody>', start));
  return [...body.matchAll(/<tr>([\s\S]*?)<\/tr>/g)].map((m) => [...m[1]!.matchAll(/<t[dh][^>]*>([\s\S]*?)<\/t[dh]>/g)].map((c) => text(c[1]!)));
}

describe('simulate: one verdict in every view', () => {
  it('the built-in run: terminal, JSON, HTML tables and chart subtitles agree', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'cipsim-views-'));
    try {
      const term = await runCli(['simulate', '--workers', '0']);
      expect(term.code, term.stderr).toBe(0);
      const html = join(dir, 'r.html');
      const js = await runCli(['simulate', '--workers', '0', '--json', '--report', html]);
      expect(js.code, js.stderr).toBe(0);
      const r = JSON.parse(js.stdout) as SimulateResult;
      const page = readFileSync(html, 'utf8');

      // The run is the one the issue describes: B is uneven because of the traffic, A is even.
      const kinds = r.configs.map((c) => c.stats.find((s) => s.metric === 'packets')!.verdict.kind);
      expect(kinds).toEqual(['even', 'traffic']);

      // Headline: first line of the terminal, the JSON field, the report's headline paragraph.
      expect(r.headline).toMatch(/^A is even .*; B loads node \d .* of packets .*; A→B moves [\d.]+ % of flows$/);
      expect(term.stdout.split('\n')[0]).toBe(r.headline);
      const h = /<p[^>]*id="headline"[^>]*>([\s\S]*?)<\/p>/.exec(page);
      expect(h && text(h[1]!)).toBe(r.headline);

      const data = JSON.parse(/<script type="application\/json" id="report-data">([\s\S]*?)<\/script>/.exec(page)![1]!) as {
        charts: { file: string; config: { options: { plugins: { subtitle: { text: string[] } } } } }[];
      };
      for (const [i, c] of r.configs.entries()) {
        // Terminal: the stats block of configuration c, one line per metric ending in its verdict.
        const block = term.stdout.slice(term.stdout.indexOf(`${c.id}: ${c.selector.description}`));
        const stats = tableRows(page, `config-${i}-stats`);
        for (const s of c.stats) {
          // The JSON carries the verdict with the numbers it was decided from, and they agree.
          expect(s.verdict).toEqual(decideVerdict(s));
          const line = block.split('\n').find((l) => l.trimStart().startsWith(`${s.metric} `))!;
          expect(line.endsWith(`  ${s.verdict.text}`), `terminal ${c.id} ${s.metric}: ${line}`).toBe(true);
          const row = stats.find((rw) => rw[0] === s.metric)!;
          expect(row.at(-1), `HTML ${c.id} ${s.metric}`).toBe(s.verdict.text);
          if (s.metric !== 'connections') {
            const chart = data.charts.find((ch) => ch.file === `${c.id}-${s.metric}`)!;
            expect(chart.config.options.plugins.subtitle.text, `chart ${c.id}-${s.metric}`).toContain(`verdict: ${s.verdict.text}`);
          }
        }
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 120_000);
});
