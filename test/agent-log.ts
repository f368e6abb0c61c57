/** Helpers for kernel tests that run `glue agent`: its JSON log, and waiting for a condition. */
import { existsSync, readFileSync } from 'node:fs';

/** One record of the agent's JSON log (kernel-glue/agent/event-log.ts). */
export interface LogLine { ts: string; event: string; node: string; [k: string]: unknown }

/** Every record of a JSON log file so far (none when the file is not there yet). */
export const readLog = (f: string): LogLine[] => (existsSync(f) ? readFileSync(f, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l) as LogLine) : []);

/** Polls `fn` every `everyMs` until it returns something truthy; throws naming `what` after `timeoutMs`. */
export async function until<T>(what: string, fn: () => T | null | undefined | false | Promise<T | null | undefined | false>, timeoutMs: number, everyMs = 25): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}
