/*
 * Native reference for `npm run bench -- hash`: the same bucket functions as
 * sim/select (written from kernel-semantics §2.3, §3, §4.1, §5.1, §6.1, for
 * the current jhash (4.1+), CLUSTERIP era D and a little-endian CPU), over the
 * same struct-of-arrays batches, writing the same int32 per packet
 * (bucket, -1 = no bucket, -2 = unknown).
 *
 * Written as a careful C programmer would: one specialised loop per case,
 * jhash inlined, multiply-shift in 64 bits. Built with plain `cc -O2`.
 *
 * usage:
 *   hash <data> time <tuples> <warmup> <repeats> <case...>   prints "ops_per_s checksum" per repeat
 *   hash <data> dump <outfile> <case...>                     writes every batch's buckets
 * case: clusterip:<mode 0-2>:<nodes>:<init>   xt:<nodes>:<seed>
 *       nft:<s|s.sp.dp|s.d.sp.dp>:<mod>:<seed>  (tcp ports)
 *
 * data file (little-endian, written by bench/suites/hash.ts):
 *   "CSHB" u32 version=1 u32 nbatches u32 capacity, u32 count[nbatches],
 *   then per batch: u32 saddr[cap], daddr[cap], l4a[cap], l4b[cap],
 *                   u8 proto[cap], family[cap], flags[cap], l4flags[cap]
 */
#define _POSIX_C_SOURCE 199309L
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define F_TRUNCATED 0x40
#define F_REPLY 0x80
#define L4_HAS4 0x01
#define L4_HAS8 0x02
#define L4_CT_INVALID 0x04
#define NO_BUCKET (-1)
#define UNKNOWN_BUCKET (-2)
#define JHASH_INITVAL 0xdeadbeefu

typedef struct {
	uint32_t count;
	uint32_t *saddr, *daddr, *l4a, *l4b;
	uint8_t *proto, *family, *flags, *l4flags;
} batch_t;

static inline uint32_t rol32(uint32_t w, unsigned s) { return (w << s) | (w >> (32 - s)); }
static inline uint16_t bswap16(uint16_t x) { return (uint16_t)((x << 8) | (x >> 8)); }
static inline uint32_t bswap32(uint32_t x) { return __builtin_bswap32(x); }

#define __jhash_mix(a, b, c)                        \
	{                                               \
		a -= c; a ^= rol32(c, 4);  c += b;          \
		b -= a; b ^= rol32(a, 6);  a += c;          \
		c -= b; c ^= rol32(b, 8);  b += a;          \
		a -= c; a ^= rol32(c, 16); c += b;          \
		b -= a; b ^= rol32(a, 19); a += c;          \
		c -= b; c ^= rol32(b, 4);  b += a;          \
	}
#define __jhash_final(a, b, c)                      \
	{                                               \
		c ^= b; c -= rol32(b, 14);                  \
		a ^= c; a -= rol32(c, 11);                  \
		b ^= a; b -= rol32(a, 25);                  \
		c ^= b; c -= rol32(b, 16);                  \
		a ^= c; a -= rol32(c, 4);                   \
		b ^= a; b -= rol32(a, 14);                  \
		c ^= b; c -= rol32(b, 24);                  \
	}

/* lookup3 word forms (4.1+): nwords(a, b, c, initval + 0xdeadbeef + 4n). */
static inline uint32_t jhash_nwords(uint32_t a, uint32_t b, uint32_t c, uint32_t initval)
{
	a += initval; b += initval; c += initval;
	__jhash_final(a, b, c);
	return c;
}

static inline int32_t reciprocal_scale(uint32_t val, uint32_t ep_ro)
{
	return (int32_t)(((uint64_t)val * ep_ro) >> 32);
}

/* ---- CLUSTERIP, era D, little-endian CPU (ipt_CLUSTERIP.c clusterip_hashfn) ---- */
static inline __attribute__((always_inline)) void clusterip_impl(const batch_t *b, int32_t *out, const int mode, uint32_t nodes, uint32_t hash_init)
{
	const uint32_t iv = hash_init + JHASH_INITVAL + 4u * (uint32_t)(mode + 1);
	for (uint32_t i = 0; i < b->count; i++) {
		uint8_t lf = b->l4flags[i];
		if (b->family[i] != 4 || (lf & L4_CT_INVALID)) { out[i] = NO_BUCKET; continue; }
		uint32_t sport = 0, dport = 0;
		if (mode > 0) {
			uint8_t p = b->proto[i];
			uint32_t word = 0;
			int need = 0;
			/* proto_ports_offset(): 0 for TCP, UDP, DCCP, ESP, SCTP, UDP-Lite; 4 for AH. */
			if (p == 6 || p == 17 || p == 33 || p == 50 || p == 132 || p == 136) { need = L4_HAS4; word = b->l4a[i]; }
			else if (p == 51) { need = L4_HAS8; word = b->l4b[i]; }
			if (need && (lf & need) != need) {
				if (b->flags[i] & F_TRUNCATED) { out[i] = UNKNOWN_BUCKET; continue; }
				need = 0; /* the packet is that short: the kernel hashes ports 0/0 */
			}
			if (need) {
				/* raw 16-bit loads of network-order bytes on a little-endian CPU */
				sport = bswap16((uint16_t)(word >> 16));
				dport = bswap16((uint16_t)word);
			}
		}
		uint32_t h;
		switch (mode) {
		case 0: h = jhash_nwords(b->saddr[i], 0, 0, iv); break;
		case 1: h = jhash_nwords(b->saddr[i], sport, 0, iv); break;
		default: h = jhash_nwords(b->saddr[i], sport, dport, iv); break;
		}
		out[i] = reciprocal_scale(h, nodes);
	}
}

/* One loop per mode, as our per-rule compiled loops are: no mode test per packet. */
static void clusterip0(const batch_t *b, int32_t *out, uint32_t n, uint32_t iv) { clusterip_impl(b, out, 0, n, iv); }
static void clusterip1(const batch_t *b, int32_t *out, uint32_t n, uint32_t iv) { clusterip_impl(b, out, 1, n, iv); }
static void clusterip2(const batch_t *b, int32_t *out, uint32_t n, uint32_t iv) { clusterip_impl(b, out, 2, n, iv); }

/* ---- xt_cluster, IPv4, little-endian CPU (xt_cluster.c xt_cluster_hash_ipv4) ---- */
static void xt_cluster(const batch_t *b, int32_t *out, uint32_t nodes, uint32_t seed)
{
	const uint32_t iv = seed + JHASH_INITVAL + 4u;
	for (uint32_t i = 0; i < b->count; i++) {
		if ((b->l4flags[i] & L4_CT_INVALID) || b->family[i] != 4) { out[i] = NO_BUCKET; continue; }
		/* conntrack's original source: the destination for reply packets */
		uint32_t addr = (b->flags[i] & F_REPLY) ? b->daddr[i] : b->saddr[i];
		/* the network-order address loaded as a CPU word: no ntohl */
		out[i] = reciprocal_scale(jhash_nwords(bswap32(addr), 0, 0, iv), nodes);
	}
}

/* ---- nft jhash over a concatenation (nft_hash.c, lookup3 byte form) ---- */
enum nft_shape { S, S_SP_DP, S_D_SP_DP };

/* A port in a register: 2 network-order bytes then 2 zero bytes, read as a LE word. */
static inline uint32_t port_word(uint16_t port) { return (uint32_t)bswap16(port); }

static inline __attribute__((always_inline)) void nft_impl(const batch_t *b, int32_t *out, const enum nft_shape shape, uint32_t mod, uint32_t seed)
{
	const uint32_t len = shape == S ? 4 : shape == S_SP_DP ? 12 : 16;
	const uint32_t init = JHASH_INITVAL + len + seed;
	for (uint32_t i = 0; i < b->count; i++) {
		if (b->family[i] != 4) { out[i] = NO_BUCKET; continue; }
		uint32_t a = init, bb = init, c = init;
		if (shape == S) {
			a += bswap32(b->saddr[i]);
		} else {
			/* tcp sport/dport imply meta l4proto tcp */
			if (b->proto[i] != 6) { out[i] = NO_BUCKET; continue; }
			if (!(b->l4flags[i] & L4_HAS4)) { out[i] = (b->flags[i] & F_TRUNCATED) ? UNKNOWN_BUCKET : NO_BUCKET; continue; }
			uint32_t w = b->l4a[i];
			uint32_t sp = port_word((uint16_t)(w >> 16)), dp = port_word((uint16_t)w);
			if (shape == S_SP_DP) {
				a += bswap32(b->saddr[i]); bb += sp; c += dp;
			} else {
				/* 16 bytes: one block through the mix loop, then 4 bytes of tail */
				a += bswap32(b->saddr[i]); bb += bswap32(b->daddr[i]); c += sp;
				__jhash_mix(a, bb, c);
				a += dp;
			}
		}
		__jhash_final(a, bb, c);
		out[i] = reciprocal_scale(c, mod);
	}
}

static void nft_s(const batch_t *b, int32_t *out, uint32_t mod, uint32_t seed) { nft_impl(b, out, S, mod, seed); }
static void nft_s_sp_dp(const batch_t *b, int32_t *out, uint32_t mod, uint32_t seed) { nft_impl(b, out, S_SP_DP, mod, seed); }
static void nft_s_d_sp_dp(const batch_t *b, int32_t *out, uint32_t mod, uint32_t seed) { nft_impl(b, out, S_D_SP_DP, mod, seed); }

/* ---- driver ---- */
typedef struct {
	int kind; /* 0 clusterip, 1 xt, 2 nft */
	int mode;
	uint32_t n, seed;
} case_t;

static void die(const char *m, const char *x) { fprintf(stderr, "hash: %s%s\n", m, x ? x : ""); exit(2); }

static case_t parse_case(const char *s)
{
	case_t c = {0, 0, 0, 0};
	char shape[16];
	unsigned long n, seed;
	int mode;
	if (sscanf(s, "clusterip:%d:%lu:%li", &mode, &n, (long *)&seed) == 3 && mode >= 0 && mode <= 2) { c.kind = 0; c.mode = mode; }
	else if (sscanf(s, "xt:%lu:%li", &n, (long *)&seed) == 2) { c.kind = 1; }
	else if (sscanf(s, "nft:%15[^:]:%lu:%li", shape, &n, (long *)&seed) == 3) {
		c.kind = 2;
		if (!strcmp(shape, "s")) c.mode = S;
		else if (!strcmp(shape, "s.sp.dp")) c.mode = S_SP_DP;
		else if (!strcmp(shape, "s.d.sp.dp")) c.mode = S_D_SP_DP;
		else die("unknown nft shape in ", s);
	} else die("bad case ", s);
	c.n = (uint32_t)n;
	c.seed = (uint32_t)seed;
	return c;
}

static void run_case(const case_t *c, const batch_t *b, int32_t *out)
{
	switch (c->kind * 3 + c->mode) {
	case 0: clusterip0(b, out, c->n, c->seed); break;
	case 1: clusterip1(b, out, c->n, c->seed); break;
	case 2: clusterip2(b, out, c->n, c->seed); break;
	case 3: xt_cluster(b, out, c->n, c->seed); break;
	case 6: nft_s(b, out, c->n, c->seed); break;
	case 7: nft_s_sp_dp(b, out, c->n, c->seed); break;
	default: nft_s_d_sp_dp(b, out, c->n, c->seed); break;
	}
}

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

int main(int argc, char **argv)
{
	if (argc < 4) die("usage: hash <data> time <tuples> <warmup> <repeats> <case...> | hash <data> dump <outfile> <case>", NULL);
	FILE *f = fopen(argv[1], "rb");
	if (!f) die("cannot open ", argv[1]);
	uint32_t hdr[4];
	if (fread(hdr, 4, 4, f) != 4 || memcmp(hdr, "CSHB", 4) || hdr[1] != 1) die("bad data file ", argv[1]);
	uint32_t nb = hdr[2], cap = hdr[3];
	batch_t *bs = calloc(nb, sizeof *bs);
	uint32_t *counts = malloc(nb * 4);
	if (fread(counts, 4, nb, f) != nb) die("short data file ", argv[1]);
	for (uint32_t k = 0; k < nb; k++) {
		batch_t *b = &bs[k];
		b->count = counts[k];
		uint8_t *mem = malloc((size_t)cap * 20);
		if (fread(mem, 1, (size_t)cap * 20, f) != (size_t)cap * 20) die("short data file ", argv[1]);
		b->saddr = (uint32_t *)mem; b->daddr = b->saddr + cap; b->l4a = b->daddr + cap; b->l4b = b->l4a + cap;
		b->proto = (uint8_t *)(b->l4b + cap); b->family = b->proto + cap; b->flags = b->family + cap; b->l4flags = b->flags + cap;
	}
	fclose(f);
	int32_t *out = malloc((size_t)cap * 4);

	if (!strcmp(argv[2], "dump")) {
		if (argc != 5) die("dump needs <outfile> <case>", NULL);
		case_t c = parse_case(argv[4]);
		FILE *o = fopen(argv[3], "wb");
		if (!o) die("cannot write ", argv[3]);
		for (uint32_t k = 0; k < nb; k++) {
			run_case(&c, &bs[k], out);
			fwrite(out, 4, bs[k].count, o);
		}
		fclose(o);
		return 0;
	}
	if (strcmp(argv[2], "time") || argc < 7) die("expected 'time <tuples> <warmup> <repeats> <case...>'", NULL);
	uint64_t tuples = strtoull(argv[3], NULL, 10);
	int warmup = atoi(argv[4]), repeats = atoi(argv[5]);
	for (int a = 6; a < argc; a++) {
		case_t c = parse_case(argv[a]);
		for (int r = -warmup; r < repeats; r++) {
			uint64_t done = 0;
			int64_t sum = 0;
			uint32_t k = 0;
			double t0 = now();
			while (done < tuples) {
				run_case(&c, &bs[k], out);
				sum += out[bs[k].count - 1]; /* keeps the work observable */
				done += bs[k].count;
				k = k + 1 == nb ? 0 : k + 1;
			}
			double dt = now() - t0;
			if (r >= 0) printf("%s %.1f %lld\n", argv[a], (double)done / dt, (long long)sum);
		}
	}
	return 0;
}
