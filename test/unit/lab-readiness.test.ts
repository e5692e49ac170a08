// Pod readiness in the lab as data: the kernel's socket tables read as a readiness probe would, and
// what Ready needs (every container running, every declared port listening or bound).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { portsFromProcNet, readinessOf, readyCondition, type PortsInUse } from '../../src/lab/readiness.js';
import type { Container } from '../../src/api/types.js';

const TCP = `  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1 1 0000000000000000 100 0 0 10 0
   1: 0100007F:4E1F 0100007F:A2B4 01 00000000:00000000 00:00000000 00000000     0        0 2 1 0000000000000000 20 4 30 10 -1
`;
const TCP6 = `  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000000000000000000000000000:4E1F 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 3 1 0000000000000000 100 0 0 10 0
`;
const UDP = `   sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops
  100: 00000000:2382 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 4 2 0000000000000000 0
  101: 0AF40002:9C40 0AF40003:0035 01 00000000:00000000 00:00000000 00000000     0        0 5 2 0000000000000000 0
`;

test('portsFromProcNet: TCP ports in LISTEN (v4 and v6), not connections; UDP sockets bound, not connected', () => {
  assert.deepEqual([...portsFromProcNet(TCP, 'tcp')], [8080], 'the established connection from port 19999 is not a listener');
  assert.deepEqual([...portsFromProcNet(TCP6, 'tcp')], [19999]);
  assert.deepEqual([...portsFromProcNet(UDP, 'udp')], [9090]);
  assert.deepEqual([...portsFromProcNet('', 'tcp')], []);
});

const web: Container = { name: 'web', command: ['flatnet', 'serve'], ports: [{ containerPort: 8080 }] };
const dns: Container = { name: 'dns', command: ['flatnet', 'serve'], ports: [{ containerPort: 5353, protocol: 'UDP' }] };
const plain: Container = { name: 'sleep', command: ['sleep', 'infinity'] };
const inUse = (tcp: number[], udp: number[]) => (): PortsInUse => ({ tcp: new Set(tcp), udp: new Set(udp) });

test('readinessOf: Ready once every container runs and every declared port is in use, by its protocol', () => {
  const pids = new Map([['web', 10], ['dns', 11]]);
  assert.deepEqual(readinessOf([web, dns], pids, inUse([8080], [5353])), { ready: true });
  assert.deepEqual(readinessOf([web, dns], pids, inUse([8080, 5353], [])),
    { ready: false, reason: 'ContainersNotReady', message: 'ports not listening: 5353/udp' }, 'a TCP listener does not make a UDP port ready');
  assert.deepEqual(readinessOf([web, dns], pids, inUse([], [])).message, 'ports not listening: 8080/tcp, 5353/udp');
});

test('readinessOf: a container not running is not Ready whatever listens; no declared port is Ready when running', () => {
  assert.deepEqual(readinessOf([web, plain], new Map([['web', 10]]), inUse([8080], [])),
    { ready: false, reason: 'ContainersNotReady', message: 'containers not running: sleep' });
  assert.deepEqual(readinessOf([plain], new Map([['sleep', 12]]), () => undefined), { ready: true }, 'no port to look at');
  assert.equal(readinessOf([web], new Map([['web', 10]]), () => undefined).ready, false, 'the process went between the pid read and /proc');
});

test('readyCondition: False carries the reason and message as a kubelet writes them', () => {
  assert.deepEqual(readyCondition({ ready: true }), { type: 'Ready', status: 'True' });
  assert.deepEqual(readyCondition({ ready: false, reason: 'ContainersNotReady', message: 'ports not listening: 80/tcp' }),
    { type: 'Ready', status: 'False', reason: 'ContainersNotReady', message: 'ports not listening: 80/tcp' });
});
