// The agent's end of the drop log: flatnet-nflog-read (src/kernel/nflog-read.c) bound to the policy
// table's log group in the node's netns, its lines parsed. Stopped by its pid; it also ends when the
// agent dies (it asks the kernel for a signal when its parent goes).
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import type { Netns } from '../kernel/netns.js';
import { parseReaderLine, type NflogRecord } from './record.js';

/** The helper beside the bundled CLI (dist/bin or dist/bin/chunks), or dist/bin seen from dist/src/droplog. */
export function nflogReaderBinary(): string | undefined {
  const here = dirname(fileURLToPath(import.meta.url));
  return [join(here, 'flatnet-nflog-read'), join(here, '..', 'flatnet-nflog-read'), join(here, '../../bin/flatnet-nflog-read')].find(existsSync);
}

export interface NflogReader {
  /** Resolves once the group is bound; rejects when the helper could not bind it. */
  readonly ready: Promise<void>;
  /** Records the kernel could not hand over (its socket buffer was full), so far. */
  lost(): number;
  stop(): Promise<void>;
}

export function startNflogReader(ns: Netns, group: number, onRecord: (r: NflogRecord) => void, log: (m: string) => void): NflogReader {
  const bin = nflogReaderBinary();
  if (!bin) {
    const ready = Promise.reject(new Error('flatnet-nflog-read is not built (scripts/build.mjs builds it)'));
    return { ready, lost: () => 0, stop: async () => {} };
  }
  const { cmd, args } = ns.wrap(bin, [String(group)]);
  const child: ChildProcess = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let lost = 0;
  let stopping = false;
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => { stderr = (stderr + d.toString()).slice(-2000); });
  const exited = new Promise<void>((resolve) => child.once('close', () => resolve()));
  const ready = new Promise<void>((resolve, reject) => {
    createInterface({ input: child.stdout! }).on('line', (line) => {
      const l = parseReaderLine(line);
      if (l?.kind === 'ready') resolve();
      else if (l?.kind === 'lost') lost++;
      else if (l?.kind === 'packet') onRecord(l.record);
    });
    child.once('error', reject);
    void exited.then(() => {
      const why = `flatnet-nflog-read ended (exit ${child.exitCode ?? child.signalCode}): ${stderr.trim()}`;
      reject(new Error(why));
      if (!stopping) log(`drop log: ${why}`);
    });
  });
  ready.catch(() => {});
  return {
    ready,
    lost: () => lost,
    async stop() {
      stopping = true;
      if (child.exitCode === null && child.signalCode === null && child.pid !== undefined) process.kill(child.pid, 'SIGTERM');
      await exited;
    },
  };
}
