#!/usr/bin/env bash
# Everything a fresh Debian machine needs to build wgmesh and run its tests and demo:
# system packages (as root, via apt), `npm ci`, and the build. Safe to run again.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

APT_PACKAGES=(wireguard-go wireguard-tools iproute2 nftables iputils-ping conntrack procps miniupnpd miniupnpd-nftables tcpdump nix-bin ansible ansible-lint prometheus)
missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if ((${#missing[@]})); then
  if [[ $(id -u) != 0 ]]; then
    echo "setup: missing system packages: ${missing[*]} (run as root, or: sudo apt-get install -y --no-install-recommends ${missing[*]})" >&2
    exit 1
  fi
  echo "setup: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  # --no-install-recommends: wireguard-tools would otherwise pull in a kernel image
  # miniupnpd (a real UPnP-IGD/NAT-PMP router for the lab) starts no daemon on install
  echo 'miniupnpd miniupnpd/start_daemon boolean false' | debconf-set-selections 2>/dev/null || true
  RUNLEVEL=1 apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if [[ ! -d node_modules ]] || [[ package-lock.json -nt node_modules/.package-lock.json ]]; then
  echo "setup: npm ci"
  npm ci --no-audit --no-fund --loglevel=error
fi
echo "setup: build"
npm run --silent build
