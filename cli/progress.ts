/**
 * A one-line progress display on a terminal: packets, rate, memory, and with
 * a known (or estimated, marked "~") total, a bar, the percentage and an ETA.
 * Silent when stderr is not a TTY (piped, CI), so scripts never see it.
 */
import { statSync } from 'node:fs';
import { openCapture } from '../sim/traffic/capture.ts';
import { planShares } from '../sim/traffic/share-plan.ts';
import { createBatch } from '../sim/traffic/batch.ts';

export class Progress {
  private readonly tty: boolean;
  private readonly t0 = performance.now();
  private shown = false;
  private last = 0;

  /** `total` packets when known (0: unknown); `estimated` marks a total guessed from a file's size. */
  constructor(private readonly out: NodeJS.WriteStream, private readonly total = 0, private readonly estimated = false) {
    this.tty = !!out.isTTY && !process.env.CI;
  }

  update(done: number, rss?: number): void {
    if (!this.tty) return;
    const now = performance.now();
    // At most 10 redraws a second: callers may report every batch.
    if (now - this.last < 100 && done < this.total) return;
    this.last = now;
    this.out.write(`\r${progressLine(done, (now - this.t0) / 1000, this.total, this.estimated, rss)}\x1b[K`);
    this.shown = true;
  }

  done(): void {
    if (this.tty && this.shown) this.out.write('\r\x1b[K');
  }
}

/** The text of one progress line after `s` seconds (exported for tests: the display itself needs a TTY). */
export function progressLine(done: number, s: number, total: number, estimated: boolean, rss?: number): string {
  const rate = s > 0 ? done / s : 0;
  let head = '';
  let eta = '';
  if (total > 0) {
    const f = Math.min(1, done / total);
    const w = 24;
    const tilde = estimated ? '~' : '';
    head = `[${'#'.repeat(Math.round(f * w)).padEnd(w, '.')}] ${tilde}${(f * 100).toFixed(0).padStart(3)}% `;
    if (rate > 0 && done < total) eta = `  ETA ${tilde}${clock((total - done) / rate)}`;
  }
  return `${head}${fmt(done)} packets  ${fmt(rate)}/s${rss !== undefined ? `  ${(rss / 2 ** 20).toFixed(0)} MiB` : ''}  ${clock(s)}${eta}`;
}

/** 42 s, 3:07, 1:02:03. */
export function clock(s: number): string {
  const t = Math.max(0, Math.round(s));
  if (t < 60) return `${t} s`;
  const h = Math.floor(t / 3600), m = Math.floor((t % 3600) / 60), sec = String(t % 60).padStart(2, '0');
  return h ? `${h}:${String(m).padStart(2, '0')}:${sec}` : `${m}:${sec}`;
}

function fmt(n: number): string {
  if (n >= 1e9) return `${(n / 1e9).toFixed(2)}G`;
  if (n >= 1e6) return `${(n / 1e6).toFixed(2)}M`;
  if (n >= 1e3) return `${(n / 1e3).toFixed(1)}k`;
  return n.toFixed(0);
}

/**
 * Packets in these captures, estimated from their sizes and 8 shares of
 * about 128 KiB spread over each (packets per byte where the readers split): the total behind a "~" percentage and ETA. 0 when it cannot tell
 * (gzip, stdin, an unreadable file: the run itself reports those).
 */
export function estimatePackets(paths: readonly string[]): number {
  const SHARE = 128 * 1024, SAMPLES = 8;
  let total = 0;
  for (const p of paths) {
    if (p === '-' || /\.gz$/i.test(p)) return 0;
    try {
      let packets = 0, covered = 0;
      const b = createBatch(8192);
      // Shares of about 128 KiB (the readers' own split, on record boundaries); 8 of them, evenly spaced, are read.
      const shares = planShares(p, Math.max(SAMPLES, Math.ceil(statSync(p).size / SHARE)));
      const step = shares.length / SAMPLES;
      for (let k = 0; k < SAMPLES && k < shares.length; k++) {
        const share = shares[Math.floor((k + 0.5) * step)]!;
        if (share.end <= share.start) continue;
        const src = openCapture(p, { start: share.start, end: share.end, lenient: true });
        for (let n; (n = src.fill(b)) > 0; ) packets += n;
        src.close();
        covered += share.end - share.start;
      }
      if (covered === 0) return 0;
      total += (statSync(p).size * packets) / covered;
    } catch {
      return 0;
    }
  }
  return Math.round(total);
}
