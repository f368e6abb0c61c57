/** Preflight probes: does a tool run on the host, and the refusal when it does not. */
import type { Runner } from '../../exec/runner.ts';
import { IPT } from './iptables-legacy.ts';

/** Runs argv; ok when it exits 0, with its combined output (for version strings). */
export async function probe(r: Runner, argv: string[]): Promise<{ ok: boolean; out: string }> {
  const res = await r.run(argv);
  return { ok: res.code === 0, out: res.stdout + res.stderr };
}

export async function needNft(r: Runner): Promise<string | null> {
  return (await probe(r, ['nft', '--version'])).ok ? null : 'nft is not installed (Debian: package nftables)';
}

export async function needIptablesLegacy(r: Runner, tool = IPT): Promise<string | null> {
  return (await probe(r, [tool, '--version'])).ok ? null : `${tool} is not installed (needed for the cluster match chain; Debian: package iptables)`;
}
