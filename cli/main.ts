/**
 * clusterip-sim command line. Each command lives in its own file and is listed
 * in ./commands.ts; this file only wires up error handling and exit codes
 * (0 ok, 1 error, 2 usage, 3 a validation gate failed).
 */
import { CommanderError } from 'commander';
import { buildProgram } from './program.ts';
import { EXIT, exitCodeOf } from '../sim/core/errors.ts';

export async function main(argv: string[]): Promise<number> {
  const program = await buildProgram(argv);
  try {
    await program.parseAsync(argv, { from: 'user' });
    return process.exitCode === undefined ? EXIT.OK : Number(process.exitCode);
  } catch (err) {
    if (err instanceof CommanderError) {
      // Commander already printed its message (or the help/version text).
      if (err.code === 'commander.helpDisplayed' || err.code === 'commander.version' || err.code === 'commander.help') return EXIT.OK;
      return EXIT.USAGE;
    }
    const code = exitCodeOf(err);
    const msg = err instanceof Error ? err.message : String(err);
    process.stderr.write(`clusterip-sim: ${msg}\n`);
    if (process.env.CLUSTERIP_SIM_DEBUG && err instanceof Error) process.stderr.write(`${err.stack}\n`);
    return code;
  }
}

// A closed pipe (`clusterip-sim hash … | head`) is a normal way to stop reading.
process.stdout.on('error', (e: NodeJS.ErrnoException) => {
  if (e.code === 'EPIPE') process.exit(0);
  throw e;
});

const isEntry = process.argv[1] !== undefined && /(?:main\.ts|clusterip-sim(?:\.js)?)$/.test(process.argv[1]);
if (isEntry) {
  const code = await main(process.argv.slice(2));
  process.exitCode = code;
}
