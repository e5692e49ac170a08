// flatnet-cni as a runtime starts it: hands the request to the agent's warm server for this network
// namespace (src/cni/server.ts) over a unix socket, and without an agent runs the Node plugin
// (flatnet-cni-node beside this file) itself. Wire protocol: see server.ts.
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

extern char **environ;

// The start of stdin as it went by: an error answers in the cniVersion the configuration asked for.
static char head[65536];
static size_t head_len;
static int stdin_taken;

static void keep_head(const char *buf, size_t n) {
  size_t room = sizeof(head) - 1 - head_len;
  if (n > room) n = room;
  memcpy(head + head_len, buf, n);
  head_len += n;
  head[head_len] = '\0';
}

// The version asked for when the configuration names one we speak, else our newest (as the Node plugin does).
static const char *asked_version(void) {
  static const char *known[] = {"0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"};
  if (!stdin_taken) { // failing before the request was sent: stdin is ours to read
    stdin_taken = 1;
    char buf[4096];
    ssize_t n;
    while (head_len < sizeof(head) - 1 && ((n = read(0, buf, sizeof(buf))) > 0 || (n < 0 && errno == EINTR)))
      if (n > 0) keep_head(buf, (size_t)n);
  }
  const char *p = strstr(head, "\"cniVersion\"");
  if (!p) return "1.1.0";
  p += strlen("\"cniVersion\"");
  while (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n') p++;
  if (*p++ != ':') return "1.1.0";
  while (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n') p++;
  if (*p++ != '"') return "1.1.0";
  for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++) {
    size_t n = strlen(known[i]);
    if (strncmp(p, known[i], n) == 0 && p[n] == '"') return known[i];
  }
  return "1.1.0";
}

// The shim's own failures: 11 is the spec's "try again later", as the agent may be back soon.
static void fail(const char *what, int err) {
  printf("{\"cniVersion\":\"%s\",\"code\":11,\"msg\":\"flatnet-cni: %s: %s\"}\n", asked_version(), what, strerror(err));
  exit(1);
}

// No agent here (a fresh host, a unit test): the Node plugin answers, with argv, env and stdin untouched.
static void exec_node_plugin(char **argv) {
  char path[4096];
  ssize_t n = readlink("/proc/self/exe", path, sizeof(path) - 32);
  if (n <= 0) fail("no agent, and /proc/self/exe is unreadable", errno);
  path[n] = '\0';
  char *slash = strrchr(path, '/');
  strcpy(slash ? slash + 1 : path, "flatnet-cni-node");
  execv(path, argv);
  fail("no agent, and the Node plugin flatnet-cni-node cannot run", errno);
}

// Sends all of buf; MSG_NOSIGNAL so a dead agent is an error here, not a SIGPIPE.
static int send_all(int fd, const char *buf, size_t len) {
  while (len > 0) {
    ssize_t n = send(fd, buf, len, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return -1;
    buf += n;
    len -= (size_t)n;
  }
  return 0;
}

static int write_all(int fd, const char *buf, size_t len) {
  while (len > 0) {
    ssize_t n = write(fd, buf, len);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return -1;
    buf += n;
    len -= (size_t)n;
  }
  return 0;
}

static int connect_agent(void) {
  struct stat st;
  struct sockaddr_un addr = {.sun_family = AF_UNIX};
  if (stat("/proc/self/ns/net", &st) != 0) return -1;
  snprintf(addr.sun_path, sizeof(addr.sun_path), "/run/flatnet/cni/net-%llu.sock", (unsigned long long)st.st_ino);
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  if (connect(fd, (struct sockaddr *)&addr, sizeof(addr)) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

int main(int argc, char **argv) {
  (void)argc;
  int fd = connect_agent();
  if (fd < 0) exec_node_plugin(argv);

  // The environment block: CNI_* and PATH as KEY=VALUE\0, then an empty entry.
  size_t cap = 1, len = 0;
  for (char **e = environ; *e; e++) cap += strlen(*e) + 1;
  char *env = malloc(cap);
  if (!env) fail("out of memory", ENOMEM);
  for (char **e = environ; *e; e++) {
    if (strncmp(*e, "CNI_", 4) != 0 && strncmp(*e, "PATH=", 5) != 0) continue;
    size_t n = strlen(*e) + 1;
    memcpy(env + len, *e, n);
    len += n;
  }
  env[len++] = '\0';
  // A first send that fails delivered nothing and read no stdin: the Node plugin can still take over.
  ssize_t first;
  do first = send(fd, env, len, MSG_NOSIGNAL); while (first < 0 && errno == EINTR);
  if (first < 0) {
    close(fd);
    exec_node_plugin(argv);
  }
  if (send_all(fd, env + first, len - (size_t)first) != 0) fail("agent connection failed", errno);
  free(env);

  char buf[65536];
  stdin_taken = 1;
  for (;;) {
    ssize_t n = read(0, buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break; // EOF, or no stdin at all (VERSION still answers)
    keep_head(buf, (size_t)n);
    if (send_all(fd, buf, (size_t)n) != 0) fail("agent connection failed", errno);
  }
  if (shutdown(fd, SHUT_WR) != 0) fail("agent connection failed", errno);

  // The answer: "<exit code>\n", then stdout bytes until the agent closes.
  int code = -1, digits = 0, in_body = 0;
  for (;;) {
    ssize_t n = read(fd, buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) fail("agent connection failed", errno);
    if (n == 0) break;
    ssize_t i = 0;
    while (!in_body && i < n) {
      char c = buf[i++];
      if (c == '\n' && digits > 0) in_body = 1;
      else if (c >= '0' && c <= '9' && digits < 3) code = (digits++ ? code * 10 : 0) + (c - '0');
      else fail("agent connection failed", EPROTO);
    }
    if (in_body && i < n && write_all(1, buf + i, (size_t)(n - i)) != 0) return 1;
  }
  if (!in_body) fail("agent connection failed", ECONNRESET); // closed before answering: it died mid-request
  return code;
}
