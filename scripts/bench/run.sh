#!/usr/bin/env bash
# Benchmarks (network namespaces only; root). Usage: scripts/bench/run.sh [RUNS] [mesh|nat|all]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
bash scripts/setup.sh >/dev/null
runs=${1:-3}
which=${2:-all}
run () { node --conditions=wgmesh-src --import tsx --import ./scripts/polyfills.mjs "scripts/bench/$1.ts" "$runs"; }
case $which in
  mesh) run mesh ;;
  nat) run nat ;;
  all) run mesh; echo; run nat ;;
  *) echo "usage: $0 [RUNS] [mesh|nat|all]" >&2; exit 2 ;;
esac
