/**
 * Reading what is really on a host: our nft tables, our iptables chain, the
 * CLUSTERIP /proc owner set, the multicast MAC, nf_conntrack_tcp_loose; the
 * per-node counters; and a snapshot that rollback can restore. The parsers
 * are pure functions over the tools' own text output (unit-tested).
 */
import type { ClusterConfig } from '../../sim/core/cluster-config.ts';
import { IPT_CHAIN, IPT_TABLE, MARK, NFT_TABLE, procPath, TCP_LOOSE, maddrProbe } from '../render/common.ts';
import { IPT_SAVE } from '../render/iptables.ts';
import { readFileOn, StepError } from '../exec/steps.ts';
import type { Runner } from '../exec/runner.ts';

export interface Counter {
  packets: number;
  bytes: number;
}

/** What one host has, as far as our objects go. */
export interface HostState {
  host: string;
  where: string;
  /** `uname -r`. */
  kernel: string | null;
  /** Our main object exists (nft table ip, or our iptables chain). */
  present: boolean;
  /** `cfg=` fingerprint found on our main object. */
  fingerprint: string | null;
  /** Every part the backend needs is there and carries the config's fingerprint. */
  complete: boolean;
  /** What is missing or foreign, in words (empty when complete). */
  gaps: string[];
  /** Owned node numbers as the kernel has them (nft set, cluster-match masks, /proc); null when not present. */
  owners: number[] | null;
  /** Per node number: packets/bytes this host accepted. */
  counters: Record<number, Counter>;
  /** Packets to the cluster IP this host dropped (xt_cluster/nft). */
  dropped: Counter | null;
  snapshot: Snapshot;
}

/** Enough to put a host back as it was. */
export interface Snapshot {
  /** `iptables-legacy-save -c -t mangle` (iptables backends). */
  mangle: string | null;
  /** `nft list table ip|arp clusterip_sim`, null when absent. */
  nftIp: string | null;
  nftArp: string | null;
  maddr: boolean | null;
  tcpLoose: string | null;
  /** CLUSTERIP /proc owners; null when the file does not exist. */
  procOwners: number[] | null;
}

export const fpOf = (text: string | null): string | null => (text && new RegExp(`${MARK} cfg=([0-9a-f]{12})`).exec(text)?.[1]) || null;

/** `nft list table ip clusterip_sim` -> owner set, per-element counters, drop counter, hash parameters. */
export function parseNftTable(text: string): { owners: number[]; counters: Record<number, Counter>; dropped: Counter | null; hash: { mod: number; seed: number; offset: number } | null } {
  const owners: number[] = [];
  const counters: Record<number, Counter> = {};
  const m = /set owned \{[^}]*?elements = \{([^}]*)\}/s.exec(text);
  if (m) {
    for (const e of m[1]!.split(',')) {
      const x = /^\s*(\d+)(?:\s+counter(?:\s+packets\s+(\d+)\s+bytes\s+(\d+))?)?\s*$/.exec(e);
      if (!x) continue;
      const k = Number(x[1]);
      owners.push(k);
      counters[k] = { packets: Number(x[2] ?? 0), bytes: Number(x[3] ?? 0) };
    }
  }
  const d = /counter packets (\d+) bytes (\d+) drop/.exec(text);
  const h = /jhash ct original ip saddr mod (\d+) seed (0x[0-9a-f]+|\d+) offset (\d+) @owned/.exec(text);
  return {
    owners: owners.sort((a, b) => a - b),
    counters,
    dropped: d ? { packets: Number(d[1]), bytes: Number(d[2]) } : null,
    hash: h ? { mod: Number(h[1]), seed: Number(h[2]), offset: Number(h[3]) } : null,
  };
}

export interface ChainView {
  exists: boolean;
  jump: boolean;
  /** Rules of our chain as printed by iptables-save -c, counters split off. */
  rules: { counter: Counter; text: string }[];
}

/** Our chain and its PREROUTING jump out of `iptables-legacy-save -c -t mangle`. */
export function parseMangleSave(text: string, c: ClusterConfig): ChainView {
  const lines = text.split('\n');
  const exists = lines.some((l) => l.startsWith(`:${IPT_CHAIN} `));
  const jumpRe = new RegExp(`-A PREROUTING -d ${c.cluster.ip.replace(/\./g, '\\.')}/32 -i ${c.cluster.interface.replace(/[.]/g, '\\.')} -j ${IPT_CHAIN}$`);
  let jump = false;
  const rules: ChainView['rules'] = [];
  for (const l of lines) {
    const m = /^(?:\[(\d+):(\d+)\] )?(-A (\S+) .*)$/.exec(l);
    if (!m) continue;
    if (m[4] === 'PREROUTING' && jumpRe.test(m[3]!)) jump = true;
    if (m[4] === IPT_CHAIN) rules.push({ counter: { packets: Number(m[1] ?? 0), bytes: Number(m[2] ?? 0) }, text: m[3]! });
  }
  return { exists, jump, rules };
}

/** xt_cluster owners: the set bits of every ACCEPT rule's node mask (iptables-save prints masks, §5.2). */
export function xtOwnersOf(view: ChainView): { owners: number[]; counters: Record<number, Counter>; dropped: Counter | null } {
  const owners = new Set<number>();
  const counters: Record<number, Counter> = {};
  let dropped: Counter | null = null;
  for (const r of view.rules) {
    const m = /--cluster-local-nodemask (0x[0-9a-f]+)/.exec(r.text);
    if (m && / -j ACCEPT$/.test(r.text)) {
      const mask = parseInt(m[1]!, 16);
      for (let b = 0; b < 32; b++) {
        if (mask & (1 << b)) {
          owners.add(b + 1);
          const prev = counters[b + 1] ?? { packets: 0, bytes: 0 };
          counters[b + 1] = { packets: prev.packets + r.counter.packets, bytes: prev.bytes + r.counter.bytes };
        }
      }
    } else if (/ -j DROP$/.test(r.text)) dropped = r.counter;
  }
  return { owners: [...owners].sort((a, b) => a - b), counters, dropped };
}

/** CLUSTERIP counting rules (`-m connmark --mark K`): packets accepted per node number. */
export function clusteripCountersOf(view: ChainView): Record<number, Counter> {
  const out: Record<number, Counter> = {};
  for (const r of view.rules) {
    const m = /-m connmark --mark 0x([0-9a-f]+)\b|-m connmark --mark (\d+)\b/.exec(r.text);
    if (m) out[m[1] !== undefined ? parseInt(m[1], 16) : Number(m[2])] = r.counter;
  }
  return out;
}

/** /proc/net/ipt_CLUSTERIP/<ip> content: "2,3\n", or empty (§4.4). */
export function parseProcOwners(text: string): number[] {
  const t = text.trim();
  return t ? t.split(',').map(Number).sort((a, b) => a - b) : [];
}

async function cmdOut(r: Runner, argv: string[]): Promise<string | null> {
  const res = await r.run(argv);
  return res.code === 0 ? res.stdout : null;
}

/**
 * Reads the host. Throws StepError only when the host cannot be reached at
 * all (the first command fails to run); missing objects are simply absent.
 */
export async function readHostState(r: Runner, c: ClusterConfig, expectFp: string): Promise<HostState> {
  const uname = await r.run(['uname', '-r']);
  if (uname.code !== 0) {
    throw new StepError(r.host, r.where, 'uname -r', uname.code, uname.stderr);
  }
  const kernel = uname.stdout.trim();
  const b = c.cluster.backend;
  const snap: Snapshot = { mangle: null, nftIp: null, nftArp: null, maddr: null, tcpLoose: null, procOwners: null };
  const gaps: string[] = [];
  let present = false, fingerprint: string | null = null, owners: number[] | null = null, counters: Record<number, Counter> = {}, dropped: Counter | null = null;

  if (b === 'nft' || b === 'xt_cluster') {
    const [arp, maddr, loose] = await Promise.all([cmdOut(r, ['nft', 'list', 'table', 'arp', NFT_TABLE]), r.run(maddrProbe(c.cluster.interface, c.cluster.mac)), readFileOn(r, TCP_LOOSE)]);
    snap.nftArp = arp;
    snap.maddr = maddr.code === 0;
    snap.tcpLoose = loose?.trim() ?? null;
    if (fpOf(snap.nftArp) !== expectFp) gaps.push(snap.nftArp === null ? `no table arp ${NFT_TABLE}` : `table arp ${NFT_TABLE} is from another config`);
    if (!snap.maddr) gaps.push(`${c.cluster.mac} not on ${c.cluster.interface}'s multicast list`);
    if (snap.tcpLoose !== '0') gaps.push(`nf_conntrack_tcp_loose is ${snap.tcpLoose ?? 'unreadable'}, not 0`);
  }
  if (b === 'nft') {
    snap.nftIp = await cmdOut(r, ['nft', 'list', 'table', 'ip', NFT_TABLE]);
    present = snap.nftIp !== null;
    if (present) {
      fingerprint = fpOf(snap.nftIp);
      const t = parseNftTable(snap.nftIp!);
      owners = t.owners;
      counters = t.counters;
      dropped = t.dropped;
      const { total_nodes: n, seed } = c.cluster;
      if (!t.hash || t.hash.mod !== n || t.hash.seed !== seed >>> 0 || t.hash.offset !== 1) gaps.push(`the hash rule is not 'jhash ct original ip saddr mod ${n} seed ${seed} offset 1'`);
    }
  } else {
    snap.mangle = await cmdOut(r, [IPT_SAVE, '-c', '-t', IPT_TABLE]);
    if (snap.mangle === null) gaps.push(`${IPT_SAVE} does not run`);
    const view = parseMangleSave(snap.mangle ?? '', c);
    present = view.exists;
    if (present) {
      fingerprint = fpOf(view.rules.map((x) => x.text).join('\n'));
      if (!view.jump) gaps.push(`no jump from PREROUTING to ${IPT_CHAIN}`);
      if (b === 'xt_cluster') {
        ({ owners, counters, dropped } = xtOwnersOf(view));
      } else {
        counters = clusteripCountersOf(view);
      }
    }
    if (b === 'clusterip') {
      const proc = await readFileOn(r, procPath(c.cluster.ip));
      snap.procOwners = proc === null ? null : parseProcOwners(proc);
      if (present) owners = snap.procOwners;
      if (present && proc === null) gaps.push(`${procPath(c.cluster.ip)} does not exist`);
    }
  }
  if (!present) gaps.unshift(b === 'nft' ? `no table ip ${NFT_TABLE}` : `no chain ${IPT_CHAIN}`);
  else if (fingerprint !== expectFp) gaps.unshift(`rules are from another config (cfg=${fingerprint ?? 'none'}, expected ${expectFp})`);
  return { host: r.host, where: r.where, kernel, present, fingerprint, complete: gaps.length === 0, gaps, owners, counters, dropped, snapshot: snap };
}
