/**
 * AssemblyScript (compiled to WebAssembly by sim/select/wasm/build.ts) for
 * the synthetic generator's general path: the same flows, the same draws in
 * the same order, the same two-tier queue (a binary heap for the current
 * 64 us bucket, a timing wheel of 2^15 buckets behind it) and the same lanes
 * as SyntheticInput in sim/traffic/synthetic.ts, which stays the reference
 * and the fallback. synthetic-wasm.test.ts holds the two equal.
 *
 * One instance generates one share of one scenario. Its memory is its own
 * (a shared memory synthetic-wasm.ts creates per input, growable): the flow
 * records, the heap, the wheel, the Zipf table, and a staging area of CHUNK
 * packets' lanes that synthetic-wasm.ts copies into the batch with
 * TypedArray.set (the staging stays in cache; the copy is cheap next to
 * generating). The batch's IPv6 lanes, family and l4flags are not staged:
 * every synthetic packet is IPv4 with both L4 words (family 4, l4flags 3).
 *
 * Why a second form: the JavaScript loop's profile is flat (no line above
 * 7 %); here an active flow is one 64-byte record (as in bench/native/gen.c)
 * and every lane store is one instruction, with no bounds checks. The
 * per-packet functions (emit, schedule, heapPush, advance) are inlined into
 * fill: alternating runs in one process, uniform 12.45 -> 13.69 M packets/s,
 * default 12.73 -> 14.24 (medians of 7, CPU time, staging only).
 *
 * Floating point: every f64 operation here is one IEEE operation (+, -, *,
 * /, floor, ceil, min, max) that JavaScript does identically; Math.pow is not
 * (AssemblyScript's own pow may differ in the last bit from V8's), so
 * JavaScript's Math.pow makes the flows' pows (flowPow, a block at a time)
 * and the Zipf table is built by JavaScript and copied in (zipfTable()).
 */

/**
 * Math.pow(args[i], 1 / 1.2) into out[i] for i < n, by JavaScript (env.powBlock
 * in synthetic-wasm.ts): one call per POW_BLOCK flows, since a call from
 * WebAssembly into JavaScript costs about what the pow does (a pow of
 * AssemblyScript's own, which is not V8's to the bit, measured mix 10.5 ->
 * 12.8 M packets/s). Against one imported Math.pow a flow, alternating runs,
 * medians of 7: mix 10.46 -> 10.69 and 8.60 -> 9.40, uniform 12.54 -> 13.59
 * and 9.62 -> 10.18; default within the noise.
 */
// @ts-ignore: decorator
@external("env", "powBlock")
declare function powBlock(args: usize, out: usize, n: i32): void;

/** Flows whose pow is made per call of powBlock. */
const POW_BLOCK: i32 = 256;
let POW_ARGS: usize = 0, POW_OUT: usize = 0;
/** The flow number of POW_OUT[0], and how many are made (0: none yet). */
let powBase: f64 = 0;
let powN: i32 = 0;

/**
 * Math.pow(1 - u * scale, 1 / 1.2) of flow f's draw number `draw` (its u),
 * as synthetic.ts computes it: every flow's draw depends only on (seed, f),
 * and flows are drawn in order, so the block's arguments are known ahead.
 * Each flow asks for one draw number (heavySize: its second; mix: its
 * seventh), the same in every block.
 */
function flowPow(f: f64, draw: u32, scale: f64): f64 {
  if (powN == 0 || f < powBase || f >= powBase + <f64>powN) {
    powBase = f;
    for (let i = 0; i < POW_BLOCK; i++) {
      const r = seedMix(<u32>seed, <u32><i64>(f + <f64>i)) + draw * INC;
      store<f64>(POW_ARGS + (<usize>i << 3), 1 - <f64>mval(r) * UNIT * scale);
    }
    powBlock(POW_ARGS, POW_OUT, POW_BLOCK);
    powN = POW_BLOCK;
  }
  return load<f64>(POW_OUT + (<usize>(f - powBase) << 3));
}

// Scenario and flow-kind codes: synthetic.ts's SC_* and K_*.
const SC_DEFAULT = 0, SC_UNIFORM = 1, SC_ZIPF = 3, SC_NAT = 4, SC_PORTSCAN = 5, SC_SYNFLOOD = 6, SC_STEADY = 7, SC_MIX = 8;
const K_TCP = 0, K_DNS = 1, K_UDPSTREAM = 2, K_PING = 3, K_SYN = 4, K_ONEWAY = 5;
// batch.ts F bits
const F_PORTS: u32 = 1, F_SYN: u32 = 4, F_ACK: u32 = 8, F_FIN: u32 = 0x20;

const INC: u32 = 0x6d2b79f5;
const UNIT: f64 = 1.0 / 4294967296.0;
const CLUSTER_IP: u32 = 0xc000020a;
const ZIPF_N: i32 = 50000;
const STEADY_WARMUP_US: f64 = 20000000;
const WHEEL: i32 = 1 << 15;
const WHEEL_MASK: i32 = WHEEL - 1;

/** Packets staged per call of fill (the lanes of CHUNK packets: about 150 KB). */
export const CHUNK: i32 = 4096;

const POOLS_BASE = memory.data<u32>([0x0a000000, 0xac100000, 0xc0a80000, 0x64400000, 0xc6120000]);
const POOLS_MASK = memory.data<u32>([0x00ffffff, 0x000fffff, 0x0000ffff, 0x003fffff, 0x0001ffff]);
const NAT = memory.data<u32>([0xcb007101, 0xcb007102, 0xcb007103, 0xcb007104]);
const MIX_BLOCKS = memory.data<u32>([0x0a000000, 0xc0a80000, 0x64400000, 0x2d000000, 0x59000000, 0xb9000000]);
const MIX_VIPS = memory.data<u32>([0xc6336401, 0xc6336402, 0xc6336403]);

// ---- configuration (init) ----
let sc: i32 = 0;
let seed: i32 = 0;
let total: f64 = 0;
let maxFlows: f64 = 0;
let shareIndex: u32 = 0;
let shareCount: u32 = 1;
let gapUs: u32 = 1;
let epoch: f64 = 0;
let server: u32 = 0;
let durUs: f64 = 0;
let spanUs: f64 = 0;
let tcpShare: f64 = 0;
let clients: f64 = 1;

// ---- memory: staging lanes, wheel, Zipf table, then the growable arrays ----
/**
 * The staging lanes, one block: each lane at a constant offset from STAGE, so
 * that the packet writer's ten stores take one base (immediate offsets).
 */
let STAGE: usize = 0;
const S_TS = 0, S_WIRELEN = CHUNK << 3, S_SADDR = S_WIRELEN + (CHUNK << 2), S_DADDR = S_SADDR + (CHUNK << 2);
const S_L4A = S_DADDR + (CHUNK << 2), S_L4B = S_L4A + (CHUNK << 2), S_SPORT = S_L4B + (CHUNK << 2), S_DPORT = S_SPORT + (CHUNK << 1);
const S_PROTO = S_DPORT + (CHUNK << 1), S_FLAGS = S_PROTO + CHUNK, S_END = S_FLAGS + CHUNK;
let WHEAD: usize = 0, WBITS: usize = 0, ZIPF: usize = 0;
/** Flow records (REC bytes each), the free list (i32), the heap (16-byte entries, see ent). */
let FLOWS: usize = 0, FREE: usize = 0, HEAP: usize = 0;
let cap: i32 = 0;
let freeN: i32 = 0;
/** The flows due in the current bucket: HEAP entries [qh, qt), sorted by (key, flow number). */
let qh: i32 = 0;
let qt: i32 = 0;
let wN: i32 = 0;
let curIdx: f64 = -1;
let curPos: i32 = 0;
let curEnd: f64 = 0;

/*
 * A flow record. next (µs of its next packet) and gap as f64 like
 * synthetic.ts's Float64Arrays; id the flow number (u32, see ent); link the
 * wheel bucket's chain.
 */
const REC: i32 = 64;
const O_NEXT = 0, O_ID = 8, O_GAP = 16, O_IDX = 24, O_SIZE = 28, O_RNG = 32, O_CLIENT = 36, O_SERVER = 40;
const O_CSEQ = 44, O_SSEQ = 48, O_CPORT = 52, O_SPORT = 54, O_LEN = 56, O_KIND = 58, O_PROTO = 59, O_LINK = 60;

// @ts-ignore: decorator
@inline function rec(s: i32): usize { return FLOWS + (<usize>s << 6); }

// ---- the pending flow (synthetic.ts's p* fields) ----
let nextFlow: f64 = 0;
let assigned: f64 = 0;
let exhausted = false;
let pF: f64 = -1;
let pStart: f64 = 0;
let pFirst: f64 = 0;
let pK0: i32 = 0;
let pSize: i32 = 0;
let pKind: i32 = 0;
let pProto: u32 = 0;
let pClient: u32 = 0;
let pServer: u32 = 0;
let pCport: u32 = 0;
let pSport: u32 = 0;
let pLen: u32 = 0;
let pGap: f64 = 0;
let pR: u32 = 0;

/** Bytes from the stub runtime's heap, 16-aligned (never freed: an instance lives as long as its input). */
function alloc(bytes: usize): usize {
  return (heap.alloc(bytes + 16) + 15) & ~<usize>15;
}

// @ts-ignore: decorator
@inline function mval(s: u32): u32 {
  let t = (s ^ (s >>> 15)) * (1 | s);
  t = (t + (t ^ (t >>> 7)) * (61 | t)) ^ t;
  return t ^ (t >>> 14);
}

/** prng.ts seedMix. */
function seedMix(a: u32, b: u32): u32 {
  let h = ((a ^ 0x9e3779b9) * 0x85ebca6b) ^ b;
  h = (h ^ (h >>> 13)) * 0xc2b2ae35;
  return h ^ (h >>> 16);
}

/** checksum.ts checksumOf for the small sums here. */
function checksumOf(sum: u32): u32 {
  let s = sum;
  while (s > 0xffff) s = (s & 0xffff) + (s >>> 16);
  return ~s & 0xffff;
}

function udpChecksum(sa: u32, da: u32, sp: u32, dp: u32, len: u32): u32 {
  const c = checksumOf((sa >>> 16) + (sa & 0xffff) + (da >>> 16) + (da & 0xffff) + 17 + len + sp + dp + len);
  return c == 0 ? 0xffff : c;
}

/** synthetic.ts heavySize of flow f, whose second draw is u (flowPow makes the pow from it). */
function heavySize(f: f64, min: f64, max: f64): i32 {
  const x = min / flowPow(f, 2, 0.999999);
  return <i32>Math.min(max, Math.max(min, Math.floor(x)));
}

function zipfClient(a: u32): u32 {
  const u = <f64>a * UNIT;
  let lo = 0, hi = ZIPF_N - 1;
  while (lo < hi) { const m = (lo + hi) >> 1; if (load<f64>(ZIPF + (<usize>m << 3)) < u) lo = m + 1; else hi = m; }
  return 0x64400000 | (<u32>(lo + 1) * 0x9e3779b1 >>> 10);
}

function poolClient(a: u32, b: u32): u32 {
  const p = <usize>(a % 5) << 2;
  return load<u32>(POOLS_BASE + p) | (b & load<u32>(POOLS_MASK + p));
}

/**
 * Sets the scenario up (synthetic.ts has validated every value) and lays
 * out the memory; stagingLane() says where each staged lane is. The caller then fills the Zipf table (zipfTable()) and calls
 * start().
 */
export function init(scenario: i32, seed_: i32, total_: f64, maxFlows_: f64, index: u32, count: u32, gapUs_: u32, epoch_: f64, server_: u32, durUs_: f64, spanUs_: f64, tcpShare_: f64, clients_: f64): void {
  sc = scenario; seed = seed_; total = total_; maxFlows = maxFlows_; shareIndex = index; shareCount = count;
  gapUs = gapUs_; epoch = epoch_; server = server_; durUs = durUs_; spanUs = spanUs_; tcpShare = tcpShare_; clients = clients_;
  STAGE = alloc(<usize>S_END);
  POW_ARGS = alloc(<usize>POW_BLOCK << 3);
  POW_OUT = alloc(<usize>POW_BLOCK << 3);
  WHEAD = alloc(<usize>WHEEL << 2);
  memory.fill(WHEAD, 0xff, <usize>WHEEL << 2);
  WBITS = alloc(<usize>WHEEL >>> 3);
  memory.fill(WBITS, 0, <usize>WHEEL >>> 3);
  if (sc == SC_DEFAULT || sc == SC_ZIPF) ZIPF = alloc(<usize>ZIPF_N << 3);
  grow(1024);
}

/** Draws the first flow: after init and after the caller filled the Zipf table. */
export function start(): void {
  queueNextFlow();
}

/** Where the Zipf table goes (50,000 f64), or 0 when the scenario has none. */
export function zipfTable(): usize { return ZIPF; }

/** The staging lanes' addresses, in the order ts, wirelen, saddr, daddr, l4a, l4b, sport, dport, proto, flags. */
export function stagingLane(k: i32): usize {
  switch (k) {
    case 0: return STAGE + S_TS; case 1: return STAGE + S_WIRELEN; case 2: return STAGE + S_SADDR; case 3: return STAGE + S_DADDR;
    case 4: return STAGE + S_L4A; case 5: return STAGE + S_L4B; case 6: return STAGE + S_SPORT; case 7: return STAGE + S_DPORT;
    case 8: return STAGE + S_PROTO; default: return STAGE + S_FLAGS;
  }
}

function grow(n: i32): void {
  const old = cap;
  const flows = alloc(<usize>n << 6), free = alloc(<usize>n << 2), heapArea = alloc(<usize>n << 4);
  if (old > 0) {
    memory.copy(flows, FLOWS, <usize>old << 6);
    memory.copy(free, FREE, <usize>freeN << 2);
    memory.copy(heapArea, HEAP, <usize>qt << 4);
  }
  FLOWS = flows; FREE = free; HEAP = heapArea;
  for (let s = n - 1; s >= old; s--) freeSlot(s);
  cap = n;
}

/** synthetic.ts queueNextFlow. */
function queueNextFlow(): void {
  pF = -1;
  while (!exhausted) {
    if (assigned >= total || nextFlow >= maxFlows) { exhausted = true; return; }
    const f = nextFlow;
    nextFlow += 1;
    const size0 = sc == SC_STEADY || sc == SC_MIX ? drawOneway(f) : drawClassic(f);
    if (size0 == 0) continue;
    const size = Math.min(<f64>size0, total - assigned);
    assigned += size;
    if (shareCount > 1 && shareOfPending() != shareIndex) continue;
    pF = f;
    pSize = <i32>size;
    return;
  }
}

/** synthetic.ts drawClassic (the same draws in the same order). */
function drawClassic(f: f64): i32 {
  const fi = <i64>f;
  let r = seedMix(<u32>seed, <u32>fi);
  r += INC; const u1 = <f64>mval(r) * UNIT;
  r += INC; const u2 = <f64>mval(r) * UNIT;
  let kind = K_TCP, size: i32;
  switch (sc) {
    case SC_PORTSCAN: case SC_SYNFLOOD: kind = K_SYN; size = 1; break;
    case SC_DEFAULT:
      if (u1 < 0.72) { kind = K_TCP; size = heavySize(f, 6, 20000); }
      else if (u1 < 0.88) { kind = K_DNS; size = 2; }
      else if (u1 < 0.95) { kind = K_UDPSTREAM; size = heavySize(f, 4, 5000); }
      else { kind = K_PING; size = 2 * (1 + <i32>Math.floor(u2 * 5)); }
      break;
    default:
      size = heavySize(f, 6, 400);
  }
  r += INC;
  const start = f * <f64>gapUs + <f64>(mval(r) % gapUs);
  pStart = start;
  pFirst = start;
  pK0 = 0;
  pKind = kind;
  pProto = kind == K_PING ? 1 : kind == K_DNS || kind == K_UDPSTREAM ? 17 : 6;
  pServer = CLUSTER_IP;
  r += INC; const a = mval(r);
  r += INC; const b = mval(r);
  switch (sc) {
    case SC_UNIFORM: case SC_SYNFLOOD: pClient = (((a % 223) + 1) << 24) | (b & 0xffffff); break;
    case SC_NAT: pClient = load<u32>(NAT + ((<usize>a & 3) << 2)); break;
    case SC_PORTSCAN: pClient = 0xc6336407; break;
    case SC_ZIPF: pClient = zipfClient(a); break;
    case SC_DEFAULT: pClient = (a & 7) < 3 ? zipfClient(a >>> 3) : poolClient(a >>> 3, b); break;
    default: pClient = poolClient(a, b);
  }
  r += INC;
  const c = mval(r);
  pCport = sc == SC_PORTSCAN ? 40000 + <u32>(fi % 7) : 1024 + (c % 64512);
  pSport = sc == SC_PORTSCAN ? <u32>(fi % 65535) + 1 : sc == SC_SYNFLOOD ? 80
    : kind == K_DNS ? 53 : kind == K_UDPSTREAM ? 443 : kind == K_PING ? <u32>fi & 0xffff : (c >>> 16) & 1 ? 443 : 80;
  pR = r;
  return size;
}

/** synthetic.ts drawOneway (steady, mix). */
function drawOneway(f: f64): i32 {
  let r = seedMix(<u32>seed, <u32><i64>f);
  r += INC; const u1 = <f64>mval(r) * UNIT;
  r += INC; const u2 = <f64>mval(r) * UNIT;
  r += INC; const u3 = <f64>mval(r) * UNIT;
  r += INC; const u4 = <f64>mval(r) * UNIT;
  r += INC; const u5 = <f64>mval(r) * UNIT;
  r += INC; const u6 = <f64>mval(r) * UNIT;
  r += INC; const u7 = <f64>mval(r) * UNIT;
  pKind = K_ONEWAY;
  let size: i32;
  if (sc == SC_STEADY) {
    // synthetic.ts keeps clients below 2^31 for this path (c * 7 wraps as >>> 0 does there).
    const c = <u32>Math.floor(u1 * clients);
    pClient = 0x0a000001 + c * 7 + (c >>> 8) * 3;
    const tcp = u2 < tcpShare;
    pProto = tcp ? 6 : 17;
    pCport = 1024 + <u32>Math.floor(u3 * 64000);
    pSport = tcp ? (u4 < 0.7 ? 443 : 80) : u4 < 0.5 ? 53 : 4500;
    pServer = server;
    const start = Math.floor(((f + u5) * spanUs) / maxFlows) - STEADY_WARMUP_US;
    const npk = 3 + Math.floor(u6 * u7 * 80);
    r += INC;
    const gap = Math.floor((0.05 + <f64>mval(r) * UNIT * 0.9) * 1e6);
    const k0 = start < 0 ? Math.ceil(-start / gap) : 0;
    const kEnd = Math.min(npk, Math.ceil((durUs - start) / gap));
    pStart = start;
    pK0 = <i32>k0;
    pFirst = start + k0 * gap;
    pGap = gap;
    pLen = 0;
    size = <i32>Math.max(0, kEnd - k0);
  } else {
    const block = load<u32>(MIX_BLOCKS + (<usize>Math.floor(u1 * 6) << 2));
    const host = block >= 0x2d000000 && block < 0x60000000 ? <u32>Math.floor(u2 * 0x1000000) : <u32>Math.floor(u2 * 0x10000);
    pClient = block + host;
    pServer = load<u32>(MIX_VIPS + (<usize>Math.floor(u3 * 3) << 2));
    r += INC; const u8 = <f64>mval(r) * UNIT;
    if (u4 < 0.8) {
      pProto = 6;
      pCport = 32768 + <u32>Math.floor(u5 * 28232);
      pSport = u6 < 0.6 ? 443 : u6 < 0.85 ? 80 : u6 < 0.95 ? 22 : 1024 + <u32>Math.floor(u7 * 64000);
    } else if (u4 < 0.97) {
      pProto = 17;
      pCport = 1024 + <u32>Math.floor(u5 * 64000);
      pSport = u6 < 0.6 ? 53 : u6 < 0.8 ? 443 : 123;
    } else if (u4 < 0.99) {
      pProto = 1;
      pCport = <u32>Math.floor(u5 * 65536);
      pSport = <u32>Math.floor(u6 * 100);
    } else {
      pProto = 50;
      pCport = <u32>Math.floor(u5 * 65536);
      pSport = <u32>Math.floor(u6 * 65536);
    }
    size = <i32>Math.min(5000, Math.floor(1 / flowPow(f, 7, 1)));
    r += INC; const u9 = <f64>mval(r) * UNIT;
    pLen = u8 < 0.4 ? 66 + <u32>Math.floor(u9 * 60) : 1514 - <u32>Math.floor(u9 * 200);
    r += INC;
    const v = mval(r);
    pStart = f * 10 + <f64>(v % 10);
    pFirst = pStart;
    pK0 = 0;
    pGap = <f64>(200 + ((v >>> 8) % 5000));
  }
  pR = r;
  return size;
}

/** synthetic.ts shareOfPending: the share of the pending flow's connection key. */
function shareOfPending(): u32 {
  if (pKind == K_ONEWAY) {
    let h = seedMix(pProto, pClient);
    h = seedMix(h, pCport);
    h = seedMix(h, pSport);
    h = seedMix(h, pServer);
    return h % shareCount;
  }
  const icmp = pKind == K_PING;
  let h = seedMix(icmp ? 1 : 6, pClient);
  h = seedMix(h, icmp ? 0 : pCport);
  h = seedMix(h, pSport);
  return h % shareCount;
}

/** synthetic.ts startFlow. */
function startFlow(): i32 {
  if (freeN == 0) grow(cap * 2);
  freeN--;
  const s = load<i32>(FREE + (<usize>freeN << 2));
  const x = rec(s);
  let r = pR;
  store<u32>(x, <u32>pF, O_ID);
  store<f64>(x, pFirst, O_NEXT);
  store<i32>(x, pK0, O_IDX);
  store<i32>(x, pK0 + pSize, O_SIZE);
  store<u8>(x, <u8>pKind, O_KIND);
  store<u8>(x, <u8>pProto, O_PROTO);
  store<u32>(x, pClient, O_CLIENT);
  store<u32>(x, pServer, O_SERVER);
  store<u16>(x, <u16>pCport, O_CPORT);
  store<u16>(x, <u16>pSport, O_SPORT);
  store<u16>(x, <u16>pLen, O_LEN);
  store<f64>(x, pGap, O_GAP);
  r += INC; store<u32>(x, mval(r), O_CSEQ);
  r += INC; store<u32>(x, mval(r), O_SSEQ);
  store<u32>(x, r, O_RNG);
  queueNextFlow();
  return s;
}

// @ts-ignore: decorator
@inline function freeSlot(s: i32): void { store<i32>(FREE + (<usize>freeN << 2), s); freeN++; }
/*
 * The heap: 16-byte entries (key f64, flow number u32, slot i32), so that a
 * comparison's tie-break reads the entry, not the flow's record, and an
 * entry moves as one v128. Flow numbers fit 32 bits: synthetic.ts runs this
 * module only when the scenario has fewer than 2^32 flows.
 */
// @ts-ignore: decorator
@inline function ent(i: i32): usize { return HEAP + (<usize>i << 4); }
// @ts-ignore: decorator
@inline function hk(i: i32): f64 { return load<f64>(ent(i)); }
// @ts-ignore: decorator
@inline function hs(i: i32): i32 { return load<i32>(ent(i), 12); }
// @ts-ignore: decorator
@inline function setH(e: usize, key: f64, id: u32, s: i32): void { store<f64>(e, key); store<u32>(e, id, 8); store<i32>(e, s, 12); }

/** Inserts flow s at time `key` into the sorted run [qh, qt) (from its end: later keys are the likelier). */
// @ts-ignore: decorator
@inline function heapPush(s: i32, key: f64): void {
  const id = load<u32>(rec(s), O_ID);
  if (qt == cap) { memory.copy(HEAP, ent(qh), <usize>(qt - qh) << 4); qt -= qh; qh = 0; }
  let i = qt++;
  while (i > qh) {
    const e = ent(i - 1);
    const pk = load<f64>(e);
    if (pk < key || (pk == key && load<u32>(e, 8) < id)) break;
    v128.store(e, v128.load(e), 16);
    i--;
  }
  setH(ent(i), key, id, s);
}

// @ts-ignore: decorator
@inline function before(a: usize, b: usize): bool {
  const ka = load<f64>(a), kb = load<f64>(b);
  return ka < kb || (ka == kb && load<u32>(a, 8) < load<u32>(b, 8));
}

// @ts-ignore: decorator
@inline function swap(a: usize, b: usize): void { const t = v128.load(a); v128.store(a, v128.load(b)); v128.store(b, t); }

/** Sorts entries [0, n) by (key, flow number). */
function heapsort(n: i32): void {
  for (let start = (n - 2) >> 1; start >= 0; start--) siftDown(start, n);
  for (let end = n - 1; end > 0; end--) { swap(ent(0), ent(end)); siftDown(0, end); }
}

/** A bucket's flows up to this many go into the run by insertion (about 5 in default, 13 in uniform, 25 in mix). */
const INSERTION_MAX = 32;

/** heapsort's sift: a max-heap of entries [0, end) by (key, flow number). */
function siftDown(root: i32, end: i32): void {
  for (;;) {
    let c = 2 * root + 1;
    if (c >= end) return;
    if (c + 1 < end && before(ent(c), ent(c + 1))) c++;
    if (!before(ent(root), ent(c))) return;
    swap(ent(root), ent(c));
    root = c;
  }
}

/** Removes the first (earliest) flow. */
function heapPop(): void {
  qh++;
  if (qh == qt) { qh = 0; qt = 0; }
}

/** Wire bytes of the packets of the last fill. */
export let lastBytes: f64 = 0;

/** Set when a packet fell past the wheel (synthetic.ts throws; fill returns -1 and synthetic-wasm.ts throws). */
let pastWheel = false;

// @ts-ignore: decorator
@inline function schedule(s: i32, key: f64): void {
  if (key < curEnd) { heapPush(s, key); return; }
  if (qh == qt && wN == 0) {
    curIdx = Math.floor(key / 64);
    curEnd = (curIdx + 1) * 64;
    heapPush(s, key);
    return;
  }
  const d = Math.floor(key / 64) - curIdx;
  if (d >= <f64>WHEEL) { pastWheel = true; return; }
  const pos = (curPos + <i32>d) & WHEEL_MASK;
  const h = WHEAD + (<usize>pos << 2);
  store<i32>(rec(s), load<i32>(h), O_LINK);
  store<i32>(h, s);
  const w = WBITS + (<usize>(pos >>> 5) << 2);
  store<u32>(w, load<u32>(w) | (1 << (pos & 31)));
  wN++;
}

// @ts-ignore: decorator
@inline function advance(): bool {
  if (wN == 0) return false;
  let p = (curPos + 1) & WHEEL_MASK, d = 1;
  for (;;) {
    const word = load<u32>(WBITS + (<usize>(p >>> 5) << 2)) >>> (p & 31);
    if (word != 0) { d += <i32>ctz(word); break; }
    const step = 32 - (p & 31);
    d += step;
    p = (p + step) & WHEEL_MASK;
  }
  const pos = (curPos + d) & WHEEL_MASK;
  curIdx += <f64>d;
  curPos = pos;
  curEnd = (curIdx + 1) * 64;
  const h = WHEAD + (<usize>pos << 2);
  let s = load<i32>(h);
  store<i32>(h, -1);
  const w = WBITS + (<usize>(pos >>> 5) << 2);
  store<u32>(w, load<u32>(w) & ~(1 << (pos & 31)));
  // The run is empty here (fill calls advance only then). The bucket's first INSERTION_MAX flows
  // go in by insertion; a crowded bucket's others are appended and the whole run heapsorted, so
  // that it costs n log n, not n^2.
  while (s >= 0) {
    const x = rec(s);
    const next = load<i32>(x, O_LINK);
    if (qt < INSERTION_MAX) heapPush(s, load<f64>(x, O_NEXT));
    else setH(ent(qt++), load<f64>(x, O_NEXT), load<u32>(x, O_ID), s);
    wN--;
    s = next;
  }
  if (qt > INSERTION_MAX) heapsort(qt);
  return true;
}

/**
 * Generates up to `max` (<= CHUNK) packets into the staging lanes from
 * index 0; returns how many (fewer: the scenario is done), or -1 when a
 * packet fell past the timing wheel (a bug; synthetic.ts throws there too).
 * Sets lastBytes to the packets' wire bytes.
 */
export function fill(max: i32): i32 {
  let n = 0;
  let bytes: u32 = 0;
  while (n < max) {
    const any = qt > qh || advance();
    if (pF >= 0 && (!any || pStart <= hk(qh))) {
      const first = pFirst;
      const s = startFlow();
      // Emit now when due before every queued flow and the next flow's start (synthetic.ts fill).
      if ((any && first >= hk(qh)) || (pF >= 0 && first > pStart)) { schedule(s, first); if (pastWheel) return -1; continue; }
      bytes += emit(s, n++);
      const x = rec(s);
      if (load<i32>(x, O_IDX) >= load<i32>(x, O_SIZE)) freeSlot(s);
      else schedule(s, load<f64>(x, O_NEXT));
      if (pastWheel) return -1;
      continue;
    }
    if (!any) break;
    const s = hs(qh);
    bytes += emit(s, n++);
    const x = rec(s);
    const key = load<f64>(x, O_NEXT);
    if (load<i32>(x, O_IDX) >= load<i32>(x, O_SIZE)) { heapPop(); freeSlot(s); }
    else if (key < curEnd) { heapPop(); heapPush(s, key); }
    else { heapPop(); schedule(s, key); if (pastWheel) return -1; }
  }
  lastBytes = <f64>bytes;
  return n;
}

/**
 * fill for the scenarios whose flows are one SYN each (synflood, portscan),
 * as synthetic.ts's fillSyns: flow f starts in [f * gap, (f + 1) * gap), so
 * each flow's packet comes before the next flow's and none is ever queued;
 * each packet is written straight from the pending flow.
 */
export function fillSyns(max: i32): i32 {
  let n = 0;
  while (n < max && pF >= 0) {
    const us = pStart;
    const sec = Math.floor(us / 1e6);
    const j = <usize>n, a8 = STAGE + (j << 3), a4 = STAGE + (j << 2), a2 = STAGE + (j << 1), a1 = STAGE + j;
    store<f64>(a8, sec + epoch + (us - sec * 1e6) * 1e-6, S_TS);
    store<u32>(a4, 54, S_WIRELEN);
    store<u32>(a4, pClient, S_SADDR);
    store<u32>(a4, CLUSTER_IP, S_DADDR);
    store<u32>(a4, (pCport << 16) | pSport, S_L4A);
    store<u32>(a4, 0, S_L4B);
    store<u16>(a2, <u16>pCport, S_SPORT);
    store<u16>(a2, <u16>pSport, S_DPORT);
    store<u8>(a1, 6, S_PROTO);
    store<u8>(a1, <u8>(F_SYN | F_PORTS), S_FLAGS);
    n++;
    queueNextFlow();
  }
  lastBytes = <f64>(n * 54);
  return n;
}

/** synthetic.ts emit: packet idx of flow s into staging slot i; returns its wire length. */
// @ts-ignore: decorator
@inline function emit(s: i32, i: i32): u32 {
  const x = rec(s);
  const k = load<i32>(x, O_IDX), size = load<i32>(x, O_SIZE), kind = <i32>load<u8>(x, O_KIND);
  let r = load<u32>(x, O_RNG);
  r += INC; const u = <f64>mval(r) * UNIT;
  r += INC; const u2 = <f64>mval(r) * UNIT;
  const us = load<f64>(x, O_NEXT);
  let up = true;
  let proto: u32 = 6, flags: u32 = 0, len: u32 = 54, l4a: u32 = 0, l4b: u32 = 0, sport: u32 = 0, dport: u32 = 0;
  const client = load<u32>(x, O_CLIENT), cport = <u32>load<u16>(x, O_CPORT), sp = <u32>load<u16>(x, O_SPORT);
  let srv = CLUSTER_IP;
  let gap: f64 = 0;
  switch (kind) {
    case K_SYN:
      flags = F_SYN; len = 54; break;
    case K_TCP: {
      const teardown = size >= 6 ? size - 3 : 99;
      let payload: u32 = 0;
      if (k == 0) { flags = F_SYN; }
      else if (k == 1) { flags = F_SYN | F_ACK; up = false; }
      else if (k == 2) { flags = F_ACK; }
      if (k >= 3 && k < teardown) {
        flags = F_ACK;
        up = u < 0.35;
        payload = u2 < 0.45 ? 1460 : u2 < 0.75 ? <u32>Math.floor(u2 * 200) : <u32>Math.floor(200 + u2 * 1260);
        if (payload == 0) payload = 1;
      } else if (k >= 3) {
        const t = size >= 6 ? k - teardown : k - 3;
        flags = t == 2 ? F_ACK : F_FIN | F_ACK;
        up = t != 1;
      }
      len = 54 + payload;
      const seqc = load<u32>(x, O_CSEQ), seqs = load<u32>(x, O_SSEQ);
      l4b = up ? seqc : seqs;
      const adv = payload + ((flags & (F_SYN | F_FIN)) != 0 ? 1 : 0);
      if (up) store<u32>(x, seqc + adv, O_CSEQ); else store<u32>(x, seqs + adv, O_SSEQ);
      gap = k < 3 ? 200 + u * 30000 : 50 + u2 * 20000;
      break;
    }
    case K_DNS:
      proto = 17; up = k == 0; len = up ? 42 + 30 + <u32>Math.floor(u * 40) : 42 + 60 + <u32>Math.floor(u * 400); gap = 500 + u * 40000; break;
    case K_UDPSTREAM:
      proto = 17; up = k == 0 || u < 0.2; len = up ? 42 + 40 + <u32>Math.floor(u2 * 100) : 42 + 1200 + <u32>Math.floor(u2 * 150); gap = 100 + u * 5000; break;
    case K_PING:
      proto = 1; up = (k & 1) == 0; len = 98; gap = up ? 300 + u * 20000 : 1000000; break;
    default: { // K_ONEWAY
      proto = <u32>load<u8>(x, O_PROTO);
      srv = load<u32>(x, O_SERVER);
      const fixed = <u32>load<u16>(x, O_LEN);
      if (proto == 6) flags = k == 0 ? F_SYN : k == size - 1 ? F_FIN | F_ACK : F_ACK;
      len = fixed != 0 ? fixed : proto == 6 && k == 0 ? 60 : 60 + <u32>Math.floor(u * 1400);
      gap = load<f64>(x, O_GAP);
      break;
    }
  }
  const saddr = up ? client : srv, daddr = up ? srv : client;
  if (proto == 1) {
    if (kind == K_ONEWAY) {
      sport = cport; dport = sp;
      l4a = (8 << 24) | checksumOf((8 << 8) + cport + sp);
      l4b = (cport << 16) | sp;
    } else {
      const type: u32 = up ? 8 : 0, id = sp, seq = <u32>(k >> 1);
      l4a = (type << 24) | checksumOf((type << 8) + id + seq);
      l4b = (id << 16) | seq;
      sport = id; dport = seq;
    }
  } else if (proto == 50) {
    sport = cport; dport = sp;
    l4a = (cport << 16) | sp;
    l4b = 1;
  } else {
    sport = up ? cport : sp; dport = up ? sp : cport;
    l4a = (sport << 16) | dport;
    if (proto == 17) { const ul = len - 34; l4b = (ul << 16) | udpChecksum(saddr, daddr, sport, dport, ul); }
    flags |= F_PORTS;
  }
  const sec = Math.floor(us / 1e6);
  const j = <usize>i, a8 = STAGE + (j << 3), a4 = STAGE + (j << 2), a2 = STAGE + (j << 1), a1 = STAGE + j;
  store<f64>(a8, sec + epoch + (us - sec * 1e6) * 1e-6, S_TS);
  store<u32>(a4, len, S_WIRELEN);
  store<u32>(a4, saddr, S_SADDR);
  store<u32>(a4, daddr, S_DADDR);
  store<u32>(a4, l4a, S_L4A);
  store<u32>(a4, l4b, S_L4B);
  store<u16>(a2, <u16>sport, S_SPORT);
  store<u16>(a2, <u16>dport, S_DPORT);
  store<u8>(a1, <u8>proto, S_PROTO);
  store<u8>(a1, <u8>flags, S_FLAGS);
  store<u32>(x, r, O_RNG);
  store<i32>(x, k + 1, O_IDX);
  store<f64>(x, us + Math.max(1, Math.floor(gap)), O_NEXT);
  return len;
}
