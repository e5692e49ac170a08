// End to end under a real runtime: containerd + runc start busybox containers with `ctr run --cni`,
// which calls the CNI plugin the way a node does. A container gets its address from the plugin,
// reaches another container, and removing it releases its address.
// The same scenario runs once with Debian's reference bridge + host-local plugins (a baseline that
// proves the harness) and once with flatnet-cni.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { TestScope } from '../helpers/scope.js';
import { FLATNET_CNI } from '../helpers/plugin.js';
import { startContainerd, within, type Containerd } from '../helpers/containerd.js';
import { BUSYBOX_IMAGE_REF, buildBusyboxImage } from '../helpers/image.js';

const REFERENCE_PLUGINS = '/usr/lib/cni';

function missingTools(): string | undefined {
  if (process.getuid?.() !== 0) return 'needs root';
  for (const t of ['containerd', 'ctr', 'runc', 'containerd-shim-runc-v2', 'nsenter', 'unshare', 'setpriv', 'tar']) {
    try { execFileSync('sh', ['-c', `command -v ${t}`], { stdio: 'ignore' }); } catch { return `${t} not installed`; }
  }
  if (!existsSync('/bin/busybox')) return 'busybox-static not installed';
  return undefined;
}
const skip = missingTools();

const scope = new TestScope('ctr');
after(() => scope.cleanupSync());

let image: string | undefined;
const imageTar = () => (image ??= buildBusyboxImage(join(scope.dir, 'image')));

interface Variant {
  name: string;
  subnet: string;          // a /24
  bridge: string;
  /** Fills the bin dir (bound over /opt/cni/bin) and returns the conflist's plugins. */
  setup(binDir: string, ipamDir: string): unknown[];
}

const reference: Variant = {
  name: 'reference bridge + host-local',
  subnet: '10.231.1.0/24',
  bridge: 'fnref0',
  setup(binDir, ipamDir) {
    for (const p of ['bridge', 'host-local', 'loopback']) symlinkSync(join(REFERENCE_PLUGINS, p), join(binDir, p));
    return [{
      type: 'bridge', bridge: this.bridge, isGateway: true,
      ipam: { type: 'host-local', ranges: [[{ subnet: this.subnet }]], routes: [{ dst: '0.0.0.0/0' }], dataDir: ipamDir },
    }];
  },
};

const flatnet: Variant = {
  name: 'flatnet-cni',
  subnet: '10.231.2.0/24',
  bridge: 'fnbr0',
  setup(binDir, ipamDir) {
    assert.ok(existsSync(FLATNET_CNI), `${FLATNET_CNI} not built`);
    symlinkSync(FLATNET_CNI, join(binDir, 'flatnet-cni'));
    symlinkSync(join(REFERENCE_PLUGINS, 'loopback'), join(binDir, 'loopback'));
    return [{
      type: 'flatnet-cni', bridge: this.bridge,
      ipam: { ranges: [[{ subnet: this.subnet }]], routes: [{ dst: '0.0.0.0/0' }], dataDir: ipamDir },
    }];
  },
};

let seq = 0;

async function scenario(v: Variant): Promise<void> {
  const id = ++seq;
  const node = scope.netns(`node${id}`);
  const base = join(scope.dir, `case${id}`);
  const [confDir, binDir, ipamDir] = ['net.d', 'bin', 'ipam'].map((d) => join(base, d));
  for (const d of [confDir, binDir, ipamDir]) mkdirSync(d, { recursive: true });
  const conflist = { cniVersion: '1.0.0', name: 'pods', plugins: v.setup(binDir, ipamDir) };
  writeFileSync(join(confDir, '10-pods.conflist'), JSON.stringify(conflist, null, 2));
  const net = v.subnet.replace(/\.0\/24$/, '.');         // "10.231.1."
  const reservations = () => (existsSync(join(ipamDir, 'pods')) ? readdirSync(join(ipamDir, 'pods')).filter((f) => /^\d/.test(f)).sort() : []);
  const holder = (ip: string) => readFileSync(join(ipamDir, 'pods', ip), 'utf8').split(/\r?\n/)[0];
  const bridgePorts = () => (JSON.parse(execFileSync('ip', ['-n', node, '-j', 'link', 'show', 'master', v.bridge], { encoding: 'utf8' })) as unknown[]).length;

  const cd: Containerd = await startContainerd(scope, { nodeNetns: node, cniConfDir: confDir, cniBinDir: binDir, namespace: `${scope.prefix}-${id}` });
  const diag = () => `\nconflist: ${JSON.stringify(conflist)}`;
  let execs = 0;
  // `ctr task exec` can lose a short-lived process's output under load (seen in CI for `ip addr` and
  // `ping`): every command run here prints something, so an empty answer is asked again.
  const exec = async (c: string, ...cmd: string[]) => {
    let out = '';
    for (let i = 0; i < 5 && out === ''; i++) {
      if (i) await new Promise((r) => setTimeout(r, 200));
      out = await cd.ctr(['task', 'exec', '--exec-id', `x${++execs}`, c, ...cmd], { timeoutMs: 15_000 });
    }
    return out;
  };
  const addressOf = async (c: string) => {
    // `ctr task exec` can lose a short-lived process's output under load (seen once in CI): ask again
    // before concluding that the address is missing.
    let out = '';
    let m: RegExpExecArray | null = null;
    for (let i = 0; i < 5 && !m; i++) {
      if (i) await new Promise((r) => setTimeout(r, 200));
      out = await exec(c, 'ip', '-o', '-4', 'addr', 'show', 'dev', 'eth0');
      m = /inet (\d+\.\d+\.\d+\.\d+)\/(\d+)/.exec(out);
    }
    assert.ok(m, `${c} has no IPv4 address on eth0 (ip printed ${JSON.stringify(out)})`);
    return { ip: m[1], prefix: Number(m[2]) };
  };

  let failed = true;
  try {
    await cd.importImage(imageTar());
    // a: supervised by an attached `ctr run --rm` (the only ctr path that ever calls CNI DEL);
    // b: detached, serving HTTP.
    const a = await cd.runAttached(BUSYBOX_IMAGE_REF, 'a', ['sleep', '600']).catch((e) => { throw new Error(String(e) + diag()); });
    await cd.runDetached(BUSYBOX_IMAGE_REF, 'b', ['httpd', '-f', '-p', '8080', '-h', '/etc']).catch((e) => { throw new Error(String(e) + diag()); });

    const ia = await addressOf('a');
    const ib = await addressOf('b');
    for (const x of [ia, ib]) {
      assert.ok(x.ip.startsWith(net), `${x.ip} not in ${v.subnet}`);
      assert.equal(x.prefix, 24);
    }
    assert.notEqual(ia.ip, ib.ip);
    assert.match(await exec('a', 'ip', 'route', 'show', 'default'), new RegExp(`default via ${net.replace(/\./g, '\\.')}1 dev eth0`));
    // host-local's reservation files, named by IP, hold the container id ctr passed: "<namespace>-<id>".
    assert.deepEqual(reservations(), [ia.ip, ib.ip].sort());
    assert.equal(holder(ia.ip), cd.cniContainerId('a'));
    assert.equal(holder(ib.ip), cd.cniContainerId('b'));
    assert.equal(bridgePorts(), 2);

    // a reaches b: ICMP both ways and TCP (busybox httpd in b serves /etc).
    assert.match(await exec('a', 'ping', '-c', '1', '-W', '2', ib.ip), / 0% packet loss/);
    assert.match(await exec('b', 'ping', '-c', '1', '-W', '2', ia.ip), / 0% packet loss/);
    // (busybox-static's wget segfaults in Debian 12, so the request goes through nc.)
    const http = await exec('a', 'sh', '-c', `printf 'GET /passwd HTTP/1.0\\r\\n\\r\\n' | nc -w 3 ${ib.ip} 8080`);
    assert.match(http, /^HTTP\/1\.[01] 200 /);
    assert.match(http, /root:x:0:0:/);

    // Removing a: its task is killed, the supervising ctr calls CNI DEL and removes the container.
    await cd.ctr(['task', 'kill', '-s', 'KILL', 'a']);
    const end = await within(a.exited, 20_000);
    assert.ok(end, 'ctr run for a did not finish after its task was killed');
    assert.equal(end.code, 137, end.stderr);                // 128 + SIGKILL, the task's own status
    assert.doesNotMatch(end.stderr, /level=error/, `ctr reported an error tearing a down:${end.stderr}${diag()}`);
    assert.deepEqual(await cd.containers(), ['b']);
    assert.deepEqual(reservations(), [ib.ip], `a's address still reserved after CNI DEL${diag()}`);
    assert.equal(holder(ib.ip), cd.cniContainerId('b'));
    assert.ok(!existsSync(join(cd.cniCacheDir, 'results', `pods-${cd.cniContainerId('a')}-eth0`)), 'libcni cache of a left behind');
    assert.equal(bridgePorts(), 1);
    // b is untouched.
    assert.match(await exec('b', 'ip', '-o', '-4', 'addr', 'show', 'dev', 'eth0'), new RegExp(`inet ${ib.ip.replace(/\./g, '\\.')}/24`));
    failed = false;
  } finally {
    // A failure in stop() must not hide the scenario's own failure.
    await cd.stop().catch((e) => { if (!failed) throw e; });
  }
  assert.deepEqual(await cd.settledLeftovers(10_000), { pids: [], cgroups: [] });
}

test(`containerd + ${reference.name}: ctr run --cni wires containers, DEL releases the address`, { skip, timeout: 60_000 }, () => scenario(reference));
test(`containerd + ${flatnet.name}: ctr run --cni wires containers, DEL releases the address`, { skip, timeout: 60_000 }, () => scenario(flatnet));
