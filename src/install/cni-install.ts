// Why: the DaemonSet's init container puts flatnet-cni on the host; a runtime may exec the plugin or read
// net.d at any instant, so every file lands whole (temp file beside it, then rename) and nothing else moves.
import { chmodSync, closeSync, fsyncSync, lstatSync, mkdirSync, openSync, readdirSync, readFileSync, renameSync, rmSync, writeSync } from 'node:fs';
import { basename, join } from 'node:path';

/**
 * The files a node needs, in the order they are written: the Node plugin the shim falls back to without
 * an agent, then the C shim a runtime execs (a new shim never runs beside an old fallback), then the conflist.
 */
export const CNI_BINARIES = ['flatnet-cni-node', 'flatnet-cni'] as const;
/** The agent's conflist name (src/agent/node-setup.ts); runtimes take the first conflist in lexical order. */
export const CONFLIST_NAME = '10-flatnet.conflist';
export const BIN_DIR = 'opt/cni/bin';
export const CONF_DIR = 'etc/cni/net.d';
/** Temp files start with this: a dot name no runtime loads (net.d wants .conf/.conflist/.json). */
export const TEMP_PREFIX = '.flatnet-install-';

/** One file to install: its path below the root, its bytes and its mode. */
export interface Want { path: string; content: Buffer; mode: number }
/** What the target root holds at a path (lstat: a symlink is never followed). */
export type Have =
  | { kind: 'missing' }
  | { kind: 'file'; content: Buffer; mode: number }
  | { kind: 'dir' }
  | { kind: 'symlink' }
  | { kind: 'other' };

export interface Plan {
  /** Files to write (temp file, then rename), in order. */
  writes: Want[];
  /** Paths already as wanted: a re-run changes nothing. */
  unchanged: string[];
  /** Paths the install will not touch, with why; any refusal stops the whole install before a write. */
  refused: string[];
  /** Temp files a killed install left behind, removed first. */
  staleTemps: string[];
  /** Worth telling the operator, changes nothing (a foreign conflist that wins over ours). */
  warnings: string[];
}

const isConfName = (n: string) => /\.(conflist|conf|json)$/.test(n) && !n.startsWith('.');

/**
 * The pure plan. `have` maps each wanted path and each parent directory below the root to what is there;
 * `confDirNames` and `binDirNames` list those directories' entries (empty when they are missing).
 */
export function planInstall(wants: Want[], have: Map<string, Have>, confDirNames: string[], binDirNames: string[]): Plan {
  const plan: Plan = { writes: [], unchanged: [], refused: [], staleTemps: [], warnings: [] };
  for (const dir of [BIN_DIR, CONF_DIR]) {
    for (const d of parentsOf(dir)) {
      const h = have.get(d);
      if (h?.kind === 'symlink') plan.refused.push(`${d} is a symlink: refusing to write through it`);
      else if (h && h.kind !== 'missing' && h.kind !== 'dir') plan.refused.push(`${d} is not a directory`);
    }
  }
  for (const w of wants) {
    const h = have.get(w.path) ?? { kind: 'missing' };
    if (h.kind === 'symlink') plan.refused.push(`${w.path} is a symlink: refusing to replace what it points at or hide it`);
    else if (h.kind === 'dir' || h.kind === 'other') plan.refused.push(`${w.path} is not a regular file`);
    else if (h.kind === 'file' && h.content.equals(w.content) && (h.mode & 0o7777) === w.mode) plan.unchanged.push(w.path);
    else plan.writes.push(w);
  }
  for (const [dir, names] of [[BIN_DIR, binDirNames], [CONF_DIR, confDirNames]] as const) {
    for (const n of names) if (n.startsWith(TEMP_PREFIX)) plan.staleTemps.push(`${dir}/${n}`);
  }
  const before = confDirNames.filter((n) => isConfName(n) && n < CONFLIST_NAME).sort();
  if (before.length) {
    plan.warnings.push(`${CONF_DIR}/${before[0]} sorts before ${CONFLIST_NAME}: the runtime uses it, not flatnet's (left untouched)`);
  }
  return plan;
}

/** Every directory from the first component down to dir itself: "opt", "opt/cni", "opt/cni/bin". */
function parentsOf(dir: string): string[] {
  const parts = dir.split('/');
  return parts.map((_, i) => parts.slice(0, i + 1).join('/'));
}

export interface InstallSource {
  /** Holds flatnet-cni and flatnet-cni-node (the build's dist/bin, the image's /opt/flatnet/bin). */
  binDir: string;
  /** A conflist to install as 10-flatnet.conflist; without it the agent writes the node's own. */
  conflist?: string;
}

/** What the source provides, read once: the bytes that will be installed. */
export function readWants(src: InstallSource): Want[] {
  const wants: Want[] = CNI_BINARIES.map((b) => ({ path: `${BIN_DIR}/${b}`, content: readFileSync(join(src.binDir, b)), mode: 0o755 }));
  if (src.conflist) {
    const content = readFileSync(src.conflist);
    try { JSON.parse(content.toString('utf8')); } catch (err) { throw new Error(`${src.conflist}: not JSON: ${(err as Error).message}`); }
    wants.push({ path: `${CONF_DIR}/${CONFLIST_NAME}`, content, mode: 0o644 });
  }
  return wants;
}

function haveAt(abs: string): Have {
  let st;
  try { st = lstatSync(abs); } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { kind: 'missing' };
    throw err;
  }
  if (st.isSymbolicLink()) return { kind: 'symlink' };
  if (st.isFile()) return { kind: 'file', content: readFileSync(abs), mode: st.mode & 0o7777 };
  return st.isDirectory() ? { kind: 'dir' } : { kind: 'other' };
}

const listDir = (abs: string): string[] => { try { return readdirSync(abs).sort(); } catch { return []; } };

/** Reads what the root holds for these wants. */
export function readHave(root: string, wants: Want[]): { have: Map<string, Have>; confDirNames: string[]; binDirNames: string[] } {
  const have = new Map<string, Have>();
  for (const d of [...parentsOf(BIN_DIR), ...parentsOf(CONF_DIR)]) {
    const h = haveAt(join(root, d));
    have.set(d, h.kind === 'file' ? { kind: 'other' } : h); // a parent's bytes are never needed
  }
  for (const w of wants) have.set(w.path, haveAt(join(root, w.path)));
  return { have, confDirNames: listDir(join(root, CONF_DIR)), binDirNames: listDir(join(root, BIN_DIR)) };
}

/** Writes one file whole: O_EXCL temp file in the same directory (a planted symlink makes it fail), fsync, rename. */
export function writeAtomic(root: string, w: Want, hooks: { beforeRename?: (tmp: string) => void } = {}): void {
  const target = join(root, w.path);
  const tmp = join(root, w.path.slice(0, w.path.lastIndexOf('/')), `${TEMP_PREFIX}${basename(w.path)}.${process.pid}`);
  const fd = openSync(tmp, 'wx', w.mode);
  try {
    try {
      for (let off = 0; off < w.content.length;) off += writeSync(fd, w.content, off);
      fsyncSync(fd);
    } finally { closeSync(fd); }
    chmodSync(tmp, w.mode); // the umask may have narrowed openSync's mode
    hooks.beforeRename?.(tmp);
    renameSync(tmp, target);
  } catch (err) {
    rmSync(tmp, { force: true });
    throw err;
  }
}

export interface InstallResult { written: string[]; unchanged: string[]; removedTemps: string[]; warnings: string[] }

/** Plans and applies: refuses before any write, removes a killed run's temp files, writes only what differs. */
export function installCni(root: string, src: InstallSource, hooks: { beforeRename?: (tmp: string) => void } = {}): InstallResult {
  const wants = readWants(src);
  const { have, confDirNames, binDirNames } = readHave(root, wants);
  const plan = planInstall(wants, have, confDirNames, binDirNames);
  if (plan.refused.length) throw new Error(`install-cni into ${root}: ${plan.refused.join('; ')}`);
  for (const t of plan.staleTemps) rmSync(join(root, t), { force: true });
  for (const dir of new Set(plan.writes.map((w) => w.path.slice(0, w.path.lastIndexOf('/'))))) {
    mkdirBelow(root, dir);
  }
  for (const w of plan.writes) writeAtomic(root, w, hooks);
  return { written: plan.writes.map((w) => w.path), unchanged: plan.unchanged, removedTemps: plan.staleTemps, warnings: plan.warnings };
}

/** Makes dir below root one component at a time; a symlink planted since the plan was read stops it. */
function mkdirBelow(root: string, dir: string): void {
  for (const d of parentsOf(dir)) {
    const h = haveAt(join(root, d));
    if (h.kind === 'missing') mkdirSync(join(root, d), 0o755); // not recursive: fails on anything there by now
    else if (h.kind !== 'dir') throw new Error(`install-cni into ${root}: ${d} is not a directory`);
  }
}

/** Removes what an install put there (our binaries, our conflist; never a symlink or another's file). */
export function uninstallCni(root: string): string[] {
  const removed: string[] = [];
  for (const p of [...CNI_BINARIES.map((b) => `${BIN_DIR}/${b}`), `${CONF_DIR}/${CONFLIST_NAME}`]) {
    if (haveAt(join(root, p)).kind === 'file') { rmSync(join(root, p)); removed.push(p); }
  }
  return removed;
}
