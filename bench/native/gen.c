/*
 * Native reference for the gen bench: the capture-like synthetic scenarios of
 * sim/traffic/synthetic.ts (default, uniform, cidr, zipf, nat, portscan,
 * synflood), the same work in C: per-flow seeds (seedMix), mulberry32 draws in
 * the same order, active flows by next packet time (ties by flow number) in
 * the same two tiers (a small binary heap for the current 64 us bucket, a
 * timing wheel of 2^15 buckets with a bit per bucket), packets written into struct-of-arrays lanes of a
 * 65536-packet batch, exactly the lanes a TupleBatch has.
 *
 * Usage: gen SCENARIO PACKETS SEED REPEATS
 *   -> one line per repeat: packets, CPU seconds, checksum (a hash over every
 *      packet's lanes that the test computes over our batches too)
 * Build: cc -O2 -o gen gen.c -lm
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define CAP 65536
#define INC 0x6d2b79f5u
#define CLUSTER_IP 0xc000020au
#define EPOCH 1700000000.0

/* Global lanes and a non-inlined consumer, so the compiler keeps every store (see pcap_ingest.c). */
double ts[CAP];
uint32_t wirelen[CAP], saddr[CAP], daddr[CAP], saddr6[CAP * 4], daddr6[CAP * 4], l4a[CAP], l4b[CAP];
uint16_t sport[CAP], dport[CAP];
uint8_t proto[CAP], family[CAP], flags[CAP], l4flags[CAP];
uint32_t check = 0;
int checking = 0;

/* The checksum the test recomputes from our batches: wire fields and the microsecond time. */
__attribute__((noinline)) void hand_off(int n) {
  if (!checking) { check += wirelen[n - 1] + (uint32_t)ts[n - 1]; return; }
  for (int i = 0; i < n; i++) {
    uint64_t us = (uint64_t)llround((ts[i] - EPOCH) * 1e6);
    uint32_t v[11] = { (uint32_t)us, (uint32_t)(us >> 32), wirelen[i], saddr[i], daddr[i], l4a[i], l4b[i], sport[i], dport[i], proto[i], flags[i] };
    for (int k = 0; k < 11; k++) check = (check ^ v[k]) * 0x01000193u;
  }
}

enum { SC_DEFAULT, SC_UNIFORM, SC_CIDR, SC_ZIPF, SC_NAT, SC_PORTSCAN, SC_SYNFLOOD };
enum { K_TCP, K_DNS, K_UDPSTREAM, K_PING, K_SYN };
enum { F_PORTS = 1, F_SYN = 4, F_ACK = 8, F_FIN = 0x20 };

static inline uint32_t mval(uint32_t s) {
  uint32_t t = (s ^ (s >> 15)) * (1u | s);
  t = (t + ((t ^ (t >> 7)) * (61u | t))) ^ t;
  return t ^ (t >> 14);
}
static inline uint32_t seed_mix(uint32_t a, uint32_t b) {
  uint32_t h = ((a ^ 0x9e3779b9u) * 0x85ebca6bu) ^ b;
  h = (h ^ (h >> 13)) * 0xc2b2ae35u;
  return h ^ (h >> 16);
}
#define UNIT (1.0 / 4294967296.0)

static const uint32_t POOL_BASE[5] = { 0x0a000000, 0xac100000, 0xc0a80000, 0x64400000, 0xc6120000 };
static const uint32_t POOL_MASK[5] = { 0x00ffffff, 0x000fffff, 0x0000ffff, 0x003fffff, 0x0001ffff };
static const uint32_t NAT[4] = { 0xcb007101, 0xcb007102, 0xcb007103, 0xcb007104 };
#define ZIPF_N 50000
static double zipf_cdf[ZIPF_N];

static int heavy(double u, int min, int max) {
  double x = min / pow(1 - u * 0.999999, 1 / 1.2);
  double y = floor(x);
  if (y < min) y = min;
  if (y > max) y = max;
  return (int)y;
}
static uint32_t zipf_client(uint32_t a) {
  double u = a * UNIT;
  int lo = 0, hi = ZIPF_N - 1;
  while (lo < hi) { int m = (lo + hi) >> 1; if (zipf_cdf[m] < u) lo = m + 1; else hi = m; }
  return 0x64400000u | (((uint32_t)(lo + 1) * 0x9e3779b1u) >> 10);
}
static unsigned csum16(uint32_t s) { while (s > 0xffff) s = (s & 0xffff) + (s >> 16); return ~s & 0xffff; }
static unsigned udp_csum(uint32_t sa, uint32_t da, unsigned sp, unsigned dp, unsigned len) {
  uint32_t s = (sa >> 16) + (sa & 0xffff) + (da >> 16) + (da & 0xffff) + 17 + len + sp + dp + len;
  unsigned c = csum16(s);
  return c == 0 ? 0xffff : c;
}

/* Active flows: one struct per slot (C's natural layout), a heap of slots. */
typedef struct {
  double next; double id; int idx, size; uint32_t rng, client, cseq, sseq; uint16_t cport, sport; uint8_t kind;
} flow_t;
static flow_t *fl; static int *freelist, nfree, cap;
static double *hkey; static int *hslot, heapn;
#define WHEEL (1 << 15)
static int whead[WHEEL]; static uint32_t wbits[WHEEL / 32]; static int *wlink, wn;
static double cur_idx, cur_end; static int cur_pos;

static void grow(int n) {
  fl = realloc(fl, n * sizeof *fl); freelist = realloc(freelist, n * sizeof *freelist);
  hkey = realloc(hkey, n * sizeof *hkey); hslot = realloc(hslot, n * sizeof *hslot); wlink = realloc(wlink, n * sizeof *wlink);
  for (int s = n - 1; s >= cap; s--) freelist[nfree++] = s;
  cap = n;
}
static inline int before(double k1, double id1, double k2, double id2) { return k1 < k2 || (k1 == k2 && id1 < id2); }
static void hpush(int s, double key) {
  double id = fl[s].id; int i = heapn++;
  while (i > 0) { int p = (i - 1) >> 1; if (!before(key, id, hkey[p], fl[hslot[p]].id)) break; hkey[i] = hkey[p]; hslot[i] = hslot[p]; i = p; }
  hkey[i] = key; hslot[i] = s;
}
static void hsift(int s, double key) {
  double id = fl[s].id; int i = 0, n = heapn;
  for (;;) {
    int c = 2 * i + 1; if (c >= n) break;
    double ck = hkey[c];
    if (c + 1 < n && before(hkey[c + 1], fl[hslot[c + 1]].id, ck, fl[hslot[c]].id)) { c++; ck = hkey[c]; }
    if (before(key, id, ck, fl[hslot[c]].id)) break;
    hkey[i] = ck; hslot[i] = hslot[c]; i = c;
  }
  hkey[i] = key; hslot[i] = s;
}

static void hpop(void) { int m = --heapn; if (m > 0) hsift(hslot[m], hkey[m]); }

static void schedule(int s, double key) {
  if (key < cur_end) { hpush(s, key); return; }
  if (heapn == 0 && wn == 0) { cur_idx = floor(key / 64); cur_end = (cur_idx + 1) * 64; hpush(s, key); return; }
  double d = floor(key / 64) - cur_idx;
  if (d >= WHEEL) { fprintf(stderr, "gen: past the wheel\n"); exit(1); }
  int pos = (cur_pos + (int)d) & (WHEEL - 1);
  wlink[s] = whead[pos]; whead[pos] = s; wbits[pos >> 5] |= 1u << (pos & 31); wn++;
}

static int advance(void) {
  if (wn == 0) return 0;
  int p = (cur_pos + 1) & (WHEEL - 1), d = 1;
  for (;;) {
    uint32_t word = wbits[p >> 5] >> (p & 31);
    if (word) { d += __builtin_ctz(word); break; }
    int step = 32 - (p & 31); d += step; p = (p + step) & (WHEEL - 1);
  }
  int pos = (cur_pos + d) & (WHEEL - 1);
  cur_idx += d; cur_pos = pos; cur_end = (cur_idx + 1) * 64;
  int s = whead[pos]; whead[pos] = -1; wbits[pos >> 5] &= ~(1u << (pos & 31));
  while (s >= 0) { int nx = wlink[s]; hpush(s, fl[s].next); wn--; s = nx; }
  return 1;
}

static int sc; static uint32_t seed; static double total, assigned; static double next_flow; static int exhausted;
static int gap_us;
/* the pending flow */
static int p_f = -1; static double p_start; static int p_size, p_kind; static uint32_t p_client, p_r; static unsigned p_cport, p_sport;

static int draw(double f) {
  uint32_t r = seed_mix(seed, (uint32_t)(int64_t)f);
  r += INC; double u1 = mval(r) * UNIT;
  r += INC; double u2 = mval(r) * UNIT;
  int kind = K_TCP, size;
  switch (sc) {
    case SC_PORTSCAN: case SC_SYNFLOOD: kind = K_SYN; size = 1; break;
    case SC_DEFAULT:
      if (u1 < 0.72) { kind = K_TCP; size = heavy(u2, 6, 20000); }
      else if (u1 < 0.88) { kind = K_DNS; size = 2; }
      else if (u1 < 0.95) { kind = K_UDPSTREAM; size = heavy(u2, 4, 5000); }
      else { kind = K_PING; size = 2 * (1 + (int)floor(u2 * 5)); }
      break;
    default: size = heavy(u2, 6, 400);
  }
  r += INC;
  p_start = f * gap_us + (mval(r) % (uint32_t)gap_us);
  p_kind = kind;
  r += INC; uint32_t a = mval(r);
  r += INC; uint32_t b = mval(r);
  switch (sc) {
    case SC_UNIFORM: case SC_SYNFLOOD: p_client = (((a % 223) + 1) << 24) | (b & 0xffffff); break;
    case SC_NAT: p_client = NAT[a & 3]; break;
    case SC_PORTSCAN: p_client = 0xc6336407; break;
    case SC_ZIPF: p_client = zipf_client(a); break;
    case SC_DEFAULT: p_client = (a & 7) < 3 ? zipf_client(a >> 3) : POOL_BASE[(a >> 3) % 5] | (b & POOL_MASK[(a >> 3) % 5]); break;
    default: p_client = POOL_BASE[a % 5] | (b & POOL_MASK[a % 5]);
  }
  r += INC; uint32_t c = mval(r);
  int64_t fi = (int64_t)f;
  p_cport = sc == SC_PORTSCAN ? 40000 + (unsigned)(fi % 7) : 1024 + (c % 64512);
  p_sport = sc == SC_PORTSCAN ? (unsigned)(fi % 65535) + 1 : sc == SC_SYNFLOOD ? 80
    : kind == K_DNS ? 53 : kind == K_UDPSTREAM ? 443 : kind == K_PING ? (unsigned)(fi & 0xffff) : ((c >> 16) & 1) ? 443 : 80;
  p_r = r;
  return size;
}

static void queue_next(void) {
  p_f = -1;
  while (!exhausted) {
    if (assigned >= total) { exhausted = 1; return; }
    double f = next_flow++;
    int size = draw(f);
    if (size > total - assigned) size = (int)(total - assigned);
    assigned += size;
    p_f = (int)f; p_size = size;
    return;
  }
}

static int start_flow(void) {
  if (nfree == 0) grow(cap * 2);
  int s = freelist[--nfree];
  flow_t *x = &fl[s];
  uint32_t r = p_r;
  x->id = p_f; x->next = p_start; x->idx = 0; x->size = p_size; x->kind = p_kind;
  x->client = p_client; x->cport = p_cport; x->sport = p_sport;
  r += INC; x->cseq = mval(r);
  r += INC; x->sseq = mval(r);
  x->rng = r;
  queue_next();
  return s;
}

static void emit(flow_t *x, int i) {
  int k = x->idx, size = x->size, kind = x->kind;
  uint32_t r = x->rng;
  r += INC; double u = mval(r) * UNIT;
  r += INC; double u2 = mval(r) * UNIT;
  double us = x->next;
  int up = 1; unsigned pr = 6, fg = 0, len = 54; uint32_t a = 0, b = 0; unsigned sp = 0, dp = 0;
  double gap = 0;
  switch (kind) {
    case K_SYN: fg = F_SYN; len = 54; break;
    case K_TCP: {
      int teardown = size >= 6 ? size - 3 : 99, payload = 0;
      if (k == 0) fg = F_SYN; else if (k == 1) { fg = F_SYN | F_ACK; up = 0; } else if (k == 2) fg = F_ACK;
      if (k >= 3 && k < teardown) {
        fg = F_ACK; up = u < 0.35;
        payload = u2 < 0.45 ? 1460 : u2 < 0.75 ? (int)floor(u2 * 200) : (int)floor(200 + u2 * 1260);
        if (payload == 0) payload = 1;
      } else if (k >= 3) {
        int t = size >= 6 ? k - teardown : k - 3;
        fg = t == 2 ? F_ACK : F_FIN | F_ACK; up = t != 1;
      }
      len = 54 + payload;
      b = up ? x->cseq : x->sseq;
      uint32_t adv = payload + ((fg & (F_SYN | F_FIN)) ? 1 : 0);
      if (up) x->cseq += adv; else x->sseq += adv;
      gap = k < 3 ? 200 + u * 30000 : 50 + u2 * 20000;
      break;
    }
    case K_DNS: pr = 17; up = k == 0; len = up ? 72 + (int)floor(u * 40) : 102 + (int)floor(u * 400); gap = 500 + u * 40000; break;
    case K_UDPSTREAM: pr = 17; up = k == 0 || u < 0.2; len = up ? 82 + (int)floor(u2 * 100) : 1242 + (int)floor(u2 * 150); gap = 100 + u * 5000; break;
    case K_PING: pr = 1; up = (k & 1) == 0; len = 98; gap = up ? 300 + u * 20000 : 1000000; break;
  }
  uint32_t sa = up ? x->client : CLUSTER_IP, da = up ? CLUSTER_IP : x->client;
  if (pr == 1) {
    unsigned type = up ? 8 : 0, id = x->sport, seq = k >> 1;
    a = (type << 24) | csum16((type << 8) + id + seq); b = (id << 16) | seq; sp = id; dp = seq;
  } else {
    sp = up ? x->cport : x->sport; dp = up ? x->sport : x->cport;
    a = (sp << 16) | dp;
    if (pr == 17) { unsigned ul = len - 34; b = (ul << 16) | udp_csum(sa, da, sp, dp, ul); }
    fg |= F_PORTS;
  }
  double sec = floor(us / 1e6);
  ts[i] = sec + EPOCH + (us - sec * 1e6) * 1e-6;
  wirelen[i] = len; saddr[i] = sa; daddr[i] = da;
  if (family[i] != 4) {
    memset(&saddr6[4 * i], 0, 16); memset(&daddr6[4 * i], 0, 16); family[i] = 4;
  }
  l4a[i] = a; l4b[i] = b; sport[i] = sp; dport[i] = dp; proto[i] = pr; flags[i] = fg; l4flags[i] = 3;
  x->rng = r; x->idx = k + 1;
  double g = floor(gap); x->next = us + (g < 1 ? 1 : g);
}

static int fill(void) {
  int n = 0;
  while (n < CAP) {
    int any = heapn > 0 || advance();
    if (p_f >= 0 && (!any || p_start <= hkey[0])) {
      double first = p_start;
      int s = start_flow();
      /* due before every queued flow and the next flow's start: emit now (see synthetic.ts) */
      if ((any && first >= hkey[0]) || (p_f >= 0 && first > p_start)) { schedule(s, first); continue; }
      emit(&fl[s], n++);
      if (fl[s].idx >= fl[s].size) freelist[nfree++] = s; else schedule(s, fl[s].next);
      continue;
    }
    if (!any) break;
    int s = hslot[0];
    emit(&fl[s], n++);
    double key = fl[s].next;
    if (fl[s].idx >= fl[s].size) { hpop(); freelist[nfree++] = s; }
    else if (key < cur_end) hsift(s, key);
    else { hpop(); schedule(s, key); }
  }
  return n;
}

static double cpu(void) { struct timespec t; clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t); return t.tv_sec + t.tv_nsec * 1e-9; }

int main(int argc, char **argv) {
  if (argc != 5) { fprintf(stderr, "usage: gen SCENARIO PACKETS SEED REPEATS\n"); return 2; }
  const char *names[] = { "default", "uniform", "cidr", "zipf", "nat", "portscan", "synflood" };
  sc = -1;
  for (int k = 0; k < 7; k++) if (!strcmp(argv[1], names[k])) sc = k;
  if (sc < 0) { fprintf(stderr, "gen: unknown scenario %s\n", argv[1]); return 2; }
  double packets = atof(argv[2]);
  int repeats = atoi(argv[4]);
  checking = getenv("GEN_CHECK") != NULL;
  double sum = 0;
  for (int k = 0; k < ZIPF_N; k++) { sum += 1 / pow(k + 1, 1.1); zipf_cdf[k] = sum; }
  for (int k = 0; k < ZIPF_N; k++) zipf_cdf[k] /= sum;
  for (int rep = 0; rep < repeats; rep++) {
    double t0 = cpu();
    seed = (uint32_t)strtoul(argv[3], NULL, 0);
    total = packets; assigned = 0; next_flow = 0; exhausted = 0; heapn = 0; nfree = 0; cap = 0;
    free(fl); free(freelist); free(hkey); free(hslot); free(wlink); fl = NULL; freelist = NULL; hkey = NULL; hslot = NULL; wlink = NULL;
    for (int k = 0; k < WHEEL; k++) whead[k] = -1;
    memset(wbits, 0, sizeof wbits); wn = 0; cur_idx = -1; cur_pos = 0; cur_end = 0;
    gap_us = sc == SC_SYNFLOOD || sc == SC_PORTSCAN ? 10 : sc == SC_DEFAULT ? 400 : 100;
    check = 0x811c9dc5u;
    grow(1024);
    queue_next();
    double got = 0;
    for (;;) { int n = fill(); if (!n) break; hand_off(n); got += n; }
    printf("%.0f %.6f %u\n", got, cpu() - t0, check);
  }
  return 0;
}
