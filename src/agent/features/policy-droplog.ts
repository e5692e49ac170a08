// The policy feature's drop log: the NFLOG reader in the node's netns, each record named (pods, the
// policies of the group chain that dropped it) and appended to the node's drops.log. The kernel limits
// each dropping chain's rate; this caps the node's file as a whole, so many chains flooding at once
// cannot fill it.
import { observePolicyDrop } from '../../metrics/registry.js';
import { DROP_LOG_GROUP } from '../../dataplane/policy/render.js';
import type { DropGroup } from '../../dataplane/policy/renderer.js';
import { toDropEvent } from '../../droplog/event.js';
import { DropLogWriter } from '../../droplog/file.js';
import { startNflogReader, type NflogReader } from '../../droplog/reader.js';
import type { NflogRecord } from '../../droplog/record.js';
import { podAddresses } from '../../policy/addresses.js';
import { namespaceOf } from '../../policy/selector.js';
import type { NodeContext } from './feature.js';

/** Events written per second per node, and the burst above it. */
const NODE_RATE = { perSecond: 50, burst: 100 };
/** Group chains remembered after they leave the table: a drop read late is still named. */
const GROUPS_KEPT = 10_000;

export interface DropLogger {
  /** Starts the reader if it is not running (the first sync, or after it ended). */
  ensure(): void;
  stop(): Promise<void>;
}

export function dropLogger(ctx: NodeContext, file: string, groupsNow: () => ReadonlyMap<string, DropGroup>): DropLogger {
  const writer = new DropLogWriter(file);
  const seen = new Map<string, DropGroup>();
  let reader: NflogReader | undefined;
  let stopped = false;
  let tokens = NODE_RATE.burst;
  let refilled = Date.now();
  let suppressed = 0;
  let index: { at: number; byIP: Map<string, string> } | undefined;

  const podAt = (ip: string): string | undefined => {
    // Rebuilt at most once a second: events are few (rate-limited), the view may be large.
    if (!index || Date.now() - index.at > 1000) {
      const byIP = new Map<string, string>();
      for (const p of ctx.view.pods.values()) for (const a of podAddresses(p)) byIP.set(a, `${namespaceOf(p)}/${p.metadata.name}`);
      index = { at: Date.now(), byIP };
    }
    return index.byIP.get(ip);
  };
  const groups = (): ReadonlyMap<string, DropGroup> => {
    if (seen.size > GROUPS_KEPT) seen.clear();
    for (const [k, g] of groupsNow()) seen.set(k, g);
    return seen;
  };
  const onRecord = (r: NflogRecord) => {
    const now = Date.now();
    tokens = Math.min(NODE_RATE.burst, tokens + ((now - refilled) / 1000) * NODE_RATE.perSecond);
    refilled = now;
    if (tokens < 1) { suppressed++; return; }
    tokens--;
    if (suppressed > 0) { ctx.log(`drop log: ${suppressed} drops over the node's rate not written`); suppressed = 0; }
    const e = toDropEvent(r, { node: ctx.nodeName, groups: groups(), podAt });
    if (!e) return;
    observePolicyDrop(e.direction, e.policies);
    try { writer.append(e); } catch (err) { ctx.log(`drop log: writing ${file}: ${(err as Error).message}`); }
  };

  return {
    ensure() {
      if (stopped || reader) return;
      const r = startNflogReader(ctx.ns, DROP_LOG_GROUP, onRecord, ctx.log);
      reader = r;
      r.ready.then(() => ctx.log(`drop log: NFLOG group ${DROP_LOG_GROUP} read into ${file}`),
        (err: Error) => { ctx.log(`drop log: not read (${err.message})`); if (reader === r) reader = undefined; });
    },
    async stop() {
      stopped = true;
      await reader?.stop();
      reader = undefined;
    },
  };
}
