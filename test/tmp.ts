/**
 * Scratch directories for tests, removed by the test framework when they are
 * done, pass or fail: `fileDir` at a file's or a describe's top level (removed
 * after its tests), `testDir` inside one test (removed when it finishes).
 * A killed run still leaves them, but a normal one leaves nothing in /tmp.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, onTestFinished } from 'vitest';

const make = (prefix: string): string => mkdtempSync(join(tmpdir(), prefix));
const remove = (d: string) => (): void => rmSync(d, { recursive: true, force: true });

/** A directory for the tests of this file (or describe block): call it at collection time, not inside a test. */
export function fileDir(prefix: string): string {
  const d = make(prefix);
  afterAll(remove(d));
  return d;
}

/** A directory for the running test only. */
export function testDir(prefix: string): string {
  const d = make(prefix);
  onTestFinished(remove(d));
  return d;
}
