/**
 * Runners: where a plan's argv arrays are executed. Local, inside a network
 * namespace (`ip netns exec NAME argv...`), or over OpenSSH in batch mode with
 * host key checking on. Nothing here builds a shell string from config values
 * except the one place OpenSSH forces it (the remote command line), where
 * every word is POSIX-quoted.
 */
import { spawn } from 'node:child_process';
import type { HostSpec } from '../../sim/core/cluster-config.ts';
import { shellJoin } from '../plan.ts';

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface Runner {
  /** Node name (for messages). */
  readonly host: string;
  /** "local", "netns ns1", "ssh root@h". */
  readonly where: string;
  /** The argv actually spawned for `argv` on this host. */
  wrap(argv: readonly string[]): string[];
  run(argv: readonly string[], stdin?: string, timeoutMs?: number): Promise<RunResult>;
}

export const DEFAULT_TIMEOUT_MS = 60_000;

/** Spawns one program (no shell), feeds stdin, collects output; never rejects. */
export function spawnArgv(argv: readonly string[], stdin?: string, timeoutMs = DEFAULT_TIMEOUT_MS): Promise<RunResult> {
  return new Promise((resolve) => {
    const [cmd, ...args] = argv;
    const child = spawn(cmd!, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '', stderr = '', done = false;
    const finish = (r: RunResult): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      resolve(r);
    };
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      finish({ code: 124, stdout, stderr: stderr + `\n(timed out after ${timeoutMs} ms)` });
    }, timeoutMs);
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.on('error', (e: NodeJS.ErrnoException) => finish({ code: e.code === 'ENOENT' ? 127 : 126, stdout, stderr: e.code === 'ENOENT' ? `${cmd}: command not found` : e.message }));
    child.on('close', (code, signal) => finish({ code: code ?? (signal ? 128 : 1), stdout, stderr }));
    child.stdin.on('error', () => { /* the program exited without reading stdin; its exit code tells */ });
    child.stdin.end(stdin ?? '');
  });
}

class ArgvRunner implements Runner {
  constructor(readonly host: string, readonly where: string, private readonly prefix: readonly string[], private readonly quoteTail: boolean) {}
  wrap(argv: readonly string[]): string[] {
    return this.quoteTail ? [...this.prefix, shellJoin(argv)] : [...this.prefix, ...argv];
  }
  run(argv: readonly string[], stdin?: string, timeoutMs?: number): Promise<RunResult> {
    return spawnArgv(this.wrap(argv), stdin, timeoutMs);
  }
}

export function localRunner(host = 'local'): Runner {
  return new ArgvRunner(host, 'local', [], false);
}

export function netnsRunner(host: string, netns: string): Runner {
  return new ArgvRunner(host, `netns ${netns}`, ['ip', 'netns', 'exec', netns], false);
}

export interface SshTarget {
  ssh: string;
  port?: number;
  identity?: string;
  known_hosts?: string;
}

/**
 * OpenSSH argv. BatchMode: never prompt (a missing key is an error, not a
 * hang); StrictHostKeyChecking=yes: an unknown or changed host key refuses.
 * `--` ends ssh's options so a destination can never be read as one.
 */
export function sshArgv(t: SshTarget): string[] {
  const a = ['ssh', '-o', 'BatchMode=yes', '-o', 'StrictHostKeyChecking=yes', '-o', 'ConnectTimeout=10'];
  if (t.port) a.push('-p', String(t.port));
  if (t.identity) a.push('-i', t.identity, '-o', 'IdentitiesOnly=yes');
  if (t.known_hosts) a.push('-o', `UserKnownHostsFile=${t.known_hosts}`);
  a.push('--', t.ssh);
  return a;
}

export function sshRunner(host: string, t: SshTarget): Runner {
  return new ArgvRunner(host, `ssh ${t.ssh}${t.port ? `:${t.port}` : ''}`, sshArgv(t), true);
}

export function runnerFor(host: string, spec: HostSpec): Runner {
  if (spec === 'local' || 'local' in spec) return localRunner(host);
  if ('netns' in spec) return netnsRunner(host, spec.netns);
  return sshRunner(host, spec);
}

/**
 * Runs another runner's commands from inside network namespace `netns`: e.g.
 * the ssh client from a management namespace that can reach the node.
 */
export function viaNetns(netns: string, inner: Runner): Runner {
  return {
    host: inner.host,
    where: `${inner.where} via netns ${netns}`,
    wrap: (argv) => ['ip', 'netns', 'exec', netns, ...inner.wrap(argv)],
    run(argv, stdin, timeoutMs) {
      return spawnArgv(this.wrap(argv), stdin, timeoutMs);
    },
  };
}
