// Pods are contained and cannot spoof, on a 3-node lab (two segments, backend auto): a pod's processes
// run as an unprivileged user in their own mount and pid namespaces and cannot reach the node's CNI
// socket or etcd; a pod's packets with a source other than its own, and its VXLAN, are dropped at its
// node, while the same packets with its own source, or VXLAN from a node, arrive; `flatnet check` passes.
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { TestScope } from '../helpers/scope.js';
import { CLI, cluster, labFor, type TestLab } from '../helpers/lab.js';
import { stopDaemon } from '../../src/lab/processes.js';
import { until } from '../helpers/until.js';
import { waitPodsRunning } from '../../src/lab/demo.js';
import { podNetnsName } from '../../src/lab/pods.js';
import { cniSocketPath } from '../../src/cni/server.js';
import type { Pod } from '../../src/api/types.js';

const scope = new TestScope('ctn');
after(() => scope.cleanupSync());
let t: TestLab;
const pods = new Map<string, Pod>();

const MANIFEST = `apiVersion: v1
kind: Pod
metadata: { name: plain }
spec: { nodeName: node-1, containers: [{ name: c, command: [sleep, infinity] }] }
---
apiVersion: v1
kind: Pod
metadata: { name: attacker }
spec:
  nodeName: node-1
  containers: [{ name: c, command: [sleep, infinity], securityContext: { runAsUser: 0, capabilities: { add: [NET_RAW] } } }]
---
apiVersion: v1
kind: Pod
metadata: { name: victim }
spec: { nodeName: node-2, containers: [{ name: c, command: [sleep, infinity] }] }
---
apiVersion: v1
kind: Pod
metadata: { name: target }
spec: { nodeName: node-3, containers: [{ name: c, command: [flatnet, serve, --port, "8080"] }] }
---
apiVersion: v1
kind: Pod
metadata: { name: hostnet }
spec: { nodeName: node-2, hostNetwork: true, containers: [{ name: c, command: [sleep, infinity] }] }
`;

/** Raw IPv4 packets with any source (udp/tcp SYN), or VXLAN over a plain UDP socket carrying one. */
const SENDER = `
import socket, struct, sys
def cs(b):
    if len(b) % 2: b += b'\\0'
    s = sum(struct.unpack('!%dH' % (len(b) // 2), b)); s = (s >> 16) + (s & 0xffff); s += s >> 16
    return ~s & 0xffff
def ip(src, dst, proto, payload):
    h = struct.pack('!BBHHHBBH4s4s', 0x45, 0, 20 + len(payload), 0x1234, 0, 64, proto, 0, socket.inet_aton(src), socket.inet_aton(dst))
    return h[:10] + struct.pack('!H', cs(h)) + h[12:] + payload
def l4(src, dst, proto, seg):
    c = cs(socket.inet_aton(src) + socket.inet_aton(dst) + struct.pack('!BBH', 0, proto, len(seg)) + seg)
    off = 6 if proto == 17 else 16
    return seg[:off] + struct.pack('!H', c) + seg[off + 2:]
def udp(src, dst, port): return ip(src, dst, 17, l4(src, dst, 17, struct.pack('!HHHH', 40000, port, 13, 0) + b'spoof'))
def syn(src, dst, port): return ip(src, dst, 6, l4(src, dst, 6, struct.pack('!HHIIBBHHH', 40001, port, 1, 0, 0x50, 0x02, 64240, 0, 0)))
mode = sys.argv[1]
if mode == 'vxlan':
    node, mac, src, dst, port = sys.argv[2:7]
    eth = bytes.fromhex(mac.replace(':', '')) + bytes.fromhex('02aabbccddee') + b'\\x08\\x00'
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    for _ in range(3): s.sendto(struct.pack('!II', 0x08000000, 1 << 8) + eth + udp(src, dst, int(port)), (node, 8472))
else:
    src, dst, port = sys.argv[2], sys.argv[3], int(sys.argv[4])
    s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
    for _ in range(3): s.sendto(udp(src, dst, port) if mode == 'udp' else syn(src, dst, port), (dst, 0))
`;

const UNIX_CONNECT = `
import socket, sys
for p in sys.argv[1:]:
    s = socket.socket(socket.AF_UNIX)
    try:
        s.connect(p); print('connected', p)
    except OSError as e:
        print('refused', p, e.strerror)
`;

const nodeOf = (name: string) => t.lab.plan().nodes.find((n) => n.name === name)!;
const podIP = (name: string) => pods.get(name)!.status!.podIP!;
const podNs = (name: string) => podNetnsName(t.lab.name, pods.get(name)!.metadata.uid!);
const exec = (pod: string, ...cmd: string[]) => t.cli('exec', `default/${pod}`, '--', ...cmd);

/** Packets counted in the target pod's namespace before anything else sees them, by protocol and port. */
function counters(): Map<string, number> {
  const out = execFileSync('nsenter', [`--net=/run/netns/${podNs('target')}`, 'nft', 'list', 'chain', 'ip', 'seen', 'pre'], { encoding: 'utf8' });
  return new Map([...out.matchAll(/(udp|tcp) dport (\d+) counter packets (\d+)/g)].map((m) => [`${m[1]}/${m[2]}`, Number(m[3])]));
}

before(async () => {
  t = labFor(scope, 'c');
  await t.lab.up(cluster('auto'));
  for (const [name, p] of await t.applyAndRun('pods.yaml', MANIFEST, 5, 60_000)) pods.set(name, p);
  const rules = [9100, 9101, 9102, 9103, 9120, 9121].map((p) => `add rule ip seen pre udp dport ${p} counter`)
    .concat([9110, 9111, 9112, 9113].map((p) => `add rule ip seen pre tcp dport ${p} counter`));
  execFileSync('nsenter', [`--net=/run/netns/${podNs('target')}`, 'nft', '-f', '-'], {
    input: ['add table ip seen', 'add chain ip seen pre { type filter hook prerouting priority -400; }', ...rules].join('\n') + '\n',
  });
});

test('a pod runs as 65532 with no capabilities, sees only its own processes and none of the host\'s secrets or state', () => {
  const r = exec('plain', 'sh', '-c', [
    'echo uid=$(id -u) gid=$(id -g)', 'grep CapEff /proc/self/status', 'echo shadow=$(cat /etc/shadow | wc -c)',
    'echo flatnet=$(ls -A /run/flatnet | wc -l) netns=$(ls -A /run/netns | wc -l)', 'echo procs=$(ps -e -o pid= | wc -l)',
    'ps -e -o args=', 'touch /etc/contained 2>/dev/null && echo wrote""-etc',
    'nsenter --target=1 --net true 2>/dev/null && echo entered""-netns',
    `/usr/bin/python3 -c 'import socket; socket.socket(socket.AF_INET, socket.SOCK_RAW, 255)' 2>/dev/null && echo raw""-socket`,
    // As with containerd 2's defaults: ports below 1024 and ICMP echo (ping sockets), inside the pod's own network namespace.
    `/usr/bin/python3 -c 'import socket; socket.socket().bind(("", 80))' && echo bound-80`, `/usr/bin/python3 -c 'import socket; s = socket.socket(2, 2, 1); s.settimeout(5); s.sendto(b"\\x08\\0\\0\\0\\0\\0\\0\\x01", ("${podIP('target')}", 0)); print("pinged" if s.recv(64)[0] == 0 else "no echo reply")'`, 'true',
  ].join('; '));
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /^uid=65532 gid=65532$/m);
  assert.match(r.stdout, /^CapEff:\s+0+$/m);
  assert.match(r.stdout, /^shadow=0$/m);
  assert.match(r.stdout, /^flatnet=0 netns=0$/m);
  // Its init and sleep, and the exec's sh, subshell, ps and wc: no agent, etcd or other pod.
  assert.match(r.stdout, /^procs=[1-6]$/m, r.stdout);
  assert.doesNotMatch(r.stdout, /agent|etcd|controller|flatnet\.mjs serve/);
  assert.doesNotMatch(r.stdout, /wrote-etc|entered-netns|raw-socket/);
  assert.match(r.stdout, /^bound-80$/m, r.stderr);
  assert.match(r.stdout, /^pinged$/m, r.stderr);
  // The same checks from the host see the shadow file, so the test can fail.
  assert.ok(Number(execFileSync('sh', ['-c', 'cat /etc/shadow | wc -c'], { encoding: 'utf8' })) > 0);
});

test('the node\'s CNI socket and etcd refuse a pod: not in its mount namespace, and root-only on the host', () => {
  const sockets = [cniSocketPath(`/run/netns/${nodeOf('node-1').netns}`), join(t.lab.etcdDir, 'client.sock:1')];
  const host = spawnSync('/usr/bin/python3', ['-c', UNIX_CONNECT, ...sockets], { encoding: 'utf8' });
  assert.equal(host.stdout.match(/^connected/gm)?.length, 2, `root on the node connects to both: ${host.stdout}${host.stderr}`);
  const pod = exec('plain', '/usr/bin/python3', '-c', UNIX_CONNECT, ...sockets);
  assert.equal(pod.stdout.match(/^refused .* No such file or directory$/gm)?.length, 2, pod.stdout + pod.stderr);
  // A process of the pod's user in the host's mount namespace is refused too.
  const user = spawnSync('setpriv', ['--reuid=65532', '--regid=65532', '--clear-groups', '/usr/bin/python3', '-c', UNIX_CONNECT, ...sockets], { encoding: 'utf8' });
  assert.equal(user.stdout.match(/^refused .* Permission denied$/gm)?.length, 2, user.stdout + user.stderr);
});

test('a host-network pod has the node\'s network and nothing more of the node', () => {
  const r = exec('hostnet', 'sh', '-c', 'ip -o -4 addr show dev eth0; echo uid=$(id -u) shadow=$(cat /etc/shadow | wc -c) procs=$(ps -e -o pid= | wc -l)');
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, new RegExp(`inet ${nodeOf('node-2').ip.replace(/\./g, '\\.')}/`));
  assert.match(r.stdout, /uid=65532 shadow=0 procs=[1-6]$/m);
});

test('spoofed TCP SYN and UDP from a pod are dropped at its node; the same packets with its own source arrive', async () => {
  const spoofed = [[podIP('victim'), 1], [nodeOf('node-2').ip, 2], [t.lab.plan().external.ip, 3]] as const;
  for (const [src, i] of spoofed) {
    for (const [proto, base] of [['udp', 9100], ['tcp', 9110]] as const) {
      const r = exec('attacker', '/usr/bin/python3', '-c', SENDER, proto, src, podIP('target'), String(base + i));
      assert.equal(r.status, 0, r.stderr);
    }
  }
  for (const [proto, port] of [['udp', 9100], ['tcp', 9110]] as const) {
    assert.equal(exec('attacker', '/usr/bin/python3', '-c', SENDER, proto, podIP('attacker'), podIP('target'), String(port)).status, 0);
  }
  // The pod's own packets took the same path after the spoofed ones: once they are in, the others had their chance.
  await until('the pod\'s own-source packets to arrive', () => { const c = counters(); return (c.get('udp/9100')! > 0 && c.get('tcp/9110')! > 0) || undefined; });
  const c = counters();
  for (const k of ['udp/9101', 'udp/9102', 'udp/9103', 'tcp/9111', 'tcp/9112', 'tcp/9113']) assert.equal(c.get(k), 0, `${k} (spoofed) arrived`);
});

test('VXLAN forged by a pod is not delivered; the same packet from a node is', async () => {
  const n3 = nodeOf('node-3');
  const mac = (JSON.parse(execFileSync('ip', ['-n', n3.netns, '-j', 'link', 'show', 'flatnet.1'], { encoding: 'utf8' })) as Array<{ address: string }>)[0].address;
  const args = (port: number) => ['-c', SENDER, 'vxlan', n3.ip, mac, '10.244.0.250', podIP('target'), String(port)];
  // From a pod's plain UDP socket: no capability needed.
  const r = exec('plain', '/usr/bin/python3', ...args(9120));
  assert.equal(r.status, 0, r.stderr);
  execFileSync('nsenter', [`--net=/run/netns/${nodeOf('node-1').netns}`, '/usr/bin/python3', ...args(9121)]);
  await until('VXLAN from node-1 to be delivered', () => counters().get('udp/9121')! > 0 || undefined);
  assert.equal(counters().get('udp/9120'), 0, 'VXLAN forged by a pod was delivered');
});

test('flatnet check passes with pods contained and the guard in place', () => {
  const r = t.cli('check');
  assert.equal(r.status, 0, r.stdout + r.stderr);
});

test('flatnet exec needs no store: with etcd stopped it still runs a command in the pod, as the pod', async () => {
  // Last in this file: the lab has no store afterwards.
  await stopDaemon(t.lab.pidFile('etcd'), { graceMs: 0 });
  const r = spawnSync(process.execPath, [CLI, '--lab', t.lab.name, '--state-dir', t.lab.root, 'exec', 'default/plain', '--', 'id', '-u'], { encoding: 'utf8', timeout: 20_000 });
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stdout.trim(), '65532');
});
