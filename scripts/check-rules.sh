#!/usr/bin/env bash
# Project rules a linter doesn't know: no killing by name, no public STUN servers in tests,
# bench or demo, no secrets passed in argv to our own CLI.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
fail=0
by_name="p""kill|kill""all" # spelt in pieces so this file does not match itself
if git grep -nE "\\b($by_name)\\b" -- ':!*.md'; then
  echo "rule: kill only recorded PIDs, never by name" >&2; fail=1
fi
if git grep -nEi 'stun[0-9]?\.l\.google\.com|stun\.cloudflare\.com|stunserver\.|stun\.ekiga' -- test scripts packages/*/test; then
  echo "rule: tests, benchmarks and the demo start their own STUN servers" >&2; fail=1
fi
if git grep -nE -- "--mesh-key[ =]" -- ':!*.md' ':!scripts/check-rules.sh'; then
  echo "rule: the mesh key is never an argv value (--mesh-key-file or WGMESH_MESH_KEY)" >&2; fail=1
fi
exit $fail
