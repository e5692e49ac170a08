// Properties of the evaluator over random worlds (seeded, test/helpers/policy-gen.ts): its verdicts are
// consistent, equal a set-based derivation (the renderer's shape: peer address ranges, then ports),
// do not depend on names or order, and rules only ever widen what passes. The renderer + tracer
// comparison uses the same generator.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  evaluateIn, indexWorld, isolatingIn, rangesContain, rulePeerRanges, rulePortsMatch,
  type Connection, type DirectionVerdict, type PolicyIndex, type PolicyWorld, type Verdict,
} from '../../src/policy/evaluate.js';
import type { LabelSelector, NetworkPolicy, Pod } from '../../src/api/types.js';
import { gen, randomConnections, randomWorld } from '../helpers/policy-gen.js';

const SEEDS = Array.from({ length: 60 }, (_, i) => i + 1);
const CONNS = 120;
const judgeAll = (w: PolicyWorld, conns: Connection[]): Verdict[] => { const idx = indexWorld(w); return conns.map((c) => evaluateIn(idx, c)); };
const clone = <T>(x: T): T => structuredClone(x);

test('verdicts are consistent: both directions decide, allowedBy is an isolating policy\'s rule', () => {
  for (const seed of SEEDS) {
    const w = randomWorld(seed, { policies: 6 });
    const conns = randomConnections(w, seed, CONNS);
    judgeAll(w, conns).forEach((v, i) => {
      const at = `seed ${seed} ${JSON.stringify(conns[i])}`;
      assert.equal(v.allowed, v.egress.allowed && v.ingress.allowed, at);
      for (const [d, dv] of [['egress', v.egress], ['ingress', v.ingress]] as const) {
        assert.deepEqual(dv.isolatedBy, [...new Set(dv.isolatedBy)].sort(), at);
        if (dv.allowedBy) {
          assert.ok(dv.isolatedBy.includes(dv.allowedBy.policy), at);
          const p = w.policies.find((x) => `${x.metadata.namespace}/${x.metadata.name}` === dv.allowedBy!.policy)!;
          assert.ok(dv.allowedBy.rule < (d === 'egress' ? p.spec.egress! : p.spec.ingress!).length, at);
        }
        if (!dv.pod) assert.deepEqual([dv.isolatedBy, dv.allowed], [[], true], at);
        if (!dv.always) assert.equal(dv.allowed, dv.isolatedBy.length === 0 || dv.allowedBy !== undefined, at);
      }
    });
  }
});

/** The renderer's way: the pods isolated, then per rule "peer address in the rule's ranges, and ports". */
function setBased(idx: PolicyIndex, c: Connection, direction: 'Ingress' | 'Egress', self: Pod | undefined, other: Pod | undefined): boolean {
  if (!self) return true;
  const policies = isolatingIn(idx, self, direction);
  if (policies.length === 0) return true;
  const peerAddr = direction === 'Ingress' ? c.from : c.to;
  const destination = direction === 'Ingress' ? self : other;
  return policies.some((p) => (direction === 'Ingress' ? (p.spec.ingress ?? []).map((r) => [r.from, r.ports] as const) : (p.spec.egress ?? []).map((r) => [r.to, r.ports] as const))
    .some(([peers, ports]) => {
      const ranges = rulePeerRanges(idx, peers, p.metadata.namespace!);
      return (ranges === undefined || rangesContain(ranges, peerAddr)) && rulePortsMatch(ports, destination, c.port, c.protocol);
    }));
}

test('the evaluator equals a set-based derivation (peer address ranges, then ports), as the renderer builds it', () => {
  for (const seed of SEEDS) {
    const w = randomWorld(seed, { policies: 8, dualStack: seed % 3 === 0 });
    const idx = indexWorld(w);
    for (const c of randomConnections(w, seed * 7, CONNS)) {
      const v = evaluateIn(idx, c);
      const src = idx.podByAddress.get(c.from);
      const dst = idx.podByAddress.get(c.to);
      const at = `seed ${seed} ${JSON.stringify(c)}`;
      if (!v.egress.always) assert.equal(v.egress.allowed, setBased(idx, c, 'Egress', src, dst), `egress ${at}`);
      if (!v.ingress.always) assert.equal(v.ingress.allowed, setBased(idx, c, 'Ingress', dst, src), `ingress ${at}`);
    }
  }
});

/** Renames every label value (not namespace names) and every port name through a bijection. */
function relabel(w: PolicyWorld): PolicyWorld {
  const out = clone(w);
  const val = (v: string) => `v-${v}`;
  const labels = (l?: Record<string, string>) => l && Object.fromEntries(Object.entries(l).map(([k, v]) => [k, k === 'kubernetes.io/metadata.name' ? v : val(v)]));
  const sel = (s?: LabelSelector): LabelSelector | undefined => s && {
    ...(s.matchLabels ? { matchLabels: labels(s.matchLabels) } : {}),
    ...(s.matchExpressions ? { matchExpressions: s.matchExpressions.map((e) => ({ ...e, ...(e.values ? { values: e.key === 'kubernetes.io/metadata.name' ? e.values : e.values.map(val) } : {}) })) } : {}),
  };
  for (const n of out.namespaces) n.metadata.labels = labels(n.metadata.labels);
  for (const p of out.pods) {
    p.metadata.labels = labels(p.metadata.labels);
    for (const c of p.spec.containers) for (const port of c.ports ?? []) if (port.name) port.name = `n-${port.name}`;
  }
  for (const p of out.policies) {
    p.spec.podSelector = sel(p.spec.podSelector)!;
    for (const r of [...(p.spec.ingress ?? []).map((x) => ({ peers: x.from, ports: x.ports })), ...(p.spec.egress ?? []).map((x) => ({ peers: x.to, ports: x.ports }))]) {
      for (const peer of r.peers ?? []) { peer.podSelector = sel(peer.podSelector); peer.namespaceSelector = sel(peer.namespaceSelector); }
      for (const port of r.ports ?? []) if (typeof port.port === 'string') port.port = `n-${port.port}`;
    }
  }
  return out;
}

function shuffle<T>(xs: T[], seed: number): T[] {
  const g = gen(seed);
  const out = [...xs];
  for (let i = out.length - 1; i > 0; i--) { const j = g.int(i + 1); [out[i], out[j]] = [out[j], out[i]]; }
  return out;
}

test('names and order do not matter: relabelled, renamed ports, shuffled objects give the same verdicts', () => {
  for (const seed of SEEDS) {
    const w = randomWorld(seed, { policies: 6 });
    const conns = randomConnections(w, seed, CONNS);
    const before = judgeAll(w, conns);
    assert.deepEqual(judgeAll(relabel(w), conns), before, `relabel, seed ${seed}`);
    const shuffled = { namespaces: shuffle(w.namespaces, seed), pods: shuffle(w.pods, seed + 1), policies: shuffle(w.policies, seed + 2), nodes: shuffle(w.nodes, seed + 3) };
    assert.deepEqual(judgeAll(shuffled, conns), before, `shuffle, seed ${seed}`);
  }
});

const directions = (v: Verdict): Array<[string, DirectionVerdict]> => [['egress', v.egress], ['ingress', v.ingress]];

test('rules only widen: an added rule never denies; an added policy without rules never allows', () => {
  for (const seed of SEEDS) {
    const w = randomWorld(seed, { policies: 5 });
    if (w.policies.length === 0) continue;
    const conns = randomConnections(w, seed, CONNS);
    const before = judgeAll(w, conns);
    // An allow-all rule in every policy: every isolated direction passes, and nothing allowed before is denied.
    const open = clone(w);
    for (const p of open.policies) {
      if (p.spec.policyTypes.includes('Ingress')) p.spec.ingress = [...(p.spec.ingress ?? []), {}];
      if (p.spec.policyTypes.includes('Egress')) p.spec.egress = [...(p.spec.egress ?? []), {}];
    }
    judgeAll(open, conns).forEach((v) => assert.equal(v.allowed, true, `open, seed ${seed}`));
    // A deny-all policy in each namespace: what passes after passed before.
    const closed = clone(w);
    for (const n of w.namespaces) closed.policies.push({ ...clone(w.policies[0]), metadata: { name: 'zz-deny', namespace: n.metadata.name },
      spec: { podSelector: {}, policyTypes: ['Ingress', 'Egress'] } } as NetworkPolicy);
    judgeAll(closed, conns).forEach((v, i) => {
      for (const [d, dv] of directions(v)) if (dv.allowed) assert.equal(directions(before[i])[d === 'egress' ? 0 : 1][1].allowed, true, `closed ${d}, seed ${seed}`);
    });
    // Those deny-alls alone: every judged direction is denied, save a pod to itself and a node to its own pods.
    judgeAll({ ...closed, policies: closed.policies.filter((p) => p.metadata.name === 'zz-deny') }, conns).forEach((v) => {
      for (const [, dv] of directions(v)) if (dv.pod && !dv.always) assert.equal(dv.allowed, false, `deny-all, seed ${seed}`);
    });
  }
});
