// Why: `flatnet install-cni` is what the DaemonSet's init container runs; it parses its own flags so the
// one line in cli/main.ts is all the CLI knows of it, and it loads nothing but node:fs.
import { realpathSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { installCni, uninstallCni } from './cni-install.js';

export const INSTALL_USAGE = `usage: flatnet install-cni --root DIR [--source DIR] [--conflist FILE] [--uninstall]
  install flatnet-cni and flatnet-cni-node into DIR/opt/cni/bin (and FILE as DIR/etc/cni/net.d/10-flatnet.conflist),
  each whole (temp file, then rename), only what differs; --source: where the binaries are (default: beside flatnet)`;

export function runInstallCniCommand(argv: string[]): number {
  let values;
  try {
    ({ values } = parseArgs({ args: argv, options: {
      root: { type: 'string' }, source: { type: 'string' }, conflist: { type: 'string' }, uninstall: { type: 'boolean' }, help: { type: 'boolean', short: 'h' },
    } }));
  } catch (err) {
    console.error(`flatnet install-cni: ${(err as Error).message}\n${INSTALL_USAGE}`);
    return 2;
  }
  if (values.help) { console.log(INSTALL_USAGE); return 0; }
  if (!values.root) { console.error(`flatnet install-cni: --root is required\n${INSTALL_USAGE}`); return 2; }
  const root = resolve(values.root);
  try {
    if (values.uninstall) {
      for (const p of uninstallCni(root)) console.log(`removed ${root}/${p}`);
      return 0;
    }
    const binDir = values.source ? resolve(values.source) : dirname(realpathSync(process.argv[1]));
    const r = installCni(root, { binDir, conflist: values.conflist });
    for (const t of r.removedTemps) console.log(`removed a killed install's ${root}/${t}`);
    for (const p of r.written) console.log(`installed ${root}/${p}`);
    for (const p of r.unchanged) console.log(`unchanged ${root}/${p}`);
    for (const w of r.warnings) console.error(`warning: ${w}`);
    return 0;
  } catch (err) {
    console.error(`flatnet install-cni: ${(err as Error).message}`);
    return 1;
  }
}
