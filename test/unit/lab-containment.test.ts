// The containment plan: from a pod spec to who a container runs as, what it may do and what it sees,
// and the argv that carries it out. Pure; test/system/containment.test.ts runs it for real.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { capsOfMask, containedArgv, containerIdentity, execArgv, planContainment, setprivArgs, setupScript } from '../../src/lab/containment.js';
import { ManifestError, parseManifests } from '../../src/api/manifest.js';
import type { Container, PodSpec } from '../../src/api/types.js';
import { containerDirs } from '../../src/lab/kubelet.js';

const spec = (c: Partial<Container> = {}, pod: Partial<PodSpec> = {}): PodSpec => ({ containers: [{ name: 'c', ...c }], ...pod });

test('by default a container runs as 65532:65532 with no capabilities and no_new_privs', () => {
  const s = spec();
  assert.deepEqual(containerIdentity(s, s.containers[0]), { uid: 65532, gid: 65532, caps: [], privileged: false });
  assert.deepEqual(setprivArgs(containerIdentity(s, s.containers[0])),
    ['--reuid=65532', '--regid=65532', '--clear-groups', '--inh-caps=-all', '--bounding-set=-all', '--no-new-privs']);
});

test('runAsUser/runAsGroup: the container\'s win over the pod\'s; a named user\'s group defaults to 0', () => {
  const s = spec({ securityContext: { runAsUser: 1000 } }, { securityContext: { runAsUser: 2000, runAsGroup: 3000 } });
  assert.deepEqual(containerIdentity(s, s.containers[0]), { uid: 1000, gid: 3000, caps: [], privileged: false });
  const p = spec({}, { securityContext: { runAsUser: 0 } });
  assert.deepEqual(containerIdentity(p, p.containers[0]), { uid: 0, gid: 0, caps: [], privileged: false });
});

test('capabilities: add, drop and ALL applied as containerd does; non-root users get them as ambient', () => {
  const caps = (add?: string[], drop?: string[]) => { const s = spec({ securityContext: { capabilities: { add, drop } } }); return containerIdentity(s, s.containers[0]).caps; };
  assert.deepEqual(caps(['NET_RAW', 'CAP_NET_ADMIN']), ['NET_ADMIN', 'NET_RAW']);
  assert.deepEqual(caps(['ALL'], ['SYS_ADMIN']).includes('SYS_ADMIN'), false);
  assert.equal(caps(['ALL']).length, 41);
  assert.deepEqual(caps(['NET_RAW'], ['ALL']), ['NET_RAW']);
  const s = spec({ securityContext: { capabilities: { add: ['NET_BIND_SERVICE'] } } });
  assert.deepEqual(setprivArgs(containerIdentity(s, s.containers[0])).slice(3),
    ['--inh-caps=-all,+net_bind_service', '--bounding-set=-all,+net_bind_service', '--ambient-caps=-all,+net_bind_service', '--no-new-privs']);
});

test('privileged: root with every capability the host has, and no no_new_privs', () => {
  const s = spec({ securityContext: { privileged: true } });
  const id = containerIdentity(s, s.containers[0], ['NET_ADMIN', 'SYS_ADMIN']);
  assert.deepEqual(id, { uid: 0, gid: 0, caps: ['NET_ADMIN', 'SYS_ADMIN'], privileged: true });
  assert.deepEqual(setprivArgs(id), ['--reuid=0', '--regid=0', '--clear-groups']);
  assert.deepEqual(capsOfMask('3000'), ['NET_ADMIN', 'NET_RAW']);
});

test('the plan hides the node\'s state and secrets, keeps the bin dir, and runs in new mount, pid, ipc and uts namespaces', () => {
  const s = spec();
  const plan = planContainment({ spec: s, container: s.containers[0], podName: 'web', hiddenDirs: ['/run/flatnet', '/run/flatnet/lab/x', '/tmp/t1/labs/l'], keepDirs: ['/tmp/t1/labs/l/nodes/n/bin', '/usr/bin'] });
  assert.deepEqual(plan.hide.map((h) => h.path), ['/tmp', '/dev/shm', '/root', '/run/netns', '/run/flatnet']);
  assert.deepEqual(plan.keep, ['/tmp/t1/labs/l/nodes/n/bin']);
  assert.ok(plan.mask.includes('/etc/shadow'));
  const argv = containedArgv(plan, ['flatnet', 'serve']);
  assert.deepEqual(argv.slice(0, 10), ['unshare', '--mount', '--pid', '--ipc', '--uts', '--fork', '--kill-child', '--mount-proc', '--propagation', 'private']);
  assert.deepEqual(argv.slice(-2), ['flatnet', 'serve']);
  const script = setupScript(plan);
  assert.match(script, /exec 3<'\/tmp\/t1\/labs\/l\/nodes\/n\/bin'/);
  assert.match(script, /mount -t tmpfs -o mode=0755,size=1m,nosuid,nodev tmpfs '\/run\/flatnet'/);
  assert.match(script, /mount --bind \/dev\/null '\/etc\/shadow'/);
  assert.match(script, /hostname 'web'/);
  // Host-network pods keep the node's hostname (no UTS namespace).
  const h = spec({}, { hostNetwork: true });
  assert.ok(!containedArgv(planContainment({ spec: h, container: h.containers[0], podName: 'h', hiddenDirs: [], keepDirs: [] }), ['x']).includes('--uts'));
});

test('exec joins the container\'s namespaces through its init and runs as its identity', () => {
  const s = spec({ securityContext: { runAsUser: 7 } });
  assert.deepEqual(execArgv(42, containerIdentity(s, s.containers[0]), ['id']),
    ['nsenter', '--target=42', '--mount', '--pid', '--ipc', '--uts', '--net', '--wd=/', '--', 'setpriv', '--reuid=7', '--regid=0', '--clear-groups',
      '--inh-caps=-all', '--bounding-set=-all', '--no-new-privs', '--', 'id']);
});

const pod = (sc: string, podSc = '') => `apiVersion: v1
kind: Pod
metadata: { name: p }
spec:
${podSc ? `  securityContext: ${podSc}\n` : ''}  containers:
    - name: c
      securityContext: ${sc}
`;

test('securityContext is validated: errors name the field and the value', () => {
  const bad: Array<[string, string, RegExp]> = [
    ['{ runAsUser: -1 }', '', /spec\.containers\[0\]\.securityContext\.runAsUser: -1 is not a user or group id/],
    ['{ runAsUser: "1000" }', '', /runAsUser: "1000" is not a user or group id/],
    ['{ privileged: "yes" }', '', /securityContext\.privileged: "yes" is not a boolean/],
    ['{ capabilities: { add: [NET_RAWW] } }', '', /securityContext\.capabilities\.add\[0\]: "NET_RAWW" is not a capability/],
    ['{ capabilities: { keep: [NET_RAW] } }', '', /securityContext\.capabilities\.keep: field is not supported/],
    ['{ runAsUser: 0, runAsNonRoot: true }', '', /spec\.containers\[0\]\.securityContext\.runAsUser: runs the container as root/],
    ['{ privileged: true }', '{ runAsNonRoot: true }', /securityContext\.privileged: runs the container as root/],
    ['{}', '{ runAsUser: 0, runAsNonRoot: true }', /spec\.securityContext\.runAsUser: runs the container as root/],
    ['{}', '{ runAsGroup: 1.5 }', /spec\.securityContext\.runAsGroup: 1\.5 is not a user or group id/],
  ];
  for (const [sc, podSc, re] of bad) assert.throws(() => parseManifests(pod(sc, podSc), 'p.yaml'), (e: Error) => e instanceof ManifestError && re.test(e.message), `${sc} ${podSc}`);
  const [ok] = parseManifests(pod('{ runAsUser: 1000, runAsNonRoot: true, allowPrivilegeEscalation: false, capabilities: { add: [NET_RAW], drop: [ALL] } }', '{ runAsGroup: 5, fsGroup: 9 }'), 'p.yaml');
  assert.deepEqual((ok as { spec: PodSpec }).spec.securityContext, { runAsGroup: 5 });
  assert.deepEqual((ok as { spec: PodSpec }).spec.containers[0].securityContext, { runAsUser: 1000, runAsNonRoot: true, capabilities: { add: ['NET_RAW'], drop: ['ALL'] } });
});

test('a container still runs flatnet when its checkout sits under a directory containers get empty (/tmp)', () => {
  const s = spec();
  const dirs = containerDirs('/tmp/t1/labs/l/nodes/n', '/tmp/t1/labs/l/nodes/n/bin', '/tmp/ci/main/dist/bin');
  assert.deepEqual(dirs.hiddenDirs, ['/run/flatnet', '/tmp/t1/labs/l']);
  const plan = planContainment({ spec: s, container: s.containers[0], podName: 'web', ...dirs });
  assert.deepEqual(plan.keep, ['/tmp/t1/labs/l/nodes/n/bin', '/tmp/ci/main/dist/bin'], 'both are bound back read-only');
  assert.match(setupScript(plan), /exec 4<'\/tmp\/ci\/main\/dist\/bin'/);
});
