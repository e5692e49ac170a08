// `flatnet logs drops [-f] [--node N] [-n NS] [-o json]`: the policy drops each node's agent logged
// (<nodeDir>/drops.log), oldest first, one line each; -f keeps printing new ones. Reads files only:
// it starts at once and needs no store. Its own flags: `-f` means --follow here, not --file.
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { UsageError } from './usage.js';
import { DEFAULT_LAB_ROOT } from '../lab/paths.js';
import { formatDropEvent, inNamespace, type DropEvent } from '../droplog/event.js';
import { DROP_LOG_FILE, dropLogMark, followDropLog, readDropLog } from '../droplog/file.js';

const LOGS_USAGE = `usage: flatnet logs drops [-f] [--node NODE] [-n NAMESPACE] [-o json] [--lab NAME] [--state-dir DIR] [--node-dir DIR]
  Policy drops, rate-limited per node: time, node, protocol, source and destination (pod and address),
  and the policies isolating the pod. -f follows; --node-dir reads one node's directory outside a lab.`;

interface Source { node: string; file: string }

/** The drop log of every node of the lab (or the one --node-dir names), filtered by --node. */
function sources(v: { lab?: string; 'state-dir'?: string; 'node-dir'?: string; node?: string }): Source[] {
  if (v['node-dir']) return [{ node: v.node ?? '', file: join(v['node-dir'], DROP_LOG_FILE) }];
  const labName = v.lab ?? process.env.FLATNET_LAB ?? 'flatnet';
  const labDir = join(v['state-dir'] ?? DEFAULT_LAB_ROOT, labName);
  if (!existsSync(join(labDir, 'cluster.json'))) throw new Error(`lab "${labName}" is not up (no ${join(labDir, 'cluster.json')}); run "flatnet lab up"`);
  const nodesDir = join(labDir, 'nodes');
  const nodes = existsSync(nodesDir) ? readdirSync(nodesDir).sort() : [];
  if (v.node && !nodes.includes(v.node)) throw new Error(`node "${v.node}" is not in lab "${labName}" (nodes: ${nodes.join(', ')})`);
  return nodes.filter((n) => !v.node || n === v.node).map((node) => ({ node, file: join(nodesDir, node, DROP_LOG_FILE) }));
}

export async function logsCommand(argv: string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({ args: argv, allowPositionals: true, options: {
      follow: { type: 'boolean', short: 'f' }, node: { type: 'string' }, namespace: { type: 'string', short: 'n' },
      output: { type: 'string', short: 'o' }, lab: { type: 'string' }, 'state-dir': { type: 'string' }, 'node-dir': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    } });
  } catch (err) { throw new UsageError(`${(err as Error).message}\n${LOGS_USAGE}`); }
  const { values: v, positionals } = parsed;
  if (v.help) { console.log(LOGS_USAGE); return 0; }
  if (positionals[0] !== 'drops' || positionals.length > 1) throw new UsageError(`logs: only "drops" can be shown\n${LOGS_USAGE}`);
  if (v.output !== undefined && v.output !== 'json') throw new UsageError(`-o "${v.output}": expected json`);
  const show = (e: DropEvent) => {
    if (v.namespace && !inNamespace(e, v.namespace)) return;
    process.stdout.write((v.output === 'json' ? JSON.stringify(e) : formatDropEvent(e)) + '\n');
  };
  const files = sources(v);
  // Marked before reading: what is appended while we read is followed, not lost.
  const marks = files.map((s) => dropLogMark(s.file));
  // Nodes merged by time, as one log.
  const all = files.flatMap((s, i) => readDropLog(s.file, marks[i])).sort((a, b) => (a.time < b.time ? -1 : a.time > b.time ? 1 : 0));
  for (const e of all) show(e);
  if (!v.follow) return 0;
  const stops = files.map((s, i) => followDropLog(s.file, show, marks[i]));
  await new Promise<void>((resolve) => {
    for (const sig of ['SIGTERM', 'SIGINT'] as const) process.once(sig, () => resolve());
  });
  for (const stop of stops) stop();
  return 0;
}
