/** `clusterip-sim doctor`: prints the checks of doctor-checks.ts (changes nothing; exit 0 either way). */
import type { Command } from 'commander';
import { doctorChecks, formatChecks } from './doctor-checks.ts';

export function registerDoctor(program: Command): void {
  program
    .command('doctor')
    .description('Says which optional parts work on this machine (live capture, PNG export, the compiled command line, qemu, ' +
      'the kernel modules and tools each backend needs) and how to get the others. Changes nothing; exit 0 either way.')
    .option('--json', 'the checks as JSON')
    .action((o: { json?: boolean }) => {
      const checks = doctorChecks();
      process.stdout.write(o.json ? JSON.stringify({ checks }, null, 2) + '\n' : formatChecks(checks));
    });
}
