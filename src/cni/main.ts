// flatnet-cni: the executable a CNI runtime starts. It only maps the process (env, stdin, stdout,
// exit status) onto handleRequest.
import { readFileSync } from 'node:fs';
import { handleRequest } from './plugin.js';

let stdin = '';
try {
  stdin = readFileSync(0, 'utf8');
} catch {
  // No stdin (e.g. a closed descriptor): VERSION still answers; other commands fail to decode.
}
void handleRequest(process.env, stdin).then((answer) => {
  if (answer.stdout) process.stdout.write(answer.stdout + '\n');
  process.exitCode = answer.exitCode;
});
