// The whole policy table of one node, assembled from each policy's part (render.ts). A PolicyRenderer
// keeps the parts between renders and renders again only those a change can touch: a policy that
// changed, and the policies that select, or have as a peer, a pod that came, went or changed (as the
// proxy's change tracker re-renders only touched Services). A namespace change renders all again.
// Pure apart from that memory; renderPolicy is the same without it.
import type { Namespace, NetworkPolicy, Pod } from '../../api/types.js';
import type { NftBlock, NftTable } from '../nft/model.js';
import { matchesSelector, namespaceOf, peerSelectsPod } from '../../policy/selector.js';
import { FAMILIES, POLICY_TABLE, baseChains, comment, nameFor, policyKey, policyPart, type Direction, type PolicyPart, type PolicyRenderInput } from './render.js';
import { indexWorld, selectedLocal, type PolicyWorldIndex } from './world.js';

/** More changed pods than this in one render: judging each against every part costs more than a fresh render. */
const MANY_CHANGES = 64;

const podKey = (p: Pod) => `${namespaceOf(p)}/${p.metadata.name}`;
const byKey = <T>(items: T[], key: (t: T) => string) => new Map(items.map((i) => [key(i), i]));

const hasNamedPorts = (rule: { ports?: Array<{ port?: number | string }> }) => (rule.ports ?? []).some((p) => typeof p.port === 'string');

/**
 * What a pod (as it was, or as it is) can change in a policy's part: 'all' when it is one of its peers
 * (its sets change), 'selection' when only the pods it isolates may change, undefined when nothing.
 */
function touches(policy: NetworkPolicy, dir: Direction, pod: Pod, namespaces: ReadonlyMap<string, Namespace>): 'all' | 'selection' | undefined {
  const rules = (dir === 'ingress' ? policy.spec.ingress : policy.spec.egress) ?? [];
  for (const rule of rules) {
    const peers = ('from' in rule ? rule.from : 'to' in rule ? rule.to : undefined) ?? [];
    // An egress rule with named ports and no peers resolves them on every pod of the cluster.
    if (peers.length === 0 && dir === 'egress' && hasNamedPorts(rule)) return 'all';
    if (peers.some((peer) => peerSelectsPod(peer, namespaceOf(policy), pod, namespaces))) return 'all';
  }
  if (namespaceOf(pod) === namespaceOf(policy) && matchesSelector(policy.spec.podSelector, pod.metadata.labels)) {
    // Ingress named ports are resolved on the isolated pods themselves: their set follows the selection.
    return dir === 'ingress' && rules.some(hasNamedPorts) ? 'all' : 'selection';
  }
  return undefined;
}

interface Previous { nodeName: string; ipv6: boolean; pods: Map<string, Pod>; policies: Map<string, NetworkPolicy>; namespaces: Map<string, Namespace> }

export class PolicyRenderer {
  private prev?: Previous;
  /** Parts by "ns/name|direction". */
  private parts = new Map<string, PolicyPart>();
  /** Parts whose rules still hold but whose isolated pods may have changed. */
  private reselect = new Set<string>();
  /** Parts rendered again by the last render (bench and tests read it). */
  rendered = 0;

  render(input: PolicyRenderInput): NftTable {
    const families: Array<4 | 6> = input.ipv6 ? [4, 6] : [4];
    const w = indexWorld(input.nodeName, input.pods, input.namespaces);
    const now: Previous = { nodeName: input.nodeName, ipv6: input.ipv6, pods: byKey(w.pods.map((p) => p.pod), podKey),
      policies: byKey(input.policies, policyKey), namespaces: byKey(input.namespaces, (n) => n.metadata.name) };
    this.forgetTouched(now);
    this.prev = now;
    this.rendered = 0;
    const policies = [...now.policies].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([, p]) => p);
    const partsByDir = { ingress: [] as PolicyPart[], egress: [] as PolicyPart[] };
    for (const dir of ['ingress', 'egress'] as const) {
      for (const policy of policies) {
        if (!policy.spec.policyTypes.includes(dir === 'ingress' ? 'Ingress' : 'Egress')) continue;
        const id = `${policyKey(policy)}|${dir}`;
        let part = this.parts.get(id);
        if (part && this.reselect.has(id)) {
          const selected = selectedLocal(policy, w);
          // A part first rendered with no pod to isolate has no chain yet.
          part = part.chain && selected.length ? { ...part, selected: selected.map((p) => p.key) } : undefined;
          if (part) this.parts.set(id, part); else this.parts.delete(id);
        }
        if (!part) {
          const selected = selectedLocal(policy, w);
          part = selected.length ? policyPart(policy, dir, selected, w, families) : { policy: policyKey(policy), chain: '', chainIdentity: id, body: [], sets: [], selected: [] };
          this.parts.set(id, part);
          this.rendered++;
        }
        if (part.selected.length) partsByDir[dir].push(part);
      }
    }
    this.reselect.clear();
    for (const id of this.parts.keys()) if (!now.policies.has(id.slice(0, id.lastIndexOf('|')))) this.parts.delete(id);
    return assemble(partsByDir, w, families);
  }

  /** Drops the parts the difference between the last render's inputs and these can change. */
  private forgetTouched(now: Previous): void {
    const prev = this.prev;
    if (!prev || prev.nodeName !== now.nodeName || prev.ipv6 !== now.ipv6 || !sameObjects(prev.namespaces, now.namespaces)) {
      this.parts.clear();
      this.reselect.clear();
      return;
    }
    for (const [key, p] of prev.policies) if (now.policies.get(key) !== p) { this.parts.delete(`${key}|ingress`); this.parts.delete(`${key}|egress`); }
    const changed: Pod[] = [];
    for (const [key, p] of prev.pods) { const q = now.pods.get(key); if (q !== p) { changed.push(p); if (q) changed.push(q); } }
    for (const [key, q] of now.pods) if (!prev.pods.has(key)) changed.push(q);
    if (changed.length === 0) return;
    if (changed.length > MANY_CHANGES) { this.parts.clear(); this.reselect.clear(); return; }
    for (const [id, part] of this.parts) {
      const dir = id.slice(id.lastIndexOf('|') + 1) as Direction;
      const policy = now.policies.get(part.policy);
      if (!policy) { this.parts.delete(id); continue; }
      let worst: 'all' | 'selection' | undefined;
      for (const pod of changed) {
        const t = touches(policy, dir, pod, now.namespaces);
        if (t === 'all') { worst = 'all'; break; }
        worst ??= t;
      }
      if (worst === 'all') this.parts.delete(id);
      else if (worst === 'selection') this.reselect.add(id);
    }
  }
}

function sameObjects<T>(a: Map<string, T>, b: Map<string, T>): boolean {
  if (a.size !== b.size) return false;
  for (const [k, v] of a) if (b.get(k) !== v) return false;
  return true;
}

/** The table from its parts: sets once each, base chains, policy chains, then one group chain per set of policies. */
function assemble(partsByDir: Record<Direction, PolicyPart[]>, w: PolicyWorldIndex, families: Array<4 | 6>): NftTable {
  const sets: NftBlock[] = [];
  const chains: NftBlock[] = [];
  const elements = new Map<string, Map<string, string>>();
  const owners = new Map<string, string>();
  // Two identities with one name would make two policies share a set: refuse rather than mis-enforce.
  const claim = (name: string, identity: string) => {
    const owner = owners.get(name);
    if (owner !== undefined && owner !== identity) throw new Error(`policy table: "${name}" would name both ${owner} and ${identity}`);
    owners.set(name, identity);
    return owner === undefined;
  };
  for (const fam of families) {
    for (const dir of ['ingress', 'egress'] as const) {
      const name = `${dir}${FAMILIES[fam].suffix}`;
      sets.push({ kind: 'map', name, body: [`type ${FAMILIES[fam].addr} : verdict`] });
      elements.set(name, new Map());
    }
  }
  const podsByKey = new Map(w.local.map((p) => [p.key, p]));
  for (const dir of ['ingress', 'egress'] as const) {
    const isolating = new Map<string, PolicyPart[]>();
    for (const part of partsByDir[dir]) {
      if (claim(part.chain, part.chainIdentity)) chains.push({ kind: 'chain', name: part.chain, body: part.body });
      for (const s of part.sets) {
        if (!claim(s.block.name, s.identity)) continue;
        sets.push(s.block);
        elements.set(s.block.name, new Map(s.elements.map((e) => [e, ''])));
      }
      for (const pod of part.selected) {
        const list = isolating.get(pod);
        if (list) list.push(part); else isolating.set(pod, [part]);
      }
    }
    // Pods selected by the same policies share one group chain.
    for (const [podKey, list] of isolating) {
      const names = list.map((p) => p.policy).join(', ');
      const identity = `${dir}|${names}`;
      const group = nameFor(dir === 'ingress' ? 'ig' : 'eg', identity);
      if (claim(group, identity)) chains.push({ kind: 'chain', name: group, body: [...list.map((p) => `jump ${p.chain}`), `drop ${comment(`${dir} isolated by ${names}`)}`] });
      for (const ip of podsByKey.get(podKey)?.ips ?? []) {
        const fam = ip.includes(':') ? 6 : 4;
        if (families.includes(fam)) elements.get(`${dir}${FAMILIES[fam].suffix}`)!.set(ip, `goto ${group}`);
      }
    }
  }
  return { family: 'inet', name: POLICY_TABLE, blocks: [...sets, ...baseChains(families), ...chains], elements };
}

/** The whole table for one node, rendered from nothing. */
export function renderPolicy(input: PolicyRenderInput): NftTable {
  return new PolicyRenderer().render(input);
}
