// The lab API's transport: the PKI openssl makes, HTTPS on 127.0.0.1 only, the client certificate the
// kubeconfig carries let in; a client without one, or with one another CA signed, gets 401 Unauthorized
// (the handshake admits it so that it may present a bearer token instead: auth/authenticate.ts).
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'node:https';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { MemoryStore } from '../../src/store/memory.js';
import { kubeconfigText, makePki } from '../../src/apiserver/pki.js';
import { startApiServer } from '../../src/apiserver/server.js';

const dir = mkdtempSync(join(tmpdir(), 'fnt-apiserver-'));
const store = new MemoryStore();
const pki = makePki(join(dir, 'pki'));
const server = await startApiServer({ store, pki });
after(async () => { await server.close(); await store.close(); rmSync(dir, { recursive: true, force: true }); });

function get(path: string, withCert: boolean, certs = pki): Promise<{ status: number; body: any }> {
  return new Promise((resolve, reject) => {
    request({ host: '127.0.0.1', port: server.port, path, ca: pki.caCert, ...(withCert ? { cert: certs.clientCert, key: certs.clientKey } : {}) }, (res) => {
      let text = '';
      res.on('data', (d) => { text += d; });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(text) }));
    }).on('error', reject).end();
  });
}

test('serves on 127.0.0.1 with a certificate the CA vouches for, to a client with the kubeconfig\'s certificate', async () => {
  assert.match(server.url, /^https:\/\/127\.0\.0\.1:\d+$/);
  const { status, body } = await get('/version', true);
  assert.equal(status, 200);
  assert.equal(body.major, '1');
});

const unauthorized = { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message: 'Unauthorized', reason: 'Unauthorized', code: 401 };

test('a client without a certificate is refused: 401 Unauthorized', async () => {
  assert.deepEqual(await get('/version', false), { status: 401, body: unauthorized });
});

test('a client with a certificate another CA signed is refused: 401 Unauthorized', async () => {
  const other = makePki(join(dir, 'other'));
  assert.deepEqual(await get('/api/v1/pods', true, other), { status: 401, body: unauthorized });
});

test('the kubeconfig holds the server, the CA and the client credentials inline', () => {
  const kc = parseYaml(kubeconfigText('lab1', server.url, pki));
  assert.equal(kc['current-context'], 'lab1');
  assert.equal(kc.clusters[0].cluster.server, server.url);
  assert.equal(Buffer.from(kc.clusters[0].cluster['certificate-authority-data'], 'base64').toString(), pki.caCert);
  assert.equal(Buffer.from(kc.users[0].user['client-key-data'], 'base64').toString(), pki.clientKey);
});
