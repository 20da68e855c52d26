#!/usr/bin/env bash
# The main job on a fresh machine: set-up, then a mixed wgmesh (public, cone NAT, symmetric NAT,
# two hosts behind one NAT) in network namespaces,
# printing `wgmesh info` and a ping matrix, then cleaning up. Needs root (namespaces).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/setup.sh
exec node --conditions=wgmesh-src --import tsx --import ./scripts/polyfills.mjs scripts/demo.ts
