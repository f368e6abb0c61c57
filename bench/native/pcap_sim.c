/*
 * Native reference for the simulate bench: the whole core of a simulate job
 * in C, for the one configuration the bench runs (bench/suites/simulate.ts:
 * CLUSTERIP, hashmode sourceip-sourceport, 4 nodes, hash_init 0, kernel 6.1,
 * little-endian CPU; flow timeout 120 s). It does the work of
 * sim/engine/share.ts + conn-table.ts + flow-sink.ts on a classic pcap, so
 * that the bench can put our JavaScript engine next to C doing the same work
 * on 1 and 2 threads:
 *
 *   decode (Ethernet, 802.1Q/QinQ, IPv4, IPv6 extension headers, L4 ports and
 *   TCP flags): pcap_ingest.c's decoder plus the few rules of
 *   sim/traffic/decode.ts it leaves out because they cost nothing there but
 *   change what is counted here (datagrams longer than their frame are
 *   dropped, a GRE key is the "ports", a cut IPv6 extension header leaves the
 *   packet with unknown ports)
 *   -> conntrack validity (sim/cluster/ct-model.ts, tcp_loose=1): INVALID packets get no node and
      no connection entry; each range after the first logs the packets of keys that may continue a
      connection from the range before, and main replays them on the state the earlier ranges left
      (ct_compose), so per-node packets and bytes equal one pass over the file on any thread count
   -> CLUSTERIP bucket of every packet (sim/select/clusterip.ts era D, the
 *      clusterip:1:4:0 case of bench/native/hash.c) -> per-node packets, bytes
 *   -> connection table (conn-table.ts: one entry for both directions, idle
 *      timeout, sweeps every quarter timeout of capture time)
 *   -> when a connection ends (flow-sink.ts consume): per-node flows and
 *      connections, exact per-(node, source address) packets and bytes, and
 *      the randomness band (each direction flow hashed again under the 32
 *      seeds of sim/analysis/seed-band.ts bandSeeds()).
 *
 * One thread per byte range of the file (the ranges of planSourceShares in
 * sim/engine/sources.ts: a record belongs to the range its header starts in);
 * each reads its range with pread(2) through a reused 1 MiB buffer, as
 * pcap_ingest.c does, and keeps its own tables; the main thread adds them up.
 *
 * Differences from the TypeScript engine, on purpose:
 * - Connections cut at a range boundary are not joined across threads (the
 *   engine joins them in sim/engine/merge.ts). With 2 threads C's flows and
 *   connections therefore differ slightly from the engine's, and C does less
 *   work than the engine: it can only make C faster. Per-node packets and
 *   bytes do not depend on the split.
 * - IP fragments are counted as they come (L4 fields zero, flagged), not
 *   reassembled (sim/traffic/defrag.ts); the bench captures have none. The
   conntrack model judges a fragment without moving the entry's state.
 * - Only Ethernet pcaps (link type 1), classic pcap only (no pcapng, no gzip).
 * - Per direction of one connection, packets are 32-bit counters (2^32
 *   packets one way within one connection would wrap; bytes are 64-bit):
 *   that keeps an entry in one 64-byte cache line.
 * - Sources are keyed by IPv4 address only: CLUSTERIP is IPv4-only, so an
 *   IPv6 flow never has a node (its connections are still tracked, and
 *   counted in the totals).
 *
 * Usage: pcap_sim FILE REPEATS START0 END0 [START1 END1 ...]
 *   per repeat, two lines: "packets wall_seconds", then one line of JSON:
 *   {"packets":[4],"bytes":[4],"flows":[4],"connections":[4],"sources":[4],
 *    "band":[512],"noNode":n,"unknown":n,"flowsTotal":n,"connectionsTotal":n,
 *    "sourcesTotal":n}
 *   sources[k] = distinct source addresses counted on node k+1;
 *   band[(seed * 4 + metric) * 4 + node], metrics packets, bytes, flows,
 *   connections.
 * (Wall time, CLOCK_MONOTONIC, from before the threads start to after they
 * are joined and summed: the bench compares the wall time of 2 threads.)
 * Build: cc -O2 -std=gnu11 -Wall -Wextra -pthread -o pcap_sim pcap_sim.c
 *
 * The same source also builds for WebAssembly (clang --target=wasm32-wasi,
 * bench/harness/native.ts buildWasi), run by Node on one thread
 * (bench/harness/wasi-run.mjs): the same work as our engine, in the same
 * runtime, as a C compiler would write it. Without threads there, the ranges
 * run one after another.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#ifndef __wasi__
#include <pthread.h>
#endif
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* ==== the configuration (bench/suites/simulate.ts SPEC) ==== */

#define NODES 4
#define HASH_INIT 0u
#define FLOW_TIMEOUT 120.0
/* conn-table.ts REORDER_SLACK: a sweep spares entries idle for less than timeout + this. */
#define REORDER_SLACK 5.0
/* share.ts sweeps between batches of DEFAULT_BATCH_CAPACITY decoded packets: so do we, so that
 * a reordered capture ends the same entries at the same moments. */
#define BATCH 65536
#define BAND_SEEDS 32
#define JHASH_INITVAL 0xdeadbeefu

#define WIN (1 << 20)
/* capture.ts maxCaplen(): libpcap's 262144, or a larger snaplen up to 16 MiB. */
#define PCAP_MAX_CAPLEN 262144u
#define PCAPNG_MAX_BLOCK (16u << 20)

/* TupleBatch flags / l4flags bits (sim/traffic/batch.ts). */
#define F_PORTS 0x01
#define F_FRAGMENT 0x02
#define F_SYN 0x04
#define F_ACK 0x08
#define F_RST 0x10
#define F_FIN 0x20
#define F_TRUNCATED 0x40
#define L4_HAS4 0x01
#define L4_HAS8 0x02
#define L4_CT_INVALID 0x04

#define NO_BUCKET (-1)
#define UNKNOWN_BUCKET (-2)

/* conn-table.ts META bits; meta 0 marks an empty slot (a live entry has seen a direction). */
#define SEEN0 1
#define SEEN1 2
#define SYN0 4
#define SYN1 8

static inline uint32_t rol32(uint32_t w, unsigned s) { return (w << s) | (w >> (32 - s)); }
static inline uint32_t bswap16(uint32_t x) { return ((x & 0xff) << 8) | ((x >> 8) & 0xff); }
static inline uint32_t be32(const uint8_t *p) { return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3]; }
static inline uint32_t le32(const uint8_t *p) { return ((uint32_t)p[3] << 24) | ((uint32_t)p[2] << 16) | ((uint32_t)p[1] << 8) | p[0]; }
static inline unsigned be16(const uint8_t *p) { return ((unsigned)p[0] << 8) | p[1]; }

/* ==== CLUSTERIP, era D (4.1+ jhash), sourceip-sourceport, little-endian CPU ==== */

/* jhash_2words(a, b, hash_init) of 4.1+: `iv` = hash_init + 0xdeadbeef + 8, added to a, b and c. */
static inline uint32_t jhash2w(uint32_t a, uint32_t b, uint32_t iv)
{
  uint32_t c = iv;
  a += iv; b += iv;
  c ^= b; c -= rol32(b, 14);
  a ^= c; a -= rol32(c, 11);
  b ^= a; b -= rol32(a, 25);
  c ^= b; c -= rol32(b, 16);
  a ^= c; a -= rol32(c, 4);
  b ^= a; b -= rol32(a, 14);
  c ^= b; c -= rol32(b, 24);
  return c;
}

/* reciprocal_scale(hash, NODES): the bucket; node = bucket + 1. */
static inline int bucket_of(uint32_t h) { return (int)(((uint64_t)h * NODES) >> 32); }

/* proto_ports_offset(): 1 = "ports" in L4 bytes 0-3 (TCP, UDP, DCCP, ESP, SCTP, UDP-Lite),
 * 2 = bytes 4-7 (AH's SPI), 0 = none: the kernel hashes ports 0/0 (ICMP, GRE, ...). */
static uint8_t PORTS_AT[256];

/* The bucket of one decoded IPv4 packet, as clusterip.ts compileEraD gives it. */
static inline int clusterip_bucket(uint32_t saddr, unsigned proto, uint32_t l4a, uint32_t l4b, unsigned lf, unsigned fl)
{
  if (lf & L4_CT_INVALID) return NO_BUCKET; /* conntrack INVALID: the target drops it on every node */
  uint32_t w = 0;
  unsigned k = PORTS_AT[proto];
  if (k) {
    unsigned need = k == 1 ? L4_HAS4 : L4_HAS8;
    if ((lf & need) == need) w = k == 1 ? l4a : l4b;
    else if (fl & F_TRUNCATED) return UNKNOWN_BUCKET; /* the capture cut bytes the kernel hashed */
    /* else the packet itself is that short: the kernel hashes 0/0 */
  }
  /* a raw 16-bit load of the network-order port on a little-endian CPU: port 80 -> 0x5000 */
  return bucket_of(jhash2w(saddr, bswap16(w >> 16), HASH_INIT + JHASH_INITVAL + 8));
}

/* The 32 band seeds (seed-band.ts bandSeeds()), as jhash_2words initvals. */
static uint32_t BAND_IV[BAND_SEEDS];

static void init_tables(void)
{
  static const unsigned at0[] = { 6, 17, 33, 50, 132, 136 };
  for (unsigned i = 0; i < sizeof at0 / sizeof at0[0]; i++) PORTS_AT[at0[i]] = 1;
  PORTS_AT[51] = 2;
  uint32_t s = 0x2545f491;
  for (int t = 0; t < BAND_SEEDS; t++) {
    s = (s ^ (s >> 15)) * 0x2c1b3c6du + 0x297a2d39u;
    BAND_IV[t] = s + JHASH_INITVAL + 8;
  }
}

/* ==== decoding (sim/traffic/decode.ts, Ethernet link type) ==== */

/* One decoded packet: the TupleBatch lanes of one slot. */
typedef struct {
  uint32_t saddr, daddr, s6[4], d6[4], l4a, l4b;
  unsigned sport, dport, proto, family, flags, l4flags;
} pkt_t;

/* decode.ts l4Need(): the L4 header bytes the kernel's consumers read. */
static inline unsigned l4_need(unsigned pr)
{
  switch (pr) { case 6: return 20; case 132: case 33: case 51: return 12; case 47: return 4; default: return 8; }
}

/* decode.ts writeL4(): L4 lanes from `cap` captured bytes of a header `wire` bytes long. */
static inline void decode_l4(pkt_t *k, unsigned pr, const uint8_t *q, long cap, long wire)
{
  uint32_t a = 0, b = 0;
  unsigned lf = 0, sp = 0, dp = 0, fl = 0;
  if (cap > wire) cap = wire;
  if (cap >= 4) { a = be32(q); lf = L4_HAS4; if (cap >= 8) { b = be32(q + 4); lf = L4_HAS4 | L4_HAS8; } }
  long need = l4_need(pr);
  switch (pr) {
  case 6: case 17: case 136: case 132: case 33:
    if (cap >= 4) { sp = a >> 16; dp = a & 0xffff; fl |= F_PORTS; }
    /* conntrack rejects a header shorter than the protocol's minimum as INVALID */
    if (wire < need) lf |= L4_CT_INVALID;
    if (pr == 6 && cap >= 14) {
      unsigned t = q[13];
      if (t & 0x02) fl |= F_SYN;
      if (t & 0x10) fl |= F_ACK;
      if (t & 0x04) fl |= F_RST;
      if (t & 0x01) fl |= F_FIN;
    }
    break;
  case 1: case 58:
    if (cap >= 8) { unsigned t = a >> 24; if (pr == 1 ? (t == 8 || t == 0) : (t == 128 || t == 129)) { sp = b >> 16; dp = b & 0xffff; } }
    break;
  case 50: if (cap >= 4) { sp = a >> 16; dp = a & 0xffff; } break;
  case 51: if (cap >= 8) { sp = b >> 16; dp = b & 0xffff; } break;
  case 47: /* GRE with the key bit: the key is the "ports" (after the checksum word if present) */
    if (cap >= 4 && (a & 0x20000000u)) {
      long ko = (a & 0x80000000u) ? 8 : 4;
      need = ko + 4;
      if (cap >= ko + 4) { sp = be16(q + ko); dp = be16(q + ko + 2); }
    }
    break;
  }
  if (cap < (wire < need ? wire : need)) fl |= F_TRUNCATED;
  k->l4a = a; k->l4b = b; k->l4flags = lf; k->sport = sp; k->dport = dp; k->flags = fl;
}

/* decode.ts truncL4(): no usable L4 bytes, the capture cut them. */
static inline void trunc_l4(pkt_t *k, unsigned pr, unsigned extra)
{
  k->proto = pr; k->l4a = k->l4b = 0; k->l4flags = 0; k->sport = k->dport = 0; k->flags = F_TRUNCATED | extra;
}

/* A fragment: counted with L4 fields zero (the engine reassembles it, see the header comment). */
static inline void frag_l4(pkt_t *k)
{
  k->l4a = k->l4b = 0; k->l4flags = 0; k->sport = k->dport = 0; k->flags = F_FRAGMENT;
}

/* 0: a packet in *k; 1: skipped (not IP, truncated IP header, malformed), as decode.ts skips it. */
static inline int decode(const uint8_t *f, long caplen, long missing, pkt_t *k)
{
  const uint8_t *end = f + caplen;
  if (missing < 0) missing = 0;
  if (caplen < 14) return 1;
  unsigned et = be16(f + 12);
  const uint8_t *p = f + 14;
  while (et == 0x8100 || et == 0x88a8 || et == 0x9100) { if (end - p < 4) return 1; et = be16(p + 2); p += 4; }
  if (et == 0x0800) {
    if (end - p < 20 || (p[0] >> 4) != 4) return 1;
    long hl = (p[0] & 15) << 2, tot = be16(p + 2);
    if (hl < 20 || (tot && tot < hl)) return 1;
    /* a datagram longer than the frame on the wire: ip_rcv drops it */
    if (tot > (end - p) + missing) return 1;
    unsigned pr = p[9];
    k->family = 4; k->saddr = be32(p + 12); k->daddr = be32(p + 16); k->proto = pr;
    const uint8_t *q = p + hl;
    long wire = (tot ? tot : end - p) - hl, cap = end - q;
    if (cap > wire) cap = wire;
    if (be16(p + 6) & 0x3fff) {
      if (cap < 0) trunc_l4(k, pr, F_FRAGMENT); else frag_l4(k);
      return 0;
    }
    if (cap < 0) { trunc_l4(k, pr, 0); return 0; }
    decode_l4(k, pr, q, cap, wire);
    return 0;
  }
  if (et == 0x86dd) {
    if (end - p < 40 || (p[0] >> 4) != 6) return 1;
    long plen = be16(p + 4);
    if (40 + plen > (end - p) + missing) return 1;
    unsigned nh = p[6];
    k->family = 6; k->saddr = k->daddr = 0;
    for (int w = 0; w < 4; w++) { k->s6[w] = be32(p + 8 + 4 * w); k->d6[w] = be32(p + 24 + 4 * w); }
    /* plen 0: a jumbogram or a GSO capture, take what was captured */
    const uint8_t *wend = plen ? p + 40 + plen : end, *cend = end < wend ? end : wend, *q = p + 40, *fdata = NULL;
    for (int hops = 0; hops < 32; hops++) {
      if (nh == 0 || nh == 43 || nh == 60) {
        if (cend - q < 2) { if (wend - q < 2) return 1; trunc_l4(k, nh, 0); return 0; }
        unsigned len = ((unsigned)q[1] + 1) << 3;
        nh = q[0]; q += len;
        continue;
      }
      if (nh == 44) {
        if (cend - q < 8) { if (wend - q < 8) return 1; trunc_l4(k, nh, 0); return 0; }
        unsigned off = be16(q + 2);
        nh = q[0]; q += 8;
        if ((off & 0xfff9) == 0) continue; /* atomic fragment (RFC 6946): an ordinary packet */
        fdata = q;
        if ((off & 0xfff8) != 0) break; /* not the first fragment: no L4 header follows */
        continue;
      }
      break;
    }
    k->proto = nh;
    if (fdata) { if (wend < fdata) return 1; frag_l4(k); return 0; }
    if (q > wend) return 1;
    if (q > cend) { trunc_l4(k, nh, 0); return 0; }
    decode_l4(k, nh, q, cend - q, wend - q);
    return 0;
  }
  return 1;
}

/* ==== per-thread tables ==== */

/*
 * Connection entries live inline in the open-addressing array (linear
 * probing, at most half full): a lookup reads one cache line, not a slot
 * and then an entry. d = 0 is the direction whose source endpoint sorts
 * first (the key's endpoint A), as in conn-table.ts.
 */
typedef struct {
  uint32_t a, b, p;     /* key: endpoint A, endpoint B, portA << 16 | portB */
  uint8_t proto, meta;  /* meta 0 = empty slot */
  int8_t bk[2];         /* bucket of each direction's first packet */
  uint32_t pk[2];
  double last;          /* newest packet */
  double t[2];          /* first (earliest) packet of each direction */
  uint64_t by[2];
} conn4_t;
_Static_assert(sizeof(conn4_t) == 64, "an IPv4 connection is one cache line");

typedef struct {
  uint32_t a[4], b[4], p;
  uint8_t proto, meta;
  int8_t bk[2];
  uint32_t pk[2];
  double last, t[2];
  uint64_t by[2];
} conn6_t;

typedef struct { conn4_t *e; size_t mask, count; } ctab4_t;
typedef struct { conn6_t *e; size_t mask, count; } ctab6_t;

/* Exact per-(node, source) packets and bytes. key = (node + 1) << 32 | address, 0 = empty. */
typedef struct { uint64_t key, pk, by; } src_t;
typedef struct { src_t *e; size_t mask, count; } srctab_t;

/* The conntrack model's table (see "conntrack validity" below). */
#define CT_KW 10
/* One entry, inline in the table (one cache line). used 0 = empty slot. */
typedef struct {
  uint32_t k[CT_KW];
  uint32_t h;
  uint8_t used, code;
  int32_t pend; /* scan mode: pending id + 1 of a key whose state depends on the range before */
  double last;  /* newest valid packet */
} ctent_t;
_Static_assert(sizeof(ctent_t) == 64, "a conntrack entry is one cache line");

/* A logged packet of a pending key: replayed by main once the state before the range is known. */
typedef struct {
  double ts;
  uint32_t id, wl;
  uint8_t kind, th, d, invalid; /* invalid: the verdict this range counted it with */
  int8_t bucket;                /* its bucket when valid */
} ctlog_t;

/* A pending key: the set of codes it may be in (bit per code; CT_SETTLED once it no longer depends on the past). */
/* A packet's conntrack key, made (and its slot prefetched) when the packet enters the look-ahead queue.
 * kind < 0: not judged (CT_SKIP_INVALID already INVALID, CT_SKIP cut before the TCP flags). */
typedef struct { uint32_t key[CT_KW]; uint32_t h; int8_t kind; uint8_t d; } ctq_t;
#define CT_SKIP_INVALID (-1)
#define CT_SKIP (-2)

typedef struct { uint32_t set; uint32_t k[CT_KW]; uint32_t rs; /* its slot in main's table (ct_compose) */ } ctpend_t;

typedef struct {
  ctent_t *e;
  size_t mask, count;
  double newest, last_sweep;
  /* scan mode (every range after the first): keys first seen up to scan_from are followed */
  int scanning;
  double scan_from;
  ctpend_t *pend; /* per pending id */
  size_t npend, cap_pend;
  ctlog_t *log;
  size_t nlog, cap_log;
} cttab_t;

#define MIN_CONN_SLOTS 4096
#define MIN_SRC_SLOTS 4096

typedef struct {
  /* input */
  const char *path;
  long long start, end;
  int le;
  double scale;
  uint32_t maxcap;
  /* per-packet counters */
  uint64_t packets, pk[NODES], by[NODES], no_node, unknown;
  /* per-connection counters (flow-sink.ts) */
  uint64_t flows[NODES], conns[NODES], flows_total, conns_total;
  uint64_t band[BAND_SEEDS * 4 * NODES];
  ctab4_t c4;
  ctab6_t c6;
  srctab_t src;
  cttab_t ct;
  double newest, last_sweep;
  char err[512];
} lane_t;

static void *xcalloc(size_t n, size_t sz)
{
  void *p = calloc(n, sz);
  if (!p) { fprintf(stderr, "pcap_sim: out of memory (%zu x %zu bytes)\n", n, sz); exit(1); }
  return p;
}

/* Key hashes: a multiply-fold mix, the table uses the low bits. */
static inline uint64_t fold64(uint64_t x)
{
  x ^= x >> 32; x *= 0xd6e8feb86659fd93ull; x ^= x >> 32;
  return x;
}
static inline uint64_t hash4(uint32_t a, uint32_t b, uint32_t p, unsigned proto)
{
  return fold64((((uint64_t)a << 32) | b) * 0x9e3779b97f4a7c15ull + (((uint64_t)p << 8) | proto));
}
static inline uint64_t hash6(const uint32_t *a, const uint32_t *b, uint32_t p, unsigned proto)
{
  uint64_t h = ((uint64_t)p << 8) | proto;
  for (int w = 0; w < 4; w++) h = (h ^ (((uint64_t)a[w] << 32) | b[w])) * 0x9e3779b97f4a7c15ull, h ^= h >> 29;
  return fold64(h);
}
static inline uint64_t hash_src(uint64_t key) { return fold64(key * 0x9e3779b97f4a7c15ull); }

/* -- sources -- */

static void src_grow(srctab_t *t);

static inline void src_add(srctab_t *t, uint64_t key, uint64_t pk, uint64_t by)
{
  if ((t->count + 1) * 2 > t->mask + 1) src_grow(t);
  size_t i = hash_src(key) & t->mask;
  for (;;) {
    src_t *e = &t->e[i];
    if (e->key == key) { e->pk += pk; e->by += by; return; }
    if (e->key == 0) { e->key = key; e->pk = pk; e->by = by; t->count++; return; }
    i = (i + 1) & t->mask;
  }
}

static void src_grow(srctab_t *t)
{
  size_t n = t->e ? (t->mask + 1) * 2 : MIN_SRC_SLOTS;
  srctab_t nt = { xcalloc(n, sizeof(src_t)), n - 1, 0 };
  for (size_t i = 0; t->e && i <= t->mask; i++) if (t->e[i].key) src_add(&nt, t->e[i].key, t->e[i].pk, t->e[i].by);
  free(t->e);
  *t = nt;
}

/* -- the end of a connection (flow-sink.ts consume, one configuration, not direction-dependent) -- */

/* conntrack's original direction: the one whose first packet was a SYN without ACK, else the
 * one seen first, else (a tie) direction 0 (flow-sink.ts originalDirection). */
static inline int original_dir(unsigned m, const double *t)
{
  if (!(m & SEEN1)) return 0;
  if (!(m & SEEN0)) return 1;
  int s0 = (m & SYN0) != 0, s1 = (m & SYN1) != 0;
  if (s0 != s1) return s0 ? 0 : 1;
  return t[1] < t[0] ? 1 : 0;
}

static void end4(lane_t *L, const conn4_t *e)
{
  int orig = original_dir(e->meta, e->t);
  L->conns_total++;
  for (int d = 0; d < 2; d++) {
    if (!(e->meta & (d ? SEEN1 : SEEN0))) continue;
    int reply = d != orig;
    uint64_t pk = e->pk[d], by = e->by[d];
    uint32_t src = d ? e->b : e->a;
    L->flows_total++;
    int b = e->bk[d];
    if (b >= 0) {
      L->flows[b]++;
      if (!reply) L->conns[b]++;
      src_add(&L->src, ((uint64_t)(b + 1) << 32) | src, pk, by);
    }
    /* The band: this direction's tuple as its packets carried it, for the flows the node loads
     * count (b >= 0): no node and unknown do not depend on the seed (flow-sink.ts bandAdd). */
    if (b < 0) continue;
    uint32_t w = 0;
    if (PORTS_AT[e->proto]) w = bswap16(d ? e->p & 0xffff : e->p >> 16);
    uint64_t *band = L->band;
    for (int s = 0; s < BAND_SEEDS; s++, band += 4 * NODES) {
      int x = bucket_of(jhash2w(src, w, BAND_IV[s]));
      band[x] += pk;
      band[NODES + x] += by;
      band[2 * NODES + x] += 1;
      band[3 * NODES + x] += !reply;
    }
  }
}

/* IPv6: CLUSTERIP never gives a node (bk < 0), and the band's selectors give none either: only the totals. */
static void end6(lane_t *L, const conn6_t *e)
{
  L->conns_total++;
  L->flows_total += ((e->meta & SEEN0) != 0) + ((e->meta & SEEN1) != 0);
}

/* -- IPv4 connections -- */

static void c4_resize(ctab4_t *t, size_t n)
{
  conn4_t *ne = aligned_alloc(64, n * sizeof(conn4_t));
  if (!ne) { fprintf(stderr, "pcap_sim: out of memory (%zu connections)\n", n); exit(1); }
  memset(ne, 0, n * sizeof(conn4_t));
  size_t mask = n - 1;
  for (size_t i = 0; t->e && i <= t->mask; i++) {
    const conn4_t *e = &t->e[i];
    if (!e->meta) continue;
    size_t j = hash4(e->a, e->b, e->p, e->proto) & mask;
    while (ne[j].meta) j = (j + 1) & mask;
    ne[j] = *e;
  }
  free(t->e);
  t->e = ne;
  t->mask = mask;
}

/* Empties slot i by backward-shift deletion: every later slot of the run stays reachable from its home. */
static void c4_delete(ctab4_t *t, size_t i)
{
  size_t j = i, mask = t->mask;
  for (;;) {
    j = (j + 1) & mask;
    const conn4_t *e = &t->e[j];
    if (!e->meta) break;
    size_t h = hash4(e->a, e->b, e->p, e->proto) & mask;
    /* the entry at j may move to i unless its home lies cyclically in (i, j] */
    if (i <= j ? (h > i && h <= j) : (h > i || h <= j)) continue;
    t->e[i] = *e;
    i = j;
  }
  t->e[i].meta = 0;
  t->count--;
}

/* -- IPv6 connections (rare in the bench captures: the same code, a wider key) -- */

static void c6_resize(ctab6_t *t, size_t n)
{
  conn6_t *ne = xcalloc(n, sizeof(conn6_t));
  size_t mask = n - 1;
  for (size_t i = 0; t->e && i <= t->mask; i++) {
    const conn6_t *e = &t->e[i];
    if (!e->meta) continue;
    size_t j = hash6(e->a, e->b, e->p, e->proto) & mask;
    while (ne[j].meta) j = (j + 1) & mask;
    ne[j] = *e;
  }
  free(t->e);
  t->e = ne;
  t->mask = mask;
}

static void c6_delete(ctab6_t *t, size_t i)
{
  size_t j = i, mask = t->mask;
  for (;;) {
    j = (j + 1) & mask;
    const conn6_t *e = &t->e[j];
    if (!e->meta) break;
    size_t h = hash6(e->a, e->b, e->p, e->proto) & mask;
    if (i <= j ? (h > i && h <= j) : (h > i || h <= j)) continue;
    t->e[i] = *e;
    i = j;
  }
  t->e[i].meta = 0;
  t->count--;
}

/*
 * conn-table.ts update() on a found or new entry: counts the packet in its
 * direction; the direction's first packet is its earliest (ties: SYN bits
 * OR-ed, the smaller bucket), so the answer does not depend on file order.
 */
#define COUNT_PACKET(e, d, ts, len, syn, bucket)                                        \
  do {                                                                                  \
    unsigned seen_ = (d) ? SEEN1 : SEEN0, synb_ = (d) ? SYN1 : SYN0;                    \
    unsigned syn_ = (syn) ? synb_ : 0;                                                  \
    if (!((e)->meta & seen_)) {                                                         \
      (e)->pk[d] = 1; (e)->by[d] = (len); (e)->t[d] = (ts);                             \
      (e)->meta |= seen_ | syn_; (e)->bk[d] = (int8_t)(bucket);                         \
    } else {                                                                            \
      (e)->pk[d]++; (e)->by[d] += (len);                                                \
      if ((ts) < (e)->t[d]) {                                                           \
        (e)->t[d] = (ts); (e)->meta = ((e)->meta & ~synb_) | syn_; (e)->bk[d] = (int8_t)(bucket); \
      } else if ((ts) == (e)->t[d]) {                                                   \
        (e)->meta |= syn_; if ((bucket) < (e)->bk[d]) (e)->bk[d] = (int8_t)(bucket);    \
      }                                                                                 \
    }                                                                                   \
    if ((ts) > (e)->last) (e)->last = (ts);                                             \
  } while (0)

/*
 * A decoded packet waiting in the look-ahead queue of run_lane, with its
 * IPv4 connection key already put in canonical order and hashed: the slot it
 * will probe was prefetched when it was queued.
 */
typedef struct {
  pkt_t k;
  double ts;
  uint32_t wl;
  uint32_t a, b, p; /* canonical key: d = 0 when the packet's source is endpoint A */
  int d;
  uint64_t h;
  ctq_t ct;
} queued_t;

static inline void key4(queued_t *q)
{
  uint32_t sa = q->k.saddr, da = q->k.daddr, sp = q->k.sport, dp = q->k.dport;
  if (sa < da || (sa == da && sp <= dp)) { q->d = 0; q->a = sa; q->b = da; q->p = (sp << 16) | dp; }
  else { q->d = 1; q->a = da; q->b = sa; q->p = (dp << 16) | sp; }
  q->h = hash4(q->a, q->b, q->p, q->k.proto);
}

static inline void track4(lane_t *L, const queued_t *q, int bucket)
{
  ctab4_t *t = &L->c4;
  if ((t->count + 1) * 2 > t->mask + 1) c4_resize(t, (t->mask + 1) * 2);
  const uint32_t A = q->a, B = q->b, P = q->p, proto = q->k.proto;
  const double ts = q->ts;
  const int d = q->d;
  size_t i = q->h & t->mask;
  conn4_t *e;
  for (;;) {
    e = &t->e[i];
    if (!e->meta) {
      e->a = A; e->b = B; e->p = P; e->proto = (uint8_t)proto;
      e->pk[0] = e->pk[1] = 0; e->by[0] = e->by[1] = 0; e->t[0] = e->t[1] = 0; e->last = ts;
      t->count++;
      break;
    }
    if (e->a == A && e->b == B && e->p == P && e->proto == proto) {
      if (ts - e->last > FLOW_TIMEOUT) {
        /* idle past the timeout: that connection ended; this packet opens a new one under the same key */
        end4(L, e);
        e->meta = 0; e->pk[0] = e->pk[1] = 0; e->by[0] = e->by[1] = 0; e->t[0] = e->t[1] = 0; e->last = ts;
      }
      break;
    }
    i = (i + 1) & t->mask;
  }
  int syn = (q->k.flags & (F_SYN | F_ACK)) == F_SYN;
  COUNT_PACKET(e, d, ts, q->wl, syn, bucket);
  if (ts > L->newest) L->newest = ts;
}

static inline int cmp6(const uint32_t *x, const uint32_t *y)
{
  for (int w = 0; w < 4; w++) if (x[w] != y[w]) return x[w] < y[w] ? -1 : 1;
  return 0;
}

static void track6(lane_t *L, const pkt_t *k, double ts, uint32_t len, int bucket)
{
  ctab6_t *t = &L->c6;
  if ((t->count + 1) * 2 > t->mask + 1) c6_resize(t, (t->mask + 1) * 2);
  int c = cmp6(k->s6, k->d6);
  int d = c < 0 || (c == 0 && k->sport <= k->dport) ? 0 : 1;
  const uint32_t *A = d ? k->d6 : k->s6, *B = d ? k->s6 : k->d6;
  uint32_t P = d ? (k->dport << 16) | k->sport : (k->sport << 16) | k->dport;
  size_t i = hash6(A, B, P, k->proto) & t->mask;
  conn6_t *e;
  for (;;) {
    e = &t->e[i];
    if (!e->meta) {
      memcpy(e->a, A, 16); memcpy(e->b, B, 16); e->p = P; e->proto = (uint8_t)k->proto;
      e->pk[0] = e->pk[1] = 0; e->by[0] = e->by[1] = 0; e->t[0] = e->t[1] = 0; e->last = ts;
      t->count++;
      break;
    }
    if (e->p == P && e->proto == k->proto && !memcmp(e->a, A, 16) && !memcmp(e->b, B, 16)) {
      if (ts - e->last > FLOW_TIMEOUT) {
        end6(L, e);
        e->meta = 0; e->pk[0] = e->pk[1] = 0; e->by[0] = e->by[1] = 0; e->t[0] = e->t[1] = 0; e->last = ts;
      }
      break;
    }
    i = (i + 1) & t->mask;
  }
  int syn = (k->flags & (F_SYN | F_ACK)) == F_SYN;
  COUNT_PACKET(e, d, ts, len, syn, bucket);
  if (ts > L->newest) L->newest = ts;
}

/* ==== conntrack validity (sim/cluster/ct-model.ts, the same model in C) ==== */

/*
 * Which packets conntrack marks INVALID: those get no node (CLUSTERIP drops
 * them on every node) and no connection entry (share.ts skips them). All of
 * it is ct-model.ts's model, which rests on reading
 * net/netfilter/nf_conntrack_proto_{tcp,udp,icmp,icmpv6,generic}.c, not on
 * measurement: tcp_error's flag check, tcp_new (SYN opens; an ACK-class packet
 * opens mid-stream with nf_conntrack_tcp_loose=1, the default), the state
 * table tcp_conntracks[dir][index][state] on an existing entry, UDP and
 * other protocols always valid, ICMP requests open an entry keyed by their
 * identifier and replies need the other side's request, any other ICMP
 * type INVALID. One idle timeout (FLOW_TIMEOUT) for every state.
 *
 * The entries are kept in their own open-addressing table, inline (the
 * connection table's key differs for ICMP, where conntrack keys by the
 * identifier and not the sequence number, and an entry's age counts only
 * valid packets).
 */
#define TCP_LOOSE 1
enum { sNO, sSS, sSR, sES, sFW, sCW, sLA, sTW, sCL, sS2, sIV, sIG };
enum { iSYN, iSYNACK, iFIN, iACK, iRST, iNONE };
enum { K_OTHER, K_TCP, K_REQ, K_REPLY, K_NONE };
enum { V_INVALID, V_ORIGINAL, V_REPLY };
/* ct-model.ts TABLE: [ORIGINAL, REPLY] x [syn, synack, fin, ack, rst, none] x [sNO .. sS2]. */
static const uint8_t TCP_NEXT[2][6][10] = {
  {
    { sSS, sSS, sIG, sIG, sIG, sIG, sIG, sSS, sSS, sS2 },
    { sIV, sIV, sSR, sIV, sIV, sIV, sIV, sIV, sIV, sSR },
    { sIV, sIV, sFW, sFW, sLA, sLA, sLA, sTW, sCL, sIV },
    { sES, sIV, sES, sES, sCW, sCW, sTW, sTW, sCL, sIV },
    { sIV, sCL, sCL, sCL, sCL, sCL, sCL, sCL, sCL, sCL },
    { sIV, sIV, sIV, sIV, sIV, sIV, sIV, sIV, sIV, sIV },
  },
  {
    { sIV, sS2, sIV, sIV, sIV, sIV, sIV, sIV, sIV, sS2 },
    { sIV, sSR, sIG, sIG, sIG, sIG, sIG, sIG, sIG, sSR },
    { sIV, sIV, sFW, sFW, sLA, sLA, sLA, sTW, sCL, sIV },
    { sIV, sIG, sSR, sES, sCW, sCW, sTW, sTW, sCL, sIG },
    { sIV, sCL, sCL, sCL, sCL, sCL, sCL, sCL, sCL, sCL },
    { sIV, sIV, sIV, sIV, sIV, sIV, sIV, sIV, sIV, sIV },
  },
};
/* TCP wire flag bits. */
#define TH_FIN 0x01
#define TH_SYN 0x02
#define TH_RST 0x04
#define TH_ACK 0x10
#define TH_URG 0x20
/* tcp_valid_flags[], filled in init_ct(). */
static uint8_t TCP_VALID[0x40];

static void init_ct(void)
{
  static const uint8_t ok[] = { TH_SYN, TH_SYN | TH_URG, TH_SYN | TH_ACK, TH_RST, TH_RST | TH_ACK, TH_FIN | TH_ACK,
                                TH_FIN | TH_ACK | TH_URG, TH_ACK, TH_ACK | TH_URG };
  for (unsigned i = 0; i < sizeof ok; i++) TCP_VALID[ok[i]] = 1;
}

static inline unsigned wire_flags(unsigned f)
{
  return ((f & F_SYN) ? TH_SYN : 0) | ((f & F_ACK) ? TH_ACK : 0) | ((f & F_RST) ? TH_RST : 0) | ((f & F_FIN) ? TH_FIN : 0);
}

/*
 * One packet through the model (ct-model.ts step): `code` the entry's state
 * before it (0 none; TCP state + 9 * opener's key direction; others 1 +
 * opener's direction), d the packet's key direction. Returns the verdict and
 * puts the state after it in *nc.
 */
static inline int ct_step(int code, int kind, unsigned th, int d, int *nc)
{
  *nc = code;
  switch (kind) {
  case K_OTHER: case K_REQ:
    if (!code) { *nc = 1 + d; return V_ORIGINAL; }
    return code - 1 == d ? V_ORIGINAL : V_REPLY;
  case K_REPLY: return code && code - 1 != d ? V_REPLY : V_INVALID;
  case K_NONE: return V_INVALID;
  }
  if (!TCP_VALID[th & 0x37]) return V_INVALID;
  int idx = th & TH_RST ? iRST : th & TH_SYN ? (th & TH_ACK ? iSYNACK : iSYN) : th & TH_FIN ? iFIN : th & TH_ACK ? iACK : iNONE;
  if (!code) {
    int ns = TCP_NEXT[0][idx][sNO];
    if (ns == sIV || (ns == sES && !TCP_LOOSE)) return V_INVALID;
    *nc = ns + 9 * d;
    return V_ORIGINAL;
  }
  int state = 1 + (code - 1) % 9, orig = code > 9, dir = d != orig, assumed = 0;
  int ns = TCP_NEXT[dir][idx][state];
  if (ns == sIV && !dir && state == sSS && (idx == iACK || idx == iFIN)) {
    /* one-direction capture: the server's SYN|ACK went where the capture did not see it */
    state = TCP_NEXT[1][iSYNACK][sSS];
    ns = TCP_NEXT[0][idx][state];
    assumed = 1;
  }
  if (ns == sIV) return V_INVALID;
  if (ns == sIG) { if (assumed) *nc = state + 9 * orig; }
  else *nc = ns + 9 * orig;
  return dir ? V_REPLY : V_ORIGINAL;
}

/* The model's class of a packet (ct-model.ts packetKind / icmpKind). */
static inline int ct_kind(const pkt_t *k)
{
  unsigned p = k->proto;
  if (p == 6) return K_TCP;
  if (p != 1 && p != 58) return K_OTHER;
  if (!(k->l4flags & L4_HAS4)) return K_NONE;
  unsigned t = k->l4a >> 24;
  if (p == 1) return t == 8 || t == 13 || t == 15 || t == 17 ? K_REQ : t == 0 || t == 14 || t == 16 || t == 18 ? K_REPLY : K_NONE;
  return t == 128 || t == 139 ? K_REQ : t == 129 || t == 140 ? K_REPLY : K_NONE;
}

#define CT_CODES 19
#define CT_ALL_TCP ((1u << CT_CODES) - 1)
#define CT_ALL_OTHER 7u
#define CT_SETTLED 0xffffffffu

/* Over the family's key words only (the rest are zero): word 0 holds the family. */
static inline uint32_t ct_hash(const uint32_t *k)
{
  uint64_t h = 0;
  const int kw = (k[0] >> 8) == 6 ? 10 : 4;
  for (int w = 0; w < kw; w++) h = (h ^ k[w]) * 0x9e3779b97f4a7c15ull, h ^= h >> 29;
  return (uint32_t)fold64(h);
}

static void ct_rebuild(cttab_t *t, size_t n, double cutoff)
{
  ctent_t *ne = aligned_alloc(64, n * sizeof(ctent_t));
  if (!ne) { fprintf(stderr, "pcap_sim: out of memory (%zu conntrack entries)\n", n); exit(1); }
  memset(ne, 0, n * sizeof(ctent_t));
  size_t mask = n - 1, count = 0;
  for (size_t i = 0; t->e && i <= t->mask; i++) {
    const ctent_t *e = &t->e[i];
    if (!e->used || (e->last < cutoff && !e->pend)) continue;
    size_t j = e->h & mask;
    while (ne[j].used) j = (j + 1) & mask;
    ne[j] = *e;
    count++;
  }
  free(t->e);
  t->e = ne; t->mask = mask; t->count = count;
}

/* The slot of key k (found, or the empty one to insert into). */
static inline size_t ct_slot(cttab_t *t, const uint32_t *k, uint32_t h)
{
  if ((t->count + 1) * 2 > t->mask + 1) ct_rebuild(t, (t->mask + 1) * 2, -INFINITY);
  for (size_t i = h & t->mask;; i = (i + 1) & t->mask) {
    const ctent_t *e = &t->e[i];
    if (!e->used) return i;
    if (e->h == h && !memcmp(e->k, k, sizeof e->k)) return i;
  }
}

static inline void ct_insert(cttab_t *t, size_t s, const uint32_t *k, uint32_t h)
{
  ctent_t *e = &t->e[s];
  memcpy(e->k, k, sizeof e->k);
  e->h = h; e->used = 1; e->code = 0; e->pend = 0; e->last = 0;
  t->count++;
}

/* ct-model.ts Judge.sweep, at the same moments (before each batch): drops entries no later packet can reach. */
static void ct_sweep(cttab_t *t)
{
  if (!(t->newest - t->last_sweep >= FLOW_TIMEOUT / 4)) return;
  t->last_sweep = t->newest;
  size_t live = 0;
  double cutoff = t->newest - FLOW_TIMEOUT - REORDER_SLACK;
  for (size_t i = 0; i <= t->mask; i++) live += t->e[i].used && (t->e[i].last >= cutoff || t->e[i].pend);
  size_t n = MIN_CONN_SLOTS;
  while (n < live * 4) n <<= 1;
  ct_rebuild(t, n, cutoff);
}

#define GROW(arr, n, cap)                                                                  \
  do {                                                                                     \
    if ((n) == (cap)) {                                                                    \
      (cap) = (cap) ? (cap) * 2 : 1024;                                                    \
      void *p_ = realloc((arr), (cap) * sizeof *(arr));                                    \
      if (!p_) { fprintf(stderr, "pcap_sim: out of memory (conntrack log)\n"); exit(1); }  \
      (arr) = p_;                                                                          \
    }                                                                                      \
  } while (0)

/*
 * Scan mode (ct-model.ts Judge.follow): a key first seen (in this range)
 * within reach of the range before may continue a connection from there, so
 * its packets are logged for main to replay, until every state it could have
 * started from (and a fresh start) has led to one state through a packet
 * valid in all of them: from there on its verdicts do not depend on the past.
 */
static inline void ct_follow(cttab_t *t, size_t s, int had, double ts, int kind, unsigned th, int d, int invalid, int bucket, uint32_t wl)
{
  ctent_t *e = &t->e[s];
  uint32_t id;
  if (!e->pend) {
    /* only a key with no entry yet in this range (had: a valid packet before this one) */
    if (had || ts > t->scan_from) return;
    GROW(t->pend, t->npend, t->cap_pend);
    id = (uint32_t)t->npend++;
    t->pend[id].set = kind == K_TCP ? CT_ALL_TCP : CT_ALL_OTHER;
    memcpy(t->pend[id].k, e->k, sizeof e->k);
    e->pend = (int32_t)id + 1;
  } else id = (uint32_t)e->pend - 1;
  GROW(t->log, t->nlog, t->cap_log);
  t->log[t->nlog++] = (ctlog_t){ ts, id, wl, (uint8_t)kind, (uint8_t)th, (uint8_t)d, (uint8_t)invalid, (int8_t)bucket };
  uint32_t was = t->pend[id].set | 1, next = 0;
  int all_valid = 1;
  for (int c = 0; c < CT_CODES; c++) {
    if (!(was & (1u << c))) continue;
    int nc;
    if (ct_step(c, kind, th, d, &nc) == V_INVALID) { all_valid = 0; next |= 1u << c; }
    else next |= 1u << nc;
  }
  t->pend[id].set = next;
  if (all_valid && !(next & (next - 1))) { t->pend[id].set = CT_SETTLED; e->pend = 0; }
}

/* One packet of the key in slot s through the model; `counts` 0 for a fragment (judged, the state stays). */
static inline int ct_apply(cttab_t *t, size_t s, double ts, int kind, unsigned th, int d, int counts)
{
  ctent_t *e = &t->e[s];
  int live = e->used && e->code && ts - e->last <= FLOW_TIMEOUT, nc;
  int v = ct_step(live ? e->code : 0, kind, th, d, &nc);
  if (v == V_INVALID || !counts) return v;
  e->code = (uint8_t)nc;
  e->last = ts;
  if (ts > t->newest) t->newest = ts;
  return v;
}

/* The conntrack key of a packet (conn-key.ts connKey; an ICMP query keyed by identifier and request type). */
static inline int ct_key(const pkt_t *k, int kind, uint32_t *key)
{
  memset(key, 0, CT_KW * sizeof *key);
  unsigned sp = k->sport, dp = k->dport;
  int d, kw;
  if (k->family == 6) {
    int c = cmp6(k->s6, k->d6);
    d = c < 0 || (c == 0 && sp <= dp) ? 0 : 1;
    key[0] = (6u << 8) | k->proto;
    memcpy(key + 1, d ? k->d6 : k->s6, 16);
    memcpy(key + 5, d ? k->s6 : k->d6, 16);
    kw = 10;
  } else {
    d = k->saddr < k->daddr || (k->saddr == k->daddr && sp <= dp) ? 0 : 1;
    key[0] = (4u << 8) | k->proto;
    key[1] = d ? k->daddr : k->saddr;
    key[2] = d ? k->saddr : k->daddr;
    kw = 4;
  }
  key[kw - 1] = d ? (dp << 16) | sp : (sp << 16) | dp;
  if (kind == K_REQ || kind == K_REPLY) {
    unsigned ty = k->l4a >> 24;
    unsigned req = kind == K_REQ ? ty : k->proto == 1 ? (ty == 0 ? 8 : ty - 1) : ty - 1;
    key[kw - 1] = ((k->l4b >> 16) << 8) | req;
  }
  return d;
}

/*
 * Judges one decoded packet in capture order (ct-model.ts Judge.one);
 * returns 1 when conntrack marks it INVALID (the decoder's own INVALID
 * included). `bucket` and `wl` are logged for a pending key's packets. In
 * two steps: ct_prepare keys the packet and prefetches its slot when it is
 * queued (as run_lane does for the connection table), ct_judge judges it.
 */
static inline void ct_prepare(const cttab_t *t, const pkt_t *k, ctq_t *q)
{
  if (k->l4flags & L4_CT_INVALID) { q->kind = CT_SKIP_INVALID; return; }
  if (k->flags & F_TRUNCATED) { q->kind = CT_SKIP; return; }
  int kind = ct_kind(k);
  if (kind == K_NONE) { q->kind = CT_SKIP_INVALID; return; }
  q->kind = (int8_t)kind;
  q->d = (uint8_t)ct_key(k, kind, q->key);
  q->h = ct_hash(q->key);
  __builtin_prefetch(&t->e[q->h & t->mask]);
}

/* ct_prepare's packet through the model, in capture order. */
static inline int ct_judge(cttab_t *t, const pkt_t *k, const ctq_t *q, double ts, int bucket, uint32_t wl)
{
  if (q->kind < 0) return q->kind == CT_SKIP_INVALID;
  const int kind = q->kind, d = q->d;
  const uint32_t *key = q->key, h = q->h;
  size_t s = ct_slot(t, key, h);
  if (!t->e[s].used) ct_insert(t, s, key, h);
  unsigned th = wire_flags(k->flags);
  /* C does not reassemble (see the header): a fragment is judged as its datagram would be, the state stays */
  int counts = !(k->flags & F_FRAGMENT);
  int had = t->e[s].code != 0;
  int invalid = ct_apply(t, s, ts, kind, th, d, counts) == V_INVALID;
  /* UDP and the generic tracker: every packet is valid whatever came before (its key only ever sees
   * K_OTHER), so nothing to replay; the seeded entry's age is the same as one pass's. */
  if (t->scanning && counts && kind != K_OTHER) ct_follow(t, s, had, ts, kind, th, d, invalid, bucket, wl);
  return invalid;
}

/* Moves one packet's count from bucket `from` to bucket `to` (NO_BUCKET, UNKNOWN_BUCKET or a node). */
static void retally(uint64_t *pk, uint64_t *by, uint64_t *no_node, uint64_t *unknown, int from, int to, uint32_t wl)
{
  if (from >= 0) { pk[from]--; by[from] -= wl; } else if (from == NO_BUCKET) (*no_node)--; else (*unknown)--;
  if (to >= 0) { pk[to]++; by[to] += wl; } else if (to == NO_BUCKET) (*no_node)++; else (*unknown)++;
}

/*
 * Main, after the threads (ct-model.ts Judge.compose): R holds the state at
 * the end of the ranges before T's. T's logged packets are replayed on it in
 * order (each pending key's packets are in capture order), a packet whose
 * verdict differs from the one T counted moves its count; then T's entries
 * that no longer depend on the past go over R. The per-node packets and bytes
 * are then those of one pass over the file. (Connections are not joined across
 * ranges, see the header: a packet T tracked or skipped stays so.)
 */
static void ct_compose(cttab_t *R, cttab_t *T, uint64_t *pk, uint64_t *by, uint64_t *no_node, uint64_t *unknown)
{
  /* Room for every key of T up front: no rebuild while the pending keys' slots are held. */
  size_t n = R->mask + 1;
  while (n < 2 * (R->count + T->npend + T->count + 1)) n <<= 1;
  if (n != R->mask + 1) ct_rebuild(R, n, -INFINITY);
  for (size_t id = 0; id < T->npend; id++) {
    ctpend_t *p = &T->pend[id];
    uint32_t h = ct_hash(p->k);
    size_t s = ct_slot(R, p->k, h);
    if (!R->e[s].used) ct_insert(R, s, p->k, h);
    p->rs = (uint32_t)s;
  }
  for (size_t r = 0; r < T->nlog; r++) {
    const ctlog_t *g = &T->log[r];
    size_t s = T->pend[g->id].rs;
    int invalid = ct_apply(R, s, g->ts, g->kind, g->th, g->d, 1) == V_INVALID;
    if (invalid != g->invalid)
      retally(pk, by, no_node, unknown, g->invalid ? NO_BUCKET : g->bucket, invalid ? NO_BUCKET : g->bucket, g->wl);
  }
  for (size_t i = 0; i <= T->mask; i++) {
    const ctent_t *e = &T->e[i];
    if (!e->used || e->pend || !e->code) continue;
    size_t s = ct_slot(R, e->k, e->h);
    if (!R->e[s].used) ct_insert(R, s, e->k, e->h);
    R->e[s].code = e->code; R->e[s].last = e->last;
  }
  if (T->newest > R->newest) R->newest = T->newest;
  R->last_sweep = -INFINITY;
  ct_sweep(R);
}

static void ct_free(cttab_t *t)
{
  free(t->e); free(t->pend); free(t->log);
  memset(t, 0, sizeof *t);
}

/*
 * Between batches, every quarter timeout of capture time: ends the entries no
 * later packet can reach (idle since before newest - timeout - slack). The
 * scan deletes in place by backward shift and looks at the same slot again,
 * so no live entry is skipped (an entry that wraps around to the end is only
 * looked at twice). Then the table halves while under an eighth full, so the
 * next sweeps read as many slots as there are connections, not as many as
 * there once were.
 */
static void sweep(lane_t *L)
{
  if (!(L->newest - L->last_sweep >= FLOW_TIMEOUT / 4)) return; /* -inf - -inf is NaN: no sweep before any packet */
  L->last_sweep = L->newest;
  double cutoff = L->newest - FLOW_TIMEOUT - REORDER_SLACK;
  ctab4_t *t4 = &L->c4;
  for (size_t i = 0; i <= t4->mask;) {
    conn4_t *e = &t4->e[i];
    if (e->meta && e->last < cutoff) { end4(L, e); c4_delete(t4, i); }
    else i++;
  }
  size_t n = t4->mask + 1;
  while (n > MIN_CONN_SLOTS && t4->count * 8 < n) n >>= 1;
  if (n != t4->mask + 1) c4_resize(t4, n);
  ctab6_t *t6 = &L->c6;
  for (size_t i = 0; i <= t6->mask;) {
    conn6_t *e = &t6->e[i];
    if (e->meta && e->last < cutoff) { end6(L, e); c6_delete(t6, i); }
    else i++;
  }
  n = t6->mask + 1;
  while (n > 16 && t6->count * 8 < n) n >>= 1;
  if (n != t6->mask + 1) c6_resize(t6, n);
}

/* ==== one thread: its byte range of the file ==== */

#define AHEAD 8 /* packets between a slot's prefetch and its use (a power of 2) */

/* One decoded packet: its node, its connection, the per-node counters (share.ts, per batch there). */
static inline void count_packet(lane_t *L, const queued_t *q)
{
  /* share.ts: the sweep runs before each batch of BATCH decoded packets is tracked */
  if ((L->packets & (BATCH - 1)) == 0) { sweep(L); ct_sweep(&L->ct); }
  /* a range after the first: keys first seen within reach of its first packet may continue one from before */
  if (L->packets == 0) L->ct.scan_from = q->ts + FLOW_TIMEOUT + REORDER_SLACK;
  L->packets++;
  /* CLUSTERIP is IPv4-only */
  int b = q->k.family == 4 ? clusterip_bucket(q->k.saddr, q->k.proto, q->k.l4a, q->k.l4b, q->k.l4flags, q->k.flags) : NO_BUCKET;
  /* conntrack INVALID: the target drops it on every node, and it belongs to no connection (share.ts) */
  if (ct_judge(&L->ct, &q->k, &q->ct, q->ts, b, q->wl)) b = NO_BUCKET;
  else if (q->k.family == 4) track4(L, q, b);
  else track6(L, &q->k, q->ts, q->wl, b);
  if (b >= 0) { L->pk[b]++; L->by[b] += q->wl; }
  else if (b == NO_BUCKET) L->no_node++;
  else L->unknown++;
}

static void *run_lane(void *arg)
{
  lane_t *L = arg;
  L->newest = L->last_sweep = -INFINITY;
  L->ct.newest = L->ct.last_sweep = -INFINITY;
  ct_rebuild(&L->ct, MIN_CONN_SLOTS, -INFINITY);
  c4_resize(&L->c4, MIN_CONN_SLOTS);
  c6_resize(&L->c6, 16);
  src_grow(&L->src);
  int fd = open(L->path, O_RDONLY);
  if (fd < 0) { snprintf(L->err, sizeof L->err, "%s: %s", L->path, strerror(errno)); return NULL; }
  size_t bufsize = WIN + 16 + (size_t)L->maxcap;
  uint8_t *buf = malloc(bufsize);
  if (!buf) { snprintf(L->err, sizeof L->err, "out of memory"); close(fd); return NULL; }
  const int le = L->le;
  const double scale = L->scale;
  const long long end = L->end;
  long long fpos = L->start; /* file offset of buf[lim] */
  size_t pos = 0, lim = 0;
  int eof = 0;
  /*
   * Look-ahead: a packet is decoded, keyed and its connection slot
   * prefetched AHEAD packets before it is counted, so the table's cache miss
   * (the largest cost after the copy out of the page cache, perf) overlaps
   * the decoding of the packets in between. Packets are still counted one by
   * one in file order.
   */
  queued_t ring[AHEAD];
  unsigned qhead = 0, queued = 0;
  for (;;) {
    size_t have = lim - pos;
    /* a whole record header, and the whole record, in the window */
    uint32_t caplen = have >= 16 ? (le ? le32(buf + pos + 8) : be32(buf + pos + 8)) : 0;
    if (have < 16 || (caplen <= L->maxcap && have < 16 + (size_t)caplen)) {
      long long roff = fpos - (long long)have;
      if (roff >= end) break;
      if (eof) {
        if (have) snprintf(L->err, sizeof L->err, "%s: byte offset %lld: file ends inside a record (%zu bytes left)", L->path, roff, have);
        break;
      }
      memmove(buf, buf + pos, have);
      lim = have; pos = 0;
      /* Past the range's end only the rest of the last record is read (the next thread reads on). */
      size_t want = bufsize - lim;
      if (fpos >= end) want = (have < 16 ? 16 : 16 + (size_t)caplen) - have;
      ssize_t r = pread(fd, buf + lim, want, fpos);
      if (r < 0) { snprintf(L->err, sizeof L->err, "%s: byte offset %lld: %s", L->path, fpos, strerror(errno)); break; }
      if (r == 0) eof = 1;
      lim += (size_t)r; fpos += r;
      continue;
    }
    long long roff = fpos - (long long)have;
    if (roff >= end) break;
    const uint8_t *h = buf + pos;
    if (caplen > L->maxcap) {
      snprintf(L->err, sizeof L->err, "%s: byte offset %lld: record caplen %u is larger than any capture allows (%u)", L->path, roff, caplen, L->maxcap);
      break;
    }
    pos += 16 + caplen;
    if (queued == AHEAD) { count_packet(L, &ring[qhead]); qhead = (qhead + 1) & (AHEAD - 1); queued--; }
    queued_t *q = &ring[(qhead + queued) & (AHEAD - 1)];
    uint32_t wl = le ? le32(h + 12) : be32(h + 12);
    if (decode(h + 16, caplen, (long)wl - (long)caplen, &q->k)) continue;
    uint32_t sec = le ? le32(h) : be32(h), frac = le ? le32(h + 4) : be32(h + 4);
    q->ts = sec + frac * scale;
    q->wl = wl;
    if (q->k.family == 4) {
      key4(q);
      __builtin_prefetch(&L->c4.e[q->h & L->c4.mask]);
    }
    ct_prepare(&L->ct, &q->k, &q->ct);
    queued++;
  }
  for (; queued; queued--, qhead = (qhead + 1) & (AHEAD - 1)) count_packet(L, &ring[qhead]);
  free(buf);
  close(fd);
  /* End of input: every entry ends (conn-table.ts finish). */
  for (size_t i = 0; i <= L->c4.mask; i++) if (L->c4.e[i].meta) end4(L, &L->c4.e[i]);
  for (size_t i = 0; i <= L->c6.mask; i++) if (L->c6.e[i].meta) end6(L, &L->c6.e[i]);
  free(L->c4.e); L->c4.e = NULL; L->c4.count = 0;
  free(L->c6.e); L->c6.e = NULL; L->c6.count = 0;
  return NULL;
}

/* ==== main: file header, threads, sums ==== */

static void usage(void)
{
  fprintf(stderr, "usage: pcap_sim FILE REPEATS START0 END0 [START1 END1 ...]\n");
  exit(2);
}

static long long parse_ll(const char *s)
{
  char *e;
  errno = 0;
  long long v = strtoll(s, &e, 10);
  if (errno || *e || e == s || v < 0) { fprintf(stderr, "pcap_sim: '%s' is not a byte offset\n", s); exit(2); }
  return v;
}

static void print_array(const char *name, const uint64_t *a, int n)
{
  printf("\"%s\":[", name);
  for (int i = 0; i < n; i++) printf(i ? ",%llu" : "%llu", (unsigned long long)a[i]);
  printf("]");
}

int main(int argc, char **argv)
{
  if (argc < 5 || (argc - 3) % 2) usage();
  const char *path = argv[1];
  int reps = atoi(argv[2]);
  if (reps < 1) usage();
  int nt = (argc - 3) / 2;
  init_tables();
  init_ct();

  /* The file header: byte order, timestamp scale, link type, snaplen. */
  int fd = open(path, O_RDONLY);
  if (fd < 0) { perror(path); return 1; }
  uint8_t fh[24];
  if (pread(fd, fh, 24, 0) != 24) { fprintf(stderr, "pcap_sim: %s: byte offset 0: no pcap file header\n", path); return 1; }
  close(fd);
  uint32_t m = le32(fh);
  int le;
  double scale;
  if (m == 0xa1b2c3d4) { le = 1; scale = 1e-6; }
  else if (m == 0xd4c3b2a1) { le = 0; scale = 1e-6; }
  else if (m == 0xa1b23c4d) { le = 1; scale = 1e-9; }
  else if (m == 0x4d3cb2a1) { le = 0; scale = 1e-9; }
  else { fprintf(stderr, "pcap_sim: %s: byte offset 0: not a classic pcap (magic 0x%08x)\n", path, m); return 1; }
  uint32_t snaplen = le ? le32(fh + 16) : be32(fh + 16), linktype = le ? le32(fh + 20) : be32(fh + 20);
  if ((linktype & 0x0fffffff) != 1) { fprintf(stderr, "pcap_sim: %s: byte offset 20: link type %u, only Ethernet (1) is decoded\n", path, linktype); return 1; }
  uint32_t maxcap = snaplen > PCAP_MAX_CAPLEN ? snaplen : PCAP_MAX_CAPLEN;
  if (maxcap > PCAPNG_MAX_BLOCK) maxcap = PCAPNG_MAX_BLOCK;

  lane_t *lanes = aligned_alloc(64, ((nt * sizeof(lane_t) + 63) / 64) * 64);
#ifndef __wasi__
  pthread_t *th = xcalloc((size_t)nt, sizeof(pthread_t));
#endif
  if (!lanes) { fprintf(stderr, "pcap_sim: out of memory\n"); return 1; }
  for (int r = 0; r < reps; r++) {
    memset(lanes, 0, nt * sizeof(lane_t));
    for (int t = 0; t < nt; t++) {
      lane_t *L = &lanes[t];
      L->path = path;
      L->start = parse_ll(argv[3 + 2 * t]);
      L->end = parse_ll(argv[4 + 2 * t]);
      if (L->start < 24) L->start = 24;
      L->le = le; L->scale = scale; L->maxcap = maxcap;
      L->ct.scanning = t > 0;
    }
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
#ifdef __wasi__
    /* WebAssembly under WASI has no threads: the ranges run one after another on this one. */
    for (int t = 0; t < nt; t++) run_lane(&lanes[t]);
#else
    for (int t = 0; t < nt; t++) {
      int e = pthread_create(&th[t], NULL, run_lane, &lanes[t]);
      if (e) { fprintf(stderr, "pcap_sim: pthread_create: %s\n", strerror(e)); return 1; }
    }
    for (int t = 0; t < nt; t++) pthread_join(th[t], NULL);
#endif
    for (int t = 0; t < nt; t++) if (lanes[t].err[0]) { fprintf(stderr, "pcap_sim: %s\n", lanes[t].err); return 1; }
    /* The sums: counters add; the sources of every thread go into the first one's table. */
    lane_t *S = &lanes[0];
    for (int t = 1; t < nt; t++) {
      lane_t *L = &lanes[t];
      S->packets += L->packets; S->no_node += L->no_node; S->unknown += L->unknown;
      S->flows_total += L->flows_total; S->conns_total += L->conns_total;
      for (int b = 0; b < NODES; b++) { S->pk[b] += L->pk[b]; S->by[b] += L->by[b]; S->flows[b] += L->flows[b]; S->conns[b] += L->conns[b]; }
      for (int i = 0; i < BAND_SEEDS * 4 * NODES; i++) S->band[i] += L->band[i];
      for (size_t i = 0; i <= L->src.mask; i++) if (L->src.e[i].key) src_add(&S->src, L->src.e[i].key, L->src.e[i].pk, L->src.e[i].by);
      free(L->src.e);
    }
    /* Conntrack verdicts as one pass over the file: each range's start state from the ranges before. */
    for (int t = 1; t < nt; t++) { ct_compose(&S->ct, &lanes[t].ct, S->pk, S->by, &S->no_node, &S->unknown); ct_free(&lanes[t].ct); }
    ct_free(&S->ct);
    uint64_t sources[NODES] = { 0 };
    for (size_t i = 0; i <= S->src.mask; i++) if (S->src.e[i].key) sources[(S->src.e[i].key >> 32) - 1]++;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    free(S->src.e);
    printf("%llu %.9f\n", (unsigned long long)S->packets, (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9);
    printf("{");
    print_array("packets", S->pk, NODES); printf(",");
    print_array("bytes", S->by, NODES); printf(",");
    print_array("flows", S->flows, NODES); printf(",");
    print_array("connections", S->conns, NODES); printf(",");
    print_array("sources", sources, NODES); printf(",");
    print_array("band", S->band, BAND_SEEDS * 4 * NODES);
    printf(",\"noNode\":%llu,\"unknown\":%llu,\"flowsTotal\":%llu,\"connectionsTotal\":%llu,\"sourcesTotal\":%llu}\n",
           (unsigned long long)S->no_node, (unsigned long long)S->unknown, (unsigned long long)S->flows_total,
           (unsigned long long)S->conns_total, (unsigned long long)S->src.count);
    fflush(stdout);
  }
#ifndef __wasi__
  free(th);
#endif
  free(lanes);
  return 0;
}
