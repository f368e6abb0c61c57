/**
 * Writes a report file (and, on request, its charts as PNGs). Called by
 * `clusterip-sim report` and by `--report` on simulate, failover and bench.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { renderReport, type ReportInput } from './html.ts';

export interface WrittenReport {
  /** The HTML file written. */
  html: string;
  /** PNG files written (empty without pngDir). */
  pngs: string[];
}

/**
 * Renders `result` (a SimulateResult, FailoverResult or `{kind:'bench', cases}`)
 * to one self-contained HTML file at `outPath`, creating its folder; with
 * `pngDir`, also writes each chart as a PNG there (needs Chromium).
 */
export async function writeReport(result: ReportInput, outPath: string, pngDir?: string): Promise<WrittenReport> {
  const html = renderReport(result);
  await mkdir(dirname(outPath), { recursive: true });
  await writeFile(outPath, html);
  // playwright-core loads only when PNGs are asked for (it costs ~0.2 s of start-up).
  const pngs = pngDir ? await (await import('./png.ts')).renderPngs(outPath, pngDir) : [];
  return { html: outPath, pngs };
}
