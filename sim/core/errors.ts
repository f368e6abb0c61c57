/**
 * Errors that cross the CLI boundary, each with the exit code CI can gate on
 * (DESIGN.md: 0 ok, 1 error, 2 usage, 3 a validation threshold failed).
 */
import { readFileSync } from 'node:fs';

export const EXIT = { OK: 0, ERROR: 1, USAGE: 2, GATE: 3 } as const;

/** A flag, an option value or a combination of them is wrong: exit 2. */
export class UsageError extends Error {
  readonly exitCode = EXIT.USAGE;
  override name = 'UsageError';
}

/**
 * Input data is wrong: exit 1. `where` names the place (file:line, field,
 * byte offset) so a user can go straight to it.
 */
export class DataError extends Error {
  readonly exitCode = EXIT.ERROR;
  override name = 'DataError';
  constructor(
    readonly where: string,
    readonly what: string,
  ) {
    super(`${where}: ${what}`);
  }
}

/** A validation gate (e.g. --max-imbalance) failed: exit 3. */
export class GateError extends Error {
  readonly exitCode = EXIT.GATE;
  override name = 'GateError';
}

export function exitCodeOf(err: unknown): number {
  if (err && typeof err === 'object' && 'exitCode' in err && typeof (err as { exitCode: unknown }).exitCode === 'number') {
    return (err as { exitCode: number }).exitCode;
  }
  return EXIT.ERROR;
}

/** Reads a whole text file; a missing or unreadable file is a DataError naming it. */
export function readTextFile(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (e) {
    throw new DataError(path, (e as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (e as Error).message);
  }
}
