/**
 * clusterip-sim command line. Each command lives in its own file and is listed
 * in ./commands.ts; this file only wires up error handling and exit codes
 * (0 ok, 1 error, 2 usage, 3 a validation gate failed).
 */
import { Command, CommanderError } from 'commander';
import { COMMANDS } from './commands.ts';
import { EXIT, exitCodeOf } from '../sim/core/errors.ts';
import { VERSION } from '../sim/core/version.ts';

/** The command a command line runs (`help X` asks about X), or undefined for the overview. */
function commandOf(argv: readonly string[]): string | undefined {
  const i = argv.findIndex((a) => !a.startsWith('-'));
  if (i < 0) return undefined;
  return argv[i] === 'help' ? argv[i + 1] : argv[i];
}

/**
 * The program with the module of the command `argv` runs loaded and
 * registered; every other command is a name and summary only (for the
 * overview and commander's "did you mean"). `all` loads every module
 * (completion, tests that walk every option).
 */
export async function buildProgram(argv: readonly string[] = [], all = false): Promise<Command> {
  const wanted = commandOf(argv);
  const program = new Command('clusterip-sim')
    .version(VERSION)
    .description(
      'Predict, measure and deploy hash-based load sharing (iptables CLUSTERIP, the xt_cluster match, nftables jhash) ' +
        'bit-exactly as the Linux kernel does it, for every kernel era and CPU byte order.',
    )
    .showHelpAfterError('(run with --help for usage)')
    .exitOverride();
  for (const c of COMMANDS) {
    if (all || c.name === wanted) {
      (await c.load())(program);
      program.commands.at(-1)!.summary(c.summary);
    } else {
      program.command(c.name).summary(c.summary);
    }
  }
  program.addHelpText(
    'after',
    `
Examples:
  clusterip-sim simulate                          built-in scenario: how traffic spreads over a 4-node cluster
  clusterip-sim hash --backend clusterip --hashmode sourceip-sourceport --total-nodes 4 tcp 10.1.2.3:4000 192.0.2.10:80
  clusterip-sim hash --backend nft --nft 'jhash ip saddr . tcp sport mod 4 seed 0x1 offset 1' --input flows.csv

Exit codes: 0 ok, 1 error in the input, 2 usage error, 3 a validation gate failed.`,
  );
  return program;
}

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
