// `flatnet ui [--listen HOST:PORT]`: serves the live picture of a lab until interrupted.
import { UsageError } from './usage.js';
import type { Values } from './main.js';
import { labOf } from './cluster-commands.js';
import { labTraceRunner, readModel, watchChanges } from '../ui/source.js';
import { startUiServer } from '../ui/server.js';

export const DEFAULT_UI_LISTEN = '127.0.0.1:7880';

/** "127.0.0.1:7880" → host and port; port 0 takes a free one (the URL printed names it). */
export function parseListen(text: string): { host: string; port: number } {
  const m = /^(\d{1,3}(?:\.\d{1,3}){3}|\[[0-9a-fA-F:]+\]|localhost):(\d{1,5})$/.exec(text);
  const port = Number(m?.[2]);
  if (!m || port > 65535) throw new UsageError(`--listen "${text}": expected HOST:PORT, such as ${DEFAULT_UI_LISTEN}`);
  return { host: m[1].replace(/^\[|\]$/g, ''), port };
}

export async function uiCommand(v: Values): Promise<number> {
  const listen = parseListen(v.listen ?? DEFAULT_UI_LISTEN);
  const lab = labOf(v);
  lab.cluster(); // throws "lab X is not up ... run flatnet lab up"
  const store = lab.store();
  try {
    const server = await startUiServer({ read: () => readModel(lab, store), watch: (onChange) => watchChanges(store, onChange), trace: labTraceRunner(lab) }, listen);
    console.log(`flatnet ui: ${server.url} (lab ${lab.name}); Ctrl-C stops it`);
    await new Promise<void>((resolve) => {
      for (const sig of ['SIGINT', 'SIGTERM'] as const) process.once(sig, () => resolve());
    });
    await server.close();
  } finally { await store.close(); }
  return 0;
}
