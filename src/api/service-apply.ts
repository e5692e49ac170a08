// What applying or deleting a Service does beyond storing it, as the API server does at admission: a
// ClusterIP and node ports are allocated (or the requested ones checked), each held by one store key
// created in the same transaction as the Service, so two applies racing for one address cannot both
// win, and a refused Service stores nothing.
import { randomInt } from 'node:crypto';
import { CLUSTER_CONFIG_KEY, CLUSTER_IP_PREFIX, NODE_PORT_PREFIX, clusterIPKey, nodePortKey } from './keys.js';
import { parseClusterConfig, serviceId, type ClusterConfig, type Service, type ServicePort } from './types.js';
import { allocateClusterIP, allocateNodePort, clusterIPProblem, nodePortProblem } from '../controller/service-ips.js';
import type { Store, TxnOp } from '../store/store.js';

export class ApplyError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ApplyError';
  }
}

/** The addresses in use when an apply is planned, and what this plan has taken or freed since. */
export class ServiceAllocations {
  private constructor(
    private readonly config: ClusterConfig,
    /** ClusterIP → [owner "ns/name", modRevision of its key]. */
    private readonly ips: Map<string, [string, number]>,
    private readonly ports: Map<number, [string, number]>,
    private readonly random: (n: number) => number,
  ) {}

  static async load(store: Store, random: (n: number) => number = randomInt): Promise<ServiceAllocations> {
    const config = parseClusterConfig((await store.get(CLUSTER_CONFIG_KEY))?.value);
    const ips = new Map<string, [string, number]>();
    for (const kv of (await store.list(CLUSTER_IP_PREFIX)).items) ips.set(kv.key.slice(CLUSTER_IP_PREFIX.length), [kv.value, kv.modRevision]);
    const ports = new Map<number, [string, number]>();
    for (const kv of (await store.list(NODE_PORT_PREFIX)).items) ports.set(Number(kv.key.slice(NODE_PORT_PREFIX.length)), [kv.value, kv.modRevision]);
    return new ServiceAllocations(config, ips, ports, random);
  }

  /** A new Service as stored, with its addresses, and the ops that hold them. */
  create(desired: Service): { service: Service; ops: TxnOp[] } {
    const owner = serviceId(desired.metadata.namespace, desired.metadata.name);
    const ops: TxnOp[] = [];
    const spec = { ...desired.spec };
    if (spec.clusterIP === 'None') {
      spec.clusterIPs = ['None'];
    } else {
      const ip = spec.clusterIP !== undefined ? this.requestIP(spec.clusterIP, owner) : this.pickIP(owner);
      ops.push({ op: 'create', key: clusterIPKey(ip), value: owner });
      spec.clusterIP = ip;
      spec.clusterIPs = [ip];
    }
    spec.ports = this.nodePorts(desired, [], ops);
    return { service: { ...desired, spec }, ops };
  }

  /** An existing Service with the manifest's spec: its ClusterIP is kept (immutable), node ports kept where they can be. */
  update(current: Service, desired: Service): { spec: Service['spec']; ops: TxnOp[] } {
    const owner = serviceId(desired.metadata.namespace, desired.metadata.name);
    const wanted = desired.spec.clusterIP;
    if (wanted !== undefined && wanted !== current.spec.clusterIP) {
      throw new ApplyError(`Service "${owner}": spec.clusterIP is immutable (it is ${current.spec.clusterIP ?? 'unset'}, the manifest asks for ${wanted}); delete the Service and apply it again`);
    }
    const ops: TxnOp[] = [];
    const ports = this.nodePorts(desired, current.spec.ports, ops);
    const kept = new Set(ports.map((p) => p.nodePort).filter((n): n is number => n !== undefined));
    for (const p of current.spec.ports) if (p.nodePort !== undefined && !kept.has(p.nodePort)) this.releasePort(p.nodePort, owner, ops);
    return { spec: { ...desired.spec, clusterIP: current.spec.clusterIP, clusterIPs: current.spec.clusterIPs, ports }, ops };
  }

  /** The ops that free a deleted Service's addresses (only keys it still owns). */
  release(current: Service): TxnOp[] {
    const owner = serviceId(current.metadata.namespace, current.metadata.name);
    const ops: TxnOp[] = [];
    const ip = current.spec.clusterIP;
    const held = ip !== undefined ? this.ips.get(ip) : undefined;
    if (ip !== undefined && held?.[0] === owner) {
      ops.push({ op: 'delete', key: clusterIPKey(ip), expectModRevision: held[1] });
      this.ips.delete(ip);
    }
    for (const p of current.spec.ports) if (p.nodePort !== undefined) this.releasePort(p.nodePort, owner, ops);
    return ops;
  }

  private requestIP(ip: string, owner: string): string {
    const problem = clusterIPProblem(ip, this.config.serviceCIDR);
    if (problem) throw new ApplyError(`Service "${owner}": spec.clusterIP: ${problem}`);
    const holder = this.ips.get(ip);
    if (holder) throw new ApplyError(`Service "${owner}": spec.clusterIP: ${ip} is already allocated (to Service ${holder[0]})`);
    this.ips.set(ip, [owner, 0]);
    return ip;
  }

  private pickIP(owner: string): string {
    const ip = allocateClusterIP(this.config.serviceCIDR, new Set(this.ips.keys()), this.random);
    if (ip === undefined) throw new ApplyError(`Service "${owner}": no ClusterIP is free in the service CIDR ${this.config.serviceCIDR}`);
    this.ips.set(ip, [owner, 0]);
    return ip;
  }

  /** The desired ports with node ports: requested, kept from `before` (same port and protocol), or new. */
  private nodePorts(desired: Service, before: ServicePort[], ops: TxnOp[]): ServicePort[] {
    const owner = serviceId(desired.metadata.namespace, desired.metadata.name);
    if (desired.spec.type !== 'NodePort') return desired.spec.ports.map(({ nodePort: _drop, ...p }) => p);
    const mine = new Set(before.map((p) => p.nodePort).filter((n): n is number => n !== undefined));
    const used = new Set<number>();
    return desired.spec.ports.map((p, i) => {
      const previous = before.find((q) => q.port === p.port && q.protocol === p.protocol)?.nodePort;
      let nodePort = p.nodePort ?? (previous !== undefined && !used.has(previous) ? previous : undefined);
      if (nodePort !== undefined && used.has(nodePort)) throw new ApplyError(`Service "${owner}": spec.ports[${i}].nodePort: ${nodePort} is used by another port of this Service`);
      if (nodePort !== undefined && mine.has(nodePort)) { used.add(nodePort); return { ...p, nodePort }; }
      if (nodePort !== undefined) {
        const problem = nodePortProblem(nodePort, this.config.nodePortRange);
        if (problem) throw new ApplyError(`Service "${owner}": spec.ports[${i}].nodePort: ${problem}`);
        const holder = this.ports.get(nodePort);
        if (holder) throw new ApplyError(`Service "${owner}": spec.ports[${i}].nodePort: ${nodePort} is already allocated (to Service ${holder[0]})`);
      } else {
        nodePort = allocateNodePort(this.config.nodePortRange, new Set(this.ports.keys()), this.random);
        if (nodePort === undefined) throw new ApplyError(`Service "${owner}": no node port is free in ${this.config.nodePortRange.min}-${this.config.nodePortRange.max}`);
      }
      this.ports.set(nodePort, [owner, 0]);
      used.add(nodePort);
      ops.push({ op: 'create', key: nodePortKey(nodePort), value: owner });
      return { ...p, nodePort };
    });
  }

  private releasePort(port: number, owner: string, ops: TxnOp[]): void {
    const held = this.ports.get(port);
    if (held?.[0] !== owner || held[1] === 0) return;
    ops.push({ op: 'delete', key: nodePortKey(port), expectModRevision: held[1] });
    this.ports.delete(port);
  }
}
