// The rendered tables, walked by the packet tracer on every node a packet crosses, give the evaluator's
// verdict for random worlds and connections: the dataplane means what the API reference says.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { renderPolicy } from '../../src/dataplane/policy/renderer.js';
import { renderTable } from '../../src/dataplane/nft/model.js';
import { RulesetTracer, type TracePacket } from '../../src/dataplane/nft/tracer.js';
import { evaluate, nodeAddresses, podAddresses, type Connection, type PolicyWorld } from '../../src/policy/evaluate.js';
import type { Pod } from '../../src/api/types.js';
import { randomConnections, randomWorld } from '../helpers/policy-gen.js';

/** Each node's table, read by a tracer. */
function tables(w: PolicyWorld, ipv6: boolean): Map<string, RulesetTracer> {
  return new Map(w.nodes.map((n) => [n.metadata.name,
    new RulesetTracer([renderTable(renderPolicy({ nodeName: n.metadata.name, pods: w.pods, namespaces: w.namespaces, policies: w.policies, ipv6 }))])]));
}

/** The pod that owns an address (not host-network), and the node whose own address it is. */
function owners(w: PolicyWorld, ip: string): { pod?: Pod; node?: string } {
  const pod = w.pods.find((p) => podAddresses(p).includes(ip));
  const node = w.nodes.find((n) => nodeAddresses(n).includes(ip))?.metadata.name;
  return { pod, node };
}

/**
 * What the nodes' tables do to one connection's first packet: traced on the source pod's node
 * (forward, or input when it goes to that node's own address), then on the destination pod's node when
 * that is another (forward; output when the node itself sends to its own pod). Accepted when every
 * node on the way accepts; the trace lines for a failure message.
 */
function dataplane(w: PolicyWorld, t: Map<string, RulesetTracer>, c: Connection): { allowed: boolean; path: string[] } {
  const from = owners(w, c.from);
  const to = owners(w, c.to);
  const base = {
    family: (c.from.includes(':') ? 6 : 4) as 4 | 6, saddr: c.from, daddr: c.to,
    protocol: c.protocol.toLowerCase() as TracePacket['protocol'], ctState: 'new' as const,
    ...(c.protocol === 'ICMP' ? {} : { sport: 40000, dport: c.port }),
  };
  const hops: Array<{ node: string; hook: TracePacket['hook'] }> = [];
  const srcNode = from.pod?.spec.nodeName;
  const dstNode = to.pod?.spec.nodeName;
  if (srcNode) hops.push({ node: srcNode, hook: to.node === srcNode ? 'input' : 'forward' });
  if (dstNode && dstNode !== srcNode) hops.push({ node: dstNode, hook: from.node === dstNode ? 'output' : 'forward' });
  const path: string[] = [];
  for (const hop of hops) {
    const local = w.nodes.find((n) => n.metadata.name === hop.node)!;
    const r = t.get(hop.node)!.trace({ ...base, hook: hop.hook, local: nodeAddresses(local) });
    path.push(`${hop.node} ${hop.hook}: ${r.verdict}`, ...r.path.map((s) => `  ${s.chain}: ${s.rule} -> ${s.did}`));
    if (r.verdict === 'drop') return { allowed: false, path };
  }
  return { allowed: true, path };
}

// Worlds of this size find what small ones miss (an egress named port through an ipBlock peer did).
for (const { seed, dualStack } of Array.from({ length: 24 }, (_, i) => ({ seed: i + 1, dualStack: (i + 1) % 4 === 0 }))) {
  test(`renderer + tracer give the evaluator's verdict (world ${seed}${dualStack ? ', dual stack' : ''})`, () => {
    const w = randomWorld(seed, { nodes: 3, namespaces: 5, podsPerNamespace: 6, policies: 20, dualStack });
    const t = tables(w, dualStack);
    for (const c of randomConnections(w, seed * 101, 300)) {
      const want = evaluate(w, c).allowed;
      const got = dataplane(w, t, c);
      assert.equal(got.allowed, want, `${c.protocol} ${c.from} -> ${c.to}:${c.port}: evaluator ${want}, dataplane ${got.allowed}\n${got.path.join('\n')}`);
    }
  });
}
