// The typed conntrack calls against the real conntrack table of a fresh namespace: entries made with
// `conntrack -I` are listed back typed, one is deleted by its original tuple, and the proxy's "UDP
// flows a Service sent to an endpoint" delete takes only those.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { TestScope } from '../helpers/scope.js';
import { Netns } from '../../src/kernel/netns.js';
import { conntrackDelete, conntrackDeleteUdpTo, conntrackList } from '../../src/kernel/conntrack.js';

const scope = new TestScope('nct');
after(() => scope.cleanupSync());

test('conntrack: list typed, delete one by its original tuple, delete the UDP flows answered by one endpoint', async () => {
  const netns = scope.netns('c');
  const ns = new Netns(`/run/netns/${netns}`);
  const insert = (...args: string[]) => execFileSync('ip', ['netns', 'exec', netns, 'conntrack', '-I', ...args, '-t', '120'], { stdio: 'ignore' });
  // Two UDP flows to a ClusterIP answered by 10.244.1.5, one answered by 10.244.1.6, one TCP flow.
  for (const [client, endpoint] of [['10.0.0.1', '10.244.1.5'], ['10.0.0.2', '10.244.1.5'], ['10.0.0.3', '10.244.1.6']]) {
    insert('-p', 'udp', '-s', client, '-d', '10.96.0.50', '--sport', '1234', '--dport', '53', '--reply-src', endpoint, '--reply-dst', client, '--reply-port-src', '5353', '--reply-port-dst', '1234');
  }
  insert('-p', 'tcp', '-s', '10.0.0.4', '-d', '10.96.0.51', '--sport', '40000', '--dport', '80', '--reply-src', '10.244.1.7', '--reply-dst', '10.0.0.4',
    '--reply-port-src', '8080', '--reply-port-dst', '40000', '--state', 'ESTABLISHED', '-u', 'ASSURED');

  const all = await conntrackList(ns);
  assert.equal(all.length, 4);
  const tcp = all.find((e) => e.protocol === 'tcp')!;
  assert.equal(tcp.state, 'ESTABLISHED');
  assert.deepEqual(tcp.orig, { src: '10.0.0.4', dst: '10.96.0.51', sport: 40000, dport: 80 });
  assert.deepEqual(tcp.reply, { src: '10.244.1.7', dst: '10.0.0.4', sport: 8080, dport: 40000 });
  assert.equal((await conntrackList(ns, { protocol: 'udp' })).length, 3);

  assert.equal(await conntrackDeleteUdpTo(ns, { dst: '10.96.0.50', port: 53, endpoint: '10.244.1.5' }), 2);
  assert.deepEqual((await conntrackList(ns, { protocol: 'udp' })).map((e) => e.reply.src), ['10.244.1.6']);
  assert.equal(await conntrackDeleteUdpTo(ns, { dst: '10.96.0.50', port: 53, endpoint: '10.244.1.5' }), 0, 'nothing left to delete is not an error');

  assert.equal(await conntrackDelete(ns, 'tcp', tcp.orig), 1);
  assert.deepEqual((await conntrackList(ns)).map((e) => e.protocol), ['udp']);
  assert.deepEqual(await conntrackList(ns, { family: 'ipv6' }), []);
});
