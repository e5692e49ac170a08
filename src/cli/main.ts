// flatnet: the command line. Argument parsing and output only; the work happens in src/lab.
import { parseArgs } from 'node:util';
import { Lab } from '../lab/lab.js';
import { runNodeDemo } from '../lab/demo.js';

const USAGE = `usage: flatnet [--lab NAME] [--state-dir DIR] COMMAND

  lab node add NAME [--pod-cidr CIDR]   create a node (a network namespace)
  lab node rm NAME                      remove a node and its pods
  lab pod add NAME --node NODE          create a pod on a node (CNI ADD through the node's conflist)
  lab pod rm NAME                       remove a pod (CNI DEL, netns removed)
  lab status                            list nodes and pods
  lab down                              remove every node, pod, namespace and file of the lab
  exec POD -- CMD [ARGS...]             run a command inside a pod's network namespace
  demo [--keep]                         one node, two pods that ping each other

  --lab NAME       the lab to act on (default "flatnet"; names prefix every namespace)
  --state-dir DIR  where labs keep their state (default /run/flatnet/lab)`;

class UsageError extends Error {}

async function main(argv: string[]): Promise<number> {
  const dash = argv.indexOf('--');
  const head = dash >= 0 ? argv.slice(0, dash) : argv;
  const tail = dash >= 0 ? argv.slice(dash + 1) : [];
  const { values, positionals } = parseArgs({
    args: head,
    allowPositionals: true,
    options: {
      lab: { type: 'string', default: process.env.FLATNET_LAB ?? 'flatnet' },
      'state-dir': { type: 'string' },
      'pod-cidr': { type: 'string' },
      node: { type: 'string' },
      keep: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help || positionals.length === 0) {
    console.log(USAGE);
    return values.help ? 0 : 2;
  }
  const stateRoot = values['state-dir'];
  const lab = () => new Lab(values.lab!, { stateRoot });
  const [cmd, ...rest] = positionals;
  const key = [cmd, ...rest.slice(0, 2)].join(' ');
  const arg = (i: number, what: string) => {
    const v = rest[i];
    if (!v) throw new UsageError(`missing ${what}`);
    return v;
  };

  if (cmd === 'demo') return (await runNodeDemo({ keep: values.keep!, stateRoot })) ? 0 : 1;
  if (cmd === 'exec') {
    if (tail.length === 0) throw new UsageError('exec needs a command after "--"');
    return (await lab().exec(arg(0, 'pod name'), tail)).code;
  }
  if (cmd !== 'lab') throw new UsageError(`unknown command "${cmd}"`);
  if (key.startsWith('lab node add')) {
    const n = lab().addNode(arg(2, 'node name'), values['pod-cidr']);
    console.log(`node ${n.name} created: netns ${n.netns}, pod CIDR ${n.podCIDR}`);
  } else if (key.startsWith('lab node rm')) {
    await lab().removeNode(arg(2, 'node name'));
  } else if (key.startsWith('lab pod add')) {
    if (!values.node) throw new UsageError('lab pod add needs --node NODE');
    const p = await lab().addPod(arg(2, 'pod name'), values.node);
    console.log(`pod ${p.name} created on ${p.node}: netns ${p.netns}, IP ${p.ips.join(', ')}`);
  } else if (key.startsWith('lab pod rm')) {
    await lab().removePod(arg(2, 'pod name'));
  } else if (key === 'lab status') {
    const l = lab();
    console.log('NODE        NETNS                         POD-CIDR');
    for (const n of l.state.nodes()) console.log(`${n.name.padEnd(12)}${n.netns.padEnd(30)}${n.podCIDR}`);
    console.log('\nPOD         NODE        NETNS                         IP');
    for (const p of l.state.pods()) console.log(`${p.name.padEnd(12)}${p.node.padEnd(12)}${p.netns.padEnd(30)}${p.ips.join(',')}`);
  } else if (key === 'lab down') {
    await lab().down();
  } else {
    throw new UsageError(`unknown command "${positionals.join(' ')}"`);
  }
  return 0;
}

main(process.argv.slice(2)).then(
  (code) => { process.exitCode = code; },
  (err: unknown) => {
    console.error(`flatnet: ${err instanceof Error ? err.message : String(err)}`);
    if (err instanceof UsageError) console.error(USAGE);
    process.exitCode = err instanceof UsageError ? 2 : 1;
  },
);
