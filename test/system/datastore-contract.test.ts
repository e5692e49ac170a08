// The agent's datastore interface held to one contract on both backends: the etcd ClusterView, and the
// KubeView (client-node informers) through the lab's Kubernetes API over the same etcd. The API server
// is also restarted on its port under a running view: the informers must carry on.
import { after } from 'node:test';
import { join } from 'node:path';
import { writeFileSync } from 'node:fs';
import { TestScope } from '../helpers/scope.js';
import { startEtcd } from '../helpers/etcd.js';
import { viewContract, type ViewUnderTest } from '../helpers/view-contract.js';
import { EtcdStore } from '../../src/store/etcd.js';
import type { Store, Watch, WatchHandlers } from '../../src/store/store.js';
import { ClusterView } from '../../src/agent/cluster-view.js';
import { KubeView } from '../../src/kube/view.js';
import { connectKube } from '../../src/kube/connect.js';
import { kubeconfigText, makePki } from '../../src/apiserver/pki.js';
import { startApiServer, type RunningApiServer } from '../../src/apiserver/server.js';

const scope = new TestScope('dsc');
const etcd = await startEtcd(scope);
const writer = new EtcdStore({ endpoints: etcd.endpoint });
const stores: EtcdStore[] = [writer];
let api: RunningApiServer | undefined;

/**
 * A store whose watches can be cut off: while cut, its watches are cancelled; on reconnect each resumes
 * from the first revision it had not delivered, so a compaction in between ends it with 'compacted'.
 */
function cuttableStore(inner: Store): { store: Store; cut(): Promise<void>; reconnect(): Promise<void> } {
  const live: Array<{ prefix: string; next: number; handlers: WatchHandlers; watch?: Watch }> = [];
  const open = async (w: (typeof live)[number]) => {
    w.watch = await inner.watch(w.prefix, w.next, {
      onEvents: (events) => { w.next = Math.max(w.next, ...events.map((e) => e.modRevision + 1)); w.handlers.onEvents(events); },
      onResync: (info) => w.handlers.onResync(info),
    });
  };
  const store = new Proxy(inner, {
    get(target, prop, receiver) {
      if (prop !== 'watch') return Reflect.get(target, prop, receiver);
      return async (prefix: string, fromRevision: number, handlers: WatchHandlers): Promise<Watch> => {
        const w = { prefix, next: fromRevision, handlers } as (typeof live)[number];
        live.push(w);
        await open(w);
        return { cancel: async () => { live.splice(live.indexOf(w), 1); await w.watch?.cancel(); } } as Watch;
      };
    },
  });
  return {
    store,
    async cut() { for (const w of live) { await w.watch?.cancel(); w.watch = undefined; } },
    async reconnect() { for (const w of [...live]) await open(w); },
  };
}

viewContract({
  name: 'etcd ClusterView',
  store: writer,
  async make(): Promise<ViewUnderTest> {
    const own = new EtcdStore({ endpoints: etcd.endpoint });
    stores.push(own);
    const c = cuttableStore(own);
    const view = new ClusterView(c.store);
    return {
      view,
      async whileDisconnected(fn) { await c.cut(); await fn(); await c.reconnect(); },
      async close() { await view.stop(); },
    };
  },
});

// The lab API over the same etcd, with its admin kubeconfig; restarted on the same port when asked.
const pki = makePki(join(scope.dir, 'pki'));
const apiStore = new EtcdStore({ endpoints: etcd.endpoint });
stores.push(apiStore);
const watchOpts = { bookmarkIntervalMs: 500 };
api = await startApiServer({ store: apiStore, pki, watch: watchOpts });
const port = api.port;
const kubeconfig = join(scope.dir, 'kubeconfig');
writeFileSync(kubeconfig, kubeconfigText('contract', api.url, pki));
const restart = async (between: () => Promise<void> = async () => {}) => {
  await api?.close();
  await between();
  api = await startApiServer({ store: apiStore, pki, port, watch: watchOpts });
};

viewContract({
  name: 'KubeView (Kubernetes API)',
  store: writer,
  async make(): Promise<ViewUnderTest> {
    const view = new KubeView(connectKube(kubeconfig), { backoffMs: 100, maxBackoffMs: 1000 });
    return {
      view,
      whileDisconnected: (fn) => restart(fn),
      async close() { await view.stop(); },
    };
  },
  restartServer: () => restart(),
});

// Registered after the contracts' own hooks, so it runs after them: the views stop before their servers.
after(async () => {
  await api?.close();
  for (const s of stores) await s.close();
  await etcd.stop();
  scope.cleanupSync();
});
