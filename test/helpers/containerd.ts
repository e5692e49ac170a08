// A private containerd for system tests: containers started by a real runtime (`ctr run --cni`)
// get their network from the CNI plugin under test, inside the test's own namespaces.
//
// Layout (everything below the scope's directory, nothing of the host's own containerd is touched):
//   setpriv --pdeathsig KILL unshare --mount --propagation private --pid --fork --kill-child --mount-proc
//     └─ pid 1 of a new pid namespace: sh (bind mounts) → exec nsenter --net=<node netns> → exec containerd
// The private mount namespace bind-mounts the test's dirs over the paths ctr and containerd hard-code:
//   /etc/cni/net.d   ← cniConfDir   ctr reads the first config file here (go-cni WithDefaultConf)
//   /opt/cni/bin     ← cniBinDir    CNI_PATH is "/opt/cni/bin:/usr/lib/cni" (Debian's go-cni patch)
//   /var/lib/cni     ← <dir>/cni-cache   libcni's result cache (results/<net>-<containerid>-<ifname>)
//   /run/containerd  ← <dir>/run    shim sockets (run/s/<sha>), runc state (run/runc), ctr fifos (run/fifo)
// Every `ctr` runs via nsenter in that mount namespace, that pid namespace (so the /proc/<pid>/ns/net
// path ctr hands to CNI resolves) and the node's netns (ctr, not containerd, execs the CNI plugins).
// Killing pid 1 of the pid namespace ends containerd, shims, containers and ctr processes at once;
// the mount namespace (and the overlay mounts in it) goes with its last process.
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readdirSync, readFileSync, readlinkSync, rmdirSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { TestScope } from './scope.js';
import { netnsPath } from './scope.js';

export interface ContainerdOptions {
  /** Node netns: a name made by scope.netns(), or a path. containerd, ctr and the CNI plugins run in it. */
  nodeNetns: string;
  /** Bound over /etc/cni/net.d: ctr uses the first config file in it. */
  cniConfDir: string;
  /** Bound over /opt/cni/bin. */
  cniBinDir: string;
  /** containerd namespace; default: the scope prefix. CNI_CONTAINERID is "<namespace>-<container id>". */
  namespace?: string;
}

export interface CtrOptions {
  /** Default 30 s. */
  timeoutMs?: number;
  /** Resolve with the output instead of rejecting on a non-zero exit. */
  allowFailure?: boolean;
}

export interface CtrResult { code: number; stdout: string; stderr: string }

export interface AttachedContainer {
  id: string;
  /** The supervising `ctr run` process (host pid of the nsenter in front of it). */
  pid: number;
  /** Settles when that ctr exits: after the task ended, its CNI DEL and the container's removal. */
  exited: Promise<CtrResult>;
}

export interface Containerd {
  readonly namespace: string;
  readonly dir: string;
  /** libcni's cache dir as the host sees it (ctr sees it as /var/lib/cni). */
  readonly cniCacheDir: string;
  /** Host pid of pid 1 of the private pid namespace (containerd). */
  readonly pid: number;
  /** Runs `ctr -n <namespace> ...args`; resolves with stdout. Paths in args must be absolute. */
  ctr(args: string[], opts?: CtrOptions & { allowFailure?: false }): Promise<string>;
  ctrRaw(args: string[], opts?: CtrOptions): Promise<CtrResult>;
  /** `ctr images import`. */
  importImage(tarPath: string): Promise<void>;
  /** The container id the CNI plugin sees for a ctr container id. */
  cniContainerId(id: string): string;
  /**
   * `ctr run -d --cni`: returns once the task runs. NB: ctr 1.6 never calls CNI DEL for detached
   * containers (task kill/delete and container delete do not), so their address stays reserved.
   */
  runDetached(image: string, id: string, cmd: string[]): Promise<void>;
  /**
   * `ctr run --cni --rm` left attached in the background, as a runtime supervising its container:
   * resolves once the task runs. When the task ends (e.g. `ctr task kill -s KILL <id>`), that ctr
   * calls CNI DEL (with CNI_NETNS="" and the cached prevResult), deletes the task and the container.
   */
  runAttached(image: string, id: string, cmd: string[]): Promise<AttachedContainer>;
  /** Container ids known to containerd. */
  containers(): Promise<string[]>;
  /** Kills remaining tasks (attached ones through their ctr, so CNI DEL runs), removes containers, ends containerd. */
  stop(): Promise<void>;
  /** After stop: processes still in the private namespaces and cgroups still present (both should be empty). */
  leftovers(): { pids: number[]; cgroups: string[] };
  /**
   * leftovers() once it is empty, or as it stands after `ms`: a process killed a moment ago may still
   * be exiting (seen in a fresh-clone CI run), while one that was leaked is still there when time is up.
   */
  settledLeftovers(ms: number): Promise<{ pids: number[]; cgroups: string[] }>;
}

const sleepSync = (ms: number) => Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
/** Settles with the promise's value, or undefined after ms (the timer does not outlive it). */
export function within<T>(p: Promise<T>, ms: number): Promise<T | undefined> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  return Promise.race([p, new Promise<undefined>((r) => { timer = setTimeout(() => r(undefined), ms); })]).finally(() => clearTimeout(timer));
}

function readText(path: string): string | undefined {
  try { return readFileSync(path, 'utf8'); } catch { return undefined; }
}
function nsId(pid: number, kind: string): string | undefined {
  try { return readlinkSync(`/proc/${pid}/ns/${kind}`); } catch { return undefined; }
}
/** Dead, or a zombie nobody reaped yet. */
function gone(pid: number): boolean {
  const stat = readText(`/proc/${pid}/stat`);
  if (stat === undefined) return true;
  return stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z');
}
function childrenOf(pid: number): number[] {
  const direct = readText(`/proc/${pid}/task/${pid}/children`);
  if (direct !== undefined) return direct.trim().split(/\s+/).filter(Boolean).map(Number);
  const out: number[] = [];
  for (const e of readdirSync('/proc')) {
    if (!/^\d+$/.test(e)) continue;
    const stat = readText(`/proc/${e}/stat`);
    if (stat && Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]) === pid) out.push(Number(e));
  }
  return out;
}
/** Host pids of processes in the given namespace (e.g. 'pid:[4026532]' of kind 'pid'). */
function pidsIn(kind: string, id: string): number[] {
  const out: number[] = [];
  for (const e of readdirSync('/proc')) {
    if (/^\d+$/.test(e) && nsId(Number(e), kind) === id && !gone(Number(e))) out.push(Number(e));
  }
  return out;
}

/** cgroup dirs runc made for this namespace ("/<namespace>/<id>" in every hierarchy), deepest first. */
function cgroupDirs(namespace: string): string[] {
  const roots = [join('/sys/fs/cgroup', namespace)];
  try { for (const h of readdirSync('/sys/fs/cgroup')) roots.push(join('/sys/fs/cgroup', h, namespace)); } catch { /* no cgroupfs */ }
  const out: string[] = [];
  const walk = (d: string) => {
    let st;
    try { st = statSync(d); } catch { return; }
    if (!st.isDirectory()) return;
    for (const e of readdirSync(d, { withFileTypes: true })) if (e.isDirectory()) walk(join(d, e.name));
    out.push(d);
  };
  for (const r of new Set(roots)) walk(r);
  return out;
}

function removeCgroups(namespace: string, waitMs: number): string[] {
  const deadline = Date.now() + waitMs;
  for (;;) {
    const left: string[] = [];
    for (const d of cgroupDirs(namespace)) {
      try { rmdirSync(d); } catch { left.push(d); }
    }
    if (left.length === 0 || Date.now() > deadline) return left;
    sleepSync(50);
  }
}

function tomlString(s: string): string { return JSON.stringify(s); }

export async function startContainerd(scope: TestScope, opts: ContainerdOptions): Promise<Containerd> {
  const namespace = opts.namespace ?? scope.prefix;
  if (!/^[A-Za-z0-9]+(?:[._-][A-Za-z0-9]+)*$/.test(namespace)) throw new Error(`bad containerd namespace ${namespace}`);
  const nodeNs = opts.nodeNetns.includes('/') ? opts.nodeNetns : netnsPath(opts.nodeNetns);
  let n = 1;
  while (existsSync(join(scope.dir, `containerd${n}`))) n++;
  const dir = join(scope.dir, `containerd${n}`);
  const cniCacheDir = join(dir, 'cni-cache');
  const runDir = join(dir, 'run');
  for (const d of [dir, cniCacheDir, runDir, join(dir, 'root'), join(dir, 'state')]) mkdirSync(d, { recursive: true });
  const address = join(dir, 'containerd.sock');
  if (address.length > 100) throw new Error(`socket path too long for AF_UNIX: ${address}`);
  const config = join(dir, 'config.toml');
  writeFileSync(config, [
    'version = 2',
    `root = ${tomlString(join(dir, 'root'))}`,
    `state = ${tomlString(join(dir, 'state'))}`,
    // Only what ctr run needs; the others would only look for host paths or devices.
    'disabled_plugins = ["io.containerd.grpc.v1.cri", "io.containerd.internal.v1.opt", "io.containerd.snapshotter.v1.btrfs",',
    '  "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.aufs",',
    '  "io.containerd.tracing.processor.v1.otlp", "io.containerd.internal.v1.tracing"]',
    '[grpc]', `  address = ${tomlString(address)}`,
    '[ttrpc]', `  address = ${tomlString(address + '.ttrpc')}`,
    '[debug]', '  level = "info"',
    '',
  ].join('\n'));

  // Mount points for the bind mounts. Creating them (empty) is the one change on the host's
  // filesystem; they stay, because another run may be using them in its own mount namespace.
  const script = [
    'set -e',
    'mkdir -p /etc/cni/net.d /opt/cni/bin /var/lib/cni /run/containerd',
    'mount --bind "$1" /etc/cni/net.d',
    'mount --bind "$2" /opt/cni/bin',
    'mount --bind "$3" /var/lib/cni',
    'mount --bind "$4" /run/containerd',
    'exec nsenter --net="$5" containerd --config "$6"',
  ].join('\n');
  const env = { ...process.env, PATH: `${dirname(process.execPath)}:${process.env.PATH ?? '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'}` };
  const logPath = join(dir, 'containerd.log');
  const logFd = openSync(logPath, 'a');
  const owner: ChildProcess = spawn('setpriv', ['--pdeathsig', 'KILL',
    'unshare', '--mount', '--propagation', 'private', '--pid', '--fork', '--kill-child', '--mount-proc', '--',
    'sh', '-c', script, 'sh', opts.cniConfDir, opts.cniBinDir, cniCacheDir, runDir, nodeNs, config],
  { stdio: ['ignore', logFd, logFd], env });
  closeSync(logFd);
  const ownerPid = owner.pid;
  if (ownerPid === undefined) throw new Error('could not start unshare');
  let ownerExited = false;
  const ownerExit = new Promise<void>((resolve) => owner.once('exit', () => { ownerExited = true; resolve(); }));
  owner.once('error', () => { ownerExited = true; });

  const logTail = () => (readText(logPath) ?? '').split('\n').slice(-15).join('\n');
  const attached = new Map<string, { child: ChildProcess; exited: Promise<CtrResult> }>();
  let initPid = 0;
  let pidNs: string | undefined;   // 'pid:[...]' of the private pid namespace
  let mntNs: string | undefined;
  let stopped = false;

  /**
   * Ends everything by pid: pid 1 of the pid namespace, which takes every process in it along
   * (containerd, shims, containers, ctr, plugins). unshare and the nsenter processes in front of
   * ctr then exit by themselves and stay zombies of ours until node reaps them, so pid 1 of the
   * host is never left with orphans to reap; they get SIGKILL only if they linger.
   * Only pids that are provably still ours are signalled: pid 1 while it is in our pid namespace,
   * children of node while node has not reaped them (until then their pid cannot be reused).
   */
  const killAll = (waitMs: number) => {
    const deadline = Date.now() + waitMs;
    const ours = (c: ChildProcess) => c.pid !== undefined && c.exitCode === null && c.signalCode === null;
    const helpers = () => [owner, ...[...attached.values()].map((a) => a.child)].filter(ours);
    if (initPid && pidNs && nsId(initPid, 'pid') === pidNs) {
      try { process.kill(initPid, 'SIGKILL'); } catch { /* gone */ }
      while (Date.now() < deadline && (!gone(initPid) || pidsIn('pid', pidNs).length > 0)) sleepSync(20);
      const soon = Math.min(deadline, Date.now() + 1000);
      while (Date.now() < soon && helpers().some((c) => !gone(c.pid!))) sleepSync(20);
    }
    for (const c of helpers()) if (!gone(c.pid!)) { try { process.kill(c.pid!, 'SIGKILL'); } catch { /* gone */ } }
    if (pidNs) while (Date.now() < deadline && pidsIn('pid', pidNs).length > 0) sleepSync(20);
    return removeCgroups(namespace, Math.max(0, deadline - Date.now()));
  };
  scope.onCleanup(() => { if (!stopped) { stopped = true; killAll(5000); } });

  // Wait for pid 1 of the new pid namespace, then for containerd to answer.
  const started = Date.now();
  while (!initPid) {
    if (ownerExited) throw new Error(`containerd did not start:\n${logTail()}`);
    const kids = childrenOf(ownerPid);
    const ns = nsId(ownerPid, 'pid_for_children');
    if (kids.length === 1 && ns && nsId(kids[0], 'pid') === ns) {
      initPid = kids[0];
      pidNs = ns;
      mntNs = nsId(ownerPid, 'mnt');
    } else if (Date.now() - started > 10_000) throw new Error(`no pid namespace init under unshare ${ownerPid}:\n${logTail()}`);
    else await sleep(10);
  }

  const nsenterArgs = () => [`--mount=/proc/${ownerPid}/ns/mnt`, `--pid=/proc/${ownerPid}/ns/pid_for_children`, `--net=${nodeNs}`];
  // (setns into a mount namespace moves cwd to its root: relative paths in ctr args would not resolve.)
  const ctrArgv = (args: string[]) => [...nsenterArgs(), 'ctr', '--address', address, '--namespace', namespace, ...args];

  const ctrRaw = (args: string[], o: CtrOptions = {}): Promise<CtrResult> => new Promise((resolve, reject) => {
    if (ownerExited) { reject(new Error(`containerd is gone (ctr ${args.join(' ')}):\n${logTail()}`)); return; }
    const child = spawn('nsenter', ctrArgv(args), { stdio: ['ignore', 'pipe', 'pipe'], env });
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (b: Buffer) => { stdout += b.toString(); });
    child.stderr!.on('data', (b: Buffer) => { stderr += b.toString(); });
    const timer = setTimeout(() => {
      // nsenter forked ctr into the pid namespace: end that child first, then nsenter itself.
      if (child.pid === undefined) return;
      for (const k of childrenOf(child.pid)) if (pidNs && nsId(k, 'pid') === pidNs) { try { process.kill(k, 'SIGKILL'); } catch { /* gone */ } }
      try { process.kill(child.pid, 'SIGKILL'); } catch { /* gone */ }
    }, o.timeoutMs ?? 30_000);
    child.on('error', (e) => { clearTimeout(timer); reject(e); });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      const r = { code: code ?? (signal ? 128 : 1), stdout, stderr };
      if (r.code !== 0 && !o.allowFailure) reject(new Error(`ctr ${args.join(' ')}: exit ${code ?? signal}\n${stderr}${stdout}`));
      else resolve(r);
    });
  });
  const ctr = async (args: string[], o: CtrOptions = {}) => (await ctrRaw(args, o)).stdout;

  for (;;) {
    const r = existsSync(address) ? await ctrRaw(['version'], { allowFailure: true, timeoutMs: 5000 }) : undefined;
    if (r && r.code === 0) break;
    if (ownerExited || Date.now() - started > 15_000) {
      killAll(3000);
      stopped = true;
      throw new Error(`containerd did not come up:\n${r ? r.stderr : ''}\n${logTail()}`);
    }
    await sleep(50);
  }

  const taskStatus = async (id: string): Promise<string | undefined> => {
    const out = await ctr(['task', 'ls']);
    for (const line of out.split('\n').slice(1)) {
      const [tid, , status] = line.trim().split(/\s+/);
      if (tid === id) return status;
    }
    return undefined;
  };
  const containers = async () => (await ctr(['containers', 'ls', '-q'])).split('\n').map((s) => s.trim()).filter(Boolean);

  const runAttached = async (image: string, id: string, cmd: string[]): Promise<AttachedContainer> => {
    const child = spawn('nsenter', ctrArgv(['run', '--cni', '--rm', image, id, ...cmd]), { stdio: ['ignore', 'pipe', 'pipe'], env });
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (b: Buffer) => { stdout += b.toString(); });
    child.stderr!.on('data', (b: Buffer) => { stderr += b.toString(); });
    let done = false;
    const exited = new Promise<CtrResult>((resolve) => {
      child.on('error', (e) => { done = true; resolve({ code: 127, stdout, stderr: stderr + String(e) }); });
      child.on('close', (code, signal) => { done = true; resolve({ code: code ?? (signal ? 128 : 1), stdout, stderr }); });
    });
    attached.set(id, { child, exited });
    // The task turns RUNNING only after ctr's CNI ADD succeeded (ctr: NewTask, network.Setup, task.Start).
    const deadline = Date.now() + 30_000;
    for (;;) {
      if (done) {
        const r = await exited;
        throw new Error(`ctr run --cni ${id} exited with ${r.code} before its task ran:\n${r.stderr}${r.stdout}`);
      }
      if ((await taskStatus(id)) === 'RUNNING') break;
      if (Date.now() > deadline) throw new Error(`task ${id} not running after 30 s:\n${stderr}`);
      await sleep(50);
    }
    return { id, pid: child.pid!, exited };
  };

  const runDetached = async (image: string, id: string, cmd: string[]) => {
    await ctr(['run', '-d', '--cni', image, id, ...cmd]);
    const status = await taskStatus(id);
    if (status !== 'RUNNING') throw new Error(`task ${id} is ${status ?? 'missing'} after ctr run -d`);
  };

  const stop = async () => {
    if (stopped) return;
    try {
      // Attached containers: kill the task; their ctr runs CNI DEL and removes the container.
      for (const [id, a] of attached) {
        if (a.child.exitCode !== null || a.child.signalCode !== null) continue;
        await ctrRaw(['task', 'kill', '-s', 'KILL', id], { allowFailure: true });
        await within(a.exited, 10_000);
      }
      const tasks = (await ctr(['task', 'ls', '-q'])).split('\n').map((s) => s.trim()).filter(Boolean);
      for (const t of tasks) await ctrRaw(['task', 'delete', '--force', t], { allowFailure: true });
      for (const c of await containers()) await ctrRaw(['containers', 'delete', c], { allowFailure: true });
    } finally {
      stopped = true;
      const left = killAll(5000);
      await within(ownerExit, 5000);
      if (left.length) throw new Error(`cgroups left behind: ${left.join(' ')}`);
    }
  };

  const leftovers = () => ({
    pids: [...new Set([...(pidNs ? pidsIn('pid', pidNs) : []), ...(mntNs ? pidsIn('mnt', mntNs) : [])])],
    cgroups: cgroupDirs(namespace),
  });

  return {
    namespace, dir, cniCacheDir, pid: initPid,
    ctr: ctr as Containerd['ctr'], ctrRaw,
    importImage: async (tarPath: string) => { await ctr(['images', 'import', tarPath], { timeoutMs: 60_000 }); },
    cniContainerId: (id: string) => `${namespace}-${id}`,
    runDetached, runAttached, containers, stop, leftovers,
    async settledLeftovers(ms: number) {
      const deadline = Date.now() + ms;
      for (;;) {
        const left = leftovers();
        if ((left.pids.length === 0 && left.cgroups.length === 0) || Date.now() > deadline) return left;
        await sleep(50);
      }
    },
  };
}
