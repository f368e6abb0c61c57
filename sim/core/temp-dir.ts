/**
 * Private temporary directories of the tool (spilled source runs, the JSON
 * spool, the probe's capture, a browser profile), removed when the process
 * ends however it ends: the owner's `remove()` in a `finally` on success and
 * on error, an 'exit' hook for `process.exit()`, and SIGINT/SIGTERM/SIGHUP,
 * whose default action would kill the process without running any `finally`.
 *
 * A command that handles the signal itself (tuples --live stops on SIGINT and
 * finishes normally) keeps doing so: the hook only acts when it is the
 * signal's sole listener, and then removes the directories and re-raises the
 * signal, so the exit status stays the usual 128+N.
 *
 * Main thread only: worker threads do not receive process signals.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface TempDir {
  /** The directory (under os.tmpdir(), so $TMPDIR is honoured). */
  readonly path: string;
  /** Removes it and everything in it; safe to call twice. */
  remove(): void;
}

const live = new Set<string>();
const SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;
let hooked = false;

function removeAll(): void {
  for (const d of live) rmSync(d, { recursive: true, force: true });
  live.clear();
}

function onSignal(sig: NodeJS.Signals): void {
  // Someone else handles it (a graceful stop): their normal ending removes the directories.
  if (process.listenerCount(sig) > 1) return;
  removeAll();
  process.off(sig, onSignal);
  process.kill(process.pid, sig);
}

function hook(): void {
  if (hooked) return;
  hooked = true;
  process.on('exit', removeAll);
  for (const s of SIGNALS) process.on(s, onSignal);
}

/** Makes a fresh private directory `<tmpdir>/<prefix>XXXXXX`, removed at the latest when the process ends. */
export function makeTempDir(prefix: string): TempDir {
  const path = mkdtempSync(join(tmpdir(), prefix));
  live.add(path);
  hook();
  return {
    path,
    remove() {
      live.delete(path);
      rmSync(path, { recursive: true, force: true });
    },
  };
}
