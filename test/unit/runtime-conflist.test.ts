import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  confListFromObject, derivePluginConfig, loadConfDir, loadConfFile, loadConfList, parseConfig, runtimeConfigFor,
} from '../../src/runtime/conflist.js';

const withDir = (fn: (dir: string) => void) => {
  const dir = mkdtempSync(join(tmpdir(), 'fnrt-conf-'));
  try { fn(dir); } finally { rmSync(dir, { recursive: true, force: true }); }
};
const code = (c: number, re: RegExp) => (e: any) => e.code === c && re.test(e.message);

const list = {
  cniVersion: '1.0.0',
  name: 'podnet',
  plugins: [
    { type: 'bridge', bridge: 'cni0', ipam: { type: 'host-local', subnet: '10.1.0.0/24' } },
    { type: 'portmap', capabilities: { portMappings: true, bandwidth: false }, snat: true },
  ],
};

test('a .conflist loads with its fields, flags default to false, bytes are the file text', () => withDir((dir) => {
  const text = JSON.stringify(list, null, 2);
  writeFileSync(join(dir, '10-pod.conflist'), text);
  const l = loadConfFile(join(dir, '10-pod.conflist'));
  assert.equal(l.name, 'podnet');
  assert.equal(l.cniVersion, '1.0.0');
  assert.equal(l.disableCheck, false);
  assert.equal(l.disableGC, false);
  assert.equal(l.plugins.length, 2);
  assert.equal(l.plugins[1].type, 'portmap');
  assert.equal(l.bytes, text);
  assert.equal(l.source, join(dir, '10-pod.conflist'));
}));

test('disableCheck/disableGC accept booleans and "true"/"false" strings, nothing else', () => {
  assert.equal(confListFromObject({ ...list, disableCheck: true, disableGC: 'true' }).disableGC, true);
  assert.equal(confListFromObject({ ...list, disableCheck: 'false' }).disableCheck, false);
  assert.throws(() => confListFromObject({ ...list, disableGC: 1 }, 'x.conflist'), code(7, /x\.conflist: disableGC must be a boolean/));
});

test('a single .conf becomes a one-plugin list', () => withDir((dir) => {
  writeFileSync(join(dir, '10-one.conf'), JSON.stringify({ cniVersion: '0.4.0', name: 'one', type: 'bridge', bridge: 'br0' }));
  const l = loadConfFile(join(dir, '10-one.conf'));
  assert.equal(l.name, 'one');
  assert.equal(l.cniVersion, '0.4.0');
  assert.deepEqual(l.plugins, [{ cniVersion: '0.4.0', name: 'one', type: 'bridge', bridge: 'br0' }]);
  assert.deepEqual(JSON.parse(l.bytes).plugins[0].bridge, 'br0');
}));

test('validation errors name the file and the field', () => {
  const src = '/etc/cni/net.d/10-x.conflist';
  assert.throws(() => confListFromObject({ ...list, name: undefined }, src), code(7, /10-x\.conflist: name is missing/));
  assert.throws(() => confListFromObject({ ...list, name: 'bad name' }, src), code(7, /10-x\.conflist: name "bad name"/));
  assert.throws(() => confListFromObject({ ...list, cniVersion: undefined }, src), code(7, /10-x\.conflist: cniVersion is missing/));
  assert.throws(() => confListFromObject({ ...list, cniVersion: '1.0' }, src), code(7, /cniVersion "1\.0" is not a version/));
  assert.throws(() => confListFromObject({ ...list, cniVersion: '9.0.0' }, src), code(1, /cniVersion "9\.0\.0" is not supported/));
  assert.throws(() => confListFromObject({ ...list, plugins: undefined }, src), code(7, /plugins is missing/));
  assert.throws(() => confListFromObject({ ...list, plugins: [] }, src), code(7, /plugins is empty/));
  assert.throws(() => confListFromObject({ ...list, plugins: [list.plugins[0], { bridge: 'x' }] }, src), code(7, /10-x\.conflist: plugins\[1\]\.type is missing/));
  assert.throws(() => confListFromObject({ ...list, plugins: [{ type: '../evil' }] }, src), code(7, /plugins\[0\]\.type "\.\.\/evil"/));
  assert.throws(() => confListFromObject({ ...list, plugins: [{ type: 'a', capabilities: { x: 'yes' } }] }, src), code(7, /plugins\[0\]\.capabilities/));
  assert.throws(() => parseConfig('{"name":"one","cniVersion":"1.0.0"}', 'a.conf', 'single'), code(7, /a\.conf: type is missing/));
  assert.throws(() => parseConfig('{not json', 'b.conflist'), code(6, /b\.conflist: not valid JSON/));
  assert.throws(() => loadConfFile('/nonexistent/c.conflist'), code(5, /\/nonexistent\/c\.conflist: cannot read/));
});

test('cniVersions picks the highest version the runtime knows', () => {
  assert.equal(confListFromObject({ ...list, cniVersion: '1.0.0', cniVersions: ['0.4.0', '1.1.0', '1.0.0'] }).cniVersion, '1.1.0');
  assert.equal(confListFromObject({ ...list, cniVersion: undefined, cniVersions: ['1.0.0', '7.0.0'] }).cniVersion, '1.0.0');
  assert.equal(confListFromObject({ ...list, cniVersion: '1.0.0', cniVersions: ['7.0.0'] }).cniVersion, '1.0.0');
  assert.throws(() => confListFromObject({ ...list, cniVersion: undefined, cniVersions: ['7.0.0'] }, 'v.conflist'), code(7, /v\.conflist: cniVersions has no version/));
});

test('a conf dir gives the lexically first .conf/.conflist/.json file, or the one with the asked name', () => withDir((dir) => {
  writeFileSync(join(dir, '20-b.conflist'), JSON.stringify({ ...list, name: 'b' }));
  writeFileSync(join(dir, '10-a.conf'), JSON.stringify({ cniVersion: '1.0.0', name: 'a', type: 'bridge' }));
  writeFileSync(join(dir, '05-ignored.txt'), 'not a config');
  writeFileSync(join(dir, '30-c.json'), JSON.stringify({ ...list, name: 'c' }));
  assert.equal(loadConfDir(dir).name, 'a');
  assert.equal(loadConfDir(dir, 'b').name, 'b');
  assert.equal(loadConfDir(dir, 'c').plugins.length, 2);
  assert.equal(loadConfList(dir).name, 'a');
  assert.equal(loadConfList(dir, 'c').name, 'c');
  assert.equal(loadConfList(join(dir, '20-b.conflist')).name, 'b');
  assert.throws(() => loadConfDir(dir, 'zzz'), code(7, /no network configuration named "zzz"/));
  assert.throws(() => loadConfList(join(dir, '20-b.conflist'), 'a'), code(7, /network is "b", not "a"/));
}));

test('an empty conf dir is an error naming the dir', () => withDir((dir) => {
  assert.throws(() => loadConfDir(dir), code(7, new RegExp(`${dir}: no network configuration`)));
}));

test('runtimeConfig holds only capabilities the plugin declares true and the runtime was given', () => {
  const plugin = { type: 'p', capabilities: { portMappings: true, bandwidth: false, ips: true } };
  const args = { portMappings: [{ hostPort: 8080, containerPort: 80, protocol: 'tcp' }], bandwidth: { ingressRate: 1 }, mac: 'aa:bb' };
  assert.deepEqual(runtimeConfigFor(plugin, args), { portMappings: args.portMappings });
  assert.deepEqual(runtimeConfigFor({ type: 'q' }, args), {});
});

test('plugin stdin: list name and version injected, capabilities removed, other keys kept', () => {
  const l = confListFromObject(list);
  const conf = derivePluginConfig(l, { ...l.plugins[1], name: 'other', cniVersion: '0.1.0' }, {
    capabilityArgs: { portMappings: [{ hostPort: 1, containerPort: 2, protocol: 'tcp' }], bandwidth: {} },
  });
  assert.deepEqual(conf, {
    type: 'portmap', snat: true, name: 'podnet', cniVersion: '1.0.0',
    runtimeConfig: { portMappings: [{ hostPort: 1, containerPort: 2, protocol: 'tcp' }] },
  });
});

test('plugin stdin: no runtimeConfig when nothing matches, prevResult and extra keys when given', () => {
  const l = confListFromObject(list);
  const prev = { cniVersion: '1.0.0', ips: [{ address: '10.1.0.2/24' }] };
  const conf = derivePluginConfig(l, l.plugins[0], { prevResult: prev, capabilityArgs: { portMappings: [] } });
  assert.equal('runtimeConfig' in conf, false);
  assert.deepEqual(conf.prevResult, prev);
  assert.deepEqual(conf.ipam, { type: 'host-local', subnet: '10.1.0.0/24' });
  const gc = derivePluginConfig(l, l.plugins[0], { extra: { 'cni.dev/valid-attachments': [] } });
  assert.deepEqual(gc['cni.dev/valid-attachments'], []);
  assert.equal('prevResult' in gc, false);
  // The plugin object itself is not modified.
  assert.deepEqual(l.plugins[1].capabilities, { portMappings: true, bandwidth: false });
});
