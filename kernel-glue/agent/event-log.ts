/**
 * The agent's event log: one JSON object per line (`ts`, `t` seconds since
 * start, `node`, `inc`, then the record), appended to a file and/or stderr.
 */
import { closeSync, openSync, writeSync } from 'node:fs';
import type { LogRecord } from './core.ts';

export class EventLog {
  private readonly fd: number | null;
  /** Also called with every record (the metrics count events from here). */
  readonly observers: ((r: LogRecord) => void)[] = [];

  constructor(
    private readonly node: string,
    private readonly inc: number,
    /** Seconds on the monotonic clock the agent's `t` counts from. */
    private readonly t0: number,
    private readonly now: () => number,
    file: string | undefined,
    private readonly toStderr: boolean,
  ) {
    this.fd = file ? openSync(file, 'a') : null;
  }

  emit(r: LogRecord): void {
    const line = JSON.stringify({ ts: new Date().toISOString(), t: +(this.now() - this.t0).toFixed(4), node: this.node, inc: this.inc, ...r }) + '\n';
    if (this.fd !== null) writeSync(this.fd, line);
    if (this.toStderr) process.stderr.write(line);
    for (const o of this.observers) o(r);
  }

  close(): void {
    if (this.fd !== null) closeSync(this.fd);
  }
}
