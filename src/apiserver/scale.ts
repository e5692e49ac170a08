// A Deployment's `scale` subresource (autoscaling/v1 Scale), which `kubectl scale` reads and patches:
// a view of spec.replicas and status.replicas; a write through it changes spec.replicas only.
import type { Deployment, KubeObject } from '../api/types.js';
import type { Json } from './patch.js';

type Obj = { [k: string]: Json };
const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);

/** The Scale of a Deployment as served (with the Deployment's resourceVersion). */
export function toScale(o: KubeObject): Obj {
  const d = o as Deployment;
  const { name, namespace, uid, creationTimestamp, resourceVersion } = d.metadata;
  const selector = Object.entries(d.spec.selector?.matchLabels ?? {}).map(([k, v]) => `${k}=${v}`).join(',');
  // JSON leaves out what is undefined (a Deployment always has a namespace; uid and timestamps may be missing).
  const metadata = JSON.parse(JSON.stringify({ name, namespace, uid, creationTimestamp, resourceVersion })) as Obj;
  return {
    kind: 'Scale', apiVersion: 'autoscaling/v1',
    metadata,
    spec: { replicas: d.spec.replicas ?? 1 },
    status: { replicas: d.status?.replicas ?? 0, selector },
  };
}

/** The Deployment with the Scale's spec.replicas (and its resourceVersion, a precondition). */
export function fromScale(deployment: Obj, scale: Obj): Obj {
  const spec = isObj(deployment.spec) ? deployment.spec : {};
  const replicas = isObj(scale.spec) ? scale.spec.replicas ?? null : null;
  const meta = isObj(scale.metadata) ? scale.metadata : {};
  return { ...deployment, metadata: { ...(deployment.metadata as Obj), resourceVersion: meta.resourceVersion ?? null }, spec: { ...spec, replicas } };
}
