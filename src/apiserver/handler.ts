// The lab's Kubernetes API as one request handler over a Store: discovery, get and list (with label and
// field selectors, as JSON or as a Table), watch (watch.ts) and writes (write.ts). Transport-free, so unit tests drive it
// over plain HTTP on 127.0.0.1 and the lab serves it over HTTPS (server.ts).
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Store } from '../store/store.js';
import type { KubeObject } from '../api/types.js';
import { apiGroupList, apiResourceList, apiVersions, keyOf, parseRoute, prefixOf, versionInfo, type Resource } from './resources.js';
import { SelectorError, matches, parseFieldSelector, parseLabelSelector, type Selector } from './selectors.js';
import { Rejected, badRequest, fromKV, internalError, methodNotAllowed, notFound, pathNotFound, toList, type Status } from './responses.js';
import { handleWrite, readJsonBody } from './write.js';
import { groupVersionDocument, openapiRoot } from './openapi.js';
import { toScale } from './scale.js';
import { parseIncludeObject, tableVersion, toTable, wantsTable } from './table.js';
import { serveWatch, type WatchOptions } from './watch.js';

export interface HandlerOptions {
  store: Store;
  /** https://127.0.0.1:<port>, for /api's serverAddressByClientCIDRs. */
  serverAddress: string;
  watch?: Partial<WatchOptions>;
  log?: (msg: string) => void;
}

export type Handler = (req: IncomingMessage, res: ServerResponse) => void;

export function sendJson(res: ServerResponse, code: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(code, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text) });
  res.end(text);
}

const sendStatus = (res: ServerResponse, s: Status): void => sendJson(res, s.code, s);

export function createHandler(o: HandlerOptions): Handler {
  return (req, res) => {
    handle(o, req, res).catch((err: unknown) => {
      o.log?.(`${req.method} ${req.url}: ${(err as Error).stack ?? String(err)}`);
      if (!res.headersSent) sendStatus(res, internalError((err as Error).message));
      else res.destroy();
    });
  };
}

async function handle(o: HandlerOptions, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const url = new URL(req.url ?? '/', 'http://lab');
  const route = parseRoute(url.pathname);
  const method = req.method ?? 'GET';
  const reading = method === 'GET' || method === 'HEAD';
  if (!reading && route.type !== 'objects' && route.type !== 'unknown') return sendStatus(res, methodNotAllowed(method));
  switch (route.type) {
    case 'version': return sendJson(res, 200, versionInfo());
    case 'api': return sendJson(res, 200, apiVersions(o.serverAddress));
    case 'apis': return sendJson(res, 200, apiGroupList());
    case 'group': {
      const g = apiGroupList().groups.find((x) => x.name === route.group);
      return g ? sendJson(res, 200, { kind: 'APIGroup', apiVersion: 'v1', ...g }) : sendStatus(res, pathNotFound(url.pathname));
    }
    case 'resources': return sendJson(res, 200, apiResourceList(route.group, route.version));
    case 'openapi': {
      const doc = route.path === undefined ? openapiRoot() : groupVersionDocument(route.path);
      return doc ? sendJson(res, 200, doc) : sendStatus(res, pathNotFound(url.pathname));
    }
    case 'unknown': return sendStatus(res, pathNotFound(url.pathname));
    case 'objects': break;
  }
  const { resource: r, namespace, name } = route;
  const q = url.searchParams;
  if (!reading) {
    let body;
    try { body = await readJsonBody(req); } catch (err) {
      if (err instanceof Rejected) return sendStatus(res, err.status);
      throw err;
    }
    const reply = await handleWrite({ store: o.store, r, namespace, name, subresource: route.subresource, query: q, method, contentType: req.headers['content-type'], body });
    return sendJson(res, reply.code, reply.body);
  }
  if (route.subresource !== undefined && name === undefined) return sendStatus(res, pathNotFound(url.pathname));
  const accept = req.headers.accept;
  const asTable = wantsTable(accept);
  const tableOpts = { includeObject: parseIncludeObject(q.get('includeObject')), apiVersion: tableVersion(accept) };

  if (name !== undefined && !isWatch(q)) {
    const kv = await o.store.get(keyOf(r, name, namespace));
    if (!kv) return sendStatus(res, notFound(r, name));
    const obj = fromKV(kv);
    if (route.subresource === 'scale') return sendJson(res, 200, toScale(obj));
    return sendJson(res, 200, asTable ? toTable(r, [obj], obj.metadata.resourceVersion, tableOpts) : obj);
  }

  let selector: Selector;
  try {
    selector = { labels: parseLabelSelector(q.get('labelSelector')), fields: parseFieldSelector(q.get('fieldSelector'), r.kind, r.resource) };
  } catch (err) {
    if (err instanceof SelectorError) return sendStatus(res, badRequest(err.message));
    throw err;
  }
  // A watch of one object by name (kubectl get pod x -w) is a watch with a metadata.name field selector.
  if (name !== undefined) selector.fields.push({ field: 'metadata.name', op: '=', value: name });

  if (isWatch(q)) {
    return serveWatch({ ...o.watch, store: o.store, resource: r, namespace, selector, res, req,
      resourceVersion: q.get('resourceVersion') ?? undefined,
      bookmarks: q.get('allowWatchBookmarks') === 'true',
      timeoutSeconds: q.has('timeoutSeconds') ? Number(q.get('timeoutSeconds')) : undefined,
      table: asTable ? tableOpts : undefined, log: o.log });
  }

  const { items, revision } = await listObjects(o.store, r, namespace, selector);
  return sendJson(res, 200, asTable ? toTable(r, items, String(revision), tableOpts) : toList(r, items, revision));
}

const isWatch = (q: URLSearchParams): boolean => ['1', 'true'].includes(q.get('watch') ?? '');

/** Every object of `r` (in `namespace`, or all) the selector matches, and the revision read at. */
export async function listObjects(store: Store, r: Resource, namespace: string | undefined, selector: Selector): Promise<{ items: KubeObject[]; revision: number }> {
  const listing = await store.list(prefixOf(r, namespace));
  const items = listing.items.map(fromKV).filter((obj) => matches(selector, obj));
  return { items, revision: listing.revision };
}
