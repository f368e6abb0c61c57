/** Every benchmark suite, one module each. Add a line here to add a suite. */
import type { Suite } from '../harness/harness.ts';
import { hashSuite } from './hash.ts';
import { ingest } from './ingest.ts';
import { simulateSuite } from './simulate.ts';
import { failoverSuite } from './failover.ts';
import { memorySuite } from './memory.ts';
import { schemesSuite } from './schemes.ts';
import { startupSuite } from './startup.ts';
import { mergeSuite } from './merge.ts';
import { genSuite } from './gen.ts';
import { simulateSizesSuite } from './simulate-sizes.ts';
import { recommendSuite } from './recommend.ts';

export const SUITES: Suite[] = [
  hashSuite,
  ingest,
  simulateSuite,
  failoverSuite,
  memorySuite,
  schemesSuite,
  startupSuite,
  mergeSuite,
  genSuite,
  simulateSizesSuite,
  recommendSuite,
];
