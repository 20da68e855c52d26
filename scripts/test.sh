#!/usr/bin/env bash
# The one test command: set-up (system packages, npm ci, build), lint, typecheck, then every
# test tier in one node:test run — unit (pure), in-process (real libp2p on 127.0.0.1), and
# network namespaces (root, real wireguard-go, real NAT routers). Fails when any test fails;
# the netns tier is never skipped (it fails if it cannot run).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/setup.sh
echo "== lint"
npm run --silent lint
echo "== typecheck"
npm run --silent typecheck
echo "== tests (unit, in-process, netns)"
node scripts/run-tests.mjs all
