// The CNI result in its newest shape (spec 1.1.0); version.ts converts it to the version a runtime asked for.

export interface CniInterface {
  name: string;
  mac?: string;
  mtu?: number;
  sandbox?: string;
  socketPath?: string;
  pciID?: string;
}

export interface CniIPConfig {
  /** CIDR notation: the address and its prefix length, e.g. 10.244.1.5/24. */
  address: string;
  gateway?: string;
  /** Index into interfaces. */
  interface?: number;
}

export interface CniRoute {
  dst: string;
  gw?: string;
  mtu?: number;
  advmss?: number;
  priority?: number;
  table?: number;
  scope?: number;
}

export interface CniDNS {
  nameservers?: string[];
  domain?: string;
  search?: string[];
  options?: string[];
}

export interface CniResult {
  cniVersion: string;
  interfaces?: CniInterface[];
  ips?: CniIPConfig[];
  routes?: CniRoute[];
  dns?: CniDNS;
}

/** One attachment: what the spec calls (CNI_CONTAINERID, CNI_IFNAME) for a network. */
export interface Attachment {
  containerId: string;
  ifname: string;
}
