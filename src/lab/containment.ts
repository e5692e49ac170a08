// How a lab container is contained, as a real runtime contains one, with util-linux alone: its own mount,
// pid, IPC and UTS namespaces, the host's files read-only with its secrets and the lab's state hidden,
// and the user and capabilities its securityContext names (by default a user that owns nothing on the
// host, and no capabilities). Pure: a plan from the pod spec, then the argv and shell script that carry
// it out; the kubelet starts that argv and `flatnet exec` joins the result.
import type { Container, PodSpec } from '../api/types.js';
import { CAPABILITIES, DEFAULT_RUN_AS, effectiveUser } from '../api/security-context.js';

/** Who a container's processes are, and what they may do. */
export interface Identity {
  uid: number;
  gid: number;
  /** Capability names (Kubernetes spelling, no CAP_ prefix), sorted. */
  caps: string[];
  /** Every capability and no no_new_privs: the container may undo its own containment, as in Kubernetes. */
  privileged: boolean;
}

export interface ContainmentPlan {
  identity: Identity;
  /** The pod's hostname in its own UTS namespace; absent for host-network pods (they keep the node's). */
  hostname?: string;
  /** Directories covered by an empty tmpfs (mode as octal text): the container cannot see below them. */
  hide: Array<{ path: string; mode: string; size: string }>;
  /** Files covered by /dev/null: readable, and empty. */
  mask: string[];
  /** Directories under a hidden one bound back read-only (the commands the container runs). */
  keep: string[];
}

/** Directories every container gets its own copy of, or none: temp files, shared memory, root's home, named netns. */
const PRIVATE_DIRS: ContainmentPlan['hide'] = [
  { path: '/tmp', mode: '1777', size: '64m' },
  { path: '/dev/shm', mode: '1777', size: '64m' },
  { path: '/root', mode: '0700', size: '1m' },
  { path: '/run/netns', mode: '0755', size: '1m' },
];
/** The host's password hashes. */
const SECRETS = ['/etc/shadow', '/etc/shadow-', '/etc/gshadow', '/etc/gshadow-'];

/**
 * The capabilities a container holds: none by default (a container asks for what it needs), then as
 * containerd applies securityContext.capabilities: add ALL, drop ALL, each add, each drop.
 */
export function containerCaps(c: Container): string[] {
  const sc = c.securityContext;
  if (sc?.privileged) return [...CAPABILITIES].sort();
  const norm = (n: string) => n.toUpperCase().replace(/^CAP_/, '');
  const add = (sc?.capabilities?.add ?? []).map(norm);
  const drop = (sc?.capabilities?.drop ?? []).map(norm);
  let caps = new Set<string>(add.includes('ALL') ? CAPABILITIES : []);
  if (drop.includes('ALL')) caps = new Set();
  for (const a of add) if (a !== 'ALL') caps.add(a);
  for (const d of drop) caps.delete(d);
  return [...caps].sort();
}

/** Capability names of a /proc status mask (CapBnd): what this host can give at all. */
export function capsOfMask(hex: string): string[] {
  const mask = BigInt(`0x${hex}`);
  return CAPABILITIES.filter((_, bit) => (mask >> BigInt(bit)) & 1n).sort();
}

/** `hostCaps`: the capabilities this host has (a privileged container gets those; asking for more fails). */
export function containerIdentity(spec: PodSpec, c: Container, hostCaps: readonly string[] = CAPABILITIES): Identity {
  const uid = effectiveUser(spec.securityContext, c.securityContext);
  // The group follows the user when none is named, so the default user's files are its own group's too.
  const gid = c.securityContext?.runAsGroup ?? spec.securityContext?.runAsGroup ?? (uid === DEFAULT_RUN_AS ? DEFAULT_RUN_AS : 0);
  const caps = containerCaps(c);
  return { uid, gid, caps: c.securityContext?.privileged ? caps.filter((x) => hostCaps.includes(x)) : caps, privileged: !!c.securityContext?.privileged };
}

const under = (path: string, dir: string) => path === dir || path.startsWith(dir.endsWith('/') ? dir : `${dir}/`);

/**
 * The plan for one container. `hiddenDirs` are the node's state (CNI sockets, the lab's directory);
 * `keepDirs` what the container must still run from (the node's bin dir), bound back when hidden.
 */
export function planContainment(o: { spec: PodSpec; container: Container; podName: string; hiddenDirs: string[]; keepDirs: string[]; hostCaps?: readonly string[] }): ContainmentPlan {
  const all = [...PRIVATE_DIRS, ...o.hiddenDirs.map((path) => ({ path, mode: '0755', size: '1m' }))];
  // A directory inside another hidden one is hidden with it.
  const hide = all.filter((h, i) => !all.some((o2, j) => j !== i && under(h.path, o2.path) && (h.path !== o2.path || j < i)));
  return {
    identity: containerIdentity(o.spec, o.container, o.hostCaps),
    hostname: o.spec.hostNetwork ? undefined : o.podName,
    hide,
    mask: SECRETS,
    keep: o.keepDirs.filter((k) => hide.some((h) => under(k, h.path))),
  };
}

/** setpriv's options for an identity: the user, no supplementary groups, exactly the plan's capabilities. */
export function setprivArgs(id: Identity): string[] {
  const args = [`--reuid=${id.uid}`, `--regid=${id.gid}`, '--clear-groups'];
  if (id.privileged && id.uid === 0) return args;
  const set = id.caps.map((c) => `+${c.toLowerCase()}`).join(',');
  const caps = set ? `-all,${set}` : '-all';
  args.push(`--inh-caps=${caps}`, `--bounding-set=${caps}`);
  // Ambient capabilities carry a non-root user's capabilities across exec, as it expects when it asked for them.
  if (id.uid !== 0 && set) args.push(`--ambient-caps=${caps}`);
  if (!id.privileged) args.push('--no-new-privs');
  return args;
}

const q = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

/**
 * The container's pid 1: starts the command and passes SIGTERM, SIGINT and SIGHUP on to it (a plain
 * pid 1 would ignore a SIGTERM it has no handler for, and every delete would wait out its grace period).
 */
export const INIT_SCRIPT = [
  '"$@" & c=$!',
  'for s in TERM INT HUP; do trap "kill -$s $c 2>/dev/null" $s; done',
  'while :; do wait $c; s=$?; kill -0 $c 2>/dev/null || exit $s; done',
].join('\n');

/** The shell script that sets up the mount namespace as root, then becomes the container (its argv is "$@"). */
export function setupScript(plan: ContainmentPlan): string {
  const lines = ['fail() { echo "flatnet containment: $*" >&2; exit 126; }'];
  // The kept directories are opened before anything hides them, then bound back through /proc/self/fd.
  plan.keep.forEach((k, i) => lines.push(`exec ${i + 3}<${q(k)} || fail ${q(`cannot open ${k}`)}`));
  lines.push(
    // Every mount read-only, with its other flags kept: the container writes nothing of the host's.
    // Mounts below a directory about to be hidden are skipped: a host with many named netns has one mount each.
    'while read -r _ _ _ _ mp opts _; do',
    `  case $mp in /proc|/proc/*${plan.hide.map((h) => `|${q(h.path)}|${q(h.path)}/*`).join('')}) continue;; esac`,
    '  case $opts in ro|ro,*) continue;; esac',
    "  case $mp in *\\\\*) mp=$(printf '%b' \"$mp\");; esac",
    '  mount -o "remount,bind,ro,${opts#rw,}" "$mp" 2>/dev/null || mount -o remount,bind,ro "$mp" || fail "cannot make $mp read-only"',
    'done </proc/self/mountinfo',
  );
  for (const h of plan.hide) {
    lines.push(`[ ! -d ${q(h.path)} ] || mount -t tmpfs -o mode=${h.mode},size=${h.size},nosuid,nodev tmpfs ${q(h.path)} || fail ${q(`cannot hide ${h.path}`)}`);
  }
  for (const f of plan.mask) lines.push(`[ ! -e ${q(f)} ] || mount --bind /dev/null ${q(f)} || fail ${q(`cannot mask ${f}`)}`);
  plan.keep.forEach((k, i) => {
    lines.push(`mkdir -p ${q(k)} && mount --no-canonicalize --bind /proc/self/fd/${i + 3} ${q(k)} && mount -o remount,bind,ro,nosuid,nodev ${q(k)} || fail ${q(`cannot keep ${k}`)}`,
      `exec ${i + 3}<&-`);
  });
  if (plan.hostname) lines.push(`hostname ${q(plan.hostname)} || fail 'cannot set the hostname'`);
  lines.push(`cd / && exec setpriv ${setprivArgs(plan.identity).join(' ')} -- /bin/sh -c ${q(INIT_SCRIPT)} init "$@"`);
  return lines.join('\n');
}

/**
 * The argv that runs `argv` contained, from the pod's network namespace (or the node's). unshare forks
 * the namespaces' pid 1 and stays as its parent: the process to signal is that child, not unshare.
 */
export function containedArgv(plan: ContainmentPlan, argv: string[]): string[] {
  const ns = ['--mount', '--pid', '--ipc', ...(plan.hostname ? ['--uts'] : []), '--fork', '--kill-child', '--mount-proc', '--propagation', 'private'];
  return ['unshare', ...ns, '--', '/bin/sh', '-c', setupScript(plan), 'contain', ...argv];
}

/** The argv that runs `argv` inside a running container (its init's pid), as it runs: `kubectl exec`. */
export function execArgv(initPid: number, identity: Identity, argv: string[]): string[] {
  return ['nsenter', `--target=${initPid}`, '--mount', '--pid', '--ipc', '--uts', '--net', '--wd=/', '--', 'setpriv', ...setprivArgs(identity), '--', ...argv];
}
