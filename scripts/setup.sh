#!/usr/bin/env bash
# Installs what flatnet needs on Debian 12 (only what is missing), installs npm dependencies and builds.
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(
  iproute2 nftables iptables util-linux iputils-ping   # ip, nft, nsenter/unshare, ping
  containernetworking-plugins                          # reference plugins: chaining tests and bench/cni
  containerd runc busybox-static                       # a real runtime and a tiny image for the containerd test
  etcd-server                                          # cluster state (the cluster network)
  conntrack                                            # the proxy flushes UDP flows to endpoints that went
  iperf3 ethtool                                       # datapath benchmark (ethtool: its --gro switch)
  gcc libc6-dev                                        # compiles the flatnet-cni shim (src/cni/shim.c)
  python3 procps                                       # containment test: spoofed packets (raw sockets), ps in pods
  ipset                                                # bench/policy: the iptables + ipset reference ruleset
  chromium fonts-dejavu-core                           # flatnet ui's browser test (headless, driven by playwright-core)
  curl                                                 # the metrics test scrapes /metrics as a user would
)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund
fi
npm run build --silent
