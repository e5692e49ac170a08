// `flatnet demo` for a one-node lab: two pods on one bridge show their addresses and ping each other.
import { randomBytes } from 'node:crypto';
import { Lab } from './lab.js';

export interface DemoOptions {
  keep: boolean;
  stateRoot?: string;
  log?: (line: string) => void;
}

export async function runNodeDemo(opts: DemoOptions): Promise<boolean> {
  const log = opts.log ?? ((l: string) => console.log(l));
  const lab = new Lab(`demo-${randomBytes(2).toString('hex')}`, { stateRoot: opts.stateRoot });
  let ok = false;
  try {
    log(`lab ${lab.state.lab}: one node, two pods`);
    const node = lab.addNode('node1', '10.244.1.0/24');
    log(`node ${node.name}: netns ${node.netns}, pod CIDR ${node.podCIDR}`);
    const a = await lab.addPod('alpha', 'node1');
    const b = await lab.addPod('beta', 'node1');
    log('');
    log('POD     NODE    NETNS                       IP');
    for (const p of [a, b]) log(`${p.name.padEnd(8)}${p.node.padEnd(8)}${p.netns.padEnd(28)}${p.ips.join(',')}`);
    log('');
    const ipOf = (cidr: string) => cidr.split('/')[0];
    const r1 = await lab.exec(a.name, ['ping', '-c', '2', '-W', '1', ipOf(b.ips[0])], 'pipe');
    const r2 = await lab.exec(b.name, ['ping', '-c', '2', '-W', '1', ipOf(a.ips[0])], 'pipe');
    for (const [from, to, r] of [[a, b, r1], [b, a, r2]] as const) {
      const summary = r.stdout.split('\n').find((l) => l.includes('packets transmitted')) ?? r.stdout.trim();
      log(`${from.name} -> ${to.name} (${ipOf(to.ips[0])}): ${r.code === 0 ? 'ok' : 'FAILED'}  ${summary}`);
    }
    ok = r1.code === 0 && r2.code === 0;
    log(ok ? '\npods reach each other by their own IPs.' : '\nping failed.');
  } finally {
    if (opts.keep) log(`\nlab kept: flatnet --lab ${lab.state.lab} lab status; flatnet --lab ${lab.state.lab} lab down`);
    else await lab.down();
  }
  return ok;
}
