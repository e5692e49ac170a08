// A check, untimed, that each loaded ruleset enforces what it was rendered from: a seeded sample of pod
// pairs on TCP 8080 and 9090 that the evaluator (src/policy/evaluate.ts, the semantics' oracle) allows
// and denies, each tried once on every ruleset. A bench whose reference let everything through (or
// dropped what it should allow) would compare the wrong things; this says so.
import { evaluateIn, indexWorld } from '../../src/policy/evaluate.js';
import { connectsPass, type Natives, type Pair } from './native.js';
import type { Scope } from '../proxy/topology.js';
import type { Topology } from './topology.js';
import { netnsPath } from './topology.js';
import { ADDED_POD_INDEX, SERVE_PORTS, podIP, rng, type PolicyWorld } from './world.js';

export interface Probe { from: number; to: number; port: number; allowed: boolean }

/** Up to `each` pairs the evaluator allows and `each` it denies (denied ones only when some policy exists). */
export function sampleVerdicts(world: PolicyWorld, seed: number, each = 8): Probe[] {
  const idx = indexWorld(world);
  const r = rng(seed ^ 0xc0ffee ^ world.policies.length);
  const allowed: Probe[] = [];
  const denied: Probe[] = [];
  for (let tries = 0; tries < 5000 && (allowed.length < each || denied.length < each); tries++) {
    const from = Math.floor(r() * ADDED_POD_INDEX);
    const to = Math.floor(r() * ADDED_POD_INDEX);
    if (from === to) continue;
    const port = SERVE_PORTS[Math.floor(r() * SERVE_PORTS.length)];
    const ok = evaluateIn(idx, { from: podIP(from), to: podIP(to), port, protocol: 'TCP' }).allowed;
    const list = ok ? allowed : denied;
    if (list.length < each) list.push({ from, to, port, allowed: ok });
  }
  return [...allowed, ...denied];
}

export interface VerdictResult { probes: number; allowed: number; disagree: Record<string, string[]> }

/** Tries every probe on every topology (side by side); lists, per ruleset, the probes it got wrong. */
export async function checkVerdicts(scope: Scope, natives: Natives, topos: Record<string, Topology>, probes: Probe[]): Promise<VerdictResult> {
  const out: VerdictResult = { probes: probes.length, allowed: probes.filter((p) => p.allowed).length, disagree: {} };
  await Promise.all(Object.entries(topos).map(async ([name, t]) => {
    const pairs: Pair[] = probes.map((p) => ({ netns: netnsPath(t.pods[p.from]), address: podIP(p.to), port: p.port }));
    const got = await connectsPass(scope, natives, pairs, 300);
    out.disagree[name] = probes.filter((p, i) => got[i] !== p.allowed)
      .map((p) => `${podIP(p.from)} → ${podIP(p.to)}:${p.port} ${p.allowed ? 'allowed but dropped' : 'denied but connected'}`);
  }));
  return out;
}
