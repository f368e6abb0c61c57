/** Every command, one module each. Add a line here to add a command. */
import type { Command } from 'commander';
import { registerHash } from './hash.ts';
import { registerSimulate } from './simulate.ts';
import { registerGlue } from './glue.ts';
import { registerFailover } from './failover.ts';

export type RegisterCommand = (program: Command) => void;

export const COMMANDS: RegisterCommand[] = [
  registerSimulate,
  registerHash,
  registerGlue,
  registerFailover,
];
