// The metrics registry as a scraper sees it: every flatnet family declared and well formed, and each
// recording function moving exactly the series it names. The parse is strict (test/helpers/prom-text.ts).
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { observeCniRequest, observeFeatureSync, observePolicyDrop, observeWatchBatch, scrape, setControllerLeader, timedControllerStep } from '../../src/metrics/registry.js';
import { setsOfListing } from '../../src/metrics/nft.js';
import { labMetricsLine } from '../../src/metrics/where.js';
import { errorCode } from '../../src/cni/server.js';
import { loopFeature, type NodeContext } from '../../src/agent/features/feature.js';
import { parsePromText, sampleValue } from '../helpers/prom-text.js';

const dir = mkdtempSync(join(tmpdir(), 'fnt-metrics-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const families = async () => parsePromText((await scrape()).body);

test('a scrape declares every flatnet family with its type, and parses strictly', async () => {
  const { contentType } = await scrape();
  assert.match(contentType, /^text\/plain; version=0\.0\.4/);
  const f = await families();
  const types = Object.fromEntries([...f.values()].filter((x) => !x.name.startsWith('flatnet_process') && !x.name.startsWith('flatnet_nodejs')).map((x) => [x.name, x.type]));
  assert.deepEqual(types, {
    flatnet_feature_sync_duration_seconds: 'histogram', flatnet_feature_syncs_total: 'counter',
    flatnet_cni_request_duration_seconds: 'histogram', flatnet_cni_requests_total: 'counter',
    flatnet_store_watch_lag_revisions: 'gauge', flatnet_store_watch_events_total: 'counter',
    flatnet_controller_step_duration_seconds: 'histogram', flatnet_controller_steps_total: 'counter', flatnet_controller_leader: 'gauge',
    flatnet_policy_drops_logged_total: 'counter',
  });
  assert.ok(f.has('flatnet_process_resident_memory_bytes'), 'the process\'s own metrics are there too');
});

test('a logged policy drop counts once per isolating policy; a non-SYN drop counts as none', async () => {
  observePolicyDrop('ingress', ['x/deny', 'x/web']);
  observePolicyDrop(undefined, []);
  const f = await families();
  assert.equal(sampleValue(f, 'flatnet_policy_drops_logged_total', { direction: 'ingress', policy: 'x/deny' }), 1);
  assert.equal(sampleValue(f, 'flatnet_policy_drops_logged_total', { direction: 'ingress', policy: 'x/web' }), 1);
  assert.equal(sampleValue(f, 'flatnet_policy_drops_logged_total', { direction: 'none', policy: 'none' }), 1);
});

test('a feature sync moves its histogram and its counter by result', async () => {
  observeFeatureSync('unit-a', 0.02, true);
  observeFeatureSync('unit-a', 3, false);
  const f = await families();
  assert.equal(sampleValue(f, 'flatnet_feature_syncs_total', { feature: 'unit-a', result: 'ok' }), 1);
  assert.equal(sampleValue(f, 'flatnet_feature_syncs_total', { feature: 'unit-a', result: 'error' }), 1);
  assert.equal(sampleValue(f, 'flatnet_feature_sync_duration_seconds_count', { feature: 'unit-a' }), 2);
  assert.equal(sampleValue(f, 'flatnet_feature_sync_duration_seconds_bucket', { feature: 'unit-a', le: '0.025' }), 1);
  assert.equal(sampleValue(f, 'flatnet_feature_sync_duration_seconds_sum', { feature: 'unit-a' }), 3.02);
});

test('a feature loop records each sync, a failed one as an error', async () => {
  let fail = false;
  const feature = loopFeature({
    name: 'unit-loop', ctx: { resyncMs: 3_600_000, log: () => {} } as unknown as NodeContext,
    async sync() { if (fail) throw new Error('boom'); }, async cleanup() {}, gatesPods: true,
  });
  await feature.start();
  fail = true;
  feature.poke();
  await feature.idle();
  await feature.stop();
  const f = await families();
  assert.equal(sampleValue(f, 'flatnet_feature_syncs_total', { feature: 'unit-loop', result: 'ok' }), 1);
  assert.equal(sampleValue(f, 'flatnet_feature_syncs_total', { feature: 'unit-loop', result: 'error' }), 1);
});

test('controller steps: timed and counted by result, the error passed on; the leader gauge follows leadership', async () => {
  await timedControllerStep('unit step', async () => {});
  await assert.rejects(timedControllerStep('unit step', async () => { throw new Error('boom'); }), /boom/);
  setControllerLeader(true);
  let f = await families();
  assert.equal(sampleValue(f, 'flatnet_controller_steps_total', { step: 'unit step', result: 'ok' }), 1);
  assert.equal(sampleValue(f, 'flatnet_controller_steps_total', { step: 'unit step', result: 'error' }), 1);
  assert.equal(sampleValue(f, 'flatnet_controller_step_duration_seconds_count', { step: 'unit step' }), 2);
  assert.equal(sampleValue(f, 'flatnet_controller_leader'), 1);
  setControllerLeader(false);
  f = await families();
  assert.equal(sampleValue(f, 'flatnet_controller_leader'), 0);
});

test('CNI requests: latency per command, counts per command and error code; an unknown command is "other"', async () => {
  observeCniRequest('ADD', 0.03, 0);
  observeCniRequest('ADD', 0.01, 11);
  observeCniRequest('BOGUS', 0.01, 4);
  const f = await families();
  assert.equal(sampleValue(f, 'flatnet_cni_requests_total', { command: 'ADD', code: '0' }), 1);
  assert.equal(sampleValue(f, 'flatnet_cni_requests_total', { command: 'ADD', code: '11' }), 1);
  assert.equal(sampleValue(f, 'flatnet_cni_requests_total', { command: 'other', code: '4' }), 1);
  assert.equal(sampleValue(f, 'flatnet_cni_request_duration_seconds_count', { command: 'ADD' }), 2);
});

test('an answer\'s CNI error code: 0 on success, its JSON code, 999 when unreadable', () => {
  assert.equal(errorCode({ exitCode: 0, stdout: '{}' }), 0);
  assert.equal(errorCode({ exitCode: 1, stdout: '{"cniVersion":"1.0.0","code":11,"msg":"x"}' }), 11);
  assert.equal(errorCode({ exitCode: 1, stdout: 'garbage' }), 999);
});

test('watch batches: events counted, lag is the store revision minus the batch\'s last, never negative', async () => {
  observeWatchBatch('/unit/', 3, 120, 100);
  let f = await families();
  assert.equal(sampleValue(f, 'flatnet_store_watch_events_total', { prefix: '/unit/' }), 3);
  assert.equal(sampleValue(f, 'flatnet_store_watch_lag_revisions', { prefix: '/unit/' }), 20);
  observeWatchBatch('/unit/', 1, 90, 100);
  f = await families();
  assert.equal(sampleValue(f, 'flatnet_store_watch_lag_revisions', { prefix: '/unit/' }), 0);
  assert.equal(sampleValue(f, 'flatnet_store_watch_events_total', { prefix: '/unit/' }), 4);
});

test('the sets and maps of flatnet\'s tables in a terse JSON listing, by family and table; other tables left out', () => {
  const json = JSON.stringify({ nftables: [
    { metainfo: { version: '1.0.6' } }, { table: { family: 'ip', name: 'flatnet-proxy', handle: 1 } },
    { set: { family: 'ip', name: 's1', table: 'flatnet-proxy', type: 'ipv4_addr', handle: 2 } },
    { map: { family: 'ip', name: 'm1', table: 'flatnet-proxy', type: 'ipv4_addr', handle: 3, map: 'verdict' } },
    { chain: { family: 'ip', table: 'flatnet-proxy', name: 'c', handle: 1 } },
    { set: { family: 'inet', name: 'blocked', table: 'firewalld', type: 'ipv4_addr', handle: 4 } },
  ] });
  assert.deepEqual(setsOfListing(json), [{ family: 'ip', table: 'flatnet-proxy', set: 's1' }, { family: 'ip', table: 'flatnet-proxy', set: 'm1' }]);
});

test('lab status\'s metrics line: the controller\'s recorded address, the agents\' health port', () => {
  const file = join(dir, 'controller-metrics');
  assert.match(labMetricsLine(file), /^metrics: controller not recorded; each agent http:\/\/127\.0\.0\.1:9470\/metrics in its node's netns/);
  writeFileSync(file, '127.0.0.1:40123\n');
  assert.match(labMetricsLine(file), /^metrics: controller http:\/\/127\.0\.0\.1:40123\/metrics; each agent/);
});

test('the strict parse refuses what a scraper would', () => {
  assert.throws(() => parsePromText('x 1\n'), /not a sample of a declared family/);
  assert.throws(() => parsePromText('# HELP a h\n# TYPE a counter\na{b="1" 2\n'), /not a sample|bad labels/);
  assert.throws(() => parsePromText('# HELP a h\n# TYPE a counter\nb 2\n'), /outside its family/);
  assert.throws(() => parsePromText('# HELP a h\n# TYPE a counter\na one\n'), /bad value/);
});
