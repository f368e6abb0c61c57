/** A one-line progress display on a terminal; silent when stderr is not a TTY (piped, CI). */
export class Progress {
  private readonly tty: boolean;
  private readonly t0 = performance.now();
  private shown = false;

  constructor(private readonly out: NodeJS.WriteStream, private readonly total = 0) {
    this.tty = !!out.isTTY && !process.env.CI;
  }

  update(done: number, rss: number): void {
    if (!this.tty) return;
    const s = (performance.now() - this.t0) / 1000;
    const rate = s > 0 ? done / s : 0;
    let bar = '';
    if (this.total > 0) {
      const f = Math.min(1, done / this.total);
      const w = 24;
      bar = `[${'#'.repeat(Math.round(f * w)).padEnd(w, '.')}] ${(f * 100).toFixed(0).padStart(3)}% `;
    }
    this.out.write(`\r${bar}${fmt(done)} packets  ${fmt(rate)}/s  ${(rss / 2 ** 20).toFixed(0)} MiB  ${s.toFixed(1)} s\x1b[K`);
    this.shown = true;
  }

  done(): void {
    if (this.tty && this.shown) this.out.write('\r\x1b[K');
  }
}

function fmt(n: number): string {
  if (n >= 1e9) return `${(n / 1e9).toFixed(2)}G`;
  if (n >= 1e6) return `${(n / 1e6).toFixed(2)}M`;
  if (n >= 1e3) return `${(n / 1e3).toFixed(1)}k`;
  return n.toFixed(0);
}
