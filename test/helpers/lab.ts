// A cluster lab for one test file: named with the test's per-run prefix, under the test's temp dir,
// removed at the end (also on failure), and driven through the real CLI where a user would use it.
import assert from 'node:assert/strict';
import { spawnSync, execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ClusterLab } from '../../src/lab/cluster.js';
import { defaultCluster, type LabCluster } from '../../src/lab/cluster-file.js';
import { waitPodsRunning } from '../../src/lab/demo.js';
import type { Pod } from '../../src/api/types.js';
import type { TestScope } from './scope.js';

export const CLI = fileURLToPath(new URL('../../bin/flatnet.mjs', import.meta.url));

export interface TestLab {
  lab: ClusterLab;
  /** Runs the flatnet CLI against this lab. */
  cli(...args: string[]): { status: number; stdout: string; stderr: string };
  /** `flatnet apply -f` of `manifest` (saved as `file` in the test's dir); then waits until `count` pods run, and returns them by name. */
  applyAndRun(file: string, manifest: string, count: number, timeoutMs: number): Promise<Map<string, Pod>>;
}

export function labFor(scope: TestScope, suffix: string): TestLab {
  // Lab names prefix namespace names: keep them short (the scope prefix is 'fnt' + label + 6 hex).
  const name = `${scope.prefix.slice(-6)}${suffix}`;
  const root = join(scope.dir, 'labs');
  const lab = new ClusterLab(name, root);
  scope.onCleanup(() => {
    spawnSync(process.execPath, [CLI, '--lab', name, '--state-dir', root, 'lab', 'down'], { stdio: 'ignore' });
  });
  const cli = (...args: string[]) => {
    const r = spawnSync(process.execPath, [CLI, '--lab', name, '--state-dir', root, ...args], { encoding: 'utf8' });
    return { status: r.status ?? 1, stdout: r.stdout, stderr: r.stderr };
  };
  return {
    lab,
    cli,
    async applyAndRun(file, manifest, count, timeoutMs) {
      const path = join(scope.dir, file);
      writeFileSync(path, manifest);
      const r = cli('apply', '-f', path);
      assert.equal(r.status, 0, r.stderr);
      const store = lab.store();
      try { return new Map((await waitPodsRunning(store, count, timeoutMs)).map((p) => [p.metadata.name, p])); } finally { await store.close(); }
    },
  };
}

export function cluster(backend: LabCluster['backend'], shape: 'one-segment' | 'two-segments' = 'two-segments'): LabCluster {
  const c = defaultCluster();
  c.backend = backend;
  if (shape === 'one-segment') c.nodes = c.nodes.map((n) => ({ ...n, segment: c.segments[0].name }));
  return c;
}

/** Namespaces of this lab still present. */
export const labNetnses = (name: string): string[] =>
  execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' }).split('\n').map((l) => l.split(' ')[0]).filter((n) => n.startsWith(`${name}-`));
