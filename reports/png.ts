/**
 * PNG export: opens a written report in headless Chromium (Debian's
 * /usr/bin/chromium through playwright-core, which never downloads a browser)
 * and saves every chart as its own picture, for people who paste them into
 * tickets. Charts are re-laid out at one fixed size in the light scheme so the
 * pictures look the same whatever screen the report was written on.
 */
import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { DataError } from '../sim/core/errors.ts';
import { makeTempDir } from '../sim/core/temp-dir.ts';

export const CHROMIUM_PATH = process.env.CLUSTERIP_SIM_CHROMIUM ?? '/usr/bin/chromium';

/**
 * Flags for a closed network: without the background-networking ones Chromium
 * keeps trying to reach Google's services at start (refused here, slow elsewhere).
 */
export const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];

export interface Browser {
  context: BrowserContext;
  /** Closes the browser and removes its fresh profile folder. */
  close(): Promise<void>;
}

/** Starts headless Chromium with a fresh, empty profile. Throws a clear error when Chromium is not installed. */
export async function launchChromium(opts: { colorScheme?: 'light' | 'dark'; deviceScaleFactor?: number } = {}): Promise<Browser> {
  if (!existsSync(CHROMIUM_PATH)) {
    throw new DataError(CHROMIUM_PATH, 'Chromium is not installed; install it with `apt-get install chromium` (.ci/run does) or set CLUSTERIP_SIM_CHROMIUM to a Chromium binary');
  }
  const profile = makeTempDir('clusterip-sim-chromium-');
  try {
    const context = await chromium.launchPersistentContext(profile.path, {
      executablePath: CHROMIUM_PATH,
      headless: true,
      args: CHROMIUM_ARGS,
      colorScheme: opts.colorScheme ?? 'light',
      viewport: { width: 1200, height: 900 },
      deviceScaleFactor: opts.deviceScaleFactor ?? 1,
      offline: true,
    });
    return { context, close: async () => { await context.close().catch(() => {}); profile.remove(); } };
  } catch (e) {
    profile.remove();
    throw e;
  }
}

/** Waits until the report's script has drawn its charts; throws if one failed. */
export async function waitForCharts(page: Page): Promise<number> {
  // Browser-side code is passed as strings: this project compiles without the DOM library.
  await page.waitForFunction(`document.documentElement.hasAttribute('data-charts-drawn')`, undefined, { timeout: 20_000 });
  const [drawn, total] = await page.evaluate<[number, number]>(`[Number(document.documentElement.getAttribute('data-charts-drawn')), Number(document.documentElement.getAttribute('data-charts-total'))]`);
  if (drawn !== total) throw new Error(`only ${drawn} of ${total} charts drew`);
  return total;
}

const slug = (s: string) => s.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-|-$/g, '').slice(0, 60) || 'chart';

/** PNG size of one chart in CSS pixels (written at 2x). */
export const PNG_SIZE = { width: 960, height: 480 };

/**
 * Writes one PNG per chart of the report at `htmlPath` into `outDir`
 * (NN-name.png, in page order) and returns their paths.
 */
export async function renderPngs(htmlPath: string, outDir: string, browser?: Browser): Promise<string[]> {
  await mkdir(outDir, { recursive: true });
  const own = browser ?? (await launchChromium({ deviceScaleFactor: 2 }));
  try {
    const page = await own.context.newPage();
    try {
      await page.goto(pathToFileURL(resolve(htmlPath)).href);
      await waitForCharts(page);
      await page.addStyleTag({ content: `.grid{display:block!important} figure.chart{width:${PNG_SIZE.width}px!important;height:${PNG_SIZE.height}px!important;border:0!important;border-radius:0!important}` });
      // Resize every chart to its new box now rather than on the next ResizeObserver tick.
      const charts = await page.evaluate<{ id: string; file: string }[]>(`(() => {
        const data = JSON.parse(document.getElementById('report-data').textContent);
        for (const c of data.charts) Chart.getChart(document.getElementById(c.id))?.resize();
        return data.charts.map((c) => ({ id: c.id, file: c.file }));
      })()`);
      const out: string[] = [];
      for (const [i, c] of charts.entries()) {
        const path = join(outDir, `${String(i + 1).padStart(2, '0')}-${slug(c.file)}.png`);
        await page.locator(`#${c.id}`).screenshot({ path, animations: 'disabled' });
        out.push(path);
      }
      return out;
    } finally {
      await page.close();
    }
  } finally {
    if (!browser) await own.close();
  }
}
