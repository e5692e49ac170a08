// securityContext of pods and containers: who a container runs as and which capabilities it holds.
// Validated as the rest of a manifest is (field path and value in every error), and checked across
// pod and container, since a container's fields override its pod's: a container that would run as
// root under runAsNonRoot is refused at apply, where the kubelet would only fail to start it.
import type { ContainerSecurityContext, SecurityContext } from './types.js';

type Fail = (path: string, problem: string) => never;

/** Linux's capabilities (6.x), as Kubernetes names them: without the CAP_ prefix. */
export const CAPABILITIES = ['CHOWN', 'DAC_OVERRIDE', 'DAC_READ_SEARCH', 'FOWNER', 'FSETID', 'KILL', 'SETGID', 'SETUID',
  'SETPCAP', 'LINUX_IMMUTABLE', 'NET_BIND_SERVICE', 'NET_BROADCAST', 'NET_ADMIN', 'NET_RAW', 'IPC_LOCK', 'IPC_OWNER',
  'SYS_MODULE', 'SYS_RAWIO', 'SYS_CHROOT', 'SYS_PTRACE', 'SYS_PACCT', 'SYS_ADMIN', 'SYS_BOOT', 'SYS_NICE', 'SYS_RESOURCE',
  'SYS_TIME', 'SYS_TTY_CONFIG', 'MKNOD', 'LEASE', 'AUDIT_WRITE', 'AUDIT_CONTROL', 'SETFCAP', 'MAC_OVERRIDE', 'MAC_ADMIN',
  'SYSLOG', 'WAKE_ALARM', 'BLOCK_SUSPEND', 'AUDIT_READ', 'PERFMON', 'BPF', 'CHECKPOINT_RESTORE'] as const;

/** Fields that change nothing here (no seccomp, SELinux or AppArmor; the host root is always read-only): dropped. */
const IGNORED_POD = ['fsGroup', 'fsGroupChangePolicy', 'supplementalGroups', 'supplementalGroupsPolicy', 'seccompProfile',
  'seLinuxOptions', 'appArmorProfile', 'sysctls', 'windowsOptions', 'seLinuxChangePolicy'];
const IGNORED_CONTAINER = ['allowPrivilegeEscalation', 'readOnlyRootFilesystem', 'procMount', 'seccompProfile',
  'seLinuxOptions', 'appArmorProfile', 'windowsOptions'];

const show = (v: unknown): string => {
  const s = JSON.stringify(v) ?? String(v);
  return s.length > 60 ? `${s.slice(0, 57)}...` : s;
};

const isMapping = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

function fields(m: Record<string, unknown>, path: string, known: string[], ignored: string[], fail: Fail): void {
  for (const k of Object.keys(m)) {
    if (!known.includes(k) && !ignored.includes(k)) fail(`${path}.${k}`, `field is not supported by flatnet (it reads ${known.join(', ')})`);
  }
}

/** A uid or gid as Kubernetes allows it: 0 to 2^31-1. */
function id(v: unknown, path: string, fail: Fail): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > 2147483647) fail(path, `${show(v)} is not a user or group id (a whole number 0-2147483647)`);
  return v;
}

function bool(v: unknown, path: string, fail: Fail): boolean {
  if (typeof v !== 'boolean') fail(path, `${show(v)} is not a boolean (true or false)`);
  return v;
}

function capList(v: unknown, path: string, fail: Fail): string[] {
  if (!Array.isArray(v)) fail(path, `${show(v)} is not a list of capability names`);
  return v.map((c, i) => {
    const name = typeof c === 'string' ? c.toUpperCase().replace(/^CAP_/, '') : undefined;
    if (name !== 'ALL' && !(CAPABILITIES as readonly string[]).includes(name ?? '')) {
      fail(`${path}[${i}]`, `${show(c)} is not a capability (ALL, or a Linux capability such as NET_ADMIN, NET_RAW, NET_BIND_SERVICE)`);
    }
    return c as string;
  });
}

function common(m: Record<string, unknown>, path: string, fail: Fail): SecurityContext {
  const sc: SecurityContext = {};
  if (m.runAsUser !== undefined) sc.runAsUser = id(m.runAsUser, `${path}.runAsUser`, fail);
  if (m.runAsGroup !== undefined) sc.runAsGroup = id(m.runAsGroup, `${path}.runAsGroup`, fail);
  if (m.runAsNonRoot !== undefined) sc.runAsNonRoot = bool(m.runAsNonRoot, `${path}.runAsNonRoot`, fail);
  return sc;
}

export function parsePodSecurityContext(v: unknown, path: string, fail: Fail): SecurityContext {
  if (!isMapping(v)) return fail(path, `${show(v)} is not a mapping`);
  fields(v, path, ['runAsUser', 'runAsGroup', 'runAsNonRoot'], IGNORED_POD, fail);
  return common(v, path, fail);
}

export function parseContainerSecurityContext(v: unknown, path: string, fail: Fail): ContainerSecurityContext {
  if (!isMapping(v)) return fail(path, `${show(v)} is not a mapping`);
  fields(v, path, ['runAsUser', 'runAsGroup', 'runAsNonRoot', 'privileged', 'capabilities'], IGNORED_CONTAINER, fail);
  const sc: ContainerSecurityContext = common(v, path, fail);
  if (v.privileged !== undefined) sc.privileged = bool(v.privileged, `${path}.privileged`, fail);
  if (v.capabilities !== undefined) {
    const caps = v.capabilities;
    if (!isMapping(caps)) fail(`${path}.capabilities`, `${show(caps)} is not a mapping (add, drop)`);
    fields(caps, `${path}.capabilities`, ['add', 'drop'], [], fail);
    sc.capabilities = {};
    if (caps.add !== undefined) sc.capabilities.add = capList(caps.add, `${path}.capabilities.add`, fail);
    if (caps.drop !== undefined) sc.capabilities.drop = capList(caps.drop, `${path}.capabilities.drop`, fail);
  }
  return sc;
}

/** The uid a container runs as when neither it nor its pod names one, and its group. */
export const DEFAULT_RUN_AS = 65532;

/** The uid a container runs as: its own runAsUser, its pod's, root when privileged, else DEFAULT_RUN_AS. */
export function effectiveUser(pod: SecurityContext | undefined, c: ContainerSecurityContext | undefined): number {
  return c?.runAsUser ?? pod?.runAsUser ?? (c?.privileged ? 0 : DEFAULT_RUN_AS);
}

/** Refuses a container that would run as root while it or its pod says runAsNonRoot. */
export function checkNonRoot(pod: SecurityContext | undefined, c: ContainerSecurityContext | undefined, podPath: string, containerPath: string, fail: Fail): void {
  const nonRoot = c?.runAsNonRoot ?? pod?.runAsNonRoot;
  if (!nonRoot || effectiveUser(pod, c) !== 0) return;
  const from = c?.runAsUser === 0 ? `${containerPath}.securityContext.runAsUser` : c?.privileged && pod?.runAsUser === undefined
    ? `${containerPath}.securityContext.privileged` : `${podPath}.securityContext.runAsUser`;
  fail(from, `runs the container as root (uid 0), but runAsNonRoot is true${c?.privileged && c.runAsUser === undefined ? ' (a privileged container runs as root unless runAsUser says otherwise)' : ''}`);
}
