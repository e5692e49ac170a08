// The Store contract on a real etcd (Debian's etcd-server), reached over a unix socket in the test's
// temp dir; plus what only a real server shows: a watch that survives etcd restarting and resumes from
// the first revision it had not delivered.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { EtcdStore } from '../../src/store/etcd.js';
import { applyObjects, deleteObjects, listObjects } from '../../src/api/apply.js';
import { parseManifests } from '../../src/api/manifest.js';
import { objectKey } from '../../src/api/keys.js';
import { startEtcd, type EtcdServer } from '../helpers/etcd.js';
import { TestScope } from '../helpers/scope.js';
import { Collector, storeContract } from '../helpers/store-contract.js';

const scope = new TestScope('etcd');
let server: EtcdServer;
let n = 0;

before(async () => { server = await startEtcd(scope); });
after(async () => {
  await server?.stop();
  scope.cleanupSync();
});

storeContract('etcd', async () => {
  const store = new EtcdStore({ endpoints: server.endpoint });
  return {
    store,
    root: `/${scope.prefix}/${n++}/`,
    passTime: (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
    close: () => store.close(),
  };
});

test('etcd: a watch resumes after etcd restarts, from the first revision it had not delivered', async () => {
  const own = await startEtcd(scope, 'restart');
  const store = new EtcdStore({ endpoints: own.endpoint });
  const writer = new EtcdStore({ endpoints: own.endpoint });
  try {
    const c = new Collector();
    await store.watch('/r/', 0, c);
    await writer.put('/r/a', '1');
    await c.until('the first event', () => c.events.length === 1);

    await own.stop();
    const again = await startEtcd(scope, 'restart'); // same data dir: same revisions
    Object.assign(own, again);
    // Written while the watcher is still reconnecting: it must get them from history, not lose them.
    await writer.put('/r/b', '2');
    await writer.put('/r/a', '3');
    await c.until('the writes made during the outage', () => c.events.length === 3, 15_000);
    assert.deepEqual(c.lines('/r/'), ['put a=1', 'put b=2', 'put a=3']);
    assert.deepEqual(c.resyncs, []);
  } finally {
    await store.close();
    await writer.close();
    await own.stop();
  }
});

test('etcd: apply -f and delete -f of 300 objects work past etcd\'s 128-op limit; a bad 300th object stores nothing', async () => {
  const store = new EtcdStore({ endpoints: server.endpoint });
  try {
    const ns = `big${n++}`;
    await store.put(objectKey('Namespace', 'default'), JSON.stringify({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'default' }, status: { phase: 'Active' } }));
    const pod = (i: number, where = ns) => `apiVersion: v1\nkind: Pod\nmetadata: { name: p${i}, namespace: ${where} }\nspec: { containers: [{ name: c }] }\n`;
    const docs = [`apiVersion: v1\nkind: Namespace\nmetadata: { name: ${ns} }\n`, ...Array.from({ length: 299 }, (_, i) => pod(i))];
    const parse = (d: string[]) => parseManifests(d.join('---\n'), 'big.yaml');

    const rev = (await store.list('/registry/')).revision;
    await assert.rejects(applyObjects(store, parse([...docs.slice(0, 299), pod(999, 'nowhere')])), /namespace "nowhere" not found/);
    assert.equal((await store.list('/registry/')).revision, rev, 'the refused file wrote nothing');

    assert.equal((await applyObjects(store, parse(docs))).filter((r) => r.action === 'created').length, 300);
    assert.equal((await listObjects(store, 'Pod', ns)).length, 299);
    assert.equal((await deleteObjects(store, parse(docs))).filter((r) => r.action === 'deleted').length, 300);
    assert.deepEqual(await listObjects(store, 'Pod', ns), []);
    assert.equal(await store.get(objectKey('Namespace', ns)), undefined);
  } finally { await store.close(); }
});

test('etcd: no etcd process of this run is left behind', async () => {
  // The restart test stopped its own; the shared one stops in after(). Here: nothing leaked so far.
  const pids = execFileSync('pgrep', ['-f', `${scope.dir}`], { encoding: 'utf8' }).trim().split('\n').filter(Boolean);
  // Only the shared server may be running now.
  assert.deepEqual(pids.map(Number), [server.pid]);
});
