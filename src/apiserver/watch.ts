// ?watch=1: a stream of JSON events, one per line ({"type":"ADDED","object":{...}}), as kube-apiserver
// sends them. Without a resourceVersion (or "0") it starts with an ADDED per current object; from
// resourceVersion N it replays the store's history after N, and a history already compacted ends the
// stream with an ERROR event holding a 410 Status, which tells informers to list again.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Store, WatchEvent } from '../store/store.js';
import type { KubeObject } from '../api/types.js';
import { groupVersion, prefixOf, type Resource } from './resources.js';
import { matches, type Selector } from './selectors.js';
import { fromKV, gone, internalError, withVersion } from './responses.js';
import { toTable, type TableOptions } from './table.js';

export interface WatchOptions {
  /** How often a watch that asked for bookmarks gets one (kube-apiserver: about once a minute). */
  bookmarkIntervalMs: number;
}

export interface ServeWatch extends Partial<WatchOptions> {
  store: Store;
  resource: Resource;
  namespace?: string;
  selector: Selector;
  req: IncomingMessage;
  res: ServerResponse;
  resourceVersion?: string;
  bookmarks: boolean;
  timeoutSeconds?: number;
  table?: TableOptions;
  log?: (msg: string) => void;
}

export type EventType = 'ADDED' | 'MODIFIED' | 'DELETED';

/**
 * Pure: what a store event means to a watcher with a selector, given the object as the watcher last saw
 * it. An object that stops matching is DELETED for this watcher and one that starts matching ADDED, as
 * the API server's filtered watches do. Undefined: nothing to send.
 */
export function translate(r: Resource, ev: WatchEvent, before: KubeObject | undefined, selector: Selector): { type: EventType; object: KubeObject } | undefined {
  if (ev.type === 'delete') {
    const last = before ?? (selector.labels.length === 0 ? stubFromKey(r, ev.key) : undefined);
    return last && matches(selector, last) ? { type: 'DELETED', object: withVersion(last, ev.modRevision) } : undefined;
  }
  const object = fromKV({ key: ev.key, value: ev.value, modRevision: ev.modRevision, createRevision: ev.createRevision });
  const now = matches(selector, object);
  const was = before !== undefined && matches(selector, before);
  if (now && was) return { type: 'MODIFIED', object };
  // Unknown before (a replay from an old revision): a key written before this event was modified.
  if (now) return { type: before === undefined && ev.createRevision !== ev.modRevision ? 'MODIFIED' : 'ADDED', object };
  return was ? { type: 'DELETED', object } : undefined;
}

/** An object known only by its key (/registry/<resource>/[<ns>/]<name>): name, namespace and kind. */
export function stubFromKey(r: Resource, key: string): KubeObject {
  const parts = key.slice(prefixOf(r).length).split('/');
  const metadata = r.namespaced ? { namespace: parts[0], name: parts.slice(1).join('/') } : { name: parts.join('/') };
  return { kind: r.kind, apiVersion: groupVersion(r), metadata } as unknown as KubeObject;
}

export async function serveWatch(w: ServeWatch): Promise<void> {
  const { store, resource: r, res } = w;
  const rv = w.resourceVersion;
  if (rv !== undefined && rv !== '' && !/^\d+$/.test(rv)) {
    const s = { ...gone(''), code: 400, reason: 'BadRequest', message: `invalid resource version "${rv}": expected a number` };
    res.writeHead(400, { 'Content-Type': 'application/json' });
    res.end(JSON.stringify(s));
    return;
  }
  res.writeHead(200, { 'Content-Type': 'application/json', 'Transfer-Encoding': 'chunked', 'Cache-Control': 'no-cache' });
  res.flushHeaders();
  let firstTable = true;
  const write = (type: string, object: unknown): void => { res.write(JSON.stringify({ type, object }) + '\n'); };
  const send = (type: EventType, object: KubeObject): void => {
    if (!w.table) return write(type, object);
    write(type, toTable(r, [object], object.metadata.resourceVersion, { ...w.table, noHeaders: !firstTable }));
    firstTable = false;
  };

  // What the watcher has seen of each key: a delete carries no value, and selector transitions need the old object.
  const seen = new Map<string, KubeObject>();
  let from: number;
  let lastRevision: number;
  if (rv === undefined || rv === '' || rv === '0') {
    const snapshot = await store.list(prefixOf(r, w.namespace));
    for (const kv of snapshot.items) seen.set(kv.key, fromKV(kv));
    for (const o of seen.values()) if (matches(w.selector, o)) send('ADDED', o);
    from = snapshot.revision + 1;
    lastRevision = snapshot.revision;
  } else {
    // Replaying history from N: the Store cannot read the objects as they were at N, so the old objects
    // come from the replay itself, and a key deleted before the replay shows it is known by its key
    // alone (stubFromKey). The one thing lost: an object that stopped matching a selector in a write
    // the replay is the first to show is not DELETED for this watcher (kube-apiserver's watch cache
    // keeps the previous object; this server has no cache).
    from = Number(rv) + 1;
    lastRevision = Number(rv);
  }

  let done = false;
  let resolveDone: () => void = () => undefined;
  const finished = new Promise<void>((resolve) => { resolveDone = resolve; });
  const end = (): void => { if (done) return; done = true; resolveDone(); };
  // Before the await: a client gone while the watch registers must still end it (else its timers leak).
  w.req.once('close', end);
  res.once('close', end);
  if (w.req.destroyed || res.destroyed) end();
  const handle = await store.watch(prefixOf(r, w.namespace), from, {
    onEvents(events) {
      if (done) return;
      for (const ev of events) {
        const before = seen.get(ev.key);
        const out = translate(r, ev, before, w.selector);
        if (ev.type === 'delete') seen.delete(ev.key); else seen.set(ev.key, fromKV({ key: ev.key, value: ev.value, modRevision: ev.modRevision, createRevision: ev.createRevision }));
        if (out) send(out.type, out.object);
        lastRevision = Math.max(lastRevision, ev.modRevision);
      }
    },
    onResync(info) {
      if (done) return;
      const status = info.reason === 'compacted'
        ? gone(`too old resource version: ${rv ?? from - 1} (${info.compactRevision ?? '?'})`)
        : internalError(`watch ended: ${info.message}`);
      write('ERROR', status);
      end();
    },
  });
  const bookmark = w.bookmarks ? setInterval(() => {
    if (!done) write('BOOKMARK', { kind: r.kind, apiVersion: groupVersion(r), metadata: { resourceVersion: String(lastRevision) } });
  }, w.bookmarkIntervalMs ?? 60_000) : undefined;
  const timeout = w.timeoutSeconds !== undefined && w.timeoutSeconds > 0 ? setTimeout(end, w.timeoutSeconds * 1000) : undefined;
  try { await finished; } finally {
    if (bookmark) clearInterval(bookmark);
    if (timeout) clearTimeout(timeout);
    await handle.cancel();
    if (!res.writableEnded) res.end();
  }
}
