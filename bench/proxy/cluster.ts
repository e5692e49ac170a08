// The synthetic cluster both proxies are loaded with: N ClusterIP Services, port 80/TCP, each with one
// EndpointSlice of 3 ready endpoints on port 8080, spread over a few nodes (the proxy's node is one).
import type { EndpointSlice, Service } from '../../src/api/types.js';

export interface Cluster { services: Service[]; slices: EndpointSlice[] }

export const CIDRS = { clusterCIDR: '10.244.0.0/16', serviceCIDR: '10.96.0.0/16' };
export const PROXY_NODE = 'node-0';
export const ENDPOINTS_PER_SERVICE = 3;
const NODES = 4;
const NAMESPACE = 'bench';
const PORT_NAME = 'http';
export const SERVICE_PORT = 80;
export const TARGET_PORT = 8080;

/** The n-th address of a /16, skipping the first 10 (so never the network address). */
const inSlash16 = (prefix: string, n: number): string => {
  const x = n + 10;
  if (x > 65534) throw new Error(`${prefix}.0.0/16 has no address number ${n}`);
  return `${prefix}.${x >> 8}.${x & 255}`;
};

export const clusterIP = (i: number): string => inSlash16('10.96', i);
const endpointIP = (j: number): string => inSlash16('10.244', j);
/** A replacement endpoint address, past all the addresses makeCluster hands out (up to 20,000 Services). */
export const CHANGED_ENDPOINT_IP = endpointIP(ENDPOINTS_PER_SERVICE * 20_001);

function service(i: number): Service {
  return {
    apiVersion: 'v1', kind: 'Service', metadata: { name: `svc-${i}`, namespace: NAMESPACE },
    spec: {
      type: 'ClusterIP', clusterIP: clusterIP(i), selector: { app: `svc-${i}` },
      ports: [{ name: PORT_NAME, protocol: 'TCP', port: SERVICE_PORT, targetPort: TARGET_PORT }],
      sessionAffinity: 'None', internalTrafficPolicy: 'Cluster',
    },
  };
}

function slice(i: number, addresses: string[]): EndpointSlice {
  return {
    apiVersion: 'discovery.k8s.io/v1', kind: 'EndpointSlice', addressType: 'IPv4',
    metadata: { name: `svc-${i}-bench`, namespace: NAMESPACE, labels: { 'kubernetes.io/service-name': `svc-${i}` } },
    ports: [{ name: PORT_NAME, protocol: 'TCP', port: TARGET_PORT }],
    endpoints: addresses.map((ip, e) => ({
      addresses: [ip], nodeName: `node-${(i * ENDPOINTS_PER_SERVICE + e) % NODES}`,
      conditions: { ready: true, serving: true, terminating: false },
    })),
  };
}

export function makeCluster(n: number): Cluster {
  if (n > 20_000) throw new Error('at most 20,000 Services: endpoint addresses would run out');
  const services = Array.from({ length: n }, (_, i) => service(i));
  const slices = services.map((_, i) => slice(i, Array.from({ length: ENDPOINTS_PER_SERVICE }, (_, e) => endpointIP(i * ENDPOINTS_PER_SERVICE + e))));
  return { services, slices };
}

/** The same cluster with the first endpoint of Service `i` replaced by another address. */
export function withChangedEndpoint(c: Cluster, i: number): Cluster {
  const old = c.slices[i];
  const addresses = old.endpoints.map((e, k) => (k === 0 ? CHANGED_ENDPOINT_IP : e.addresses[0]));
  return { services: c.services, slices: c.slices.map((s, k) => (k === i ? slice(i, addresses) : s)) };
}
