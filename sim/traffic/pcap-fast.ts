/**
 * The classic-pcap hot loop, compiled for one read window and one batch: the common case only, records wholly inside the window that carry
 * Ethernet + IPv4 without options, not a fragment, TCP, UDP or ICMP with at
 * least 8 captured L4 bytes (14 for TCP). It does the same decoding as
 * decode.ts, written out inline, and stops, without consuming it, at the
 * first record that needs the general path (capture.ts runPcap).
 * pcap-fast.test.ts holds it against the general path.
 *
 * When the batch lives in a WebAssembly memory and the pcap module is built,
 * the same loop in WebAssembly (pcap-wasm.ts) runs instead: this one is the
 * fallback (a bare SharedArrayBuffer batch, no build, a window grown past the
 * batch's) and the fragment ring's loop.
 *
 * Why compiled: V8 optimises a function per source function, and specialises
 * it to its closure's constants only when that closure is the only one made
 * from its source. A fresh function holds the window, its DataView and the
 * 14 lane arrays as constants: their maps, data pointers and lengths fold
 * into the code instead of being checked and reloaded for every record; the
 * record byte order, timestamp scale and time window are written in.
 * Measured on the snaplen-96 bench capture (5M records, CPU ms a pass, reads
 * included): one shared loop taking the lanes from the batch 175, the same
 * loop over closure constants 130.
 *
 * One loop per window, batch and capture shape (fastLoopFor), kept while
 * both live: a reader that gets a window another reader gave back (byte-
 * input.ts) reuses the loop, already optimised. Measured over 8 passes of
 * the snaplen-96 bench capture, each with a new reader: from the third pass
 * on ~31 ns a packet, against ~35 when each reader compiled its own loop
 * (the C reader ~29 in the same session). (An earlier note here blamed shared loops for
 * passes that ran 20-35% slower for the rest of a process; the cause was the
 * deoptimisation that the warm-up calls in compileFastPcap now prevent.)
 *
 * Safety: the source is this fixed template with numbers and booleans
 * written in (validated below); no input text ever reaches it.
 */
import type { TupleBatch } from './batch.ts';

/** fast(pos, stop, lim, n, max, from, to) -> n; see fastState and fastSums for what else it reports. */
export type FastPcapLoop = (pos: number, stop: number, lim: number, n: number, max: number, from: number, to: number) => number;

export interface FastPcapShape {
  /** Record headers little-endian. */
  le: boolean;
  /** Seconds per timestamp fraction unit (1e-6). */
  scale: number;
  /** Largest believable caplen. */
  maxCap: number;
  /** Check from/to (false when both are infinite). */
  window: boolean;
}

/**
 * Numbers each compiled source: V8 caches `new Function` by its source text,
 * and two loops made from one cached function would share its optimised code
 * and lose the specialisation.
 */
let serial = 0;

/**
 * Tests turn the fast loops off to hold them against the general path, and the
 * WebAssembly loop (pcap-wasm.ts) off to test this one.
 */
export const fastPcapSwitch = { on: true, wasm: true };

/*
 * Both on SharedArrayBuffers: a small typed array on an ordinary buffer lives
 * in the V8 heap, where the collector may move it, so the loop reloaded its
 * data pointer and length for every store; a shared buffer never moves and
 * each store is one instruction to a constant address.
 */
/** Where the last call of a fast loop stopped (window offset); the loop stores it as it returns. */
export const fastState = new Int32Array(new SharedArrayBuffer(4));
/** The wire bytes and the truncated packets the last call of a fast loop delivered; stored as it returns. */
export const fastSums = new Float64Array(new SharedArrayBuffer(16));

/**
 * Calls that run no loop iteration, made before a loop's first use; see
 * compileFastPcap. V8 11.3 gave a fresh loop its feedback vector after 129 to
 * 256 of them (%DebugPrint); 512 take about 0.2 ms.
 */
const WARM_CALLS = 512;

/** Compiled loops by window, then batch, then shape. */
const loops = new WeakMap<Uint8Array, WeakMap<TupleBatch, Map<string, FastPcapLoop>>>();

/** The fast loop for this window, batch and shape: compiled on first use, then reused. */
export function fastLoopFor(buf: Uint8Array, dv: DataView, dst: TupleBatch, s: FastPcapShape): FastPcapLoop {
  let perBatch = loops.get(buf);
  if (!perBatch) loops.set(buf, (perBatch = new WeakMap()));
  let perShape = perBatch.get(dst);
  if (!perShape) perBatch.set(dst, (perShape = new Map()));
  const key = `${s.le}|${s.scale}|${s.maxCap}|${s.window}`;
  let f = perShape.get(key);
  if (!f) perShape.set(key, (f = compileFastPcap(buf, dv, dst, s)));
  return f;
}

/** A fast loop over this read window (`buf`, `dv` over the same bytes) into this batch. */
export function compileFastPcap(buf: Uint8Array, dv: DataView, dst: TupleBatch, s: FastPcapShape): FastPcapLoop {
  if (!(s.scale === 1e-6 || s.scale === 1e-9) || !Number.isInteger(s.maxCap) || s.maxCap < 64 || s.maxCap > 1 << 30) {
    throw new Error('compileFastPcap: bad capture shape');
  }
  const le = s.le ? 'true' : 'false';
  // The IPv6 lanes of an IPv4 packet are zero: 16 bytes each, two 8-byte stores through
  // Float64Array views when the lanes are 8-aligned (0.0 is all zero bits), else four 4-byte ones.
  // Skipped when the slot already holds an IPv4 packet (a reused batch): the batch's contract
  // (batch.ts) says its IPv6 lanes are zero then (see also wasm/assembly/pcap.ts).
  const wide = dst.saddr6.byteOffset % 8 === 0 && dst.daddr6.byteOffset % 8 === 0;
  const zero6 = wide
    ? 'if (fam[n] !== 4) { const j = n << 1; s6w[j] = 0; s6w[j + 1] = 0; d6w[j] = 0; d6w[j + 1] = 0; }'
    : 'if (fam[n] !== 4) { const j = n << 2; s6[j] = 0; s6[j + 1] = 0; s6[j + 2] = 0; s6[j + 3] = 0; d6[j] = 0; d6[j + 1] = 0; d6[j + 2] = 0; d6[j + 3] = 0; }';
  // pos <= stop: the record starts inside this share and its 16-byte header is in the window.
  // The |0 before the loop make pos, stop, lim, n and max 32-bit integers in registers; without
  // them V8 kept the loop variables as tagged values and checked and untagged the parameters every
  // record. The |0 on offsets let p + 12 etc. be plain additions without an overflow check (the
  // bounds check still catches a wrong offset). Measured together with the shared fastState and
  // fastSums (snaplen-96 bench capture, CPU ns a packet, reads included, median of 12-16 runs
  // alternating with the C reader): 26.4 before, 25.0 after, C 22.5.
  const src = `
return function fastPcap(pos, stop, lim, n, max, from, to) {
  pos |= 0; stop |= 0; lim |= 0; n |= 0; max |= 0;
  let bytes = 0, trunc = 0;
  while (n < max && pos <= stop) {
    const caplen = dv.getUint32((pos + 8) | 0, ${le});
    if (caplen < 42 || caplen > ${s.maxCap} || caplen > lim - 16 - pos) break;
    const p = (pos + 16) | 0;
    // Ethertype 0x0800, IPv4 with a 20-byte header; not a fragment.
    // IP bytes 6..9 (flags and fragment offset, TTL, protocol) in one load instead of two: the
    // loop's ratio to the C reader 0.907/0.917/0.904 before, 0.911/0.923/0.911 after (A/B pairs).
    const w20 = dv.getUint32((p + 20) | 0);
    if ((dv.getUint32((p + 12) | 0) >>> 8) !== 0x080045 || (w20 & 0x3fff0000) !== 0) break;
    const pr = w20 & 0xff;
    const tot = dv.getUint16((p + 16) | 0);
    const wirelen = dv.getUint32((pos + 12) | 0, ${le});
    // Whole L4 minimum on the wire (else conntrack's INVALID), 8 (TCP: 14) L4 bytes captured, and a
    // datagram no longer than the frame (else malformed): the general path decides those.
    if (!((pr === 6 ? tot >= 40 && caplen >= 48 : (pr === 17 || pr === 1) && tot >= 28) && tot <= wirelen - 14)) break;
    const ts = dv.getUint32(pos, ${le}) + dv.getUint32((pos + 4) | 0, ${le}) * ${s.scale === 1e-6 ? '1e-6' : '1e-9'};
    ${s.window ? 'if (ts < from || ts > to) break;' : ''}
    sa[n] = dv.getUint32((p + 26) | 0);
    da[n] = dv.getUint32((p + 30) | 0);
    ${zero6}
    const a = dv.getUint32((p + 34) | 0);
    const c = dv.getUint32((p + 38) | 0);
    la[n] = a;
    lb[n] = c;
    prl[n] = pr;
    fam[n] = 4;
    lfl[n] = 3;
    let fl = 1;
    if (pr === 6) {
      const t = buf[(p + 47) | 0];
      // F.SYN/ACK/RST/FIN from TCP's FIN 0x01, SYN 0x02, RST 0x04, ACK 0x10
      fl |= ((t & 0x02) << 1) | ((t & 0x10) >>> 1) | ((t & 0x04) << 2) | ((t & 0x01) << 5);
      // 20 bytes of TCP header on the wire but fewer captured: cut by the snap length.
      if (caplen < 54) { fl |= 0x40; trunc++; }
      spl[n] = a >>> 16; dpl[n] = a & 0xffff;
    } else if (pr === 17) {
      spl[n] = a >>> 16; dpl[n] = a & 0xffff;
    } else {
      // ICMP: no ports; echo request/reply carry id and sequence (decode.ts writeL4).
      fl = 0;
      const t = a >>> 24;
      if (t === 8 || t === 0) { spl[n] = c >>> 16; dpl[n] = c & 0xffff; } else { spl[n] = 0; dpl[n] = 0; }
    }
    fll[n] = fl;
    tsl[n] = ts;
    wl[n] = wirelen;
    n++;
    pos = (p + caplen) | 0;
    bytes += wirelen;
  }
  state[0] = pos;
  sums[0] = bytes;
  sums[1] = trunc;
  // Stored once after the loop, not per record: the warm-up calls (below) run this code and give it
  // type feedback before the loop is first compiled. Before those calls existed, a store here
  // deoptimised the loop's on-stack code at its exit, call after call (--trace-deopt), and pos and
  // the sums were stored for every record instead; after them: no deopt in a 5M-record pass, and
  // ratio to the C reader 0.857 against 0.840 (5 alternating pairs each, snaplen 96).
  return n;
};
// loop ${++serial}`;
  const b = dst;
  const s6w = wide ? new Float64Array(b.buffer, b.saddr6.byteOffset, b.capacity * 2) : null;
  const d6w = wide ? new Float64Array(b.buffer, b.daddr6.byteOffset, b.capacity * 2) : null;
  const f = new Function('buf', 'dv', 'tsl', 'wl', 'sa', 'da', 's6', 'd6', 's6w', 'd6w', 'la', 'lb', 'spl', 'dpl', 'prl', 'fam', 'fll', 'lfl', 'state', 'sums', src)(
    buf, dv, b.ts, b.wirelen, b.saddr, b.daddr, b.saddr6, b.daddr6, s6w, d6w, b.l4a, b.l4b, b.sport, b.dport, b.proto, b.family, b.flags, b.l4flags, fastState, fastSums,
  ) as FastPcapLoop;
  // Nothing may run only before or after the loop without type feedback. V8 gives a function its feedback vector only after some calls;
  // during the first real call it is given one inside the loop, and compiles the whole function
  // then, with no feedback for the |0 above: the next call deoptimised there (--trace-deopt,
  // "Insufficient type feedback", also for the stores to state and sums that used to stand there),
  // and the function was never compiled again: every later call ran the loop in its on-stack
  // compiled code, which V8 does not specialise to the closure's constants, about 30% slower
  // (31.5 instead of 24.5 ns a packet), in 1 to 6 of 14 passes. The warm-up calls run the code
  // before and after the loop, not the loop, so that code has feedback before it is compiled; pos
  // takes values up to 511, not only 0.
  for (let i = 0; i < WARM_CALLS; i++) f(i, -1, 0, 0, 0, -Infinity, Infinity);
  return f;
}
