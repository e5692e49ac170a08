// How a lab node's agent reaches the lab's Kubernetes API in `kubernetes` mode. The API server listens
// on 127.0.0.1 of the machine's own namespace; an agent runs in its node's namespace, whose 127.0.0.1 is
// another loopback. A unix socket is reachable from both (it lives in the filesystem), so two byte pipes
// join them, adding no address or route anywhere: in the machine's namespace `lab api-relay` takes the
// socket's connections to the API server's port; in a node's namespace the node daemon listens on
// 127.0.0.1:<the same port> and passes each connection to the socket. TLS runs end to end through both,
// and the lab's kubeconfig works unchanged inside a node.
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { readFileSync, rmSync } from 'node:fs';

function pipe(a: Socket, b: Socket): void {
  a.pipe(b);
  b.pipe(a);
  const end = () => { a.destroy(); b.destroy(); };
  a.on('error', end); b.on('error', end); a.on('close', end); b.on('close', end);
}

const listen = (server: Server, ...args: unknown[]): Promise<void> => new Promise((resolve, reject) => {
  server.once('error', reject);
  (server.listen as (...a: unknown[]) => void)(...args, () => { server.off('error', reject); resolve(); });
});

/** The machine's side: unix `socket` -> 127.0.0.1:<port in portFile>, read per connection (a restarted API server may move). */
export async function serveApiRelay(socket: string, portFile: string): Promise<Server> {
  rmSync(socket, { force: true });
  const server = createServer((client) => {
    let port: number;
    try { port = Number(readFileSync(portFile, 'utf8').trim()); } catch { client.destroy(); return; }
    pipe(client, createConnection({ host: '127.0.0.1', port }));
  });
  await listen(server, socket);
  return server;
}

/** A node's side: 127.0.0.1:`port` in this namespace -> unix `socket`. */
export async function listenApiRelay(port: number, socket: string): Promise<Server> {
  const server = createServer((client) => pipe(client, createConnection({ path: socket })));
  await listen(server, port, '127.0.0.1');
  return server;
}

/** `flatnet lab api-relay --socket S --port-file F`: the machine's side as a lab unit, until SIGTERM. */
export async function runApiRelayCommand(socket: string, portFile: string): Promise<void> {
  const server = await serveApiRelay(socket, portFile);
  await new Promise<void>((resolve) => { for (const sig of ['SIGTERM', 'SIGINT'] as const) process.once(sig, () => resolve()); });
  await new Promise<void>((resolve) => server.close(() => resolve()));
  rmSync(socket, { force: true });
}
