// The whole policy table of one node, assembled from each policy's part (render.ts). A PolicyRenderer
// keeps between renders what a change cannot touch, as the proxy's change tracker does: a policy's part
// (its chain and set declarations) until the policy changes, and the elements of each set that follows
// pods until a pod it picks (before or after the change) comes, goes or changes. Who a policy isolates
// is decided anew each render (a lookup per distinct selector). A namespace change recomputes every
// set. Pure apart from that memory; renderPolicy is the same without it.
import type { Namespace, NetworkPolicy, Pod } from '../../api/types.js';
import type { NftBlock, NftTable } from '../nft/model.js';
import { namespaceOf } from '../../policy/selector.js';
import { FAMILIES, POLICY_TABLE, baseChains, comment, dropLogRule, nameFor, policyKey, policyPart, sourceElements, sourceTouchedBy,
  type Direction, type ElementSource, type PolicyPart, type PolicyRenderInput, type SetPart } from './render.js';
import { indexWorld, selectedLocal, type PolicyWorldIndex } from './world.js';

/** More changed pods than this in one render: judging each against every set costs more than a fresh render. */
const MANY_CHANGES = 64;

const podKey = (p: Pod) => `${namespaceOf(p)}/${p.metadata.name}`;
const byKey = <T>(items: T[], key: (t: T) => string) => new Map(items.map((i) => [key(i), i]));

interface Previous { nodeName: string; ipv6: boolean; pods: Map<string, Pod>; policies: Map<string, NetworkPolicy>; namespaces: Map<string, Namespace> }

export class PolicyRenderer {
  private prev?: Previous;
  /** Parts by "ns/name|direction", with the policy object they were made from. */
  private parts = new Map<string, { policy: NetworkPolicy; part: PolicyPart }>();
  /** Elements of the sets that follow pods, by set name, with their source. */
  private elements = new Map<string, { source: ElementSource; elements: Map<string, string> }>();
  /** Parts and sets made again by the last render (tests and the bench read it). */
  rendered = 0;
  /** The group chains of the last render: a logged drop's prefix names one (src/droplog/). */
  groups = new Map<string, DropGroup>();

  render(input: PolicyRenderInput): NftTable {
    const families: Array<4 | 6> = input.ipv6 ? [4, 6] : [4];
    const w = indexWorld(input.nodeName, input.pods, input.namespaces);
    const now: Previous = { nodeName: input.nodeName, ipv6: input.ipv6, pods: byKey(w.pods.map((p) => p.pod), podKey),
      policies: byKey(input.policies, policyKey), namespaces: byKey(input.namespaces, (n) => n.metadata.name) };
    this.forgetTouched(now);
    this.prev = now;
    this.rendered = 0;
    const policies = [...now.policies].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([, p]) => p);
    const isolating = { ingress: [] as Isolation[], egress: [] as Isolation[] };
    for (const dir of ['ingress', 'egress'] as const) {
      for (const policy of policies) {
        if (!policy.spec.policyTypes.includes(dir === 'ingress' ? 'Ingress' : 'Egress')) continue;
        const selected = selectedLocal(policy, w);
        if (selected.length === 0) continue;
        isolating[dir].push({ part: this.partOf(policy, dir, families), selected: selected.map((p) => p.key) });
      }
    }
    for (const id of this.parts.keys()) if (!now.policies.has(id.slice(0, id.lastIndexOf('|')))) this.parts.delete(id);
    const used = new Set<string>();
    const groups = new Map<string, DropGroup>();
    const table = assemble(isolating, w, families, (name, source) => { used.add(name); return this.elementsOf(name, source, w); },
      (chain, g) => groups.set(chain, g));
    this.groups = groups;
    // Sets no policy uses any more are forgotten, so a long-lived agent keeps only what its table holds.
    for (const name of this.elements.keys()) if (!used.has(name)) this.elements.delete(name);
    return table;
  }

  private partOf(policy: NetworkPolicy, dir: Direction, families: Array<4 | 6>): PolicyPart {
    const id = `${policyKey(policy)}|${dir}`;
    const kept = this.parts.get(id);
    if (kept && kept.policy === policy) return kept.part;
    const part = policyPart(policy, dir, families);
    this.parts.set(id, { policy, part });
    this.rendered++;
    return part;
  }

  /** A set's elements: the same Map object while nothing it follows changed (PolicySync compares only new ones). */
  private elementsOf(name: string, source: ElementSource, w: PolicyWorldIndex): Map<string, string> {
    const kept = this.elements.get(name);
    if (kept) return kept.elements;
    const elements = new Map(sourceElements(source, w).map((e) => [e, '']));
    this.elements.set(name, { source, elements });
    this.rendered++;
    return elements;
  }

  /** Drops what the difference between the last render's inputs and these can change. */
  private forgetTouched(now: Previous): void {
    const prev = this.prev;
    if (!prev || prev.nodeName !== now.nodeName || prev.ipv6 !== now.ipv6) {
      this.parts.clear();
      this.elements.clear();
      return;
    }
    // A set's elements follow its policy too (a named-port set reads its podSelector).
    for (const [name, e] of this.elements) if (e.source.kind === 'named' && now.policies.get(policyKey(e.source.policy)) !== e.source.policy) this.elements.delete(name);
    if (!sameObjects(prev.namespaces, now.namespaces)) { this.elements.clear(); return; }
    const changed: Pod[] = [];
    for (const [key, p] of prev.pods) { const q = now.pods.get(key); if (q !== p) { changed.push(p); if (q) changed.push(q); } }
    for (const [key, q] of now.pods) if (!prev.pods.has(key)) changed.push(q);
    if (changed.length === 0) return;
    if (changed.length > MANY_CHANGES) { this.elements.clear(); return; }
    for (const [name, e] of this.elements) {
      if (changed.some((pod) => sourceTouchedBy(e.source, pod, now.namespaces))) this.elements.delete(name);
    }
  }
}

interface Isolation { part: PolicyPart; selected: string[] }

/** What a group chain stands for: the direction and the policies ("ns/name") isolating its pods. */
export interface DropGroup { direction: Direction; policies: string[] }

/** A static set's elements as a Map, made once per part (parts live as long as their policy). */
const staticMaps = new WeakMap<SetPart, Map<string, string>>();
function staticElements(s: SetPart): Map<string, string> {
  let m = staticMaps.get(s);
  if (!m) { m = new Map((s.elements ?? []).map((e) => [e, ''])); staticMaps.set(s, m); }
  return m;
}

function sameObjects<T>(a: Map<string, T>, b: Map<string, T>): boolean {
  if (a.size !== b.size) return false;
  for (const [k, v] of a) if (b.get(k) !== v) return false;
  return true;
}

/** The table from its parts: sets once each, base chains, policy chains, then one group chain per set of policies. */
function assemble(isolating: Record<Direction, Isolation[]>, w: PolicyWorldIndex, families: Array<4 | 6>,
  elementsOf: (name: string, source: ElementSource) => Map<string, string>, onGroup: (chain: string, g: DropGroup) => void = () => {}): NftTable {
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
    // Each isolated local pod's "address . address" (filled below): its packets to itself through a
    // Service pass (base chains). Pods no policy isolates pass anyway, and pod churn without policies
    // leaves the table as it is.
    const self = `self${FAMILIES[fam].suffix}`;
    sets.push({ kind: 'set', name: self, body: [`type ${FAMILIES[fam].addr} . ${FAMILIES[fam].addr}`] });
    elements.set(self, new Map());
  }
  const podsByKey = new Map(w.local.map((p) => [p.key, p]));
  for (const dir of ['ingress', 'egress'] as const) {
    const byPod = new Map<string, PolicyPart[]>();
    for (const { part, selected } of isolating[dir]) {
      if (claim(part.chain, part.chainIdentity)) chains.push({ kind: 'chain', name: part.chain, body: part.body });
      for (const s of part.sets) {
        if (!claim(s.block.name, s.identity)) continue;
        sets.push(s.block);
        elements.set(s.block.name, s.elements ? staticElements(s) : elementsOf(s.block.name, s.source!));
      }
      for (const pod of selected) {
        const list = byPod.get(pod);
        if (list) list.push(part); else byPod.set(pod, [part]);
      }
    }
    // Pods selected by the same policies share one group chain.
    for (const [podKey, list] of byPod) {
      const names = list.map((p) => p.policy).join(', ');
      const identity = `${dir}|${names}`;
      const group = nameFor(dir === 'ingress' ? 'ig' : 'eg', identity);
      // A policy with no rule in this direction (a default deny) only isolates: no jump to its empty chain.
      const jumps = list.filter((p) => p.body.length > 0).map((p) => `jump ${p.chain}`);
      if (claim(group, identity)) {
        chains.push({ kind: 'chain', name: group, body: [...jumps, dropLogRule(group), `drop ${comment(`${dir} isolated by ${names}`)}`] });
        onGroup(group, { direction: dir, policies: list.map((p) => p.policy) });
      }
      for (const ip of podsByKey.get(podKey)?.ips ?? []) {
        const fam = ip.includes(':') ? 6 : 4;
        if (!families.includes(fam)) continue;
        elements.get(`${dir}${FAMILIES[fam].suffix}`)!.set(ip, `goto ${group}`);
        elements.get(`self${FAMILIES[fam].suffix}`)!.set(`${ip} . ${ip}`, '');
      }
    }
  }
  return { family: 'inet', name: POLICY_TABLE, blocks: [...sets, ...baseChains(families), ...chains], elements };
}

/** The whole table for one node, rendered from nothing. */
export function renderPolicy(input: PolicyRenderInput): NftTable {
  return new PolicyRenderer().render(input);
}
