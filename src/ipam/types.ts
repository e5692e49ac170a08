// IPAM as flatnet-cni serves it in-process: host-local's configuration, host-local's disk layout.
import type { Attachment, CniRoute } from '../cni/types.js';

/** One range as host-local configures it. */
export interface RangeConf {
  subnet: string;
  rangeStart?: string;
  rangeEnd?: string;
  gateway?: string;
}

/** The `ipam` object of a flatnet-cni config (host-local's keys; `type` may be left out). */
export interface IpamConf {
  type?: string;
  ranges: RangeConf[][];
  routes?: CniRoute[];
  dataDir?: string;
}

/** A range after validation: every bound resolved, ready for allocation. */
export interface ParsedRange {
  subnet: string;       // canonical network/prefix, e.g. "10.244.1.0/24"
  prefixLength: number;
  version: 4 | 6;
  rangeStart: string;   // first allocatable address
  rangeEnd: string;     // last allocatable address
  gateway: string;      // skipped by the allocator
}

export interface ParsedIpam {
  rangeSets: ParsedRange[][];
  routes: CniRoute[];
  dataDir: string;
}

/** What one ADD got from one range set. */
export interface Allocation {
  address: string;      // CIDR: "10.244.1.5/24"
  ip: string;           // "10.244.1.5"
  gateway: string;
  version: 4 | 6;
  rangeSetIndex: number;
  /** Held before this call (a retried ADD): undoing this call must not free it. */
  reused: boolean;
}

export type { Attachment };
