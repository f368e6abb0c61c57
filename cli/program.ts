/**
 * The program: every command's name and summary, the module of the one that
 * runs loaded (see commands.ts), and the overview's help text.
 */
import { Command } from 'commander';
import { COMMANDS } from './commands.ts';
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

Exit codes: 0 ok, 1 error in the input (a missing file too), 2 usage error, 3 a validation gate failed.
--json prints one JSON document, whole or not at all. Progress shows on a terminal only.
clusterip-sim doctor      what works on this machine and how to get the rest
clusterip-sim completion  bash/zsh completion: source <(clusterip-sim completion bash)
clusterip-sim help <command>  options and examples of one command`,
  );
  return program;
}

