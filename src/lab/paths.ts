// Where the built flatnet executables are, for processes the lab starts (daemons, containers, probes).
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

function findBin(file: string): string {
  const here = dirname(fileURLToPath(import.meta.url));
  // Beside the bundled CLI (dist/bin), or dist/bin seen from a compiled module (dist/src/lab).
  for (const p of [join(here, file), join(here, '../../bin', file)]) if (existsSync(p)) return p;
  throw new Error(`${file} not found beside ${here}: run "npm run build" first`);
}

/** argv that runs the flatnet CLI: [node, flatnet.mjs]. */
export const flatnetArgv = (): string[] => [process.execPath, findBin('flatnet.mjs')];
export const flatnetCniPath = (): string => findBin('flatnet-cni');

/** Where flatnet keeps a node's runtime state (CNI sockets, IPAM reservations) and, by default, its labs. */
export const CNI_STATE_ROOT = '/run/flatnet';
export const DEFAULT_LAB_ROOT = `${CNI_STATE_ROOT}/lab`;
