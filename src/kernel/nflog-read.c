// flatnet-nflog-read GROUP: binds one NFLOG group (nft `log group N`) on NETLINK_NETFILTER in the
// network namespace it runs in and prints one JSON object a line per logged packet:
//   {"time":1733500000123,"prefix":"flatnet-drop ig-0123456789ab","family":4,"proto":"tcp",
//    "src":"10.244.1.5","dst":"10.244.2.7","sport":40000,"dport":80,"indev":3,"outdev":5}
// then {"lost":true} when the kernel dropped records (socket buffer full). The first line is
// {"ready":true} once the group is bound; a bind refused (another reader holds the group) exits 2.
// Only the kernel's uapi headers: the machine has no libnetfilter_log.
#include <arpa/inet.h>
#include <endian.h>
#include <errno.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nfnetlink_log.h>
#include <linux/netlink.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#define BUF_SIZE 65536
// Enough of a packet for its IPv6 header and the transport ports.
#define COPY_RANGE 80

static int sock;
static uint32_t seq;

static void die(const char *what) {
  fprintf(stderr, "flatnet-nflog-read: %s: %s\n", what, strerror(errno));
  exit(1);
}

static void add_attr(struct nlmsghdr *n, uint16_t type, const void *data, uint16_t len) {
  struct nlattr *a = (struct nlattr *)((char *)n + NLMSG_ALIGN(n->nlmsg_len));
  a->nla_type = type;
  a->nla_len = NLA_HDRLEN + len;
  memcpy((char *)a + NLA_HDRLEN, data, len);
  n->nlmsg_len = NLMSG_ALIGN(n->nlmsg_len) + NLA_ALIGN(a->nla_len);
}

// One config message for the group (or for no group, res_id 0, with a PF command), acknowledged.
static int config(uint16_t group, uint8_t family, uint16_t attr, const void *data, uint16_t len) {
  char buf[256] __attribute__((aligned(4)));
  memset(buf, 0, sizeof(buf));
  struct nlmsghdr *n = (struct nlmsghdr *)buf;
  n->nlmsg_len = NLMSG_LENGTH(sizeof(struct nfgenmsg));
  n->nlmsg_type = (NFNL_SUBSYS_ULOG << 8) | NFULNL_MSG_CONFIG;
  n->nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK;
  n->nlmsg_seq = ++seq;
  struct nfgenmsg *g = NLMSG_DATA(n);
  g->nfgen_family = family;
  g->version = NFNETLINK_V0;
  g->res_id = htons(group);
  add_attr(n, attr, data, len);
  if (send(sock, buf, n->nlmsg_len, 0) < 0) die("send");
  char reply[4096] __attribute__((aligned(4)));
  for (;;) {
    ssize_t r = recv(sock, reply, sizeof(reply), 0);
    if (r < 0) die("recv ack");
    for (struct nlmsghdr *h = (struct nlmsghdr *)reply; NLMSG_OK(h, r); h = NLMSG_NEXT(h, r)) {
      if (h->nlmsg_type == NLMSG_ERROR && h->nlmsg_seq == seq) return -((struct nlmsgerr *)NLMSG_DATA(h))->error;
    }
  }
}

static void json_string(const char *s, size_t max) {
  putchar('"');
  for (size_t i = 0; i < max && s[i]; i++) {
    unsigned char c = (unsigned char)s[i];
    if (c == '"' || c == '\\') printf("\\%c", c);
    else if (c < 0x20 || c >= 0x7f) printf("\\u%04x", c);
    else putchar(c);
  }
  putchar('"');
}

static const char *proto_name(int p) {
  switch (p) {
    case IPPROTO_TCP: return "tcp";
    case IPPROTO_UDP: return "udp";
    case IPPROTO_SCTP: return "sctp";
    case IPPROTO_ICMP: return "icmp";
    case IPPROTO_ICMPV6: return "icmpv6";
    default: return NULL;
  }
}

// The addresses, protocol and ports of an IP packet's first bytes.
static void print_payload(const unsigned char *p, size_t len) {
  if (len < 1) return;
  int version = p[0] >> 4, proto = -1;
  size_t l4 = 0;
  char src[INET6_ADDRSTRLEN] = "", dst[INET6_ADDRSTRLEN] = "";
  if (version == 4 && len >= 20) {
    inet_ntop(AF_INET, p + 12, src, sizeof(src));
    inet_ntop(AF_INET, p + 16, dst, sizeof(dst));
    proto = p[9];
    l4 = (size_t)(p[0] & 0x0f) * 4;
  } else if (version == 6 && len >= 40) {
    inet_ntop(AF_INET6, p + 8, src, sizeof(src));
    inet_ntop(AF_INET6, p + 24, dst, sizeof(dst));
    proto = p[6];
    l4 = 40;
  } else return;
  printf(",\"family\":%d,\"src\":\"%s\",\"dst\":\"%s\"", version, src, dst);
  const char *name = proto_name(proto);
  if (name) printf(",\"proto\":\"%s\"", name); else printf(",\"proto\":\"%d\"", proto);
  if ((proto == IPPROTO_TCP || proto == IPPROTO_UDP || proto == IPPROTO_SCTP) && len >= l4 + 4) {
    printf(",\"sport\":%u,\"dport\":%u", (p[l4] << 8) | p[l4 + 1], (p[l4 + 2] << 8) | p[l4 + 3]);
  }
  if (proto == IPPROTO_TCP && len >= l4 + 14) printf(",\"tcpflags\":%u", p[l4 + 13]);
  if ((proto == IPPROTO_ICMP || proto == IPPROTO_ICMPV6) && len >= l4 + 1) printf(",\"icmptype\":%u", p[l4]);
}

static void print_packet(struct nlmsghdr *h) {
  struct nfgenmsg *g = NLMSG_DATA(h);
  struct nlattr *a = (struct nlattr *)((char *)g + NLMSG_ALIGN(sizeof(*g)));
  int left = (int)h->nlmsg_len - NLMSG_LENGTH(sizeof(*g));
  const char *prefix = NULL;
  size_t prefix_len = 0;
  const unsigned char *payload = NULL;
  size_t payload_len = 0;
  long long indev = -1, outdev = -1, when = -1;
  for (; left >= (int)NLA_HDRLEN && a->nla_len >= NLA_HDRLEN && a->nla_len <= left;
       left -= NLA_ALIGN(a->nla_len), a = (struct nlattr *)((char *)a + NLA_ALIGN(a->nla_len))) {
    void *data = (char *)a + NLA_HDRLEN;
    size_t dlen = a->nla_len - NLA_HDRLEN;
    switch (a->nla_type & NLA_TYPE_MASK) {
      case NFULA_PREFIX: prefix = data; prefix_len = dlen; break;
      case NFULA_PAYLOAD: payload = data; payload_len = dlen; break;
      case NFULA_IFINDEX_INDEV: if (dlen >= 4) { uint32_t v; memcpy(&v, data, 4); indev = ntohl(v); } break;
      case NFULA_IFINDEX_OUTDEV: if (dlen >= 4) { uint32_t v; memcpy(&v, data, 4); outdev = ntohl(v); } break;
      case NFULA_TIMESTAMP:
        if (dlen >= 16) {
          uint64_t s, us;
          memcpy(&s, data, 8);
          memcpy(&us, (char *)data + 8, 8);
          when = (long long)(be64toh(s) * 1000 + be64toh(us) / 1000);
        }
        break;
    }
  }
  // The kernel stamps a packet only when it has a timestamp; else the time it is read.
  if (when < 0) {
    struct timeval tv;
    gettimeofday(&tv, NULL);
    when = (long long)tv.tv_sec * 1000 + tv.tv_usec / 1000;
  }
  printf("{\"time\":%lld,\"prefix\":", when);
  json_string(prefix ? prefix : "", prefix ? prefix_len : 0);
  if (payload) print_payload(payload, payload_len);
  if (indev >= 0) printf(",\"indev\":%lld", indev);
  if (outdev >= 0) printf(",\"outdev\":%lld", outdev);
  printf("}\n");
}

int main(int argc, char **argv) {
  if (argc != 2) { fprintf(stderr, "usage: flatnet-nflog-read GROUP\n"); return 64; }
  char *end;
  long group = strtol(argv[1], &end, 10);
  if (*end || group < 0 || group > 65535) { fprintf(stderr, "flatnet-nflog-read: bad group %s\n", argv[1]); return 64; }
  // The agent that started us owns the group: when it dies, so do we (nsenter execs, it does not fork).
  prctl(PR_SET_PDEATHSIG, SIGTERM);
  if (getppid() == 1) return 0;
  sock = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_NETFILTER);
  if (sock < 0) die("socket");
  int size = 1 << 20;
  setsockopt(sock, SOL_SOCKET, SO_RCVBUF, &size, sizeof(size));
  struct sockaddr_nl addr = { .nl_family = AF_NETLINK };
  if (bind(sock, (struct sockaddr *)&addr, sizeof(addr)) < 0) die("bind");
  struct nfulnl_msg_config_cmd cmd = { .command = NFULNL_CFG_CMD_BIND };
  int err = config((uint16_t)group, AF_UNSPEC, NFULA_CFG_CMD, &cmd, sizeof(cmd));
  if (err) {
    fprintf(stderr, "flatnet-nflog-read: binding group %ld: %s\n", group, strerror(err));
    return 2;
  }
  struct nfulnl_msg_config_mode mode = { .copy_range = htonl(COPY_RANGE), .copy_mode = NFULNL_COPY_PACKET };
  if ((err = config((uint16_t)group, AF_UNSPEC, NFULA_CFG_MODE, &mode, sizeof(mode)))) { errno = err; die("copy mode"); }
  // Each record is sent at once, not batched for a second.
  uint32_t one = htonl(1);
  if ((err = config((uint16_t)group, AF_UNSPEC, NFULA_CFG_QTHRESH, &one, sizeof(one)))) { errno = err; die("queue threshold"); }
  printf("{\"ready\":true}\n");
  fflush(stdout);
  static char buf[BUF_SIZE] __attribute__((aligned(4)));
  for (;;) {
    ssize_t r = recv(sock, buf, sizeof(buf), 0);
    if (r < 0) {
      if (errno == EINTR) continue;
      if (errno == ENOBUFS) { printf("{\"lost\":true}\n"); fflush(stdout); continue; }
      die("recv");
    }
    for (struct nlmsghdr *h = (struct nlmsghdr *)buf; NLMSG_OK(h, r); h = NLMSG_NEXT(h, r)) {
      if (h->nlmsg_type == ((NFNL_SUBSYS_ULOG << 8) | NFULNL_MSG_PACKET)) print_packet(h);
    }
    if (fflush(stdout) != 0) return 0;
  }
}
