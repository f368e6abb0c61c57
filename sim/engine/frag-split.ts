/**
 * Without conntrack nothing defragments, so a cluster rule hashes each
 * fragment as it came (sim/traffic/capture.ts `ownL4`): a non-first fragment's
 * "ports" are its payload's first bytes, and it may land on another node than
 * its datagram's first fragment. That breaks the datagram (no node receives it
 * whole). `simulate` in the default mode (conntrack in use) says how many
 * datagrams of the capture WOULD be split so, as a deployment warning.
 *
 * Only a key that reads the transport header can split a datagram: every
 * fragment carries the same IP addresses, so `jhash ip saddr` keeps a datagram
 * together; rules that need conntrack (CLUSTERIP, xt_cluster, `ct` keys)
 * never run without it. The count is a pass of its own over the capture's
 * fragments (run only when the main run saw fragments).
 */
import { createBatch, F, FAMILY_IPV4, DEFAULT_BATCH_CAPACITY } from '../traffic/batch.ts';
import { openCapture } from '../traffic/capture.ts';
import { buildSelector } from '../select/build.ts';
import type { Selector, SelectorSpec } from '../select/selector.ts';
import { parseNftHash } from '../select/nft-expr.ts';
import { isToClusterIp, type ClusterIp } from './cluster-filter.ts';

/**
 * Whether `--no-conntrack` can split a datagram under this selector: an nft
 * jhash whose key has a transport-header field (tcp/udp/th sport/dport) and no
 * `ct` field. False for everything that needs conntrack and for address-only keys.
 */
export function canSplitWithoutConntrack(spec: SelectorSpec): boolean {
  if (spec.backend !== 'nft') return false;
  const h = parseNftHash(spec.expr);
  if (h.kind !== 'jhash' || h.fields.some((f) => f.kind.startsWith('ct '))) return false;
  return h.fields.some((f) => f.kind.endsWith(' sport') || f.kind.endsWith(' dport'));
}

/** Per selector, the datagrams whose fragments would not all get the same answer (node, no node) without conntrack. */
export function countSplitDatagrams(paths: readonly string[], specs: readonly SelectorSpec[], clusterIp: ClusterIp | null, lenient = false): number[] {
  return splitPass(paths.map((path) => ({ path })), specs, clusterIp, lenient).counts;
}

/** An answer state of a datagram: a node (bucket), no node, unknown, or SPLIT once two fragments differ. */
const SPLIT = -1000;

/** One datagram as the pass groups fragments: its reassembly key, its first fragment's time, the kernel's timeout for it, and per selector its fragments' common answer or SPLIT. */
export interface SplitGroup {
  key: string;
  t0: number;
  timeout: number;
  answers: number[];
}

/**
 * The pass over one stretch of a stream (a shard): datagrams counted there,
 * and the datagrams at its edges that a neighbouring stretch may continue
 * (joinSplitPasses): each key's first datagram when it began within the
 * kernel's timeout of the stretch's first fragment (`head`), and each key's
 * last one when it was still within its timeout at the stretch's end (`open`).
 */
export interface SplitPass {
  counts: number[];
  head: SplitGroup[];
  open: SplitGroup[];
}

/** The pass over consecutive stretches of one stream (files in order, or a byte range of one). */
export function splitPass(inputs: readonly { path: string; start?: number; end?: number }[], specs: readonly SelectorSpec[], clusterIp: ClusterIp | null, lenient = false): SplitPass {
  const sels: Selector[] = specs.map((s) => buildSelector(s));
  const cap = DEFAULT_BATCH_CAPACITY;
  const batch = createBatch(cap);
  const ids = new Uint32Array(cap);
  const outs = sels.map(() => new Int32Array(cap));
  // Datagram key -> its current datagram. A fragment later than the kernel's reassembly timeout
  // after the datagram's first (ipfrag_time 30 s, IPv6 60 s; defrag.ts) starts a new one that reuses the IP id.
  const current = new Map<string, SplitGroup & { first: boolean }>();
  const head: SplitGroup[] = [];
  const counts = sels.map(() => 0);
  let firstTs = NaN, lastTs = -Infinity;
  const isHead = (g: SplitGroup & { first: boolean }): boolean => g.first && g.t0 - firstTs <= g.timeout;
  for (const inp of inputs) {
    const src = openCapture(inp.path, { start: inp.start, end: inp.end, noDefrag: true, fragIds: ids, lenient });
    try {
      for (;;) {
        const n = src.fill(batch);
        if (n === 0) break;
        const m = batch.count;
        for (let c = 0; c < sels.length; c++) sels[c]!.select(batch, outs[c]!, 0, m);
        for (let i = 0; i < m; i++) {
          if ((batch.flags[i]! & F.FRAGMENT) === 0) continue;
          const v4 = batch.family[i] === FAMILY_IPV4;
          // Only packets to the cluster IP meet the rule (cluster-filter.ts).
          if (clusterIp !== null && !isToClusterIp(batch, i, clusterIp)) continue;
          // The kernel's reassembly key: addresses, identification, and (IPv4) protocol.
          let key = `${ids[i]}/${batch.proto[i]}/`;
          if (v4) key += `${batch.saddr[i]}>${batch.daddr[i]}`;
          else for (let w = 0; w < 4; w++) key += `${batch.saddr6[4 * i + w]}.${batch.daddr6[4 * i + w]}:`;
          const t = batch.ts[i]!, timeout = v4 ? 30 : 60;
          if (Number.isNaN(firstTs)) firstTs = t;
          if (t > lastTs) lastTs = t;
          let g = current.get(key);
          if (!g || t - g.t0 > timeout) {
            if (g && isHead(g)) head.push(g);
            g = { key, t0: t, timeout, answers: sels.map((_, c) => outs[c]![i]!), first: !g };
            current.set(key, g);
            continue;
          }
          for (let c = 0; c < sels.length; c++) {
            const got = outs[c]![i]!, prev = g.answers[c]!;
            if (prev !== SPLIT && prev !== got) { g.answers[c] = SPLIT; counts[c]!++; }
          }
        }
      }
    } finally {
      src.close();
    }
  }
  const open: SplitGroup[] = [];
  for (const g of current.values()) {
    if (isHead(g)) head.push(g);
    if (lastTs - g.t0 <= g.timeout) open.push(g);
  }
  const plain = (g: SplitGroup): SplitGroup => ({ key: g.key, t0: g.t0, timeout: g.timeout, answers: g.answers });
  return { counts, head: head.map(plain), open: open.map(plain) };
}

/**
 * The count of one pass over the whole stream, from the passes over its
 * stretches in stream order: a stretch's head datagram that began within the
 * timeout of the open one with its key before is one datagram with it (its
 * fragments' answers meet). Exact unless one key is reused within the
 * timeout again after such a join (its later datagrams would start at
 * other fragments than one pass starts them).
 */
export function joinSplitPasses(parts: readonly SplitPass[]): number[] {
  const total = parts.length ? parts[0]!.counts.map(() => 0) : [];
  for (const p of parts) p.counts.forEach((n, c) => { total[c] = total[c]! + n; });
  const open = new Map<string, SplitGroup>();
  for (const p of parts) {
    const joined = new Map<string, { from: number; g: SplitGroup }>();
    for (const h of p.head) {
      const o = open.get(h.key);
      if (!o || h.t0 - o.t0 > h.timeout) continue;
      const answers = o.answers.map((a, c) => {
        const b = h.answers[c]!, merged = a === SPLIT || b === SPLIT || a !== b ? SPLIT : a;
        total[c] = total[c]! + (merged === SPLIT ? 1 : 0) - (a === SPLIT ? 1 : 0) - (b === SPLIT ? 1 : 0);
        return merged;
      });
      joined.set(h.key, { from: h.t0, g: { key: h.key, t0: o.t0, timeout: o.timeout, answers } });
    }
    // This stretch's datagrams of a key replace the one open before; what it left open may go on in the next.
    for (const h of p.head) open.delete(h.key);
    for (const g of p.open) {
      const j = joined.get(g.key);
      open.set(g.key, j && j.from === g.t0 ? j.g : g);
    }
  }
  return total;
}
