// The command line's flags, in one table: every command's parser reads them from here.
import { parseArgs as nodeParseArgs } from 'node:util';

export const OPTIONS = {
  lab: { type: 'string' },
  'state-dir': { type: 'string' },
  file: { type: 'string', short: 'f', multiple: true },
  namespace: { type: 'string', short: 'n' },
  'all-namespaces': { type: 'boolean', short: 'A' },
  output: { type: 'string', short: 'o' },
  container: { type: 'string', short: 'c' },
  segment: { type: 'string' },
  keep: { type: 'boolean' },
  'grace-period': { type: 'string' },
  wait: { type: 'string' },
  verbose: { type: 'boolean', short: 'v' },
  backend: { type: 'string' },
  // daemons
  etcd: { type: 'string' },
  node: { type: 'string' },
  'node-dir': { type: 'string' },
  iface: { type: 'string' },
  'node-ip': { type: 'string' },
  'pod-runtime': { type: 'string' },
  'netns-prefix': { type: 'string' },
  'heartbeat-ttl': { type: 'string' },
  disable: { type: 'string' },
  'health-listen': { type: 'string' },
  'metrics-listen': { type: 'string' },
  identity: { type: 'string' },
  'lease-ttl': { type: 'string' },
  'node-monitor-grace-period': { type: 'string' },
  'pki-dir': { type: 'string' },
  kubeconfig: { type: 'string' },
  datastore: { type: 'string' },
  config: { type: 'string' },
  listen: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
} as const;

export type Values = ReturnType<typeof parse>['values'];
export const parse = (args: string[]) => nodeParseArgs({ args, allowPositionals: true, options: OPTIONS });
