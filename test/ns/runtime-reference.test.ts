// The runtime driving Debian's reference plugins (bridge + host-local, tuning, portmap) inside a
// node namespace made by the test; the pods are namespaces too. Needs root.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { randomInt } from 'node:crypto';
import { isIP } from 'node:net';
import type { CniResult } from '../../src/cni/types.js';
import { TestScope, inNetns, netnsPath } from '../helpers/scope.js';
import { CniRuntime } from '../../src/runtime/runtime.js';
import { confListFromObject, type NetworkConfigList } from '../../src/runtime/conflist.js';

const PLUGINS = '/usr/lib/cni';
const skip = process.getuid?.() !== 0 ? 'needs root' : !existsSync(join(PLUGINS, 'bridge')) ? 'reference plugins missing' : false;

const HOST_PORT = 18080;
const portMappings = [{ hostPort: HOST_PORT, containerPort: 80, protocol: 'tcp' }];

interface Lab {
  scope: TestScope;
  node: string;
  subnet: string;
  netName: string;
  ipamDir: string;
  runtime: CniRuntime;
  list(tuningSysctl?: Record<string, string>): NetworkConfigList;
  pod(name: string): { ns: string; rt: { containerId: string; netns: string; ifname: string; capabilityArgs: Record<string, unknown> } };
}

function lab(label: string): Lab {
  const scope = new TestScope(label);
  const node = scope.netns('node');
  const third = randomInt(0, 256);
  const subnet = `10.99.${third}.0/24`;
  const netName = `${scope.prefix}-net`;
  const ipamDir = join(scope.dir, 'ipam');
  // Debian's portmap (plugins 1.1.1) CHECKs the IPv4 rules in ip6tables whenever ip6tables works
  // (containernetworking/plugins#819), so CHECK always fails; the plugins' PATH offers iptables but
  // no ip6tables, which portmap reads as "no IPv6" (this also exercises the runtime's path option).
  const binDir = join(scope.dir, 'bin');
  mkdirSync(binDir);
  symlinkSync('/usr/sbin/iptables', join(binDir, 'iptables'));
  const runtime = new CniRuntime({
    pluginDirs: [PLUGINS],
    cacheDir: join(scope.dir, 'cache'),
    wrap: ['nsenter', `--net=${netnsPath(node)}`],
    path: `${binDir}:/usr/bin:/bin`,
  });
  return {
    scope, node, subnet, netName, ipamDir, runtime,
    list: (tuningSysctl = { 'net.ipv4.conf.eth0.rp_filter': '2' }) => confListFromObject({
      cniVersion: '1.0.0',
      name: netName,
      plugins: [
        {
          type: 'bridge', bridge: scope.prefix.slice(0, 15), isGateway: true,
          ipam: { type: 'host-local', subnet, dataDir: ipamDir, routes: [{ dst: '0.0.0.0/0' }] },
        },
        { type: 'tuning', sysctl: tuningSysctl, dataDir: join(scope.dir, 'tuning') },
        { type: 'portmap', capabilities: { portMappings: true }, snat: true },
      ],
    }, 'reference.conflist'),
    pod: (name: string) => {
      const ns = scope.netns(name);
      return { ns, rt: { containerId: `${scope.prefix}-${name}`, netns: netnsPath(ns), ifname: 'eth0', capabilityArgs: { portMappings } } };
    },
  };
}

/** Global addresses (CIDR) on a device in a namespace; none when the device is gone. */
function addrs(ns: string, dev: string): string[] {
  try {
    const out = JSON.parse(execFileSync('ip', ['-n', ns, '-j', 'addr', 'show', 'dev', dev, 'scope', 'global'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }));
    return out.flatMap((l: any) => l.addr_info.filter((a: any) => a.local).map((a: any) => `${a.local}/${a.prefixlen}`));
  } catch {
    return [];
  }
}
const veths = (ns: string): string[] =>
  JSON.parse(execFileSync('ip', ['-n', ns, '-j', 'link', 'show', 'type', 'veth'], { encoding: 'utf8' }) || '[]').map((l: any) => l.ifname);
/** host-local's reservation files: one per reserved address, named by the address. */
function reservations(l: Lab): string[] {
  const dir = join(l.ipamDir, l.netName);
  return existsSync(dir) ? readdirSync(dir).filter((f) => isIP(f) !== 0).sort() : [];
}
/** The addresses of a result, without prefix length, sorted like reservations(). */
const resultIPs = (r: CniResult): string[] => (r.ips ?? []).map((i) => i.address.split('/')[0]).sort();
const cacheFile = (l: Lab, containerId: string) => join(l.scope.dir, 'cache', 'results', `${l.netName}-${containerId}-eth0`);

test('ADD, CHECK and DEL of bridge + tuning + portmap in a node namespace', { skip }, async () => {
  const l = lab('rt');
  try {
    const list = l.list();
    const { ns, rt } = l.pod('pod');
    const result = await l.runtime.addNetworkList(list, rt);

    const ip = result.ips?.find((i) => !i.address.includes(':'))?.address;
    assert.ok(ip && ip.startsWith(l.subnet.replace(/0\/24$/, '')), `address ${ip} in ${l.subnet}`);
    assert.equal(result.ips?.length, 1);
    assert.deepEqual(addrs(ns, 'eth0'), [ip]);
    assert.ok(result.interfaces?.some((i) => i.name === 'eth0' && i.sandbox === rt.netns));
    // The bridge and the host veth live in the node namespace.
    assert.equal(addrs(l.node, l.scope.prefix.slice(0, 15)).length, 1);
    assert.equal(veths(l.node).length, 1);
    assert.equal(inNetns(ns, 'sysctl', ['-n', 'net.ipv4.conf.eth0.rp_filter']).trim(), '2');
    assert.match(inNetns(l.node, 'iptables', ['-t', 'nat', '-S']), new RegExp(`--dport ${HOST_PORT}`));
    assert.deepEqual(reservations(l), resultIPs(result));

    assert.ok(existsSync(cacheFile(l, rt.containerId)));
    assert.deepEqual((await l.runtime.getCachedResult(l.netName, rt.containerId, 'eth0'))?.ips, result.ips);

    await l.runtime.checkNetworkList(list, rt);

    await l.runtime.delNetworkList(list, rt);
    assert.equal(existsSync(cacheFile(l, rt.containerId)), false);
    assert.deepEqual(addrs(ns, 'eth0'), []);
    assert.deepEqual(veths(l.node), []);
    assert.deepEqual(reservations(l), []);
    assert.doesNotMatch(inNetns(l.node, 'iptables', ['-t', 'nat', '-S']), new RegExp(`--dport ${HOST_PORT}`));

    await l.runtime.delNetworkList(list, rt); // a second DEL succeeds
    await assert.rejects(l.runtime.checkNetworkList(list, rt), (e: any) => e.code === 3);
  } finally {
    l.scope.cleanupSync();
  }
});

test('GC keeps valid attachments and releases the others', { skip }, async () => {
  const l = lab('rg');
  try {
    const list = l.list();
    const a = l.pod('a');
    const b = l.pod('b');
    const ra = await l.runtime.addNetworkList(list, a.rt);
    const rb = await l.runtime.addNetworkList(list, b.rt);
    const both = [...resultIPs(ra), ...resultIPs(rb)].sort();
    assert.deepEqual(reservations(l), both);

    await l.runtime.gcNetworkList(list, [{ containerId: a.rt.containerId, ifname: 'eth0' }, { containerId: b.rt.containerId, ifname: 'eth0' }]);
    assert.deepEqual(reservations(l), both);

    await l.runtime.gcNetworkList(list, [{ containerId: a.rt.containerId, ifname: 'eth0' }]);
    assert.deepEqual(reservations(l), resultIPs(ra));
    assert.equal(existsSync(cacheFile(l, b.rt.containerId)), false);
    assert.deepEqual(addrs(b.ns, 'eth0'), []);
    assert.deepEqual((await l.runtime.listCachedAttachments(l.netName)).map((x) => x.containerId), [a.rt.containerId]);

    await l.runtime.gcNetworkList(list, []);
    assert.deepEqual(reservations(l), []);
    assert.deepEqual(await l.runtime.listCachedAttachments(l.netName), []);
    assert.deepEqual(veths(l.node), []);

    // DEL after GC still succeeds (no cache left: the plugins run without prevResult).
    await l.runtime.delNetworkList(list, a.rt);
    await l.runtime.delNetworkList(list, b.rt);
  } finally {
    l.scope.cleanupSync();
  }
});

test('a failing plugin mid-chain rolls back the plugins before it', { skip }, async () => {
  const l = lab('rf');
  try {
    const list = l.list({ 'net.ipv4.conf.eth0.no_such_knob': '1' });
    const { ns, rt } = l.pod('pod');
    await assert.rejects(l.runtime.addNetworkList(list, rt), (e: any) => {
      assert.match(e.message, /plugin tuning failed \(ADD\)/);
      assert.equal(typeof e.code, 'number');
      return true;
    });
    assert.deepEqual(veths(l.node), []);
    assert.deepEqual(addrs(ns, 'eth0'), []);
    assert.deepEqual(reservations(l), []);
    assert.equal(existsSync(cacheFile(l, rt.containerId)), false);
  } finally {
    l.scope.cleanupSync();
  }
});

test('VERSION of a reference plugin, run wrapped', { skip }, async () => {
  const l = lab('rv');
  try {
    const versions = await l.runtime.version('bridge');
    assert.ok(versions.includes('1.0.0') && versions.includes('0.4.0'));
  } finally {
    l.scope.cleanupSync();
  }
});
