// The lab's supervised daemons ("units", as systemd calls them) are files under <lab>/units: a unit
// file says what to run and that it should run (`systemctl enable --now`), removing it stops its
// supervision (`systemctl stop` removes it, then stops the process), and a hold file keeps the
// supervisor from (re)starting it until a time. The supervisor writes what it did to
// <lab>/run/supervisor.json for `lab status`.
import { existsSync, mkdirSync, readFileSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { DaemonSpec } from './processes.js';

export interface UnitSpec extends DaemonSpec {
  /** Unix socket files the unit listens on: removed before a start when nothing answers on them. */
  staleSockets?: string[];
}

export interface UnitState {
  pid?: number;
  /** Starts after the first one made by the supervisor (kubelet's restartCount). */
  restarts: number;
  /** Crashes in a row: the backoff grows with them and resets once the unit stays up. */
  crashes: number;
  startedAt?: string;
  lastExit?: string;
  lastExitAt?: string;
  /** When a unit in backoff may start again. */
  nextStartAt?: string;
}

export interface SupervisorState { updatedAt: string; units: Record<string, UnitState> }

export const unitsDir = (labDir: string): string => join(labDir, 'units');
export const supervisorStateFile = (labDir: string): string => join(labDir, 'run', 'supervisor.json');
const unitFile = (labDir: string, name: string) => join(unitsDir(labDir), `${name}.json`);
const holdFile = (labDir: string, name: string) => join(unitsDir(labDir), `${name}.hold`);

function writeAtomic(file: string, text: string): void {
  writeFileSync(`${file}.tmp`, text);
  renameSync(`${file}.tmp`, file);
}

/** Asks the supervisor to keep `spec` running. */
export function enableUnit(labDir: string, spec: UnitSpec): void {
  mkdirSync(unitsDir(labDir), { recursive: true });
  writeAtomic(unitFile(labDir, spec.name), JSON.stringify(spec, null, 2) + '\n');
}

/** Stops supervising a unit (its process is the caller's to stop); its hold goes with it. */
export function disableUnit(labDir: string, name: string): void {
  rmSync(unitFile(labDir, name), { force: true });
  rmSync(holdFile(labDir, name), { force: true });
}

export function unitEnabled(labDir: string, name: string): boolean { return existsSync(unitFile(labDir, name)); }

export function listUnits(labDir: string): UnitSpec[] {
  const dir = unitsDir(labDir);
  if (!existsSync(dir)) return [];
  const out: UnitSpec[] = [];
  for (const f of readdirSync(dir).filter((x) => x.endsWith('.json')).sort()) {
    try { out.push(JSON.parse(readFileSync(join(dir, f), 'utf8')) as UnitSpec); } catch { /* removed while listing */ }
  }
  return out;
}

/** Holds off (re)starts of a unit until `untilMs` (epoch ms); a time in the past releases the hold. */
export function holdUnit(labDir: string, name: string, untilMs: number): void {
  if (!unitEnabled(labDir, name)) {
    const known = listUnits(labDir).map((u) => u.name).join(', ') || 'none';
    throw new Error(`unit "${name}" is not supervised in this lab (units: ${known})`);
  }
  if (untilMs <= Date.now()) { rmSync(holdFile(labDir, name), { force: true }); return; }
  writeAtomic(holdFile(labDir, name), new Date(untilMs).toISOString() + '\n');
}

/** Until when a unit is held (epoch ms), or undefined when it is not. */
export function heldUntil(labDir: string, name: string, now = Date.now()): number | undefined {
  let text: string;
  try { text = readFileSync(holdFile(labDir, name), 'utf8'); } catch { return undefined; }
  const until = Date.parse(text.trim());
  return Number.isFinite(until) && until > now ? until : undefined;
}

export function readSupervisorState(labDir: string): SupervisorState | undefined {
  try { return JSON.parse(readFileSync(supervisorStateFile(labDir), 'utf8')) as SupervisorState; } catch { return undefined; }
}

export function writeSupervisorState(labDir: string, state: SupervisorState): void {
  writeAtomic(supervisorStateFile(labDir), JSON.stringify(state, null, 2) + '\n');
}

/** "30s", "2m", "1500ms", "0": a hold's length in ms; an error names the value otherwise. */
export function parseDuration(text: string, field: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(text.trim());
  if (!m || (m[2] === undefined && Number(m[1]) !== 0)) {
    throw new Error(`${field} "${text}": expected a duration such as 30s, 2m, 500ms or 0`);
  }
  const unit = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[m[2] ?? 'ms']!;
  return Math.round(Number(m[1]) * unit);
}
