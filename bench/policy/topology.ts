// One "node" netns routing for 200 pod netns, wired as flatnet's routed mode does (src/cni/plan.ts):
// per pod a veth pair, a /32 on the pod side, on the node a /32 route to the host veth and permanent
// neighbour entries both ways (the pod's gateway 10.244.1.1 is an address nobody holds). The bench
// builds one such topology per ruleset so all stay loaded and connects can interleave. Every name has
// the run's prefix; nothing goes into the root namespace.
import { run, type Scope } from '../proxy/topology.js';
import { podIP } from './world.js';

const GATEWAY = '10.244.1.1';
const hex = (n: number) => n.toString(16).padStart(2, '0');
/** Kubernetes' pod MAC convention (0a:58 + the IPv4 address); host side 02:… from the topology and pod. */
const podMac = (ip: string) => ['0a', '58', ...ip.split('.').map((o) => hex(Number(o)))].join(':');
const hostMac = (k: number, index: number) => `02:fb:${hex(k)}:00:${hex(index >> 8)}:${hex(index & 255)}`;

export interface Topology {
  label: string;
  node: string;
  /** Pod netns names by pod index. */
  pods: string[];
}

const ipBatch = (netns: string, lines: string[]) => run('ip', ['-n', netns, '-batch', '-'], lines.join('\n') + '\n');

/** Creates netns in one `ip -batch` (each with lo up inside it, later). */
async function addNetns(names: string[]): Promise<void> {
  await run('ip', ['-batch', '-'], names.map((n) => `netns add ${n}`).join('\n') + '\n');
}

/** Wires pods `indices` to `node` (their netns must exist). */
async function wirePods(node: string, k: number, pods: Array<{ index: number; netns: string }>): Promise<void> {
  const nodeLines: string[] = [];
  for (const { index, netns } of pods) {
    const ip = podIP(index);
    const veth = `p${index}`;
    nodeLines.push(
      `link add ${veth} address ${hostMac(k, index)} type veth peer name eth0 address ${podMac(ip)} netns ${netns}`,
      `link set ${veth} up`,
      `route replace ${ip}/32 dev ${veth} scope link`,
      `neigh replace ${ip} lladdr ${podMac(ip)} dev ${veth} nud permanent`,
    );
  }
  await ipBatch(node, nodeLines);
  // Pod sides side by side, a few at a time: each is its own `ip -n POD -batch`.
  const queue = [...pods];
  const worker = async () => {
    for (let p = queue.shift(); p; p = queue.shift()) {
      const ip = podIP(p.index);
      await ipBatch(p.netns, [
        'link set lo up',
        `addr add ${ip}/32 dev eth0`,
        `neigh replace ${GATEWAY} lladdr ${hostMac(k, p.index)} dev eth0 nud permanent`,
        'link set eth0 up',
        `route add ${GATEWAY} dev eth0 scope link`,
        `route add default via ${GATEWAY} dev eth0`,
      ]);
    }
  };
  await Promise.all(Array.from({ length: 8 }, worker));
}

/** A node and `count` pods (indices 0..count-1), wired. */
export async function makeTopology(scope: Scope, label: string, k: number, count: number): Promise<Topology> {
  const node = scope.name(`${label}-node`);
  const pods = Array.from({ length: count }, (_, i) => scope.name(`${label}-${i}`));
  await addNetns([node, ...pods]);
  await ipBatch(node, ['link set lo up']);
  // Inside the node only: the root namespace's sysctls are never touched.
  await run('ip', ['netns', 'exec', node, 'sysctl', '-q', '-w', 'net.ipv4.ip_forward=1']);
  await wirePods(node, k, pods.map((netns, index) => ({ index, netns })));
  return { label, node, pods };
}

export const netnsPath = (name: string) => `/run/netns/${name}`;
