/** Every command, one module each. Add a line here to add a command. */
import type { Command } from 'commander';
import { registerHash } from './hash.ts';
import { registerSimulate } from './simulate.ts';
import { registerFailover } from './failover.ts';
import { registerReport } from './report.ts';
import { registerTuples } from './tuples.ts';
import { registerGen } from './gen.ts';
import { registerCompareSchemes } from './compare-schemes.ts';
import { registerGlue } from './glue.ts';
import { registerReplay } from './replay.ts';
import { registerRecommend } from './recommend.ts';

export type RegisterCommand = (program: Command) => void;

export const COMMANDS: RegisterCommand[] = [
  registerSimulate,
  registerRecommend,
  registerFailover,
  registerHash,
  registerTuples,
  registerGen,
  registerCompareSchemes,
  registerGlue,
  registerReplay,
  registerReport,
];
