/**
 * A capture of fragmented IPv4 datagrams (UDP and TCP, 1-3 fragments, every
 * third datagram's fragments out of order, payload bytes that differ per
 * datagram) and, per frame, the key a rule reads from that frame alone: its
 * source and the 4 bytes at its own transport offset (the L4 header on a first
 * fragment, the payload's first bytes on a later one). For the --no-conntrack
 * tests (cli/simulate-no-conntrack*.test.ts).
 */
import { join } from 'node:path';
import * as fr from './frames.ts';
import { buildSelector } from '../sim/select/build.ts';
import { createBatch } from '../sim/traffic/batch.ts';
import { writeTupleV4 } from '../sim/traffic/tuple.ts';

export const FRAG_DST = '192.0.2.10';
const DST_N = 0xc000020a;

/** One frame of the capture: its source, protocol, the word at its transport offset, its datagram, wire bytes. */
export interface FragFrame { src: number; proto: number; l4word: number; dgram: number; wire: number }

/** Writes `frags.pcap` into `dir` (destination MAC 02:00:00:00:00:02, test/frames.ts ether). */
export function buildFragCapture(dir: string, count = 90): { path: string; frames: FragFrame[]; datagrams: number } {
  const recs: fr.Rec[] = [];
  const frames: FragFrame[] = [];
  let t = 0;
  for (let k = 0; k < count; k++) {
    const src = `10.9.${k % 5}.${1 + k}`, srcN = ((10 << 24) | (9 << 16) | ((k % 5) << 8) | (1 + k)) >>> 0;
    const nfrag = 1 + (k % 3);
    const tcp = k % 4 === 3;
    const proto = tcp ? 6 : 17;
    const l4 = tcp ? fr.tcp(30000 + k, 443, 0x18, 8 * 24 * nfrag) : fr.udp(30000 + k, 53, 8 * 24 * nfrag - 8);
    // Payload bytes differ per datagram, so non-first fragments' "ports" differ too.
    for (let i = tcp ? 20 : 8; i < l4.length; i++) l4[i] = (l4[i]! ^ (k * 37 + i)) & 255;
    // UDP checksum 0 (none): valid whatever the payload.
    if (!tcp) { l4[6] = 0; l4[7] = 0; }
    const edges = Array.from({ length: nfrag + 1 }, (_, j) => Math.min(l4.length, j * 192));
    const built: { data: Uint8Array; off: number }[] = [];
    for (let j = 0; j < nfrag; j++) {
      const ip = nfrag === 1
        ? fr.ipv4({ proto, src, dst: FRAG_DST }, l4)
        : fr.ipv4({ proto, src, dst: FRAG_DST, id: 0x200 + k, fragOff: edges[j]!, mf: j + 1 < nfrag }, l4.subarray(edges[j]!, edges[j + 1]!));
      built.push({ data: fr.ether(ip, 0x0800), off: edges[j]! });
    }
    if (k % 3 === 2) built.reverse();
    for (const b of built) {
      const p = b.off;
      const word = ((l4[p]! << 24) | (l4[p + 1]! << 16) | (l4[p + 2]! << 8) | l4[p + 3]!) >>> 0;
      frames.push({ src: srcN, proto, l4word: word, dgram: k, wire: b.data.length });
      recs.push({ ts: [1700000000 + Math.floor(t / 1e6), t % 1e6], data: b.data });
      t += 500;
    }
  }
  return { path: fr.writePcap(join(dir, 'frags.pcap'), recs), frames, datagrams: count };
}

/** The bucket of each frame under nft `expr`, hashing the key the kernel reads from that frame alone. */
export function frameBuckets(expr: string, frames: readonly FragFrame[]): number[] {
  const sel = buildSelector({ backend: 'nft', expr, kernel: '6.18', endian: 'little' });
  const b = createBatch(1), out = new Int32Array(1);
  return frames.map((f) => {
    writeTupleV4(b, 0, f.proto, f.src, f.l4word >>> 16, DST_N, f.l4word & 0xffff);
    b.count = 1;
    sel.select(b, out);
    return out[0]!;
  });
}
