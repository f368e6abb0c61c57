/**
 * What makes two packets one connection, in one place: conntrack keeps one
 * entry for both directions of a 5-tuple (nf_conntrack_core.c looks a packet
 * up by its tuple and by the inverted one). Here that is a canonical key: the
 * two endpoints (address, port) in sorted order, so a packet and its reply
 * give the same words whatever the capture's direction flags say.
 *
 * Key layout (engine/conn-table.ts stores exactly these words):
 *   IPv4, 4 words:  [4 << 8 | proto, A, B, portA << 16 | portB]
 *   IPv6, 10 words: [6 << 8 | proto, A0..A3, B0..B3, portA << 16 | portB]
 * where endpoint A is the one that sorts first (address words, then port).
 */
import { FAMILY_IPV6, type TupleBatch } from '../traffic/batch.ts';
import { fmix32, mix32 } from '../hash/mix.ts';

/** Key words of a family's connection keys. */
export const CONN_KEY_WORDS_V4 = 4;
export const CONN_KEY_WORDS_V6 = 10;

/**
 * Writes packet i's connection key into out[0..kw) and returns its direction:
 * 0 when the packet's source is endpoint A, 1 when it is endpoint B.
 * Use connKeyWords(b, i) for kw.
 */
export function connKey(b: TupleBatch, i: number, out: Uint32Array): number {
  const sp = b.sport[i]!, dp = b.dport[i]!;
  if (b.family[i] === FAMILY_IPV6) {
    const j = i << 2, s6 = b.saddr6, d6 = b.daddr6;
    let cmp = 0;
    for (let w = 0; w < 4 && cmp === 0; w++) cmp = s6[j + w]! - d6[j + w]!;
    if (cmp === 0) cmp = sp - dp;
    const d = cmp <= 0 ? 0 : 1;
    const a = d === 0 ? s6 : d6, z = d === 0 ? d6 : s6;
    out[0] = (6 << 8) | b.proto[i]!;
    for (let w = 0; w < 4; w++) { out[1 + w] = a[j + w]!; out[5 + w] = z[j + w]!; }
    out[9] = d === 0 ? ((sp << 16) | dp) >>> 0 : ((dp << 16) | sp) >>> 0;
    return d;
  }
  const sa = b.saddr[i]!, da = b.daddr[i]!;
  out[0] = (4 << 8) | b.proto[i]!;
  if (sa < da || (sa === da && sp <= dp)) {
    out[1] = sa; out[2] = da; out[3] = ((sp << 16) | dp) >>> 0;
    return 0;
  }
  out[1] = da; out[2] = sa; out[3] = ((dp << 16) | sp) >>> 0;
  return 1;
}

/** Key words of packet i's connection key (4 or 10). */
export function connKeyWords(b: TupleBatch, i: number): number {
  return b.family[i] === FAMILY_IPV6 ? CONN_KEY_WORDS_V6 : CONN_KEY_WORDS_V4;
}

const scratch = new Uint32Array(CONN_KEY_WORDS_V6);

/**
 * A hash of packet i's connection key: the same for a packet and its reply.
 * Deals whole connections to workers and shares (uniform in its low bits).
 */
export function connectionHash(b: TupleBatch, i: number): number {
  connKey(b, i, scratch);
  const kw = connKeyWords(b, i);
  let h = 0x3c6ef372;
  for (let w = 0; w < kw; w++) h = mix32(h, scratch[w]!);
  return fmix32(h) >>> 0;
}
