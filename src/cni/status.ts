// STATUS (spec 1.1.0): error 50 when this plugin could not serve an ADD right now.
import { CniCode, CniError } from './errors.js';
import { parseConf } from './config.js';
import { DiskStore } from '../ipam/disk-store.js';

export function cmdStatus(raw: Record<string, unknown>): void {
  let conf;
  try {
    conf = parseConf(raw);
  } catch (err) {
    if (err instanceof CniError && err.code === CniCode.InvalidConfig) {
      throw new CniError(CniCode.NotAvailable, `cannot serve ADD: ${err.message}`);
    }
    throw err;
  }
  new DiskStore(conf.ipam.dataDir, conf.name).checkWritable();
}
