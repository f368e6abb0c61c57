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
export function countSplitDatagrams(paths: readonly string[], specs: readonly SelectorSpec[], clusterIp: number | null, lenient = false): number[] {
  const sels: Selector[] = specs.map((s) => buildSelector(s));
  const cap = DEFAULT_BATCH_CAPACITY;
  const batch = createBatch(cap);
  const ids = new Uint32Array(cap);
  const outs = sels.map(() => new Int32Array(cap));
  // Per selector: datagram key -> its fragments' common answer, or SPLIT once two differ.
  const seen = sels.map(() => new Map<string, number>());
  // When a key's first fragment came: a fragment later than the kernel's reassembly timeout
  // (ipfrag_time 30 s, IPv6 60 s; defrag.ts) belongs to a new datagram that reuses the IP id.
  const since = new Map<string, number>();
  const SPLIT = -1000;
  const counts = sels.map(() => 0);
  for (const path of paths) {
    const src = openCapture(path, { noDefrag: true, fragIds: ids, lenient });
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
          if (clusterIp !== null && !(v4 && batch.daddr[i] === clusterIp >>> 0)) continue;
          // The kernel's reassembly key: addresses, identification, and (IPv4) protocol.
          let key = `${ids[i]}/${batch.proto[i]}/`;
          if (v4) key += `${batch.saddr[i]}>${batch.daddr[i]}`;
          else for (let w = 0; w < 4; w++) key += `${batch.saddr6[4 * i + w]}.${batch.daddr6[4 * i + w]}:`;
          const t = batch.ts[i]!, t0 = since.get(key);
          if (t0 === undefined || t - t0 > (v4 ? 30 : 60)) {
            since.set(key, t);
            for (const map of seen) map.delete(key);
          }
          for (let c = 0; c < sels.length; c++) {
            const got = outs[c]![i]!, map = seen[c]!, prev = map.get(key);
            if (prev === undefined) map.set(key, got);
            else if (prev !== SPLIT && prev !== got) { map.set(key, SPLIT); counts[c]!++; }
          }
        }
      }
    } finally {
      src.close();
    }
  }
  return counts;
}
