/** The schemes report renders a real compare-schemes result with every scheme and its numbers. */
import { describe, expect, it } from 'vitest';
import { runCli } from '../test/cli.ts';
import { renderReport, type SchemesReport } from './html.ts';

describe('schemes report', () => {
  it('shows every scheme with its balance and disruption from the JSON result', async () => {
    const r = await runCli(['compare-schemes', '--nodes', '4', '--flows', '3000', '--json']);
    expect(r.code, r.stderr).toBe(0);
    const doc = JSON.parse(r.stdout) as SchemesReport;
    expect(doc.kind).toBe('schemes');
    const html = renderReport(doc);
    expect(html).not.toMatch(/<script[^>]+src=/);
    for (const s of doc.schemes) {
      expect(html).toContain(`<td>${s.name}</td>`);
      expect(html).toContain(s.balance.flows.toFixed(3));
    }
    expect(html).toMatch(/Disruption: share of flows that change node/);
    expect(() => renderReport({ kind: 'schemes' })).toThrow(/\$\.schemes/);
  });
});
