// `lab down` removes only what a lab made and refuses a directory that is not a lab's; a failed
// `lab up` takes its namespaces and processes down but keeps the logs its error names.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { TestScope } from '../helpers/scope.js';
import { cluster, labFor, labNetnses } from '../helpers/lab.js';

const scope = new TestScope('ls');
after(() => scope.cleanupSync());

test('lab down and lab up refuse a directory that is not a lab\'s, and leave its files', () => {
  const t = labFor(scope, 'x');
  mkdirSync(join(t.lab.dir, 'log'), { recursive: true });
  writeFileSync(join(t.lab.dir, 'notes.txt'), 'mine');
  writeFileSync(join(t.lab.dir, 'log', 'app.log'), 'also mine');
  for (const cmd of ['down', 'up']) {
    const r = t.cli('lab', cmd);
    assert.equal(r.status, 1, `lab ${cmd}: ${r.stdout}${r.stderr}`);
    assert.match(r.stderr, new RegExp(`${t.lab.dir} is not a flatnet lab's directory`));
  }
  assert.equal(readFileSync(join(t.lab.dir, 'notes.txt'), 'utf8'), 'mine');
  assert.equal(readFileSync(join(t.lab.dir, 'log', 'app.log'), 'utf8'), 'also mine');
  assert.deepEqual(readdirSync(t.lab.dir).sort(), ['log', 'notes.txt']);
});

test('a failed lab up keeps the logs it names and removes the rest; lab down then removes only the lab\'s files', async () => {
  const t = labFor(scope, 'f');
  // Nodes cannot be Ready within 1 ms: up fails after every daemon started and wrote its log.
  const err = await t.lab.up(cluster('auto'), { timeoutMs: 1 }).then(() => undefined, (e: Error) => e);
  assert.ok(err, 'up failed');
  const logs = join(t.lab.dir, 'log');
  assert.match(err.message, new RegExp(`nodes not ready after 1 ms: .*its logs are kept in ${logs}`));
  assert.ok(existsSync(join(logs, 'etcd.log')) && existsSync(join(logs, 'controller.log')), `logs kept: ${readdirSync(logs)}`);
  assert.deepEqual(labNetnses(t.lab.name), [], 'no namespace of the lab is left');
  assert.deepEqual(readdirSync(t.lab.dir).sort(), ['.flatnet-lab', 'log']);

  writeFileSync(join(t.lab.dir, 'mine.txt'), 'a user file');
  const r = t.cli('lab', 'down');
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /kept .*: it holds files the lab did not make \(.*mine\.txt\)/);
  assert.deepEqual(readdirSync(t.lab.dir), ['mine.txt']);
});
