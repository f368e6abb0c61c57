/**
 * The operator's health command (`--health-cmd`), run every interval as
 * `/bin/sh -c CMD` (the one place a shell runs: the command line is the
 * operator's own flag, never built from config values). `limit` failures in a
 * row call `onLimit` (the agent then leaves through the normal leave path).
 */
import { spawn } from 'node:child_process';
import type { LogRecord } from './core.ts';

export interface HealthOptions {
  cmd: string;
  /** Consecutive failures that call onLimit. */
  limit: number;
  every_ms: number;
  emit: (r: LogRecord) => void;
  /** The result of each run: the core's health flag. */
  onResult: (ok: boolean) => void;
  onLimit: (failures: number) => void;
  /** Skip runs while this holds (leaving, stopped). */
  paused: () => boolean;
}

export class HealthCommand {
  private failures = 0;
  private running = false;
  private readonly timer: NodeJS.Timeout;

  constructor(private readonly o: HealthOptions) {
    this.timer = setInterval(() => this.runOnce(), o.every_ms);
  }

  stop(): void {
    clearInterval(this.timer);
  }

  private runOnce(): void {
    const o = this.o;
    if (this.running || o.paused()) return;
    this.running = true;
    const child = spawn('/bin/sh', ['-c', o.cmd], { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    child.stderr.setEncoding('utf8').on('data', (d: string) => (err = (err + d).slice(-500)));
    // A command that hangs is killed (and counts as a failure) after three intervals, at least 2 s.
    const kill = setTimeout(() => child.kill('SIGKILL'), Math.max(o.every_ms * 3, 2000));
    child.on('close', (code, sig) => {
      clearTimeout(kill);
      this.running = false;
      if (code === 0) {
        if (this.failures) o.emit({ event: 'health-ok', after_failures: this.failures });
        this.failures = 0;
        o.onResult(true);
        return;
      }
      this.failures++;
      o.onResult(false);
      o.emit({ event: 'health-fail', exit: code, signal: sig, count: this.failures, limit: o.limit, stderr: err.trim() || undefined });
      if (this.failures >= o.limit) o.onLimit(this.failures);
    });
    child.on('error', (e) => o.emit({ event: 'health-fail', error: e.message }));
  }
}
