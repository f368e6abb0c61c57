/**
 * Output held back until a run succeeded: a JSON document reaches stdout
 * whole or not at all (a script must never parse half of one). The spool is a
 * private temporary file, so memory stays flat however large the output.
 */
import { closeSync, createReadStream, openSync } from 'node:fs';
import { join } from 'node:path';
import { makeTempDir } from '../sim/core/temp-dir.ts';
import { pipeline } from 'node:stream/promises';

export interface Spool {
  /** Write with writeSync(fd, text). */
  fd: number;
  /** Copies everything written to `out` (call once, after success). */
  copyTo(out: NodeJS.WritableStream): Promise<void>;
  /** Removes the file (always, in a finally). */
  remove(): void;
}

export function openSpool(): Spool {
  const dir = makeTempDir('clusterip-sim-spool-');
  const path = join(dir.path, 'out.json');
  const fd = openSync(path, 'w', 0o600);
  let open = true;
  const close = (): void => { if (open) { open = false; closeSync(fd); } };
  return {
    fd,
    async copyTo(out) {
      close();
      await pipeline(createReadStream(path), out, { end: false });
    },
    remove() {
      close();
      dir.remove();
    },
  };
}
