/**
 * Every command, one module each, loaded only when it runs: a command's
 * module (and the npm packages it uses: zod, yaml, piscina, playwright-core)
 * costs start-up time that `--help` and a one-tuple `hash` should not pay.
 * The summary here is the one the overview (`clusterip-sim --help`) prints.
 * Add a line here to add a command.
 */
import type { Command } from 'commander';

export type RegisterCommand = (program: Command) => void;

export interface CommandEntry {
  name: string;
  /** One line for the overview. */
  summary: string;
  /** The module's register function (a dynamic import, so the module loads only for its command). */
  load: () => Promise<RegisterCommand>;
}

export const COMMANDS: CommandEntry[] = [
  { name: 'simulate', summary: 'how will this traffic spread over the nodes? (the main job)', load: async () => (await import('./simulate.ts')).registerSimulate },
  { name: 'recommend', summary: 'so what do I deploy instead? a configuration proven on traffic it was not tuned on', load: async () => (await import('./recommend.ts')).registerRecommend },
  { name: 'merge', summary: 'join the partial results of a simulate run split across machines', load: async () => (await import('./merge.ts')).registerMerge },
  { name: 'failover', summary: 'what a crash, leave, partition or rejoin does to packets and connections', load: async () => (await import('./failover.ts')).registerFailover },
  { name: 'hash', summary: 'which node gets this flow? (one tuple, or CSV tuples)', load: async () => (await import('./hash.ts')).registerHash },
  { name: 'tuples', summary: 'show the tuples the simulator reads from a capture (CSV or JSON)', load: async () => (await import('./tuples.ts')).registerTuples },
  { name: 'gen', summary: 'write a synthetic traffic scenario as a pcap', load: async () => (await import('./gen.ts')).registerGen },
  { name: 'compare-schemes', summary: 'compare CLUSTERIP/xt_cluster/nft buckets with Maglev, rendezvous and jump hashing: balance, disruption, speed', load: async () => (await import('./compare-schemes.ts')).registerCompareSchemes },
  { name: 'glue', summary: 'apply a cluster config to real hosts; move buckets; read status; the heartbeat agent', load: async () => (await import('./glue.ts')).registerGlue },
  { name: 'replay', summary: 'send a capture into a real cluster; --verify proves the prediction per node', load: async () => (await import('./replay.ts')).registerReplay },
  { name: 'doctor', summary: 'which optional parts work here (live capture, PNG export, qemu, kernel modules) and how to get the rest', load: async () => (await import('./doctor.ts')).registerDoctor },
  { name: 'completion', summary: 'a bash/zsh completion script for every command and option', load: async () => {
    const [{ registerCompletion }, { buildProgram }] = await Promise.all([import('./completion.ts'), import('./program.ts')]);
    return (program) => registerCompletion(program, () => buildProgram([], true));
  } },
  { name: 'report', summary: 'write a self-contained HTML report (and PNG charts) from a saved JSON result', load: async () => (await import('./report.ts')).registerReport },
];
