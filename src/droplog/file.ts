// A node's drop log on disk: one JSON event a line in <nodeDir>/drops.log, bounded: past its size the
// file becomes drops.log.1 (the one before is dropped) and a new one starts. Readers read both, oldest
// first, and a follower notices the rotation (the file it reads got shorter or was replaced).
import { appendFileSync, closeSync, existsSync, openSync, readFileSync, readSync, renameSync, statSync } from 'node:fs';
import { parseDropEvent, type DropEvent } from './event.js';

export const DROP_LOG_FILE = 'drops.log';
/** Rotated past this size: two files of it at most per node. */
export const DROP_LOG_MAX_BYTES = 1 << 20;

export class DropLogWriter {
  private size: number;
  constructor(readonly path: string, private readonly maxBytes = DROP_LOG_MAX_BYTES) {
    this.size = existsSync(path) ? statSync(path).size : 0;
  }

  append(e: DropEvent): void {
    const line = JSON.stringify(e) + '\n';
    if (this.size > 0 && this.size + Buffer.byteLength(line) > this.maxBytes) {
      renameSync(this.path, `${this.path}.1`);
      this.size = 0;
    }
    appendFileSync(this.path, line);
    this.size += Buffer.byteLength(line);
  }
}

const eventsOf = (text: string): DropEvent[] => text.split('\n').flatMap((l) => { const e = l ? parseDropEvent(l) : undefined; return e ? [e] : []; });

/**
 * Every event of one node's log, oldest first (the rotated file, then the current); up to `mark` when
 * given (a follower takes over from there).
 */
export function readDropLog(path: string, mark?: { size: number }): DropEvent[] {
  const rotated = existsSync(`${path}.1`) ? eventsOf(readFileSync(`${path}.1`, 'utf8')) : [];
  if (!existsSync(path)) return rotated;
  const text = readFileSync(path);
  return [...rotated, ...eventsOf((mark ? text.subarray(0, mark.size) : text).toString('utf8'))];
}

/** Where a log ends now (its inode and size), to follow it from there; undefined while there is none. */
export function dropLogMark(path: string): { ino: number; size: number } | undefined {
  try { const s = statSync(path); return { ino: s.ino, size: s.size }; } catch { return undefined; }
}

/**
 * Follows a log from `from` (its current end by default): `onEvent` for each event appended after this call. Polls (the
 * agent may write from another mount namespace, where inotify events still arrive, but a rotation
 * replaces the file). Returns the stop function.
 */
export function followDropLog(path: string, onEvent: (e: DropEvent) => void, from = dropLogMark(path), intervalMs = 250): () => void {
  const idOf = () => dropLogMark(path);
  let at = from;
  let offset = at?.size ?? 0;
  let partial = '';
  /** Reads `file` from `offset` to `size`, handing on whole lines. */
  const readOn = (file: string, size: number) => {
    if (size <= offset) return;
    const fd = openSync(file, 'r');
    try {
      const buf = Buffer.alloc(size - offset);
      const n = readSync(fd, buf, 0, buf.length, offset);
      offset += n;
      const text = partial + buf.subarray(0, n).toString('utf8');
      const cut = text.lastIndexOf('\n');
      partial = text.slice(cut + 1);
      for (const e of eventsOf(text.slice(0, cut + 1))) onEvent(e);
    } finally { closeSync(fd); }
  };
  const poll = () => {
    const now = idOf();
    if (!now) return;
    if (at && now.ino !== at.ino) {
      // Rotated: the rest of the file we read is drops.log.1 now; then the new one from its start.
      const old = dropLogMark(`${path}.1`);
      if (old && old.ino === at.ino) readOn(`${path}.1`, old.size);
    }
    if (!at || now.ino !== at.ino || now.size < offset) { offset = 0; partial = ''; }
    at = now;
    readOn(path, now.size);
  };
  const timer = setInterval(poll, intervalMs);
  return () => clearInterval(timer);
}
