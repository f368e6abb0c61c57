/**
 * AssemblyScript (compiled to WebAssembly by sim/select/wasm/build.ts) for the
 * classic-pcap hot loop: the same common case, the same checks and the same
 * lanes as the compiled JavaScript loop in sim/traffic/pcap-fast.ts, which
 * stays the reference and the fallback. pcap-fast.test.ts holds both against
 * the general path (decode.ts).
 *
 * Why a second form: the reader's window and the batch's lanes share one
 * memory here (sim/traffic/batch.ts gives every batch a read window in its
 * WebAssembly memory), so each load and store is one instruction on a guard-
 * page-checked address; the JavaScript loop checks the window's and every
 * lane's bounds on each access. Measured on the snaplen-96 bench capture
 * (CPU ns a packet, reads included, same process, alternating): ~29.5
 * against ~31.8.
 *
 * The loop decodes records wholly inside the window that carry Ethernet +
 * IPv4 without options, not a fragment, TCP (>= 14 L4 bytes captured), UDP or
 * ICMP (>= 8), and stops, without consuming it, at the first record that needs
 * the general path.
 */

// Byte addresses of packet 0 of each lane of the batch in this memory (lanes()).
let TS: usize = 0;
let WIRELEN: usize = 0;
let SADDR: usize = 0;
let DADDR: usize = 0;
let SADDR6: usize = 0;
let DADDR6: usize = 0;
let L4A: usize = 0;
let L4B: usize = 0;
let SPORT: usize = 0;
let DPORT: usize = 0;
let PROTO: usize = 0;
let FAMILY: usize = 0;
let FLAGS: usize = 0;
let L4FLAGS: usize = 0;

/** Points the loop at the batch's lanes (byte offsets of the typed arrays in this memory). */
export function lanes(ts: usize, wirelen: usize, saddr: usize, daddr: usize, saddr6: usize, daddr6: usize, l4a: usize, l4b: usize, sport: usize, dport: usize, proto: usize, family: usize, flags: usize, l4flags: usize): void {
  TS = ts; WIRELEN = wirelen; SADDR = saddr; DADDR = daddr; SADDR6 = saddr6; DADDR6 = daddr6;
  L4A = l4a; L4B = l4b; SPORT = sport; DPORT = dport; PROTO = proto; FAMILY = family; FLAGS = flags; L4FLAGS = l4flags;
}

// @ts-ignore: decorator
@inline function be32(a: usize): u32 { return bswap<u32>(load<u32>(a)); }
// @ts-ignore: decorator
@inline function be16(a: usize): u32 { return <u32>bswap<u16>(load<u16>(a)); }
// @ts-ignore: decorator
@inline function rec32(a: usize, le: bool): u32 { const v = load<u32>(a); return le ? v : bswap<u32>(v); }

/**
 * Decodes records from window offset `pos` while `pos <= stop` and `n < max`
 * into lanes n.. and returns the new n. `win` is the window's address and
 * `lim` the end of its valid bytes; `le` the record headers' byte order;
 * timestamps outside [from, to] stop the loop. Writes to `out`: f64 wire
 * bytes delivered, then i32 truncated packets, then i32 the offset where it
 * stopped.
 */
export function pcapFast(win: usize, pos: i32, stop: i32, lim: i32, n: i32, max: i32, maxCap: i32, le: bool, from: f64, to: f64, out: usize): i32 {
  let bytes: f64 = 0;
  let trunc: i32 = 0;
  while (n < max && pos <= stop) {
    const h = win + <usize>pos;
    const caplen = <i32>rec32(h + 8, le);
    // caplen < 0: a u32 above 2^31, larger than any window.
    if (caplen < 42 || caplen > maxCap || caplen > lim - 16 - pos) break;
    const p = h + 16;
    // Ethertype 0x0800 and IPv4 with a 20-byte header; flags+offset, TTL and protocol in one load.
    const w20 = be32(p + 20);
    if ((be32(p + 12) >>> 8) != 0x080045 || (w20 & 0x3fff0000) != 0) break;
    const pr = w20 & 0xff;
    const tot = be16(p + 16);
    const wirelen = rec32(h + 12, le);
    // As pcap-fast.ts: the L4 minimum on the wire, enough captured, and a datagram no longer than the frame (unsigned, as there).
    if (!((pr == 6 ? tot >= 40 && caplen >= 48 : (pr == 17 || pr == 1) && tot >= 28) && <i64>tot <= <i64>wirelen - 14)) break;
    const ts = <f64>rec32(h, le) + <f64>rec32(h + 4, le) * 1e-6;
    if (ts < from || ts > to) break;
    const i = <usize>n;
    store<u32>(SADDR + (i << 2), be32(p + 26));
    store<u32>(DADDR + (i << 2), be32(p + 30));
    // IPv6 lanes are zero for IPv4 (the batch's contract, batch.ts): a slot that already holds an
    // IPv4 packet, as it does from a reused batch's previous fill, has them zero, and 32 bytes of
    // stores a packet are skipped. Snaplen-96 bench capture, ratio to C: with no IPv6 stores at
    // all (an experiment) 0.944 against 0.898; with this check, two ingest bench runs 0.96 and 0.92.
    if (load<u8>(FAMILY + i) != 4) {
      v128.store(SADDR6 + (i << 4), i64x2.splat(0));
      v128.store(DADDR6 + (i << 4), i64x2.splat(0));
    }
    const a = be32(p + 34);
    const c = be32(p + 38);
    store<u32>(L4A + (i << 2), a);
    store<u32>(L4B + (i << 2), c);
    store<u8>(PROTO + i, <u8>pr);
    store<u8>(FAMILY + i, 4);
    store<u8>(L4FLAGS + i, 3);
    let fl: u32 = 1;
    let sp: u32 = a >>> 16;
    let dp: u32 = a & 0xffff;
    if (pr == 6) {
      const t = <u32>load<u8>(p + 47);
      // F.SYN/ACK/RST/FIN from TCP's FIN 0x01, SYN 0x02, RST 0x04, ACK 0x10.
      fl |= ((t & 0x02) << 1) | ((t & 0x10) >>> 1) | ((t & 0x04) << 2) | ((t & 0x01) << 5);
      // 20 bytes of TCP header on the wire but fewer captured: cut by the snap length.
      if (caplen < 54) { fl |= 0x40; trunc++; }
    } else if (pr == 1) {
      // ICMP: no ports; echo request/reply carry id and sequence (decode.ts writeL4).
      fl = 0;
      const t = a >>> 24;
      if (t == 8 || t == 0) { sp = c >>> 16; dp = c & 0xffff; } else { sp = 0; dp = 0; }
    }
    store<u16>(SPORT + (i << 1), <u16>sp);
    store<u16>(DPORT + (i << 1), <u16>dp);
    store<u8>(FLAGS + i, <u8>fl);
    store<f64>(TS + (i << 3), ts);
    store<u32>(WIRELEN + (i << 2), wirelen);
    n++;
    pos = pos + 16 + caplen;
    bytes += <f64>wirelen;
  }
  store<f64>(out, bytes);
  store<i32>(out, trunc, 8);
  store<i32>(out, pos, 12);
  return n;
}
