/*
 * replay-sender: sends Ethernet frames through one interface with an
 * AF_PACKET socket, on a schedule, like tcpreplay. Built by sender.ts with the
 * system C compiler at first use (no npm native module needed).
 *
 *   replay-sender IFACE MODE VALUE LOOPS < frames
 *
 * MODE: pps (VALUE packets per second), mbps (VALUE megabits per second of
 * frame bytes), mult (the capture's own timing divided by VALUE), top (as fast
 * as the socket takes them).
 *
 * stdin: records of [u32 length LE][u64 capture time in ns LE, relative to
 * the first frame][frame bytes]. Everything is read before the first send
 * (preload), so the schedule never waits on the pipe. The source MAC of every
 * frame is set to the interface's own address.
 *
 * Schedule: frame k (counted over all loops) is due at start + due(k), an
 * absolute time, so late wake-ups never accumulate into a lower rate: frames
 * that are already due go out together in one sendmmsg. The timer slack is set
 * to 1 ns so clock_nanosleep wakes close to the deadline.
 *
 * stdout, at the end: one JSON line
 *   {"sent":N,"bytes":B,"first_ns":T0,"last_ns":T1,"elapsed_ns":E,"retries":R}
 * times relative to the start of sending.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <linux/if_packet.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define BATCH 64

static void die(const char *what) {
  fprintf(stderr, "replay-sender: %s: %s\n", what, strerror(errno));
  exit(1);
}

static uint64_t now_ns(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (uint64_t)t.tv_sec * 1000000000ull + (uint64_t)t.tv_nsec;
}

static void sleep_until(uint64_t t) {
  struct timespec ts = {(time_t)(t / 1000000000ull), (long)(t % 1000000000ull)};
  while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR) {
  }
}

int main(int argc, char **argv) {
  if (argc != 5 && !(argc == 6 && !strcmp(argv[5], "progress"))) {
    fprintf(stderr, "usage: replay-sender IFACE pps|mbps|mult|top VALUE LOOPS [progress] < frames\n");
    return 2;
  }
  const char *ifname = argv[1], *mode = argv[2];
  double value = atof(argv[3]);
  long loops = atol(argv[4]);
  /* "progress": a line "P <frames sent>" on stdout at most ten times a second, for the caller's progress bar */
  int progress = argc == 6;
  uint64_t next_report = 0;
  int m = !strcmp(mode, "pps") ? 0 : !strcmp(mode, "mbps") ? 1 : !strcmp(mode, "mult") ? 2 : !strcmp(mode, "top") ? 3 : -1;
  if (m < 0 || (m < 3 && !(value > 0)) || loops < 1) {
    fprintf(stderr, "replay-sender: bad mode/value/loops\n");
    return 2;
  }

  /* preload */
  size_t cap = 1 << 20, used = 0;
  uint8_t *data = malloc(cap);
  if (!data) die("malloc");
  for (;;) {
    size_t want = cap - used;
    if (want < 65536) {
      cap *= 2;
      data = realloc(data, cap);
      if (!data) die("realloc");
      continue;
    }
    ssize_t r = read(0, data + used, want);
    if (r < 0) {
      if (errno == EINTR) continue;
      die("read stdin");
    }
    if (r == 0) break;
    used += (size_t)r;
  }
  size_t n = 0;
  for (size_t o = 0; o + 12 <= used;) {
    uint32_t len;
    memcpy(&len, data + o, 4);
    if (o + 12 + len > used) {
      fprintf(stderr, "replay-sender: stdin ends inside a frame\n");
      return 1;
    }
    o += 12 + len;
    n++;
  }
  if (n == 0) {
    printf("{\"sent\":0,\"bytes\":0,\"first_ns\":0,\"last_ns\":0,\"elapsed_ns\":0,\"retries\":0}\n");
    return 0;
  }
  uint8_t **frame = malloc(n * sizeof *frame);
  uint32_t *flen = malloc(n * sizeof *flen);
  uint64_t *cts = malloc(n * sizeof *cts);
  if (!frame || !flen || !cts) die("malloc");
  size_t k = 0;
  for (size_t o = 0; o + 12 <= used; k++) {
    memcpy(&flen[k], data + o, 4);
    memcpy(&cts[k], data + o + 4, 8);
    frame[k] = data + o + 12;
    o += 12 + flen[k];
  }

  int fd = socket(AF_PACKET, SOCK_RAW, 0); /* protocol 0: send only, receive nothing */
  if (fd < 0) die("socket(AF_PACKET)");
  struct ifreq ifr;
  memset(&ifr, 0, sizeof ifr);
  if (strlen(ifname) >= IFNAMSIZ) {
    fprintf(stderr, "replay-sender: interface name too long\n");
    return 2;
  }
  strcpy(ifr.ifr_name, ifname);
  if (ioctl(fd, SIOCGIFINDEX, &ifr) < 0) die(ifname);
  int ifindex = ifr.ifr_ifindex;
  if (ioctl(fd, SIOCGIFHWADDR, &ifr) < 0) die("SIOCGIFHWADDR");
  for (size_t i = 0; i < n; i++)
    if (flen[i] >= 12) memcpy(frame[i] + 6, ifr.ifr_hwaddr.sa_data, 6);
  int sndbuf = 4 << 20;
  setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof sndbuf);
  struct sockaddr_ll to;
  memset(&to, 0, sizeof to);
  to.sll_family = AF_PACKET;
  to.sll_ifindex = ifindex;
  to.sll_halen = 6;
  prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0);

  /* per-loop duration for mult: the capture's span plus one mean gap, so loops do not overlap */
  uint64_t span = cts[n - 1];
  uint64_t loop_ns = n > 1 ? span + span / (n - 1) : 0;
  double ns_per_bit = m == 1 ? 1000.0 / value : 0; /* mbps: 1e9 ns / (value * 1e6) bits */
  double interval = m == 0 ? 1e9 / value : 0;

  struct mmsghdr msgs[BATCH];
  struct iovec iov[BATCH];
  uint64_t total = (uint64_t)n * (uint64_t)loops, sent = 0, bytes = 0, retries = 0;
  double bits_before = 0; /* mbps: bits of the frames before the next one */
  uint64_t start = now_ns(), first = 0, last = 0;
  uint64_t g = 0; /* next frame, counted over all loops */
  while (g < total) {
    uint64_t due;
    if (m == 0) due = (uint64_t)(g * interval);
    else if (m == 1) due = (uint64_t)(bits_before * ns_per_bit);
    else if (m == 2) due = (uint64_t)(((g / n) * loop_ns + cts[g % n]) / value);
    else due = 0;
    uint64_t t = now_ns();
    if (start + due > t) {
      sleep_until(start + due);
      t = now_ns();
    }
    /* everything due by now goes out in one call */
    int c = 0;
    double bb = bits_before;
    while (c < BATCH && g + (uint64_t)c < total) {
      uint64_t h = g + (uint64_t)c;
      size_t i = h % n;
      if (c > 0) {
        uint64_t d;
        if (m == 0) d = (uint64_t)(h * interval);
        else if (m == 1) d = (uint64_t)(bb * ns_per_bit);
        else if (m == 2) d = (uint64_t)(((h / n) * loop_ns + cts[i]) / value);
        else d = 0;
        if (start + d > t) break;
      }
      iov[c].iov_base = frame[i];
      iov[c].iov_len = flen[i];
      memset(&msgs[c], 0, sizeof msgs[c]);
      msgs[c].msg_hdr.msg_name = &to;
      msgs[c].msg_hdr.msg_namelen = sizeof to;
      msgs[c].msg_hdr.msg_iov = &iov[c];
      msgs[c].msg_hdr.msg_iovlen = 1;
      bb += 8.0 * flen[i];
      c++;
    }
    int done = 0;
    while (done < c) {
      int r = sendmmsg(fd, msgs + done, (unsigned)(c - done), 0);
      if (r < 0) {
        if (errno == ENOBUFS || errno == EAGAIN || errno == EINTR) {
          retries++;
          usleep(50);
          continue;
        }
        die("sendmmsg");
      }
      for (int j = done; j < done + r; j++) {
        bytes += iov[j].iov_len;
        bits_before += 8.0 * iov[j].iov_len;
      }
      done += r;
    }
    uint64_t after = now_ns() - start;
    if (sent == 0) first = after;
    last = after;
    sent += (uint64_t)c;
    g += (uint64_t)c;
    if (progress && after >= next_report) {
      printf("P %llu\n", (unsigned long long)sent);
      fflush(stdout);
      next_report = after + 100000000ull;
    }
  }
  uint64_t end = now_ns() - start;
  printf("{\"sent\":%llu,\"bytes\":%llu,\"first_ns\":%llu,\"last_ns\":%llu,\"elapsed_ns\":%llu,\"retries\":%llu}\n", (unsigned long long)sent,
         (unsigned long long)bytes, (unsigned long long)first, (unsigned long long)last, (unsigned long long)end, (unsigned long long)retries);
  return 0;
}
