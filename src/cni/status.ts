// STATUS (spec 1.1.0): error 50 when this plugin could not serve an ADD right now: a config it
// cannot use, an IPAM directory it cannot write, or a range set with no address left.
import { CniCode, CniError } from './errors.js';
import { parseConf } from './config.js';
import { DiskStore } from '../ipam/disk-store.js';
import { exhaustedRangeSet } from '../ipam/allocator.js';

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
  const store = new DiskStore(conf.ipam.dataDir, conf.name);
  store.checkWritable();
  // A used-up range cannot serve an ADD either: the spec's 50, so a runtime stops sending pods here.
  const full = exhaustedRangeSet(store, conf.ipam);
  if (full) {
    throw new CniError(CniCode.NotAvailable,
      `cannot serve ADD: no free address in range set ${full.setIndex} (${full.ranges}): all ${full.total} addresses are reserved`);
  }
}
