/*
 * Native reference for the ingest bench: the same work as
 * sim/traffic/capture.ts + decode.ts on a classic pcap, in C. Reads the file
 * through a reused 1 MiB buffer with read(2), decodes Ethernet (+802.1Q/QinQ),
 * IPv4 (options) / IPv6 (extension headers) and the first 8 L4 bytes into
 * struct-of-arrays lanes of a 65536-packet batch, exactly the lanes a
 * TupleBatch has. Fragments are only flagged (the bench captures have none).
 *
 * Usage: pcap_ingest FILE REPEATS   -> one line per repeat: packets, CPU seconds
 * (CPU time: the bench machine is shared, wall time measures the neighbours)
 * Build: cc -O2 -o pcap_ingest pcap_ingest.c
 */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define CAP 65536
#define WIN (1 << 20)

/*
 * The lanes are global (not static) and every full batch is handed to a
 * function the compiler may not inline: with static arrays that nothing
 * read, gcc -O2 deleted the stores to ten of the fourteen lanes and the
 * timestamp computation (seen with nm), so C did less than our reader.
 */
double ts[CAP];
uint32_t wirelen[CAP], saddr[CAP], daddr[CAP], saddr6[CAP * 4], daddr6[CAP * 4], l4a[CAP], l4b[CAP];
uint16_t sport[CAP], dport[CAP];
uint8_t proto[CAP], family[CAP], flags[CAP], l4flags[CAP];
static uint8_t buf[WIN + 65536 * 4 + 64];
volatile uint64_t sink = 0;

/* The consumer of a batch (selectors, in the real pipeline): reads each lane once. */
__attribute__((noinline)) void hand_off(int n) {
  int i = n - 1;
  sink += (uint64_t)ts[i] + wirelen[i] + saddr[i] + daddr[i] + saddr6[4 * i] + daddr6[4 * i] + l4a[i] + l4b[i] + sport[i] + dport[i] + proto[i] + family[i] + flags[i] + l4flags[i];
}

static inline uint32_t be32(const uint8_t *p) { return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3]; }
static inline uint32_t le32(const uint8_t *p) { return ((uint32_t)p[3] << 24) | ((uint32_t)p[2] << 16) | ((uint32_t)p[1] << 8) | p[0]; }
static inline unsigned be16(const uint8_t *p) { return ((unsigned)p[0] << 8) | p[1]; }

static unsigned need(unsigned pr) {
  switch (pr) { case 6: return 20; case 132: case 33: case 51: return 12; case 47: return 4; default: return 8; }
}

static void l4(int i, unsigned pr, const uint8_t *q, long cap, long wire) {
  uint32_t a = 0, b = 0; unsigned lf = 0, sp = 0, dp = 0, fl = 0;
  if (cap > wire) cap = wire;
  if (cap >= 4) { a = be32(q); lf = 1; if (cap >= 8) { b = be32(q + 4); lf = 3; } }
  unsigned nd = need(pr);
  switch (pr) {
  case 6: case 17: case 136: case 132: case 33:
    if (cap >= 4) { sp = a >> 16; dp = a & 0xffff; fl |= 1; }
    if ((long)nd > wire) lf |= 4;
    if (pr == 6 && cap >= 14) { unsigned t = q[13]; if (t & 2) fl |= 4; if (t & 0x10) fl |= 8; if (t & 4) fl |= 0x10; if (t & 1) fl |= 0x20; }
    break;
  case 1: case 58:
    if (cap >= 8) { unsigned t = a >> 24; if (pr == 1 ? (t == 8 || t == 0) : (t == 128 || t == 129)) { sp = b >> 16; dp = b & 0xffff; } }
    break;
  case 50: if (cap >= 4) { sp = a >> 16; dp = a & 0xffff; } break;
  case 51: if (cap >= 8) { sp = b >> 16; dp = b & 0xffff; } break;
  }
  if (cap < (wire < (long)nd ? wire : (long)nd)) fl |= 0x40;
  l4a[i] = a; l4b[i] = b; l4flags[i] = lf; sport[i] = sp; dport[i] = dp; flags[i] = fl;
}

/* 0 ok, 1 skipped */
static int decode(const uint8_t *f, long caplen, int i) {
  const uint8_t *end = f + caplen;
  if (caplen < 14) return 1;
  unsigned et = be16(f + 12);
  const uint8_t *p = f + 14;
  while (et == 0x8100 || et == 0x88a8 || et == 0x9100) { if (end - p < 4) return 1; et = be16(p + 2); p += 4; }
  if (et == 0x0800) {
    if (end - p < 20 || (p[0] >> 4) != 4) return 1;
    unsigned hl = (p[0] & 15) << 2, tot = be16(p + 2);
    if (hl < 20 || (tot && tot < hl)) return 1;
    unsigned pr = p[9];
    family[i] = 4; saddr[i] = be32(p + 12); daddr[i] = be32(p + 16);
    memset(saddr6 + 4 * i, 0, 16); memset(daddr6 + 4 * i, 0, 16);
    proto[i] = pr;
    const uint8_t *q = p + hl;
    long wire = (long)(tot ? tot : end - p) - hl, cap = end - q;
    if (cap > wire) cap = wire;
    if (be16(p + 6) & 0x3fff) { l4a[i] = l4b[i] = 0; l4flags[i] = 0; sport[i] = dport[i] = 0; flags[i] = 2; return 0; }
    if (cap < 0) { l4a[i] = l4b[i] = 0; l4flags[i] = 0; sport[i] = dport[i] = 0; flags[i] = 0x40; return 0; }
    l4(i, pr, q, cap, wire);
    return 0;
  }
  if (et == 0x86dd) {
    if (end - p < 40 || (p[0] >> 4) != 6) return 1;
    unsigned plen = be16(p + 4), nh = p[6];
    family[i] = 6; saddr[i] = daddr[i] = 0;
    for (int k = 0; k < 4; k++) { saddr6[4 * i + k] = be32(p + 8 + 4 * k); daddr6[4 * i + k] = be32(p + 24 + 4 * k); }
    const uint8_t *wend = plen ? p + 40 + plen : end, *cend = end < wend ? end : wend, *q = p + 40;
    for (int h = 0; h < 32 && (nh == 0 || nh == 43 || nh == 60 || nh == 44); h++) {
      if (cend - q < 8) break;
      unsigned len = nh == 44 ? 8 : ((unsigned)q[1] + 1) << 3;
      nh = q[0]; q += len;
    }
    proto[i] = nh;
    if (q > cend) { l4a[i] = l4b[i] = 0; l4flags[i] = 0; sport[i] = dport[i] = 0; flags[i] = 0x40; return 0; }
    l4(i, nh, q, cend - q, wend - q);
    return 0;
  }
  return 1;
}

int main(int argc, char **argv) {
  if (argc < 3) { fprintf(stderr, "usage: %s FILE REPEATS\n", argv[0]); return 2; }
  int reps = atoi(argv[2]);
  for (int r = 0; r < reps; r++) {
    struct timespec t0, t1;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t0);
    int fd = open(argv[1], O_RDONLY);
    if (fd < 0) { perror(argv[1]); return 1; }
    long lim = 0, pos = 0;
    uint64_t packets = 0;
    int n = 0, eof = 0, le = 1;
    double scale = 1e-6;
    /* file header */
    while (lim < 24) { long k = read(fd, buf + lim, WIN - lim); if (k <= 0) return 1; lim += k; }
    uint32_t m = le32(buf);
    if (m == 0xa1b2c3d4) le = 1; else if (m == 0xd4c3b2a1) le = 0; else if (m == 0xa1b23c4d) { le = 1; scale = 1e-9; } else if (m == 0x4d3cb2a1) { le = 0; scale = 1e-9; } else return 1;
    pos = 24;
    for (;;) {
      if (lim - pos < 16 || lim - pos < 16 + (long)(le ? le32(buf + pos + 8) : be32(buf + pos + 8))) {
        if (eof) break;
        memmove(buf, buf + pos, lim - pos); lim -= pos; pos = 0;
        long k = read(fd, buf + lim, WIN - lim);
        if (k <= 0) eof = 1; else lim += k;
        continue;
      }
      const uint8_t *h = buf + pos;
      uint32_t sec = le ? le32(h) : be32(h), frac = le ? le32(h + 4) : be32(h + 4);
      uint32_t caplen = le ? le32(h + 8) : be32(h + 8), wl = le ? le32(h + 12) : be32(h + 12);
      if (caplen > 262144) return 1;
      pos += 16 + caplen;
      if (decode(h + 16, caplen, n) == 0) {
        ts[n] = sec + frac * scale; wirelen[n] = wl;
        if (++n == CAP) { hand_off(n); packets += n; n = 0; }
      }
    }
    if (n) hand_off(n);
    packets += n;
    close(fd);
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t1);
    printf("%llu %.9f\n", (unsigned long long)packets, (t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9);
  }
  return sink == 42 ? 3 : 0;
}
