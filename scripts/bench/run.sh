#!/usr/bin/env bash
# Benchmarks (network namespaces only; root). Usage: scripts/bench/run.sh [RUNS]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
bash scripts/setup.sh >/dev/null
node --conditions=wgmesh-src --import tsx --import ./scripts/polyfills.mjs scripts/bench/mesh.ts "${1:-3}"
