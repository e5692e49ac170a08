// Port ranges as nft interval sets hold them. nft 1.0.6 refuses overlapping elements ("conflicting
// intervals specified", "File exists" in a concatenation) and keeps adjacent ones apart, so ranges are
// merged here into the one form the kernel lists back (addresses: ../../policy/addresses.ts). Pure.

/** Port ranges of one protocol, merged: [[80, 80], [81, 90]] → [[80, 90]]. */
export function mergePorts(ranges: Array<[number, number]>): Array<[number, number]> {
  const out: Array<[number, number]> = [];
  for (const [a, b] of [...ranges].sort((x, y) => x[0] - y[0])) {
    const last = out[out.length - 1];
    if (last && a <= last[1] + 1) last[1] = Math.max(last[1], b);
    else out.push([a, b]);
  }
  return out;
}

/** "80" or "80-90", as nft lists a port element. */
export const nftPorts = ([a, b]: [number, number]): string => (a === b ? String(a) : `${a}-${b}`);
