// The agent's features, in start order, and which of them an operator may turn off. Adding a feature is
// one line here (and its file beside this one); the agent wires whatever this list builds.
import type { CniServerHooks } from '../../cni/server.js';
import type { Feature, NodeContext } from './feature.js';
import { guardFeature } from './guard.js';
import { routesFeature } from './routes.js';
import { masqueradeFeature } from './masquerade.js';
import { proxyFeature } from './proxy.js';
import { policyFeature } from './policy.js';

export type { Feature, NodeContext } from './feature.js';

/** Features an operator may turn off (`flatnet agent --disable proxy,masquerade`); the rest always run. */
export const OPTIONAL_FEATURES = ['proxy', 'masquerade', 'policy'] as const;
export type OptionalFeature = typeof OPTIONAL_FEATURES[number];
/** Which optional features run; an absent entry is on. */
export type FeatureSwitches = { [K in OptionalFeature]?: boolean };

interface FeatureEntry { name: string; optional?: OptionalFeature; build(ctx: NodeContext): Feature }

/** Start order: the guard first (pods wait for it), then routes, masquerade, the proxy, policy. */
export const FEATURES: FeatureEntry[] = [
  { name: 'guard', build: guardFeature },
  { name: 'routes', build: routesFeature },
  { name: 'masquerade', optional: 'masquerade', build: masqueradeFeature },
  { name: 'proxy', optional: 'proxy', build: proxyFeature },
  // Last: it gates pods (they start isolated) and its CNI hook runs after the others'.
  { name: 'policy', optional: 'policy', build: policyFeature },
];

export interface BuiltFeatures {
  /** To start. */
  enabled: Feature[];
  /** Turned off: to clean up (their tables and devices removed), never started. */
  disabled: Feature[];
}

/** Builds every feature, split by the switches. Pure apart from the features' constructors. */
export function buildFeatures(ctx: NodeContext, switches: FeatureSwitches = {}): BuiltFeatures {
  const out: BuiltFeatures = { enabled: [], disabled: [] };
  for (const f of FEATURES) {
    const on = f.optional === undefined || switches[f.optional] !== false;
    (on ? out.enabled : out.disabled).push(f.build(ctx));
  }
  return out;
}

/**
 * `--disable proxy,policy` → { proxy: false, policy: false }. Throws on a name that is not an optional
 * feature, quoting it and the names allowed.
 */
export function parseDisabledFeatures(list: string | undefined): FeatureSwitches {
  const out: FeatureSwitches = {};
  for (const name of (list ?? '').split(',').map((s) => s.trim()).filter(Boolean)) {
    if (!(OPTIONAL_FEATURES as readonly string[]).includes(name)) {
      throw new Error(`cannot disable "${name}": the features that can be turned off are ${OPTIONAL_FEATURES.join(', ')}`);
    }
    out[name as OptionalFeature] = false;
  }
  return out;
}

/** The CNI hooks of every feature that has some, run in feature order; undefined when none has. */
export function cniHooksOf(features: Feature[]): CniServerHooks | undefined {
  const adds = features.flatMap((f) => (f.cniHooks?.afterAdd ? [f.cniHooks.afterAdd.bind(f.cniHooks)] : []));
  const dels = features.flatMap((f) => (f.cniHooks?.afterDel ? [f.cniHooks.afterDel.bind(f.cniHooks)] : []));
  if (adds.length === 0 && dels.length === 0) return undefined;
  return {
    async afterAdd(env, result) { for (const h of adds) await h(env, result); },
    async afterDel(env) { for (const h of dels) await h(env); },
  };
}
