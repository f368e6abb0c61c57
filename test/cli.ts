/** Runs the CLI in-process and captures what it writes (faster than spawning tsx per case). */
import { Readable } from 'node:stream';
import { main } from '../cli/main.ts';

export interface CliRun {
  code: number;
  stdout: string;
  stderr: string;
}

export async function runCli(args: string[], stdin?: string): Promise<CliRun> {
  let stdout = '', stderr = '';
  const ow = process.stdout.write.bind(process.stdout), ew = process.stderr.write.bind(process.stderr);
  const savedExit = process.exitCode;
  const savedStdin = Object.getOwnPropertyDescriptor(process, 'stdin');
  process.exitCode = undefined;
  process.stdout.write = ((c: string | Uint8Array) => ((stdout += String(c)), true)) as typeof process.stdout.write;
  process.stderr.write = ((c: string | Uint8Array) => ((stderr += String(c)), true)) as typeof process.stderr.write;
  if (stdin !== undefined) Object.defineProperty(process, 'stdin', { value: Readable.from([stdin]), configurable: true });
  try {
    const code = await main(args);
    return { code, stdout, stderr };
  } finally {
    process.stdout.write = ow;
    process.stderr.write = ew;
    process.exitCode = savedExit;
    if (savedStdin) Object.defineProperty(process, 'stdin', savedStdin);
  }
}
