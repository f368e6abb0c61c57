/**
 * A capture made of fragment trains, so that wherever a share or shard edge
 * falls, datagrams are in flight across it: every datagram's fragments are
 * spread over the records of its neighbours. Trains come in order, reversed
 * (first fragment last), shuffled, with a duplicate fragment (dropped alone),
 * with an overlap that kills the datagram, and with a fragment lost (never
 * completes); IPv4 and IPv6, UDP and TCP, to the cluster IP, its replies, and
 * to another address; a few dozen sources on few ports, so connections carry
 * many datagrams and cross the edges too. For the worker-count and shard
 * tests of issues 17 and 21 (sim/engine/frag-carry.test.ts, cli/merge.test.ts).
 */
import { join } from 'node:path';
import * as fr from './frames.ts';

export const EDGE_DST = '192.0.2.10';
/** An nft key with ports: the one whose datagrams `--no-conntrack` would split (the split-datagram warning). */
export const EDGE_PORTS = 'jhash ip saddr . th sport mod 4 seed 0x5 offset 1';
/** simulate's configurations for these tests: CLUSTERIP, xt_cluster (follows connections), and EDGE_PORTS. */
export const EDGE_SEL = ['--backend', 'clusterip', '--hashmode', 'sourceip-sourceport', '--total-nodes', '4', '--compare', '--backend xt_cluster --hash-seed 0x1',
  '--compare', `--backend nft --nft '${EDGE_PORTS}'`, '--flow-timeout', '3', '--cluster-ip', EDGE_DST];

interface Piece { key: number; data: Uint8Array }

/** Writes `edges.pcap` (about 190 bytes a fragment, `datagrams` datagrams) into `dir`. */
export function buildFragEdges(dir: string, datagrams = 3000): { path: string; records: number } {
  let seed = 0x2545f491;
  const rnd = (): number => { seed = (Math.imul(seed, 1103515245) + 12345) >>> 0; return seed / 2 ** 32; };
  const pieces: Piece[] = [];
  for (let k = 0; k < datagrams; k++) {
    const c = k % 37;
    const client = `10.7.${c % 3}.${10 + c}`, client6 = `2001:db8::${(10 + c).toString(16)}`;
    const other = k % 29 === 0;
    const reply = !other && k % 7 === 3;
    const [src, dst] = reply ? [EDGE_DST, client] : [client, other ? '198.51.100.1' : EDGE_DST];
    const v6 = k % 9 === 4;
    const tcp = k % 5 === 1;
    const proto = tcp ? 6 : 17;
    const sport = reply ? 53 : 40000 + (c % 4), dport = reply ? 40000 + (c % 4) : 53;
    const nfrag = k % 6 === 5 ? 1 : 2 + (k % 4);
    const size = 8 * 20 * nfrag;
    const l4 = tcp ? fr.tcp(sport, dport, 0x18, size - 20) : fr.udp(sport, dport, size - 8);
    for (let i = tcp ? 20 : 8; i < l4.length; i++) l4[i] = (k * 31 + i) & 255;
    if (!tcp) { l4[6] = 0; l4[7] = 0; }
    const id = 0x100 + (k & 0x3fff);
    const frag = (off: number, end: number, more: boolean): Uint8Array => v6
      ? fr.ether(fr.ipv6(reply ? fr6(src) : client6, reply ? client6 : (other ? '2001:db8:ffff::1' : fr6(EDGE_DST)), [[44, fr.frag6(off, more, id)]], proto, l4.subarray(off, end)), 0x86dd)
      : fr.ether(fr.ipv4({ proto, src, dst, id, fragOff: off, mf: more }, l4.subarray(off, end)), 0x0800);
    let built: Uint8Array[];
    if (nfrag === 1) built = [v6 ? fr.ether(fr.ipv6(client6, fr6(EDGE_DST), [], proto, l4), 0x86dd) : fr.ether(fr.ipv4({ proto, src, dst, id }, l4), 0x0800)];
    else {
      const edges = Array.from({ length: nfrag + 1 }, (_, j) => Math.min(l4.length, j * 160));
      built = [];
      for (let j = 0; j < nfrag; j++) built.push(frag(edges[j]!, edges[j + 1]!, j + 1 < nfrag));
      switch (k % 8) {
        case 1: built.reverse(); break; // first fragment last
        case 2: for (let j = built.length - 1; j > 0; j--) { const x = Math.floor(rnd() * (j + 1)); [built[j], built[x]] = [built[x]!, built[j]!]; } break;
        case 3: built.splice(1, 0, frag(0, 80, true)); break; // lies wholly inside the first: a duplicate, dropped alone
        case 5: if (k % 3 === 0) built.splice(1, 0, frag(80, 240, true)); break; // overlaps two fragments: kills the datagram
        case 6: if (k % 5 === 0) built.splice(1, 1); break; // a fragment lost: never completes
      }
    }
    // Spread the train over the records of its neighbours: edges cut trains wherever they fall.
    built.forEach((data, j) => pieces.push({ key: k * 2 + j * 1.7 + rnd(), data }));
  }
  pieces.sort((a, b) => a.key - b.key);
  const recs: fr.Rec[] = pieces.map((p, n) => ({ ts: [1700000000 + Math.floor(n / 1000), (n % 1000) * 1000], data: p.data }));
  return { path: fr.writePcap(join(dir, 'edges.pcap'), recs), records: recs.length };
}

/** An IPv4 address as an IPv4-mapped-looking IPv6 test address (2001:db8:: + the last octet). */
function fr6(v4: string): string {
  return `2001:db8::${Number(v4.split('.')[3]).toString(16)}:a`;
}
