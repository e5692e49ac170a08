// The agent's shell pool runs commands like a spawn does: same stdout, stderr, exit code and stdin,
// concurrently, and an idle pool does not keep its process alive.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { ShellPool, jobScript, shellQuote } from '../../src/kernel/shell-pool.js';
import { spawnCommand } from '../../src/kernel/exec.js';

test('shellQuote and jobScript: any argument and any input reach the command unchanged', () => {
  assert.equal(shellQuote(`it's`), `'it'\\''s'`);
  const s = jobScript('ip', ['-batch', '-'], 'link show\n', 'abc');
  assert.match(s, /^'ip' '-batch' '-' <<'FN_IN_abc'\nlink show\nFN_IN_abc\n/);
});

test('the pool answers exactly as a spawn does: stdout, stderr, exit code, stdin, odd arguments', async () => {
  const pool = new ShellPool(2);
  try {
    const cases: Array<[string, string[], string]> = [
      ['sh', ['-c', 'cat; echo err >&2; exit 3'], 'line 1\nline 2 $HOME `x` \'q\'\n'],
      ['printf', ['%s|', `a b`, `it's`, '$(nothing)'], ''],
      ['sh', ['-c', 'printf "no newline"'], ''],
    ];
    for (const [cmd, args, input] of cases) {
      assert.deepEqual(await pool.run(cmd, args, input), await spawnCommand(cmd, args, input), `${cmd} ${args.join(' ')}`);
    }
    // A here-document always ends in a newline: input gets one (ip and nft read lines either way).
    assert.equal((await pool.run('cat', [], 'no newline')).stdout, 'no newline\n');
    // Many at once, more than workers: every answer goes to its own caller.
    const many = await Promise.all(Array.from({ length: 20 }, (_, i) => pool.run('sh', ['-c', `sleep 0.0${i % 3}; echo ${i}`])));
    assert.deepEqual(many.map((r) => r.stdout.trim()), Array.from({ length: 20 }, (_, i) => String(i)));
  } finally { pool.close(); }
});

test('a process whose only work is done exits although its pool is still open', () => {
  const mod = fileURLToPath(new URL('../../src/kernel/shell-pool.js', import.meta.url));
  const r = spawnSync(process.execPath, ['--input-type=module', '-e',
    `const { ShellPool } = await import(${JSON.stringify(mod)}); const p = new ShellPool(2); const r = await p.run('echo', ['done']); console.log(r.stdout.trim());`],
  { encoding: 'utf8', timeout: 10_000 });
  assert.equal(r.stdout.trim(), 'done', r.stderr);
  assert.equal(r.status, 0);
});

test('a command past its deadline is ended and its caller told; the pool goes on with a new shell', async () => {
  const pool = new ShellPool(1, 300);
  try {
    await assert.rejects(pool.run('sleep', ['30']), /sleep 30: no answer within 300 ms/);
    assert.equal((await pool.run('echo', ['next'])).stdout, 'next\n');
  } finally { pool.close(); }
});
