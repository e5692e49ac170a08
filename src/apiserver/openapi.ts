// /openapi/v3: what kubectl 1.32 reads before `apply` and `explain`. Minimal on purpose, written from the
// resource table: per group version, each kind's schema (an object that keeps unknown fields, tagged with
// x-kubernetes-group-version-kind) and its POST/PUT/PATCH operations listing the `fieldValidation` query
// parameter. Seeing that parameter, kubectl leaves validation to the server (`flatnet apply`'s, here)
// instead of validating against schemas it would need in full.
//
// The PATCH operations accept JSON and merge patches but do not list strategic merge: kubectl would then
// compute its apply patches from these schemas, which carry no list merge keys; without it, kubectl uses
// the merge keys compiled into it for the built-in kinds (all of flatnet's) and still sends strategic merge.
import { createHash } from 'node:crypto';
import { RESOURCES, groupVersion, type Resource } from './resources.js';

/** "api/v1" or "apis/apps/v1": the key of a group version in the v3 root, and its URL below /openapi/v3/. */
export const openapiPath = (r: { group: string; version: string }): string => (r.group ? `apis/${r.group}/${r.version}` : `api/${r.version}`);

/** The Java-style schema name Kubernetes uses ("io.k8s.api.core.v1.Pod"), close enough for clients that show it. */
function schemaName(r: Resource): string {
  const pkg = r.group === '' ? 'core' : r.group.replace(/\.k8s\.io$/, '').replace(/\.authorization$/, '').split('.')[0];
  return `io.k8s.api.${pkg}.${r.version}.${r.kind}`;
}

const gvk = (r: Resource) => ({ group: r.group, version: r.version, kind: r.kind });

const queryParam = (name: string, description: string) => ({ name, in: 'query', description, schema: { type: 'string', uniqueItems: true } });
const WRITE_PARAMS = [
  queryParam('dryRun', 'When present, indicates that modifications should not be persisted (All).'),
  queryParam('fieldManager', 'A name associated with the actor making these changes.'),
  queryParam('fieldValidation', 'How the server treats unknown or duplicate fields: Ignore, Warn or Strict (flatnet validates as `flatnet apply` does).'),
];

function operations(r: Resource): Record<string, unknown> {
  const ref = { $ref: `#/components/schemas/${schemaName(r)}` };
  const json = { schema: ref };
  const ok = { 200: { description: 'OK', content: { 'application/json': json } } };
  const ext = { 'x-kubernetes-group-version-kind': gvk(r) };
  const base = `/${openapiPath(r)}${r.namespaced ? '/namespaces/{namespace}' : ''}/${r.resource}`;
  return {
    [base]: {
      get: { ...ext, 'x-kubernetes-action': 'list', responses: ok },
      post: { ...ext, 'x-kubernetes-action': 'post', parameters: WRITE_PARAMS, requestBody: { content: { 'application/json': json } }, responses: { ...ok, 201: ok[200] } },
    },
    [`${base}/{name}`]: {
      get: { ...ext, 'x-kubernetes-action': 'get', responses: ok },
      put: { ...ext, 'x-kubernetes-action': 'put', parameters: WRITE_PARAMS, requestBody: { content: { 'application/json': json } }, responses: ok },
      patch: {
        ...ext, 'x-kubernetes-action': 'patch', parameters: WRITE_PARAMS,
        requestBody: { content: { 'application/json-patch+json': { schema: { type: 'object' } }, 'application/merge-patch+json': { schema: { type: 'object' } } } },
        responses: ok,
      },
      delete: { ...ext, 'x-kubernetes-action': 'delete', parameters: [WRITE_PARAMS[0], queryParam('gracePeriodSeconds', 'Seconds before the object is deleted (pods).')], responses: ok },
    },
  };
}

function schema(r: Resource) {
  return {
    type: 'object',
    description: `${r.kind} (${groupVersion(r)}), as the flatnet lab stores it: the fields \`flatnet apply\` reads are validated by the server.`,
    properties: {
      apiVersion: { type: 'string', description: 'APIVersion defines the versioned schema of this representation of an object.' },
      kind: { type: 'string', description: 'Kind is a string value representing the REST resource this object represents.' },
      metadata: { type: 'object', description: 'Standard object metadata.', 'x-kubernetes-preserve-unknown-fields': true },
    },
    'x-kubernetes-preserve-unknown-fields': true,
    'x-kubernetes-group-version-kind': [gvk(r)],
  };
}

/** The document of one group version ("api/v1", "apis/apps/v1"); undefined when none is served. */
export function groupVersionDocument(path: string): unknown {
  const rs = RESOURCES.filter((r) => openapiPath(r) === path);
  if (rs.length === 0) return undefined;
  return {
    openapi: '3.0.0',
    info: { title: 'Kubernetes', version: 'v1.32.0-flatnet' },
    paths: Object.assign({}, ...rs.map(operations)),
    components: { schemas: Object.fromEntries(rs.map((r) => [schemaName(r), schema(r)])) },
  };
}

const hashOf = (doc: unknown): string => createHash('sha512').update(JSON.stringify(doc)).digest('hex').slice(0, 128).toUpperCase();

/** GET /openapi/v3: each group version and the URL of its document (with a hash, so clients may cache it). */
export function openapiRoot(): unknown {
  const paths: Record<string, { serverRelativeURL: string }> = {};
  for (const path of new Set(RESOURCES.map(openapiPath))) {
    paths[path] = { serverRelativeURL: `/openapi/v3/${path}?hash=${hashOf(groupVersionDocument(path))}` };
  }
  return { paths };
}
