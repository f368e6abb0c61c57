/** Every benchmark suite, one module each. Add a line here to add a suite. */
import type { Suite } from '../harness.ts';
import { ingest } from './ingest.ts';

export const SUITES: Suite[] = [ingest];
