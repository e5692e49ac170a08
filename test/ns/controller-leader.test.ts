// Two controllers on a real etcd: exactly one leads and only it writes cluster objects; stopping it
// hands leadership over at once (its lease is revoked), and the new leader does the work.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CONTROLLER_LEADER_KEY, REGISTRY, heartbeatKey, objectKey } from '../../src/api/keys.js';
import type { Node } from '../../src/api/types.js';
import { startController, type Controller } from '../../src/controller/controller.js';
import { EtcdStore } from '../../src/store/etcd.js';
import type { Store } from '../../src/store/store.js';
import { startEtcd, type EtcdServer } from '../helpers/etcd.js';
import { TestScope } from '../helpers/scope.js';

const until = async (what: string, cond: () => boolean | Promise<boolean>, timeoutMs = 5000) => {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) { if (await cond()) return; await new Promise((r) => setTimeout(r, 20)); }
  assert.fail(`timed out after ${timeoutMs} ms waiting for ${what}`);
};

const WRITES = new Set(['put', 'delete', 'create', 'update', 'deleteIf']);

/** The store, recording the key of every write made through it. */
function recording(store: Store, writes: string[]): Store {
  return new Proxy(store, {
    get(target, prop, receiver) {
      const value = Reflect.get(target, prop, receiver) as unknown;
      if (typeof value !== 'function') return value;
      return (...args: unknown[]) => {
        if (WRITES.has(String(prop))) writes.push(String(args[0]));
        return (value as (...a: unknown[]) => unknown).apply(target, args);
      };
    },
  });
}

function nodeObject(name: string): Node {
  return {
    apiVersion: 'v1', kind: 'Node', metadata: { name, uid: `uid-${name}` },
    spec: {}, status: { addresses: [{ type: 'InternalIP', address: '192.168.0.10' }] },
  };
}

/** A fresh etcd and two controllers on it (ctl-a, ctl-b), removed after `body` whatever happens. */
async function withTwoControllers(
  opts: { record?: Record<string, string[]> },
  body: (f: { admin: Store; byId: Record<string, Controller>; controllers: Controller[]; logs: string[] }) => Promise<void>,
): Promise<void> {
  const scope = new TestScope('ctl');
  let server: EtcdServer | undefined;
  const stores: EtcdStore[] = [];
  const controllers: Controller[] = [];
  const newStore = () => { const s = new EtcdStore({ endpoints: server!.endpoint }); stores.push(s); return s; };
  try {
    server = await startEtcd(scope);
    const admin = newStore();
    const logs: string[] = [];
    const byId: Record<string, Controller> = {};
    for (const identity of ['ctl-a', 'ctl-b']) {
      const store = opts.record ? recording(newStore(), opts.record[identity]) : newStore();
      byId[identity] = await startController({ store, identity, leaseTtlSeconds: 2, resyncMs: 0, log: (m) => logs.push(`${identity} ${m}`) });
      controllers.push(byId[identity]);
    }
    await body({ admin, byId, controllers, logs });
  } finally {
    for (const c of controllers) await c.stop().catch(() => undefined);
    for (const s of stores) await s.close().catch(() => undefined);
    await server?.stop();
    scope.cleanupSync();
  }
}

test('controller on etcd: one leader writes; stopping it hands over at once', async () => {
  const writes: Record<string, string[]> = { 'ctl-a': [], 'ctl-b': [] };
  await withTwoControllers({ record: writes }, async ({ admin, byId, logs }) => {
    await until('exactly one leader', () => byId['ctl-a'].isLeader() !== byId['ctl-b'].isLeader());
    const leaderId = byId['ctl-a'].isLeader() ? 'ctl-a' : 'ctl-b';
    const standbyId = leaderId === 'ctl-a' ? 'ctl-b' : 'ctl-a';
    assert.equal((await admin.get(CONTROLLER_LEADER_KEY))?.value, leaderId);

    await admin.put(objectKey('Node', 'node-1'), JSON.stringify(nodeObject('node-1')));
    await admin.put(heartbeatKey('node-1'), '{}');
    const node = async (name: string) => { const kv = await admin.get(objectKey('Node', name)); return kv && (JSON.parse(kv.value) as Node); };
    await until('node-1 has a CIDR and is Ready', async () => {
      const n = await node('node-1');
      return !!n?.spec.podCIDR && n.status?.conditions?.[0]?.status === 'True';
    });
    assert.equal((await node('node-1'))!.spec.podCIDR, '10.244.0.0/24');
    await byId[leaderId].idle();
    assert.ok(writes[leaderId].some((k) => k.startsWith(REGISTRY)), 'the leader wrote the node');
    assert.deepEqual(writes[standbyId].filter((k) => k.startsWith(REGISTRY)), [], 'the standby wrote no cluster object');
    assert.ok(byId[standbyId].isLeader() === false);

    const stoppedAt = Date.now();
    await byId[leaderId].stop();
    assert.equal(byId[leaderId].isLeader(), false);
    // Well under the 2 s TTL: the revoked lease deleted the key and the standby's watch saw it.
    await until('the standby leads', () => byId[standbyId].isLeader(), 1500);
    const handover = Date.now() - stoppedAt;
    assert.equal((await admin.get(CONTROLLER_LEADER_KEY))?.value, standbyId);

    await admin.put(objectKey('Node', 'node-2'), JSON.stringify(nodeObject('node-2')));
    await admin.put(heartbeatKey('node-2'), '{}');
    await until('node-2 has a CIDR', async () => !!(await node('node-2'))?.spec.podCIDR);
    assert.equal((await node('node-2'))!.spec.podCIDR, '10.244.1.0/24');
    assert.equal((await node('node-1'))!.spec.podCIDR, '10.244.0.0/24', 'node-1 keeps its CIDR');
    assert.ok(logs.includes(`${standbyId} leading`), logs.join('\n'));
    assert.ok(logs.includes(`${standbyId} node node-2: pod CIDR 10.244.1.0/24`), logs.join('\n'));
    assert.ok(handover < 1500, `hand-over took ${handover} ms`);
  });
});

test('controller on etcd: a leader whose key is deleted steps down; one leader remains', async () => {
  await withTwoControllers({}, async ({ admin, controllers, logs }) => {
    await until('one leader', () => controllers.filter((c) => c.isLeader()).length === 1);
    const first = (await admin.get(CONTROLLER_LEADER_KEY))!.value;
    await admin.delete(CONTROLLER_LEADER_KEY);
    await until('the old leader stepped down', () => logs.includes(`${first} stopped leading`));
    await until('a leader again, holding the key', async () => {
      const kv = await admin.get(CONTROLLER_LEADER_KEY);
      return controllers.filter((c) => c.isLeader()).length === 1 && kv !== undefined;
    });
    // Stable: still exactly one leader a TTL later (the key lives on the leader's kept-alive lease).
    await new Promise((r) => setTimeout(r, 2500));
    assert.equal(controllers.filter((c) => c.isLeader()).length, 1);
    const holder = (await admin.get(CONTROLLER_LEADER_KEY))!.value;
    assert.equal(controllers[holder === 'ctl-a' ? 0 : 1].isLeader(), true);
  });
});
