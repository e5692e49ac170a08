// The Store contract on a real etcd (Debian's etcd-server), reached over a unix socket in the test's
// temp dir; plus what only a real server shows: a watch that survives etcd restarting and resumes from
// the first revision it had not delivered.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { EtcdStore } from '../../src/store/etcd.js';
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

test('etcd: no etcd process of this run is left behind', async () => {
  // The restart test stopped its own; the shared one stops in after(). Here: nothing leaked so far.
  const pids = execFileSync('pgrep', ['-f', `${scope.dir}`], { encoding: 'utf8' }).trim().split('\n').filter(Boolean);
  // Only the shared server may be running now.
  assert.deepEqual(pids.map(Number), [server.pid]);
});
