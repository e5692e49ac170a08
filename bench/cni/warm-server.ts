// The warm flatnet-cni server as the agent runs it, alone: the bench starts this file inside its
// "node" netns (nsenter --net=…), so the shim there reaches it. Prints one line when listening;
// SIGTERM closes the server (removing its socket) and exits.
import { startCniServer } from '../../src/cni/server.js';

const server = await startCniServer();
process.on('SIGTERM', () => { void server.close().then(() => process.exit(0)); });
process.stdout.write(JSON.stringify({ socketPath: server.socketPath }) + '\n');
