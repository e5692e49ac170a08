/*
 * flatnet-nft-dump: the elements of nftables sets and maps, read over netlink.
 *
 * Why: `nft list table` formats every element in userspace; at 10,000 Services (60,000 elements) that
 * takes ~1 s on nft 1.0.6, while the kernel's own dump of the same elements takes milliseconds. The
 * agent's restart reads the proxy table back to learn that it has nothing to write, so it reads the
 * raw elements here and decodes them in TypeScript (src/kernel/nft-elements.ts).
 *
 * Usage: flatnet-nft-dump FAMILY TABLE SET [SET ...]    (FAMILY: ip, ip6, inet)
 * Prints one line per element:  SET <tab> KEY-HEX <tab> DATA
 *   DATA is "-" (a set), "x:HEX" (a value) or "v:CODE:CHAIN" (a verdict; CHAIN empty when none).
 * A set that does not exist prints "SET <tab> missing". Exit 0, or 1 with a message on stderr.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netlink.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define BUF_SIZE (1 << 20)

static char buf[BUF_SIZE];

static void hex(const unsigned char *p, int n) {
  static const char digits[] = "0123456789abcdef";
  for (int i = 0; i < n; i++) { putchar(digits[p[i] >> 4]); putchar(digits[p[i] & 15]); }
}

/* Calls fn for each attribute in [p, p+len). */
#define FOR_ATTR(a, p, len) \
  for (struct nlattr *a = (struct nlattr *)(p); \
       (char *)a + NLA_HDRLEN <= (char *)(p) + (len) && a->nla_len >= NLA_HDRLEN && (char *)a + a->nla_len <= (char *)(p) + (len); \
       a = (struct nlattr *)((char *)a + NLA_ALIGN(a->nla_len)))

#define ATTR_TYPE(a) ((a)->nla_type & NLA_TYPE_MASK)
#define ATTR_DATA(a) ((unsigned char *)(a) + NLA_HDRLEN)
#define ATTR_LEN(a) ((int)(a)->nla_len - NLA_HDRLEN)

static struct nlattr *find(void *p, int len, int type) {
  FOR_ATTR(a, p, len) if (ATTR_TYPE(a) == type) return a;
  return NULL;
}

static void print_data(struct nlattr *data) {
  struct nlattr *value = find(ATTR_DATA(data), ATTR_LEN(data), NFTA_DATA_VALUE);
  if (value) { printf("x:"); hex(ATTR_DATA(value), ATTR_LEN(value)); return; }
  struct nlattr *verdict = find(ATTR_DATA(data), ATTR_LEN(data), NFTA_DATA_VERDICT);
  if (!verdict) { printf("?"); return; }
  struct nlattr *code = find(ATTR_DATA(verdict), ATTR_LEN(verdict), NFTA_VERDICT_CODE);
  struct nlattr *chain = find(ATTR_DATA(verdict), ATTR_LEN(verdict), NFTA_VERDICT_CHAIN);
  int32_t c = 0;
  if (code && ATTR_LEN(code) == 4) { uint32_t be; memcpy(&be, ATTR_DATA(code), 4); c = (int32_t)ntohl(be); }
  printf("v:%d:", c);
  if (chain) printf("%.*s", ATTR_LEN(chain), (char *)ATTR_DATA(chain));
}

static void print_element(const char *set, struct nlattr *elem) {
  struct nlattr *key = find(ATTR_DATA(elem), ATTR_LEN(elem), NFTA_SET_ELEM_KEY);
  if (!key) return;
  struct nlattr *kv = find(ATTR_DATA(key), ATTR_LEN(key), NFTA_DATA_VALUE);
  if (!kv) return;
  printf("%s\t", set);
  hex(ATTR_DATA(kv), ATTR_LEN(kv));
  putchar('\t');
  struct nlattr *data = find(ATTR_DATA(elem), ATTR_LEN(elem), NFTA_SET_ELEM_DATA);
  if (data) print_data(data); else putchar('-');
  putchar('\n');
}

static int put_attr(char *at, int type, const void *data, int len) {
  struct nlattr *a = (struct nlattr *)at;
  a->nla_type = type;
  a->nla_len = NLA_HDRLEN + len;
  memcpy(at + NLA_HDRLEN, data, len);
  return NLA_ALIGN(a->nla_len);
}

/* Dumps one set's elements; returns 0, 1 when the set is missing, -1 on error. */
static int dump_set(int fd, int family, const char *table, const char *set, uint32_t seq) {
  char req[512] = {0};
  struct nlmsghdr *nlh = (struct nlmsghdr *)req;
  nlh->nlmsg_type = (NFNL_SUBSYS_NFTABLES << 8) | NFT_MSG_GETSETELEM;
  nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
  nlh->nlmsg_seq = seq;
  struct nfgenmsg *g = (struct nfgenmsg *)NLMSG_DATA(nlh);
  g->nfgen_family = family;
  g->version = NFNETLINK_V0;
  int len = NLMSG_LENGTH(sizeof(*g));
  len += put_attr(req + len, NFTA_SET_ELEM_LIST_TABLE, table, strlen(table) + 1);
  len += put_attr(req + len, NFTA_SET_ELEM_LIST_SET, set, strlen(set) + 1);
  nlh->nlmsg_len = len;
  if (send(fd, req, len, 0) < 0) { perror("flatnet-nft-dump: send"); return -1; }
  for (;;) {
    ssize_t n = recv(fd, buf, sizeof buf, 0);
    if (n < 0) { if (errno == EINTR) continue; perror("flatnet-nft-dump: recv"); return -1; }
    for (struct nlmsghdr *m = (struct nlmsghdr *)buf; NLMSG_OK(m, n); m = NLMSG_NEXT(m, n)) {
      if (m->nlmsg_seq != seq) continue;
      if (m->nlmsg_type == NLMSG_DONE) return 0;
      if (m->nlmsg_type == NLMSG_ERROR) {
        int err = ((struct nlmsgerr *)NLMSG_DATA(m))->error;
        if (err == 0) return 0;
        if (err == -ENOENT) { printf("%s\tmissing\n", set); return 1; }
        fprintf(stderr, "flatnet-nft-dump: %s %s: %s\n", table, set, strerror(-err));
        return -1;
      }
      int alen = m->nlmsg_len - NLMSG_LENGTH(sizeof(struct nfgenmsg));
      void *attrs = (char *)NLMSG_DATA(m) + NLMSG_ALIGN(sizeof(struct nfgenmsg));
      struct nlattr *list = find(attrs, alen, NFTA_SET_ELEM_LIST_ELEMENTS);
      if (!list) continue;
      FOR_ATTR(e, ATTR_DATA(list), ATTR_LEN(list)) if (ATTR_TYPE(e) == NFTA_LIST_ELEM) print_element(set, e);
    }
  }
}

int main(int argc, char **argv) {
  if (argc < 4) { fprintf(stderr, "usage: flatnet-nft-dump ip|ip6|inet TABLE SET [SET ...]\n"); return 1; }
  int family = !strcmp(argv[1], "ip") ? NFPROTO_IPV4 : !strcmp(argv[1], "ip6") ? NFPROTO_IPV6 : !strcmp(argv[1], "inet") ? NFPROTO_INET : -1;
  if (family < 0) { fprintf(stderr, "flatnet-nft-dump: family \"%s\" is not ip, ip6 or inet\n", argv[1]); return 1; }
  int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_NETFILTER);
  if (fd < 0) { perror("flatnet-nft-dump: socket"); return 1; }
  int rcvbuf = BUF_SIZE;
  setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
  struct sockaddr_nl sa = { .nl_family = AF_NETLINK };
  if (bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0) { perror("flatnet-nft-dump: bind"); return 1; }
  static char out[1 << 16];
  setvbuf(stdout, out, _IOFBF, sizeof out);
  for (int i = 3; i < argc; i++) if (dump_set(fd, family, argv[2], argv[i], (uint32_t)i) < 0) return 1;
  close(fd);
  return fflush(stdout) == 0 ? 0 : 1;
}
