#!/usr/bin/env bash
# Benchmarks (network namespaces only; root).
# Usage: scripts/bench/run.sh [RUNS] [mesh|nat|compare|relay|timeline|crossing|large [N]|scale [N ...]|failover [lab|default]|all]
#   compare: wgmesh beside Nebula (installs Debian's nebula if missing)
#   relay:   throughput through a relay, wgmesh beside Nebula (installs iperf3, nebula)
#   timeline: where the time to a full mesh goes, per agent (profiling aid; RUNS ignored)
#   crossing: two wireguard-go ends that add each other and send at once: RUNS tries (default 16)
#            without and with the agent's first-contact re-creation (the 5 s tail's cause)
#   scale:   per-node cost against N on the real core with a fake clock (no lab; RUNS ignored)
#   large:   N (default 50) wgmesh nodes (installs Debian's fping if missing)
#   failover: gateway failover gap, RUNS switches per timer setting (RUNS default 10 here;
#            lab|default: only the lab's test timers / only the CLI defaults)
# RUNS may be left out (`run.sh failover`): then the mode's default (3, failover 10).
# BENCH_BUILD=0: skip setup.sh/build. Only one lab at a time on a small machine: flock /tmp/wgmesh-lab.lock bash scripts/bench/run.sh ...
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
# setup.sh builds the bundle the benchmarks run (packages/cli/dist/wgmesh.mjs); BENCH_BUILD=0
# measures the existing bundle as it is (e.g. while the sources are mid-edit)
if [[ ${BENCH_BUILD:-1} != 0 ]]; then
  out=$(bash scripts/setup.sh 2>&1) || { echo "$out" >&2; echo "bench: setup/build failed (BENCH_BUILD=0 runs the existing bundle)" >&2; exit 1; }
fi
# RUNS left out: `run.sh MODE ...` is `run.sh "" MODE ...`
if [[ -n ${1:-} && ! $1 =~ ^[0-9]+$ ]]; then set -- "" "$@"; fi
runs=${1:-}
which=${2:-all}
# bench-only tools, never installed by setup.sh or tests
need () {
  local missing=() p
  for p in "$@"; do dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p"); done
  ((${#missing[@]})) || return 0
  echo "bench: installing ${missing[*]}" >&2
  # Debian's nebula ships only a nebula@.service template: installing it starts no daemon
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null ||
    { DEBIAN_FRONTEND=noninteractive apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null; }
}
run () { local s=$1; shift; node --conditions=wgmesh-src --import tsx --import ./scripts/polyfills.mjs "scripts/bench/$s.ts" "${runs:-3}" "$@"; }
case $which in
  mesh) run mesh ;;
  nat) run nat ;;
  compare) need nebula fping; run compare ;;
  relay) need nebula iperf3; run relay ;;
  timeline) need fping; run timeline ;;
  crossing) runs=${runs:-16}; run crossing ;;
  large) need fping; run large "${3:-50}" ;;
  failover) runs=${runs:-10}; run failover "${3:-all}" ;;
  scale) shift 2; node --conditions=wgmesh-src --import tsx scripts/bench/scale.ts "$@" ;;
  all) run mesh; echo; run nat ;;
  *) echo "usage: $0 [RUNS] [mesh|nat|compare|relay|timeline|crossing|large [N]|scale [N ...]|failover [lab|default]|all]" >&2; exit 2 ;;
esac
