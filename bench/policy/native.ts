// The two small C programs the policy bench runs in its namespaces: one server per topology that
// listens in every pod's netns (a socket stays in the netns it was made in, so one process serves
// 200 pods), and the connect client. C rather than Node so the client's own cost stays a few µs and
// 200 pods cost one process, not 200. Compiled with cc into a temporary directory at the start.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { run, type Scope } from '../proxy/topology.js';
import { percentile } from '../cni/stats.js';

// serve PORT... : netns paths on stdin, one a line; listens on 0.0.0.0:PORT in each, accepts and closes.
const SERVE_C = String.raw`
#define _GNU_SOURCE
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <fcntl.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/resource.h>
#include <netinet/in.h>
int main(int argc, char **argv) {
  struct rlimit rl; getrlimit(RLIMIT_NOFILE, &rl); rl.rlim_cur = rl.rlim_max; setrlimit(RLIMIT_NOFILE, &rl);
  int ep = epoll_create1(0);
  char path[512];
  while (fgets(path, sizeof path, stdin)) {
    path[strcspn(path, "\n")] = 0;
    if (!path[0]) continue;
    int nfd = open(path, O_RDONLY | O_CLOEXEC);
    if (nfd < 0 || setns(nfd, CLONE_NEWNET) != 0) { perror(path); return 1; }
    close(nfd);
    for (int i = 1; i < argc; i++) {
      int s = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0), one = 1;
      setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
      struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(atoi(argv[i])) };
      if (bind(s, (struct sockaddr *)&a, sizeof a) || listen(s, 4096)) { perror("bind/listen"); return 1; }
      struct epoll_event ev = { .events = EPOLLIN, .data.fd = s };
      epoll_ctl(ep, EPOLL_CTL_ADD, s, &ev);
    }
  }
  printf("ready\n"); fflush(stdout);
  struct epoll_event evs[64];
  for (;;) {
    int n = epoll_wait(ep, evs, 64, -1);
    for (int i = 0; i < n; i++) { int c; while ((c = accept4(evs[i].data.fd, 0, 0, SOCK_CLOEXEC)) >= 0) close(c); }
  }
}
`;

// connect COUNT WARM : lines "NETNS_PATH ADDRESS PORT" on stdin; connects round-robin over them, each
// socket made in its source pod's netns, timed from connect() to its return (the SYN-ACK), closed with
// a reset (SO_LINGER 0: no TIME_WAIT). Prints one µs figure a line; exits 1 on the first failure.
// connect 0 0 TIMEOUT_MS : each pair once, printing 1 (connected) or 0 (no answer within the timeout).
const CONNECT_C = String.raw`
#define _GNU_SOURCE
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <fcntl.h>
#include <errno.h>
#include <sys/socket.h>
#include <arpa/inet.h>
struct pair { int ns; struct sockaddr_in to; char text[600]; };
int main(int argc, char **argv) {
  int count = atoi(argv[1]), warm = atoi(argv[2]), n = 0, check = argc > 3 ? atoi(argv[3]) : 0;
  static struct pair p[4096];
  char line[600], path[512], addr[64]; int port;
  while (n < 4096 && fgets(line, sizeof line, stdin)) {
    if (sscanf(line, "%511s %63s %d", path, addr, &port) != 3) continue;
    p[n].ns = open(path, O_RDONLY | O_CLOEXEC);
    if (p[n].ns < 0) { perror(path); return 1; }
    p[n].to.sin_family = AF_INET; p[n].to.sin_port = htons(port); inet_pton(AF_INET, addr, &p[n].to.sin_addr);
    line[strcspn(line, "\n")] = 0; strcpy(p[n].text, line); n++;
  }
  if (!n) { fprintf(stderr, "no pairs\n"); return 1; }
  struct linger lg = { 1, 0 }; struct timeval tmo = { 3, 0 };
  if (check) { tmo.tv_sec = check / 1000; tmo.tv_usec = (check % 1000) * 1000; count = n; }
  for (int i = 0; i < warm + count; i++) {
    struct pair *q = &p[i % n];
    if (setns(q->ns, CLONE_NEWNET) != 0) { perror("setns"); return 1; }
    int s = socket(AF_INET, SOCK_STREAM, 0);
    setsockopt(s, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    setsockopt(s, SOL_SOCKET, SO_SNDTIMEO, &tmo, sizeof tmo);
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    int r = connect(s, (struct sockaddr *)&q->to, sizeof q->to);
    clock_gettime(CLOCK_MONOTONIC, &b);
    if (check) { printf("%d\n", r == 0); close(s); continue; }
    if (r != 0) { fprintf(stderr, "connect %s: %s\n", q->text, strerror(errno)); return 1; }
    close(s);
    if (i >= warm) printf("%.1f\n", (b.tv_sec - a.tv_sec) * 1e6 + (b.tv_nsec - a.tv_nsec) / 1e3);
  }
  return 0;
}
`;

export interface Natives { serve: string; connect: string; dir: string }

/** Compiles both programs into a fresh temporary directory (removed by `removeNatives`). */
export async function buildNatives(): Promise<Natives> {
  const dir = mkdtempSync(join(tmpdir(), 'flatnet-bench-policy-'));
  const out: Natives = { serve: join(dir, 'serve'), connect: join(dir, 'connect'), dir };
  for (const [name, src] of [['serve', SERVE_C], ['connect', CONNECT_C]] as const) {
    writeFileSync(join(dir, `${name}.c`), src);
    await run(process.env.CC || 'cc', ['-O2', '-Wall', '-o', join(dir, name), join(dir, `${name}.c`)]);
  }
  return out;
}

export function removeNatives(n: Natives): void { rmSync(n.dir, { recursive: true, force: true }); }

/** Starts one server listening on `ports` in every netns of `netnsPaths`; resolves when all listen. */
export async function startServer(scope: Scope, n: Natives, netnsPaths: string[], ports: number[]): Promise<ChildProcess> {
  const child = spawn(n.serve, ports.map(String), { stdio: ['pipe', 'pipe', 'pipe'] });
  scope.children.add(child);
  const err: Buffer[] = [];
  child.stderr!.on('data', (b: Buffer) => err.push(b));
  child.stdin!.end(netnsPaths.join('\n') + '\n');
  await new Promise<void>((resolve, reject) => {
    child.stdout!.on('data', (b: Buffer) => { if (b.toString().includes('ready')) resolve(); });
    child.once('exit', (code) => reject(new Error(`policy bench server exited ${code}: ${Buffer.concat(err).toString().trim()}`)));
  });
  return child;
}

export interface Pair { netns: string; address: string; port: number }

/** Runs the connect client with `args`, the pairs on its stdin; its output lines. */
async function runClient(scope: Scope, n: Natives, args: string[], pairs: Pair[], what: string): Promise<string[]> {
  const child = spawn(n.connect, args, { stdio: ['pipe', 'pipe', 'pipe'] });
  scope.children.add(child);
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  child.stdout!.on('data', (b: Buffer) => out.push(b));
  child.stderr!.on('data', (b: Buffer) => err.push(b));
  child.stdin!.end(pairs.map((p) => `${p.netns} ${p.address} ${p.port}`).join('\n') + '\n');
  const code = await new Promise<number | null>((resolve, reject) => { child.once('error', reject); child.once('close', resolve); });
  scope.children.delete(child);
  if (code !== 0) throw new Error(`${what} exited ${code}: ${Buffer.concat(err).toString().trim()}`);
  return Buffer.concat(out).toString().trim().split('\n');
}

/** One client process: `count` timed connects round-robin over `pairs` after `warm` untimed ones; µs each. */
export async function connectTimes(scope: Scope, n: Natives, pairs: Pair[], count: number, warm = 20): Promise<number[]> {
  return (await runClient(scope, n, [String(count), String(warm)], pairs, 'connect client')).map(Number);
}

/** Each pair once, a connect given up after `timeoutMs`: whether it connected. */
export async function connectsPass(scope: Scope, n: Natives, pairs: Pair[], timeoutMs: number): Promise<boolean[]> {
  return (await runClient(scope, n, ['0', '0', String(timeoutMs)], pairs, 'connect check')).map((l) => l === '1');
}

export interface Latency { p50: number; p99: number; n: number }

export function latency(us: number[]): Latency {
  const s = [...us].sort((a, b) => a - b);
  return { p50: percentile(s, 50), p99: percentile(s, 99), n: s.length };
}
