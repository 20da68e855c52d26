# shellcheck shell=bash
# Shared helpers for the wgmesh netns lab (sourced by test/lab/topo.sh).
#
# Safety model (see test/lab/README.md):
#  * Every namespace the lab creates is appended to $LAB_STATE/namespaces *before* it is
#    created (after checking the name is free), so `down` can always find it.
#  * Every background process the lab starts is appended to $LAB_STATE/pids as
#      PID<TAB>NETNS<TAB>ARGV0<TAB>LABEL<TAB>STARTTIME
#    (STARTTIME = field 22 of /proc/PID/stat, immune to PID reuse). Only PIDs from that file
#    are ever signalled, after checking they are still the process we started; never by name.
#  * wireguard-go UAPI sockets (/var/run/wireguard/IF.sock, NOT per namespace) that a test
#    registered are listed in $LAB_STATE/wg-sockets and removed by `down`.

LAB_DIR=${LAB_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}
LAB_STATE=${LAB_STATE:-$LAB_DIR/state}
WG_RUN_DIR=${WG_RUN_DIR:-/var/run/wireguard}

log() { printf '[lab %s] %s\n' "$(date +%H:%M:%S.%3N)" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }
now() { date +%s.%N; }

nsx() { local ns=$1; shift; ip netns exec "$ns" "$@"; }

ns_exists() { [[ -e /run/netns/$1 ]]; }
ns_inode() { stat -L -c %i "/run/netns/$1" 2>/dev/null; }
# /proc/PID/stat field 22 (starttime, clock ticks since boot); comm may contain spaces/parens
pid_starttime() {
  local s
  s=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
  s=${s##*) }
  set -- $s
  echo "${20}"
}

# Is NS one of the namespaces this lab recorded?
lab_owns_ns() { [[ -f $LAB_STATE/namespaces ]] && grep -qxF -- "$1" "$LAB_STATE/namespaces"; }

# lab_spawn LABEL NETNS LOGFILE CMD [ARGS...]
# Start CMD inside NETNS in the background, record it, set LAB_SPAWNED_PID.
# `ip netns exec` exec()s CMD, so $! is CMD's PID.
lab_spawn() {
  local label=$1 ns=$2 logf=$3; shift 3
  [[ $label != *$'\t'* && $label != *$'\n'* ]] || die "label must not contain tabs/newlines"
  mkdir -p "$LAB_STATE"
  ip netns exec "$ns" "$@" >"$logf" 2>&1 </dev/null &
  LAB_SPAWNED_PID=$!
  local st
  st=$(pid_starttime "$LAB_SPAWNED_PID") || st=-
  printf '%s\t%s\t%s\t%s\t%s\n' "$LAB_SPAWNED_PID" "$ns" "$1" "$label" "$st" >>"$LAB_STATE/pids"
}

# _pid_is_ours PID NETNS ARGV0 STARTTIME -> 0 if PID still is the process we started.
# Right after the fork it may still be `ip netns exec NETNS ARGV0 ...` (before exec()).
_pid_is_ours() {
  local pid=$1 ns=$2 argv0=$3 st=${4:--}
  [[ $pid =~ ^[0-9]+$ ]] || return 1
  [[ -r /proc/$pid/cmdline ]] || return 1
  if [[ $st != - ]]; then
    [[ $(pid_starttime "$pid") == "$st" ]] || return 1
  fi
  local -a cl
  mapfile -d '' -t cl <"/proc/$pid/cmdline" 2>/dev/null || return 1
  ((${#cl[@]})) || return 1 # zombie / kernel thread
  if [[ ${cl[0]} == ip && ${cl[1]:-} == netns && ${cl[2]:-} == exec && ${cl[3]:-} == "$ns" && ${cl[4]:-} == "$argv0" ]]; then
    return 0
  fi
  [[ ${cl[0]} == "$argv0" ]] || return 1
  local want have
  want=$(ns_inode "$ns") || return 1
  have=$(stat -L -c %i "/proc/$pid/ns/net" 2>/dev/null) || return 1
  [[ -n $want && $want == "$have" ]]
}

# lab_kill LABEL_REGEX [SIGNAL]
#  no SIGNAL / TERM: SIGTERM matching recorded processes, SIGKILL after 3 s, drop their records.
#  other SIGNAL (HUP, USR1, STOP, KILL...): send it once; records of processes that are gone
#  are dropped.
lab_kill() {
  local re=${1:-.} sig=${2:-TERM} f=$LAB_STATE/pids
  [[ -f $f ]] || return 0
  sig=${sig#SIG}
  local -a keep=() victims=()
  local pid ns argv0 label st
  while IFS=$'\t' read -r pid ns argv0 label st; do
    [[ -z $pid ]] && continue
    if ! _pid_is_ours "$pid" "$ns" "$argv0" "$st"; then
      continue # gone (or PID reused): forget it, never signal it
    fi
    if [[ $label =~ $re ]]; then
      kill "-$sig" "$pid" 2>/dev/null || true
      [[ $sig == TERM || $sig == 15 ]] && { kill -CONT "$pid" 2>/dev/null || true; } # a stopped process can't die of TERM
      victims+=("$pid"$'\t'"$ns"$'\t'"$argv0"$'\t'"$label"$'\t'"$st")
    else
      keep+=("$pid"$'\t'"$ns"$'\t'"$argv0"$'\t'"$label"$'\t'"$st")
    fi
  done <"$f"
  local v t alive
  if [[ $sig == TERM || $sig == 15 ]]; then
    for ((t = 0; t < 30; t++)); do
      alive=0
      for v in "${victims[@]}"; do
        IFS=$'\t' read -r pid ns argv0 label st <<<"$v"
        _pid_is_ours "$pid" "$ns" "$argv0" "$st" && alive=1
      done
      ((alive)) || break
      sleep 0.1
    done
    for v in "${victims[@]}"; do
      IFS=$'\t' read -r pid ns argv0 label st <<<"$v"
      if _pid_is_ours "$pid" "$ns" "$argv0" "$st"; then
        log "pid $pid ($label: $argv0 in $ns) ignored SIGTERM, sending SIGKILL"
        kill -KILL "$pid" 2>/dev/null || true
      fi
    done
  else
    sleep 0.05
    for v in "${victims[@]}"; do
      IFS=$'\t' read -r pid ns argv0 label st <<<"$v"
      _pid_is_ours "$pid" "$ns" "$argv0" "$st" && keep+=("$v")
    done
  fi
  if ((${#keep[@]})); then printf '%s\n' "${keep[@]}" >"$f.tmp" && mv "$f.tmp" "$f"; else rm -f "$f"; fi
  for v in "${victims[@]}"; do
    IFS=$'\t' read -r pid _ <<<"$v"
    wait "$pid" 2>/dev/null || true # reap if it was our child (no-op otherwise)
  done
}

lab_load_topo() {
  [[ -f $LAB_STATE/topo.env ]] || die "no lab is up (missing $LAB_STATE/topo.env); run topo.sh up first"
  # shellcheck disable=SC1091
  source "$LAB_STATE/topo.env"
}

# lab_ns NAME -> real namespace name for a logical name (pub1, nat2-b, r-nat1, internet)
# or an already-prefixed name; fails unless it is a namespace of this lab.
lab_ns() {
  local n=$1
  [[ -f $LAB_STATE/namespaces ]] || die "no lab is up (missing $LAB_STATE/namespaces)"
  if lab_owns_ns "${LAB_PREFIX}$n"; then echo "${LAB_PREFIX}$n"; return 0; fi
  if lab_owns_ns "$n"; then echo "$n"; return 0; fi
  die "'$n' is not a host of this lab (namespaces: $(tr '\n' ' ' <"$LAB_STATE/namespaces"))"
}
