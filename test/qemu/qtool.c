/*
 * qtool: the static helper inside the qemu guest (test/qemu/image.ts compiles
 * it with the host's `cc -static`). It knows nothing about rules; it only
 * crafts, sends and observes packets and reports errno exactly.
 *
 *   qtool write FILE DATA          write DATA (no newline added) in one write(2);
 *                                  prints "ok <bytes>" or "err <ENAME> <errno>"
 *                                  (exit 0 / 1). For /proc/net/ipt_CLUSTERIP.
 *   qtool inject IFACE DSTMAC TUPLES
 *                                  send one Ethernet frame per tuple on IFACE
 *                                  with AF_PACKET; prints "sent <n>".
 *   qtool probe IFACE DSTMAC TUPLES GROUP SENTINEL [TIMEOUT_MS]
 *                                  bind NFLOG group GROUP, send every tuple and
 *                                  then a sentinel UDP frame to SENTINEL, and
 *                                  read NFLOG until the sentinel is logged.
 *                                  Prints "A <index> <prefix>" per logged tuple
 *                                  packet, "X <index> <why>" for a logged packet
 *                                  that does not match its tuple, then
 *                                  "P sent=<n> logged=<m> bad=<b>". Exit 2 when
 *                                  the sentinel does not arrive in time.
 *   qtool pcap IFACE FILE [DSTMAC]
 *                                  send every record of a classic pcap file
 *                                  (Ethernet link type, either byte order) as
 *                                  is, with the destination MAC replaced when
 *                                  DSTMAC is given; prints "sent <n>".
 *   qtool nflog GROUP COUNT TIMEOUT_MS
 *                                  print "L <prefix> <saddr> <daddr> <proto> <ipid>"
 *                                  for up to COUNT logged packets.
 *
 * TUPLES is a text file, one tuple per line: "proto saddr sport daddr dport [opts]"
 * (decimal protocol and ports, dotted IPv4); '#' starts a comment. opts is a
 * comma-separated list: "tcp=HEX" (TCP flags instead of SYN), "badsum"
 * (corrupt the L4 checksum of TCP/UDP/UDP-Lite/DCCP/SCTP/ICMP), "rfc"
 * (UDP-Lite checksummed with protocol 136 as RFC 3828 says). Tuple i
 * (0-based, at most 65535 tuples) goes out with IP ID i, so the NFLOG copy
 * names its tuple; the sentinel uses ID 65535.
 *
 * Wire encoding (kernel-semantics.md §11.2; every checksum valid, because
 * conntrack marks a bad one INVALID and CLUSTERIP then drops the packet on
 * every node, §4.3):
 *   TCP SYN; UDP with 4 bytes of payload; UDP-Lite with coverage 0 and the
 *   checksum computed with protocol 17 in the pseudo-header (what 6.1
 *   conntrack verifies); DCCP Request; SCTP INIT with CRC32c; ESP with
 *   SPI = sport<<16|dport; AH with that SPI at offset 4; ICMP echo request
 *   with id = sport, sequence = dport, no payload; GRE with the key bit and
 *   key = sport<<16|dport; anything else: sport, dport and 8 zero bytes.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/if_packet.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nfnetlink_log.h>
#include <linux/netlink.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_TUPLES 65535
#define SENTINEL_ID 0xffff

struct tuple {
  uint8_t proto;
  uint32_t saddr, daddr;
  uint16_t sport, dport;
  /* Variants (optional 6th column): TCP flags (default SYN), a corrupted L4
   * checksum, UDP-Lite checksummed per RFC 3828 (protocol 136). */
  uint8_t tcpflags, badsum, rfc_udplite;
};

static void die(const char *what) {
  fprintf(stderr, "qtool: %s: %s\n", what, strerror(errno));
  exit(1);
}

static void fail(const char *msg) {
  fprintf(stderr, "qtool: %s\n", msg);
  exit(1);
}

/* ---- tuples ---- */

static struct tuple *read_tuples(const char *path, int *count) {
  FILE *f = fopen(path, "r");
  if (!f) die(path);
  struct tuple *t = calloc(MAX_TUPLES, sizeof *t);
  if (!t) die("calloc");
  char line[256];
  int n = 0, ln = 0;
  while (fgets(line, sizeof line, f)) {
    ln++;
    char *hash = strchr(line, '#');
    if (hash) *hash = 0;
    unsigned proto, sport, dport;
    char sa[64], da[64], opts[128] = "";
    int got = sscanf(line, "%u %63s %u %63s %u %127s", &proto, sa, &sport, da, &dport, opts);
    if (got <= 0) continue;
    struct in_addr s, d;
    if (got < 5 || proto > 255 || sport > 65535 || dport > 65535 || inet_pton(AF_INET, sa, &s) != 1 || inet_pton(AF_INET, da, &d) != 1) {
      fprintf(stderr, "qtool: %s:%d: expected 'proto saddr sport daddr dport'\n", path, ln);
      exit(1);
    }
    if (n == MAX_TUPLES) { fprintf(stderr, "qtool: %s:%d: more than %d tuples\n", path, ln, MAX_TUPLES); exit(1); }
    t[n].proto = (uint8_t)proto;
    t[n].saddr = s.s_addr;
    t[n].daddr = d.s_addr;
    t[n].sport = (uint16_t)sport;
    t[n].dport = (uint16_t)dport;
    t[n].tcpflags = 0x02;
    for (char *o = strtok(opts, ","); o; o = strtok(NULL, ",")) {
      unsigned fl;
      if (!strcmp(o, "badsum") && (proto == 6 || proto == 17 || proto == 136 || proto == 33 || proto == 132 || proto == 1)) t[n].badsum = 1;
      else if (sscanf(o, "tcp=%x", &fl) == 1 && fl <= 0xff && proto == 6) t[n].tcpflags = (uint8_t)fl;
      else if (!strcmp(o, "rfc") && proto == 136) t[n].rfc_udplite = 1;
      else { fprintf(stderr, "qtool: %s:%d: option '%s' is unknown or does not apply to protocol %u (badsum, tcp=HEX, rfc for UDP-Lite)\n", path, ln, o, proto); exit(1); }
    }
    n++;
  }
  fclose(f);
  *count = n;
  return t;
}

/* ---- checksums ---- */

static uint32_t sum16(const uint8_t *p, size_t len, uint32_t s) {
  for (size_t i = 0; i + 1 < len; i += 2) s += (uint32_t)(p[i] << 8 | p[i + 1]);
  if (len & 1) s += (uint32_t)(p[len - 1] << 8);
  return s;
}

static uint16_t fold(uint32_t s) {
  while (s >> 16) s = (s & 0xffff) + (s >> 16);
  return (uint16_t)~s;
}

/* Internet checksum of the L4 segment with the IPv4 pseudo-header for `pproto`. */
static uint16_t l4sum(uint32_t saddr, uint32_t daddr, uint8_t pproto, const uint8_t *l4, size_t len) {
  uint8_t ph[12];
  memcpy(ph, &saddr, 4);
  memcpy(ph + 4, &daddr, 4);
  ph[8] = 0;
  ph[9] = pproto;
  ph[10] = (uint8_t)(len >> 8);
  ph[11] = (uint8_t)len;
  return fold(sum16(l4, len, sum16(ph, 12, 0)));
}

static uint32_t crc32c_table[256];
static void crc32c_init(void) {
  for (uint32_t i = 0; i < 256; i++) {
    uint32_t c = i;
    for (int k = 0; k < 8; k++) c = c & 1 ? (c >> 1) ^ 0x82f63b78u : c >> 1;
    crc32c_table[i] = c;
  }
}
static uint32_t crc32c(const uint8_t *p, size_t len) {
  uint32_t c = 0xffffffffu;
  for (size_t i = 0; i < len; i++) c = crc32c_table[(c ^ p[i]) & 0xff] ^ (c >> 8);
  return ~c;
}

static void put16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)(v >> 8); p[1] = (uint8_t)v; }
static void put32(uint8_t *p, uint32_t v) { p[0] = (uint8_t)(v >> 24); p[1] = (uint8_t)(v >> 16); p[2] = (uint8_t)(v >> 8); p[3] = (uint8_t)v; }

/* Builds the L4 bytes of one tuple into l4 (>= 64 bytes); returns their length. */
static size_t build_l4(const struct tuple *t, uint8_t *l4, uint32_t seq) {
  uint32_t pair = (uint32_t)t->sport << 16 | t->dport;
  size_t len;
  memset(l4, 0, 64);
  switch (t->proto) {
  case 6: /* TCP SYN, no options */
    put16(l4, t->sport); put16(l4 + 2, t->dport);
    put32(l4 + 4, 0x10000000u + seq);
    l4[12] = 5 << 4; l4[13] = t->tcpflags; put16(l4 + 14, 64240);
    len = 20;
    put16(l4 + 16, l4sum(t->saddr, t->daddr, 6, l4, len));
    break;
  case 17: /* UDP with 4 bytes of payload */
  case 136: /* UDP-Lite, coverage 0 = whole datagram */
    put16(l4, t->sport); put16(l4 + 2, t->dport);
    len = 12;
    put16(l4 + 4, t->proto == 17 ? (uint16_t)len : 0);
    memcpy(l4 + 8, "qemu", 4);
    {
      /* 6.1 conntrack verifies UDP-Lite with protocol 17 in the pseudo-header (§4.3). */
      uint16_t c = l4sum(t->saddr, t->daddr, t->proto == 136 && t->rfc_udplite ? 136 : 17, l4, len);
      put16(l4 + 6, c ? c : 0xffff);
    }
    break;
  case 33: /* DCCP Request, X=1 (48-bit sequence numbers), CsCov 0 */
    put16(l4, t->sport); put16(l4 + 2, t->dport);
    l4[4] = 5;           /* data offset in 32-bit words: 16-byte header + service code */
    l4[8] = 0 << 1 | 1;  /* type 0 = Request, X = 1 */
    put32(l4 + 12, seq + 1);
    put32(l4 + 16, 0);   /* service code */
    len = 20;
    put16(l4 + 6, l4sum(t->saddr, t->daddr, 33, l4, len));
    break;
  case 132: /* SCTP INIT: common header (verification tag 0) + INIT chunk */
    put16(l4, t->sport); put16(l4 + 2, t->dport);
    l4[12] = 1; l4[13] = 0; put16(l4 + 14, 20);
    put32(l4 + 16, 0x01000000u + seq); /* initiate tag, must not be 0 */
    put32(l4 + 20, 65536);             /* a_rwnd */
    put16(l4 + 24, 1); put16(l4 + 26, 1);
    put32(l4 + 28, 1);                 /* initial TSN */
    len = 32;
    {
      uint32_t c = crc32c(l4, len);
      /* The CRC goes on the wire least significant byte first (RFC 4960 appendix B). */
      l4[8] = (uint8_t)c; l4[9] = (uint8_t)(c >> 8); l4[10] = (uint8_t)(c >> 16); l4[11] = (uint8_t)(c >> 24);
    }
    break;
  case 50: /* ESP: SPI, sequence, 8 opaque bytes */
    put32(l4, pair); put32(l4 + 4, 1);
    len = 16;
    break;
  case 51: /* AH: next header 59, length 4 (24 bytes), reserved, SPI, sequence, 12-byte ICV */
    l4[0] = 59; l4[1] = 4;
    put32(l4 + 4, pair); put32(l4 + 8, 1);
    len = 24;
    break;
  case 1: /* ICMP echo request, no payload */
    l4[0] = 8; put16(l4 + 4, t->sport); put16(l4 + 6, t->dport);
    len = 8;
    put16(l4 + 2, fold(sum16(l4, len, 0)));
    break;
  case 47: /* GRE v0 with the key bit, protocol IPv4 */
    put16(l4, 0x2000); put16(l4 + 2, 0x0800); put32(l4 + 4, pair);
    len = 8;
    break;
  default:
    put16(l4, t->sport); put16(l4 + 2, t->dport);
    len = 12;
  }
  if (t->badsum) {
    /* Flip one bit of the stored checksum: conntrack must call the packet INVALID. */
    size_t at = t->proto == 6 ? 16 : t->proto == 17 || t->proto == 136 || t->proto == 33 ? 6 : t->proto == 132 ? 8 : 2;
    l4[at + 1] ^= 0x01;
  }
  return len;
}

/* Ethernet + IPv4 + L4 frame for a tuple; returns the frame length. */
static size_t build_frame(uint8_t *f, const uint8_t *dmac, const uint8_t *smac, const struct tuple *t, uint16_t ipid) {
  memcpy(f, dmac, 6);
  memcpy(f + 6, smac, 6);
  f[12] = 0x08; f[13] = 0x00;
  uint8_t *ip = f + 14;
  size_t l4len = build_l4(t, ip + 20, ipid);
  memset(ip, 0, 20);
  ip[0] = 0x45;
  put16(ip + 2, (uint16_t)(20 + l4len));
  put16(ip + 4, ipid);
  ip[8] = 64;
  ip[9] = t->proto;
  memcpy(ip + 12, &t->saddr, 4);
  memcpy(ip + 16, &t->daddr, 4);
  put16(ip + 10, fold(sum16(ip, 20, 0)));
  return 14 + 20 + l4len;
}

/* ---- AF_PACKET ---- */

struct sender { int fd; struct sockaddr_ll to; uint8_t smac[6], dmac[6]; };

static void parse_mac(const char *s, uint8_t *mac) {
  unsigned m[6];
  if (sscanf(s, "%x:%x:%x:%x:%x:%x", &m[0], &m[1], &m[2], &m[3], &m[4], &m[5]) != 6) fail("bad MAC address");
  for (int i = 0; i < 6; i++) mac[i] = (uint8_t)m[i];
}

static void sender_open(struct sender *s, const char *ifname, const char *dmac) {
  /* Protocol 0: a send-only socket that never receives a copy of traffic. */
  s->fd = socket(AF_PACKET, SOCK_RAW, 0);
  if (s->fd < 0) die("socket(AF_PACKET)");
  struct ifreq ifr;
  memset(&ifr, 0, sizeof ifr);
  snprintf(ifr.ifr_name, sizeof ifr.ifr_name, "%s", ifname);
  if (ioctl(s->fd, SIOCGIFHWADDR, &ifr) < 0) die(ifname);
  memcpy(s->smac, ifr.ifr_hwaddr.sa_data, 6);
  memset(&s->to, 0, sizeof s->to);
  s->to.sll_family = AF_PACKET;
  s->to.sll_ifindex = (int)if_nametoindex(ifname);
  if (!s->to.sll_ifindex) die(ifname);
  s->to.sll_halen = 6;
  parse_mac(dmac, s->dmac);
  memcpy(s->to.sll_addr, s->dmac, 6);
}

static void send_frame(struct sender *s, const struct tuple *t, uint16_t ipid) {
  uint8_t frame[128];
  size_t len = build_frame(frame, s->dmac, s->smac, t, ipid);
  for (;;) {
    if (sendto(s->fd, frame, len, 0, (struct sockaddr *)&s->to, sizeof s->to) == (ssize_t)len) return;
    if (errno != ENOBUFS && errno != EAGAIN) die("sendto");
    usleep(1000);
  }
}

/* ---- NFLOG over raw netlink ---- */

static int nl_config(int fd, uint16_t group, uint16_t attr, const void *data, uint16_t dlen) {
  uint8_t buf[256];
  memset(buf, 0, sizeof buf);
  struct nlmsghdr *nh = (struct nlmsghdr *)buf;
  nh->nlmsg_type = (NFNL_SUBSYS_ULOG << 8) | NFULNL_MSG_CONFIG;
  nh->nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK;
  nh->nlmsg_seq = 1;
  struct nfgenmsg *g = (struct nfgenmsg *)NLMSG_DATA(nh);
  g->nfgen_family = AF_UNSPEC;
  g->version = NFNETLINK_V0;
  g->res_id = htons(group);
  struct nlattr *a = (struct nlattr *)((uint8_t *)g + NLMSG_ALIGN(sizeof *g));
  a->nla_type = attr;
  a->nla_len = (uint16_t)(NLA_HDRLEN + dlen);
  memcpy((uint8_t *)a + NLA_HDRLEN, data, dlen);
  nh->nlmsg_len = (uint32_t)(NLMSG_HDRLEN + NLMSG_ALIGN(sizeof *g) + NLA_ALIGN(a->nla_len));
  if (send(fd, buf, nh->nlmsg_len, 0) < 0) die("send(NFLOG config)");
  uint8_t rb[4096];
  ssize_t n = recv(fd, rb, sizeof rb, 0);
  if (n < 0) die("recv(NFLOG ack)");
  struct nlmsghdr *r = (struct nlmsghdr *)rb;
  if (r->nlmsg_type == NLMSG_ERROR) {
    struct nlmsgerr *e = (struct nlmsgerr *)NLMSG_DATA(r);
    return e->error;
  }
  return 0;
}

static int nflog_open(uint16_t group) {
  int fd = socket(AF_NETLINK, SOCK_RAW, NETLINK_NETFILTER);
  if (fd < 0) die("socket(NETLINK_NETFILTER)");
  int sz = 16 << 20;
  if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &sz, sizeof sz) < 0) setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &sz, sizeof sz);
  struct sockaddr_nl sa = { .nl_family = AF_NETLINK };
  if (bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0) die("bind(netlink)");
  struct nfulnl_msg_config_cmd cmd = { .command = NFULNL_CFG_CMD_BIND };
  int err = nl_config(fd, group, NFULA_CFG_CMD, &cmd, sizeof cmd);
  if (err) { errno = -err; die("NFLOG bind (is nfnetlink_log loaded? is the group taken?)"); }
  struct nfulnl_msg_config_mode mode = { .copy_range = htonl(96), .copy_mode = NFULNL_COPY_PACKET };
  err = nl_config(fd, group, NFULA_CFG_MODE, &mode, sizeof mode);
  if (err) { errno = -err; die("NFLOG copy mode"); }
  /* Instance queue threshold 1: send each packet at once. The default (100,
   * flushed by a 1 s timer) would hold the sentinel back whenever its rule
   * sets no --nflog-threshold. */
  uint32_t qthresh = htonl(1);
  err = nl_config(fd, group, NFULA_CFG_QTHRESH, &qthresh, sizeof qthresh);
  if (err) { errno = -err; die("NFLOG queue threshold"); }
  return fd;
}

struct logged { char prefix[64]; const uint8_t *ip; size_t iplen; };

/* Calls fn for every NFLOG packet message in one recv() buffer. */
static void nflog_parse(const uint8_t *buf, size_t n, void (*fn)(const struct logged *, void *), void *ctx) {
  for (const struct nlmsghdr *nh = (const struct nlmsghdr *)buf; NLMSG_OK(nh, n); nh = NLMSG_NEXT(nh, n)) {
    if (nh->nlmsg_type != ((NFNL_SUBSYS_ULOG << 8) | NFULNL_MSG_PACKET)) continue;
    struct logged l = { .prefix = "", .ip = NULL, .iplen = 0 };
    const uint8_t *p = (const uint8_t *)NLMSG_DATA(nh) + NLMSG_ALIGN(sizeof(struct nfgenmsg));
    const uint8_t *end = (const uint8_t *)nh + nh->nlmsg_len;
    while (p + NLA_HDRLEN <= end) {
      const struct nlattr *a = (const struct nlattr *)p;
      if (a->nla_len < NLA_HDRLEN || p + a->nla_len > end) break;
      const uint8_t *d = p + NLA_HDRLEN;
      size_t dl = a->nla_len - NLA_HDRLEN;
      switch (a->nla_type & NLA_TYPE_MASK) {
      case NFULA_PREFIX: snprintf(l.prefix, sizeof l.prefix, "%.*s", (int)dl, (const char *)d); break;
      case NFULA_PAYLOAD: l.ip = d; l.iplen = dl; break;
      }
      p += NLA_ALIGN(a->nla_len);
    }
    if (l.ip && l.iplen >= 20) fn(&l, ctx);
  }
}

struct probe { const struct tuple *t; int count; uint32_t sentinel; int done, logged, bad; };

static void on_probe(const struct logged *l, void *vctx) {
  struct probe *c = vctx;
  uint16_t id = (uint16_t)(l->ip[4] << 8 | l->ip[5]);
  uint32_t sa, da;
  memcpy(&sa, l->ip + 12, 4);
  memcpy(&da, l->ip + 16, 4);
  if (id == SENTINEL_ID && da == c->sentinel) { c->done = 1; return; }
  c->logged++;
  if (id >= c->count) { c->bad++; printf("X %u id-out-of-range %s\n", id, l->prefix); return; }
  const struct tuple *t = &c->t[id];
  if (sa != t->saddr || da != t->daddr || l->ip[9] != t->proto) { c->bad++; printf("X %u mismatch %s\n", id, l->prefix); return; }
  printf("A %u %s\n", id, l->prefix);
}

/* Reads NFLOG messages; blocks up to timeout_ms (0: only what is queued). */
static void nflog_drain(int fd, int timeout_ms, void (*fn)(const struct logged *, void *), void *ctx) {
  static uint8_t buf[1 << 16];
  struct pollfd pfd = { .fd = fd, .events = POLLIN };
  if (poll(&pfd, 1, timeout_ms) <= 0) return;
  for (;;) {
    ssize_t n = recv(fd, buf, sizeof buf, MSG_DONTWAIT);
    if (n < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK) return;
      if (errno == ENOBUFS) fail("NFLOG socket overflowed: log messages were lost");
      die("recv(NFLOG)");
    }
    nflog_parse(buf, (size_t)n, fn, ctx);
  }
}

static long now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

static int cmd_probe(int argc, char **argv) {
  if (argc < 7) fail("usage: qtool probe IFACE DSTMAC TUPLES GROUP SENTINEL [TIMEOUT_MS]");
  int count;
  struct tuple *t = read_tuples(argv[4], &count);
  struct in_addr sent;
  if (inet_pton(AF_INET, argv[6], &sent) != 1) fail("bad sentinel address");
  long timeout = argc > 7 ? atol(argv[7]) : 10000;
  int fd = nflog_open((uint16_t)atoi(argv[5]));
  struct sender s;
  sender_open(&s, argv[2], argv[3]);
  struct probe c = { .t = t, .count = count, .sentinel = sent.s_addr };
  for (int i = 0; i < count; i++) {
    send_frame(&s, &t[i], (uint16_t)i);
    /* Read as we go, so a long run never overflows the netlink socket. */
    if ((i & 63) == 63) nflog_drain(fd, 0, on_probe, &c);
  }
  struct tuple st = { .proto = 17, .saddr = htonl(0x0a0000fe), .daddr = sent.s_addr, .sport = 9, .dport = 9 };
  send_frame(&s, &st, SENTINEL_ID);
  long deadline = now_ms() + timeout;
  while (!c.done && now_ms() < deadline) nflog_drain(fd, 50, on_probe, &c);
  printf("P sent=%d logged=%d bad=%d%s\n", count, c.logged, c.bad, c.done ? "" : " sentinel-missing");
  fflush(stdout);
  return c.done ? 0 : 2;
}

static int cmd_inject(int argc, char **argv) {
  if (argc < 5) fail("usage: qtool inject IFACE DSTMAC TUPLES");
  int count;
  struct tuple *t = read_tuples(argv[4], &count);
  struct sender s;
  sender_open(&s, argv[2], argv[3]);
  for (int i = 0; i < count; i++) send_frame(&s, &t[i], (uint16_t)i);
  printf("sent %d\n", count);
  return 0;
}

static uint32_t rd32(const uint8_t *p, int swap) {
  uint32_t v;
  memcpy(&v, p, 4);
  return swap ? __builtin_bswap32(v) : v;
}

static int cmd_pcap(int argc, char **argv) {
  if (argc < 4) fail("usage: qtool pcap IFACE FILE [DSTMAC]");
  FILE *f = fopen(argv[3], "rb");
  if (!f) die(argv[3]);
  uint8_t gh[24];
  if (fread(gh, 1, 24, f) != 24) fail("pcap: short global header");
  uint32_t magic;
  memcpy(&magic, gh, 4);
  int swap;
  if (magic == 0xa1b2c3d4u || magic == 0xa1b23c4du) swap = 0;
  else if (magic == 0xd4c3b2a1u || magic == 0x4d3cb2a1u) swap = 1;
  else fail("pcap: not a classic pcap file (pcapng is not supported)");
  if (rd32(gh + 20, swap) != 1) fail("pcap: link type is not Ethernet (1)");
  struct sender s;
  sender_open(&s, argv[2], argc > 4 ? argv[4] : "00:00:00:00:00:00");
  static uint8_t frame[65536];
  uint8_t rh[16];
  long n = 0, off = 24;
  while (fread(rh, 1, 16, f) == 16) {
    uint32_t caplen = rd32(rh + 8, swap);
    if (caplen > sizeof frame) { fprintf(stderr, "qtool: %s: record at byte %ld: caplen %u too large\n", argv[3], off, caplen); exit(1); }
    if (fread(frame, 1, caplen, f) != caplen) { fprintf(stderr, "qtool: %s: record at byte %ld is truncated\n", argv[3], off); exit(1); }
    off += 16 + caplen;
    if (caplen < 14) continue;
    if (argc > 4) memcpy(frame, s.dmac, 6);
    for (;;) {
      if (sendto(s.fd, frame, caplen, 0, (struct sockaddr *)&s.to, sizeof s.to) == (ssize_t)caplen) break;
      if (errno != ENOBUFS && errno != EAGAIN) die("sendto");
      usleep(1000);
    }
    n++;
  }
  printf("sent %ld\n", n);
  return 0;
}

struct lister { int left; };
static void on_list(const struct logged *l, void *vctx) {
  struct lister *c = vctx;
  if (c->left <= 0) return;
  c->left--;
  char sa[16], da[16];
  inet_ntop(AF_INET, l->ip + 12, sa, sizeof sa);
  inet_ntop(AF_INET, l->ip + 16, da, sizeof da);
  printf("L %s %s %s %u %u\n", l->prefix[0] ? l->prefix : "-", sa, da, l->ip[9], (unsigned)(l->ip[4] << 8 | l->ip[5]));
}

static int cmd_nflog(int argc, char **argv) {
  if (argc < 5) fail("usage: qtool nflog GROUP COUNT TIMEOUT_MS");
  int fd = nflog_open((uint16_t)atoi(argv[2]));
  struct lister c = { .left = atoi(argv[3]) };
  long deadline = now_ms() + atol(argv[4]);
  while (c.left > 0 && now_ms() < deadline) nflog_drain(fd, 50, on_list, &c);
  fflush(stdout);
  return 0;
}

static int cmd_write(int argc, char **argv) {
  if (argc < 4) fail("usage: qtool write FILE DATA");
  int fd = open(argv[2], O_WRONLY);
  if (fd < 0) { printf("err %s %d\n", strerrorname_np(errno), errno); return 1; }
  ssize_t n = write(fd, argv[3], strlen(argv[3]));
  int e = errno;
  close(fd);
  if (n < 0) { printf("err %s %d\n", strerrorname_np(e), e); return 1; }
  printf("ok %zd\n", n);
  return 0;
}

int main(int argc, char **argv) {
  setvbuf(stdout, NULL, _IOFBF, 1 << 16);
  crc32c_init();
  if (argc < 2) fail("usage: qtool write|inject|probe|pcap|nflog ...");
  if (!strcmp(argv[1], "write")) return cmd_write(argc, argv);
  if (!strcmp(argv[1], "inject")) return cmd_inject(argc, argv);
  if (!strcmp(argv[1], "probe")) return cmd_probe(argc, argv);
  if (!strcmp(argv[1], "nflog")) return cmd_nflog(argc, argv);
  if (!strcmp(argv[1], "pcap")) return cmd_pcap(argc, argv);
  fail("unknown command");
  return 1;
}
