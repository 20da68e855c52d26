#!/usr/bin/env bash
# topo.sh - wgmesh network lab: an "internet with NAT routers" built only from network
# namespaces, veth pairs and bridges. No namespace is linked to the root namespace and the
# "internet" has no uplink, so lab traffic can never reach the machine's real interfaces.
#
# Usage (as root):
#   topo.sh up N_PUBLIC N_NATTED [cone|symmetric|LIST] [--shared-lan K[:C][,K[:C]...]]
#              [--service-lan HOST[,HOST...]] [--underlay ipv4|ipv6|dual]
#   topo.sh down                      kill recorded processes, remove registered wg sockets,
#                                     delete recorded namespaces (works after a crash)
#   topo.sh status                    address plan of the running lab
#   topo.sh nat HOST|r-natK TYPE      switch a router to cone|symmetric (flushes its conntrack)
#   topo.sh flows [--zero]            underlay packet/byte counters per src->dst IP (TSV, IPv4
#                                     and IPv6), counted on the internet bridge; --zero resets them
#   topo.sh families [--zero]         frames the internet bridge switched, per family (TSV:
#                                     family packets bytes; ip4, ip6, arp); --zero resets them
#   topo.sh exec HOST CMD...          run CMD in HOST's namespace (pub1, nat2-b, r-nat1, internet,
#                                     svc, svc-br)
#   topo.sh spawn LABEL HOST LOGFILE CMD...   start CMD in the background, record PID, print it
#   topo.sh kill LABEL_REGEX [SIGNAL] signal recorded processes by recorded PID only
#                                     (default TERM, escalating to KILL after 3 s)
#   topo.sh wg-register IFNAME        remember a wireguard-go interface: `down` removes its
#                                     stale /var/run/wireguard/IFNAME.sock (and the agent's
#                                     IFNAME.wgmesh claim)
#   topo.sh ns HOST                   print HOST's real namespace name
#   topo.sh svc-counters              service LAN: counters of every gateway's svc0 (TSV: host
#                                     ip rx_packets tx_packets rx_bytes tx_bytes), read from
#                                     /sys/class/net/svc0/statistics inside its namespace
#   topo.sh gc [ROOT]                 `down` every lab state dir under ROOT (default
#                                     test/lab/state/runs, where lab.ts keeps its labs) whose
#                                     owner process (file "owner": PID STARTTIME) is gone
#   topo.sh upnp HOST|r-natK on|off|status
#                                     real UPnP IGD v2 + NAT-PMP gateway (Debian's miniupnpd,
#                                     nftables backend) in the router; `on` prints KEY=VALUE
#                                     lines (router, lan_ip, wan_ip, http_port, desc_url, pid...)
#
# LIST: comma list of NAT types for nat1,nat2,... (the last one repeats), e.g. cone,symmetric.
#   cone      = nft "masquerade" (Linux keeps the source port when free: endpoint-independent
#               mapping; conntrack filtering = port-restricted cone)
#   symmetric = nft "masquerade fully-random" (new random port per 5-tuple)
# --shared-lan K[:C]: C (default 1, max 12) extra hosts natK-b, natK-c, ... on r-natK's LAN,
#   which then is a bridge (host<->host traffic is switched, never crosses the firewall).
# --underlay ipv4|ipv6|dual (default ipv4): the internet's families. ipv6: the public hosts
#   have ONLY IPv6 on eth0 (2001:db8:1::I/64, default route via the internet's 2001:db8:1::ffff;
#   no IPv4 address and no IPv4 route on eth0), the internet bridge has no IPv4 address and
#   does not forward IPv4; N_NATTED must be 0 (routers with an IPv6 firewall are not built).
#   dual: the public hosts have both (198.18.1.I/15 and 2001:db8:1::I/64); NATted hosts and
#   routers stay IPv4-only. eth0 of a host with IPv6 has DAD and router advertisements off
#   (its link-local address stays: NDP uses it).
# --service-lan HOST[,HOST...]: a "service LAN" behind the listed hosts (pubI, natK, natK-b...;
#   1..13, in this order), for gateway-failover / exit-node tests. A bridge "svc" in its own
#   namespace svc-br (no address, no uplink, drops IPv6; separate from the internet's br0) on
#   203.0.113.224/28; host "svc" (namespace svc) on it at 203.0.113.238 with NO default route:
#   it knows only its /28, so it can answer only hosts on that /28 (what a masquerading gateway
#   gives it); every listed host gets a second interface svc0 at 203.0.113.(225+i)/28 (i = 0,
#   1, ... in list order). IPv4 forwarding stays off in all of them (ip_forward=0 is written
#   explicitly, a new namespace may inherit 1 from the machine): the agent under test enables
#   it. That /28 is the LAN of r-nat47 in the plan below, so with --service-lan N_NATTED must
#   stay below 47 (up refuses otherwise).
#
# Environment:
#   LAB_STATE   state directory (default test/lab/state)
#   LAB_PREFIX  namespace-name prefix used by `up` (default wgm<4 random hex>-), stored in
#               the state dir and reused by the other commands
#
# Address plan (only inside lab namespaces):
#   internet  bridge br0 198.18.0.1/15 (default gateway of every site; no uplink)
#   pubI      eth0 198.18.1.I/15
#   r-natK    wan  198.18.2.K/15; lan 192.0.2.(16(K-1)+1)/28 (K<=16), then 198.51.100.x (17..32),
#             203.0.113.x (33..48; K=47 is 203.0.113.224/28, the service LAN: with --service-lan
#             K must stay < 47)
#   natK      eth0 .2 of that /28; natK-b, natK-c, ... .3, .4, ...
#   service LAN (--service-lan): svc-br bridge svc (no address), 203.0.113.224/28:
#             gateways' svc0 .225, .226, ... (max .237), svc eth0 .238 (only its /28 route)
#   every host: "unreachable 100.64.0.0/10 metric 4000" (overlay guard); not svc, whose main
#   routing table holds exactly its /28 (nothing else is reachable from it anyway)
#   IPv6 (--underlay ipv4, the default): off in routers and the internet; in hosts it stays
#   enabled (the overlay needs it) but eth0 (and svc0) has disable_ipv6=1, and every lab bridge
#   drops IPv6 frames; svc and svc-br have IPv6 off like routers.
#   --underlay ipv6|dual: internet br0 2001:db8:1::ffff/64 (IPv6 forwarding off: one /64, no
#   uplink), pubI eth0 2001:db8:1::I/64 (I in decimal digits: pub12 = 2001:db8:1::12); only
#   the internet bridge passes IPv6, the others still drop it.
set -euo pipefail
# shellcheck source=lib/common.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"

BR=br0
INET_GW=198.18.0.1
PLEN=15
OVERLAY_GUARD=100.64.0.0/10
INET_GW6=2001:db8:1::ffff
PLEN6=64
UNDERLAY=ipv4 # up --underlay; the other commands read LAB_UNDERLAY from topo.env

SVC_NET=203.0.113.224
SVC_PLEN=28
SVC_IP=203.0.113.238
SVC_GW_BASE=225 # gateway i (0-based) gets 203.0.113.(225+i)
SVC_MAX_GW=13   # .225 .. .237
SVC_BR=svc

pub_ip() { echo "198.18.1.$1"; }
pub_ip6() { echo "2001:db8:1::$1"; }
has_v4() { [[ $UNDERLAY != ipv6 ]]; }
has_v6() { [[ $UNDERLAY != ipv4 ]]; }
wan_ip() { echo "198.18.2.$1"; }
# lan_addrs K -> "ROUTER_IP HOST_IP PLEN"
lan_addrs() {
  local k=$1 nets=(192.0.2 198.51.100 203.0.113)
  local blk=$(((k - 1) / 16)) base=$((((k - 1) % 16) * 16))
  echo "${nets[$blk]}.$((base + 1)) ${nets[$blk]}.$((base + 2)) 28"
}
lan_extra_ip() {
  local k=$1 j=$2 nets=(192.0.2 198.51.100 203.0.113)
  local blk=$(((k - 1) / 16)) base=$((((k - 1) % 16) * 16))
  echo "${nets[$blk]}.$((base + 2 + j))"
}
extra_name() {
  local letters=(- b c d e f g h i j k l m)
  echo "nat$1-${letters[$2]}"
}
# lan_net K -> network address of r-natK's /28 (its router is .1 of it)
lan_net() {
  local rip _h _p
  read -r rip _h _p <<<"$(lan_addrs "$1")"
  echo "${rip%.*}.$((${rip##*.} - 1))"
}
svc_gw_ip() { echo "${SVC_NET%.*}.$((SVC_GW_BASE + $1))"; }

# ns_new LOGICAL KIND(host|infra): record, create, loopback up, IPv6 policy
ns_new() {
  local ns=${LAB_PREFIX}$1 kind=$2
  ns_exists "$ns" && die "namespace $ns already exists (another lab with prefix '$LAB_PREFIX'?)"
  echo "$ns" >>"$LAB_STATE/namespaces" # recorded before it exists: down always finds it
  ip netns add "$ns"
  ip -n "$ns" link set lo up
  if [[ $kind == host ]]; then
    # default=1 until eth0 exists, so eth0 is born without IPv6 (no link-local, no DAD on the
    # underlay); host_ipv6_policy re-enables it for interfaces created later (WireGuard)
    nsx "$ns" sysctl -qw net.ipv6.conf.default.disable_ipv6=1
  else
    nsx "$ns" sysctl -qw net.ipv6.conf.default.disable_ipv6=1 net.ipv6.conf.all.disable_ipv6=1
  fi
  CUR_NS=$ns
}
# hosts, once eth0 exists: IPv6 on for everything created later (wg interfaces); all=0 and
# lo=0 are untouched (new-netns defaults), eth0 keeps disable_ipv6=1. (Writing all=0 later
# re-enables eth0 too; the bridges drop IPv6 frames, so that still gives no side channel.)
# HOST_NS [v6]: with v6, eth0 keeps the IPv6 that attach_v6 gave it (an IPv6 underlay)
host_ipv6_policy() {
  nsx "$1" sysctl -qw net.ipv6.conf.default.disable_ipv6=0
  [[ ${2:-} == v6 ]] || nsx "$1" sysctl -qw net.ipv6.conf.eth0.disable_ipv6=1
}

# PORT NS IFC ADDR: ADDR '-' = no IPv4 on IFC (an IPv6-only host: attach_v6 follows)
attach_to_internet() {
  local port=$1 ns=$2 ifc=$3 addr=$4
  ip -n "$INET_NS" link add "$port" type veth peer name "$ifc" netns "$ns"
  ip -n "$INET_NS" link set "$port" master "$BR" up
  [[ $addr == - ]] || ip -n "$ns" addr add "$addr/$PLEN" dev "$ifc"
  ip -n "$ns" link set "$ifc" up
  [[ $addr == - ]] || ip -n "$ns" route add default via "$INET_GW" dev "$ifc"
}

# NS IFC ADDR6: IPv6 on IFC (no DAD, no router advertisements), default route via the internet
attach_v6() {
  local ns=$1 ifc=$2 addr=$3
  nsx "$ns" sysctl -qw "net.ipv6.conf.$ifc.accept_dad=0" "net.ipv6.conf.$ifc.accept_ra=0" \
    "net.ipv6.conf.$ifc.autoconf=0" "net.ipv6.conf.$ifc.disable_ipv6=0"
  ip -n "$ns" -6 addr add "$addr/$PLEN6" dev "$ifc" nodad
  ip -n "$ns" -6 route add default via "$INET_GW6" dev "$ifc"
}

apply_nat() {
  local r=$1 type=$2 opt="" lanlan=""
  if ip -n "$r" -d -o link show lan 2>/dev/null | grep -q ' bridge '; then
    lanlan='iifname "lan" oifname "lan" accept'
  fi
  case $type in
    cone) opt="" ;;
    symmetric) opt="fully-random" ;;
    *) die "unknown NAT type '$type' (cone|symmetric)" ;;
  esac
  nsx "$r" nft -f - <<EOF
flush ruleset
table ip labnat {
  chain postrouting {
    type nat hook postrouting priority srcnat; policy accept;
    oifname "wan" masquerade $opt
  }
}
table inet labfw {
  chain input {
    type filter hook input priority filter; policy drop;
    iif "lo" accept
    ct state established,related accept
    iifname "lan" accept
    icmp type echo-request accept
    counter comment "unsolicited to router"
  }
  chain forward {
    type filter hook forward priority filter; policy drop;
    ct state established,related accept
    iifname "lan" oifname "wan" accept
    $lanlan
    counter comment "unsolicited to LAN"
  }
}
EOF
  nsx "$r" conntrack -F >/dev/null 2>&1 || true
}

# bridge_no_ipv6 NS BRIDGE_TABLE: drop every IPv6 frame switched by bridges in NS
bridge_no_ipv6() {
  nsx "$1" nft -f - <<'EOF'
table bridge labv6guard {
  chain forward {
    type filter hook forward priority -10; policy accept;
    ether type ip6 counter drop
  }
}
EOF
}

host_common() { # NS [v6]: overlay guard + IPv6 policy
  ip -n "$1" route add unreachable "$OVERLAY_GUARD" metric 4000
  host_ipv6_policy "$1" "${2:-}"
}

# build_service_lan HOSTS_TSV GATEWAY... : bridge "svc" in namespace svc-br, host "svc" on it
# (only its /28, no default route), svc0 in every gateway (hosts already exist). No forwarding.
build_service_lan() {
  local tsv=$1 brns sns i g gns gip
  shift
  ns_new svc-br infra; brns=$CUR_NS
  nsx "$brns" sysctl -qw net.ipv4.ip_forward=0
  ip -n "$brns" link add "$SVC_BR" type bridge
  nsx "$brns" sysctl -qw net.bridge.bridge-nf-call-iptables=0 net.bridge.bridge-nf-call-ip6tables=0 \
    net.bridge.bridge-nf-call-arptables=0 2>/dev/null || true
  ip -n "$brns" link set "$SVC_BR" up
  bridge_no_ipv6 "$brns"
  ns_new svc infra; sns=$CUR_NS
  nsx "$sns" sysctl -qw net.ipv4.ip_forward=0
  ip -n "$brns" link add s-svc type veth peer name eth0 netns "$sns"
  ip -n "$brns" link set s-svc master "$SVC_BR" up
  ip -n "$sns" addr add "$SVC_IP/$SVC_PLEN" dev eth0
  ip -n "$sns" link set eth0 up
  printf 'svc\tsvc\t%s\t%s\t-\t-\t-\t-\t-\n' "$sns" "$SVC_IP" >>"$tsv"
  i=0
  for g in "$@"; do
    gns=${LAB_PREFIX}$g
    gip=$(svc_gw_ip "$i")
    lab_owns_ns "$gns" || die "service LAN: $g has no namespace"
    ip -n "$brns" link add "s-$g" type veth peer name svc0 netns "$gns"
    # the host's default is IPv6 on (for WireGuard): svc0 is an underlay link, IPv6 off
    # before it goes up (no link-local, no DAD)
    nsx "$gns" sysctl -qw net.ipv6.conf.svc0.disable_ipv6=1 net.ipv4.ip_forward=0
    ip -n "$brns" link set "s-$g" master "$SVC_BR" up
    ip -n "$gns" addr add "$gip/$SVC_PLEN" dev svc0
    ip -n "$gns" link set svc0 up
    i=$((i + 1))
  done
}

cmd_up() {
  local pos=() shared="" svclan=""
  while (($#)); do
    case $1 in
      --shared-lan) shared=${2:?usage: --shared-lan K[:C][,K[:C]...]}; shift 2 ;;
      --shared-lan=*) shared=${1#*=}; shift ;;
      --service-lan) svclan=${2:?usage: --service-lan HOST[,HOST...]}; shift 2 ;;
      --service-lan=*) svclan=${1#*=}; [[ -n $svclan ]] || die "usage: --service-lan HOST[,HOST...]"; shift ;;
      --underlay) UNDERLAY=${2:?usage: --underlay ipv4|ipv6|dual}; shift 2 ;;
      --underlay=*) UNDERLAY=${1#*=}; shift ;;
      -*) die "unknown option '$1'" ;;
      *) pos+=("$1"); shift ;;
    esac
  done
  set -- "${pos[@]}"
  local usage="usage: up N_PUBLIC N_NATTED [cone|symmetric|LIST] [--shared-lan K[:C][,...]] [--service-lan HOST[,...]] [--underlay ipv4|ipv6|dual]"
  local npub=${1:?$usage} nnat=${2:?$usage} types=${3:-cone}
  [[ $npub =~ ^[0-9]+$ && $nnat =~ ^[0-9]+$ ]] || die "N_PUBLIC/N_NATTED must be integers"
  [[ $UNDERLAY == ipv4 || $UNDERLAY == ipv6 || $UNDERLAY == dual ]] || die "--underlay: '$UNDERLAY' is not ipv4, ipv6 or dual"
  [[ $UNDERLAY != ipv6 ]] || ((nnat == 0)) ||
    die "--underlay ipv6: N_NATTED must be 0 (NAT routers are IPv4; IPv6 routers with a stateful firewall are not built yet); use --underlay dual for NATted hosts beside IPv6 public ones"
  ((npub <= 200)) || die "N_PUBLIC <= 200"
  ((nnat <= 48)) || die "N_NATTED <= 48 (three TEST-NET /24s split into /28 LANs)"
  local -A EXTRA=()
  if [[ -n $shared ]]; then
    local item k c items
    IFS=, read -r -a items <<<"$shared"
    for item in "${items[@]}"; do
      [[ $item =~ ^([0-9]+)(:([0-9]+))?$ ]] || die "--shared-lan: bad item '$item' (want K or K:C)"
      k=${BASH_REMATCH[1]} c=${BASH_REMATCH[3]:-1}
      ((k >= 1 && k <= nnat)) || die "--shared-lan: router index $k not in 1..$nnat"
      ((c >= 1 && c <= 12)) || die "--shared-lan: $k:$c - 1..12 extra hosts per /28 LAN"
      EXTRA[$k]=$c
    done
  fi
  # --service-lan: checked before anything exists (a refused `up` creates nothing)
  local -A SVCIP=()
  local svcgws=()
  if [[ -n $svclan ]]; then
    local g k planned=" " n
    for ((k = 1; k <= nnat; k++)); do
      if [[ $(lan_net "$k") == "$SVC_NET" ]]; then
        die "--service-lan: the service LAN $SVC_NET/$SVC_PLEN is the LAN of r-nat$k in the address plan;" \
          "with a service LAN N_NATTED must stay below $k (got $nnat)"
      fi
    done
    for ((k = 1; k <= npub; k++)); do planned+="pub$k "; done
    for ((k = 1; k <= nnat; k++)); do
      planned+="nat$k "
      for ((n = 1; n <= ${EXTRA[$k]:-0}; n++)); do planned+="$(extra_name "$k" "$n") "; done
    done
    IFS=, read -r -a svcgws <<<"$svclan"
    ((${#svcgws[@]} >= 1 && ${#svcgws[@]} <= SVC_MAX_GW)) ||
      die "--service-lan: 1..$SVC_MAX_GW hosts (one /28: .$SVC_GW_BASE..; svc is $SVC_IP), got ${#svcgws[@]}"
    for ((k = 0; k < ${#svcgws[@]}; k++)); do
      g=${svcgws[$k]}
      [[ $planned == *" $g "* ]] ||
        die "--service-lan: '$g' is not a host of this lab (hosts:${planned% })"
      [[ -z ${SVCIP[$g]:-} ]] || die "--service-lan: '$g' listed twice"
      SVCIP[$g]=$(svc_gw_ip "$k")
    done
  fi
  local typelist t
  IFS=, read -r -a typelist <<<"$types"
  for t in "${typelist[@]}"; do [[ $t == cone || $t == symmetric ]] || die "unknown NAT type '$t'"; done
  for t in ip nft sysctl conntrack; do command -v "$t" >/dev/null || die "'$t' not found"; done
  [[ $(id -u) == 0 ]] || die "must run as root"
  [[ -e $LAB_STATE/topo.env || -s $LAB_STATE/namespaces ]] &&
    die "a lab is already up (state in $LAB_STATE); run 'LAB_STATE=$LAB_STATE $0 down' first"
  if [[ -z ${LAB_PREFIX:-} ]]; then
    LAB_PREFIX="wgm$(od -An -N2 -tx1 /dev/urandom | tr -d ' \n')-"
  fi
  [[ $LAB_PREFIX =~ ^[A-Za-z0-9_.-]{1,16}$ ]] || die "LAB_PREFIX must be 1-16 chars [A-Za-z0-9_.-]"
  mkdir -p "$LAB_STATE"
  : >"$LAB_STATE/namespaces"
  # a failed `up` must not leave anything behind
  trap 'rc=$?; if ((rc)); then log "up failed (rc=$rc), cleaning up"; cmd_down || true; fi' EXIT
  INET_NS=${LAB_PREFIX}internet
  local t0 env=$LAB_STATE/topo.env hosts=$LAB_STATE/hosts.tsv
  t0=$(now)
  {
    echo "LAB_PREFIX=$LAB_PREFIX"
    echo "LAB_INET_NS=$INET_NS"
    echo "LAB_INET_GW=$INET_GW"
    echo "LAB_N_PUBLIC=$npub"
    echo "LAB_N_NATTED=$nnat"
    echo "LAB_SHARED_LAN=$shared"
    echo "LAB_UNDERLAY=$UNDERLAY"
  } >"$env.tmp"
  printf 'name\trole\tns\taddr\tpublic_ip\trouter\tnat_type\tsvc_ip\tip6\n' >"$hosts.tmp"

  # --- internet: a bridge and nothing else ---
  ns_new internet infra
  ip -n "$INET_NS" link add "$BR" type bridge
  if has_v4; then
    ip -n "$INET_NS" addr add "$INET_GW/$PLEN" dev "$BR"
    nsx "$INET_NS" sysctl -qw net.ipv4.ip_forward=1
  fi
  if has_v6; then
    nsx "$INET_NS" sysctl -qw "net.ipv6.conf.$BR.accept_dad=0" "net.ipv6.conf.$BR.accept_ra=0" "net.ipv6.conf.$BR.disable_ipv6=0"
    ip -n "$INET_NS" -6 addr add "$INET_GW6/$PLEN6" dev "$BR" nodad
  fi
  ip -n "$INET_NS" link set "$BR" up
  nsx "$INET_NS" nft -f - <<'EOF'
table bridge labacct {
  set flows {
    type ipv4_addr . ipv4_addr
    size 65536
    flags dynamic
    counter
  }
  set flows6 {
    type ipv6_addr . ipv6_addr
    size 65536
    flags dynamic
    counter
  }
  counter fam_ip4 {}
  counter fam_ip6 {}
  counter fam_arp {}
  chain forward {
    type filter hook forward priority 0; policy accept;
    ether type ip counter name "fam_ip4"
    ether type ip6 counter name "fam_ip6"
    ether type arp counter name "fam_arp"
    ether type ip add @flows { ip saddr . ip daddr }
    ether type ip6 add @flows6 { ip6 saddr . ip6 daddr }
  }
}
EOF
  has_v6 || bridge_no_ipv6 "$INET_NS"

  local i pubs=() nats=() routers=()
  for ((i = 1; i <= npub; i++)); do
    local h=pub$i ip ip6=-
    ip=$(pub_ip "$i")
    has_v4 || ip=-
    ns_new "$h" host
    attach_to_internet "i-$h" "$CUR_NS" eth0 "$ip"
    if has_v6; then
      ip6=$(pub_ip6 "$i")
      attach_v6 "$CUR_NS" eth0 "$ip6"
      [[ $ip != - ]] || ip=$ip6 # an IPv6-only host: its address is the IPv6 one
      host_common "$CUR_NS" v6
    else
      host_common "$CUR_NS"
    fi
    printf '%s\tpub\t%s\t%s\t%s\t-\t-\t%s\t%s\n' "$h" "$CUR_NS" "$ip" "$ip" "${SVCIP[$h]:--}" "$ip6" >>"$hosts.tmp"
    pubs+=("$h")
  done
  for ((i = 1; i <= nnat; i++)); do
    local h=nat$i r=r-nat$i wan rip hip plen type rns hns
    wan=$(wan_ip "$i")
    read -r rip hip plen <<<"$(lan_addrs "$i")"
    type=${typelist[$((i - 1))]:-${typelist[-1]}}
    local nextra=${EXTRA[$i]:-0} lanhosts=("$h") j
    for ((j = 1; j <= nextra; j++)); do lanhosts+=("$(extra_name "$i" "$j")"); done
    ns_new "$r" infra; rns=$CUR_NS
    ns_new "$h" host; hns=$CUR_NS
    attach_to_internet "i-$r" "$rns" wan "$wan"
    nsx "$rns" sysctl -qw net.ipv4.ip_forward=1
    if ((nextra == 0)); then
      ip -n "$rns" link add lan type veth peer name eth0 netns "$hns"
    else
      ip -n "$rns" link add lan type bridge
      nsx "$rns" sysctl -qw net.bridge.bridge-nf-call-iptables=0 net.bridge.bridge-nf-call-ip6tables=0 \
        net.bridge.bridge-nf-call-arptables=0 2>/dev/null || true
      ip -n "$rns" link add "l-$h" type veth peer name eth0 netns "$hns"
      ip -n "$rns" link set "l-$h" master lan up
      bridge_no_ipv6 "$rns"
    fi
    ip -n "$rns" addr add "$rip/$plen" dev lan
    ip -n "$rns" link set lan up
    ip -n "$hns" addr add "$hip/$plen" dev eth0
    ip -n "$hns" link set eth0 up
    ip -n "$hns" route add default via "$rip" dev eth0
    host_common "$hns"
    printf '%s\tnat\t%s\t%s\t%s\t%s\t%s\t%s\t-\n' "$h" "$hns" "$hip" "$wan" "$r" "$type" "${SVCIP[$h]:--}" >>"$hosts.tmp"
    nats+=("$h")
    for ((j = 1; j <= nextra; j++)); do
      local hb=${lanhosts[$j]} hbip bns
      hbip=$(lan_extra_ip "$i" "$j")
      ns_new "$hb" host; bns=$CUR_NS
      ip -n "$rns" link add "l-$hb" type veth peer name eth0 netns "$bns"
      ip -n "$rns" link set "l-$hb" master lan up
      ip -n "$bns" addr add "$hbip/$plen" dev eth0
      ip -n "$bns" link set eth0 up
      ip -n "$bns" route add default via "$rip" dev eth0
      host_common "$bns"
      printf '%s\tnat\t%s\t%s\t%s\t%s\t%s\t%s\t-\n' "$hb" "$bns" "$hbip" "$wan" "$r" "$type" "${SVCIP[$hb]:--}" >>"$hosts.tmp"
      nats+=("$hb")
    done
    apply_nat "$rns" "$type"
    printf '%s\trouter\t%s\t%s\t%s\t-\t%s\t-\t-\n' "$r" "$rns" "$rip" "$wan" "$type" >>"$hosts.tmp"
    routers+=("$r")
  done
  if ((${#svcgws[@]})); then
    build_service_lan "$hosts.tmp" "${svcgws[@]}"
    {
      echo "LAB_SVC_NS=${LAB_PREFIX}svc"
      echo "LAB_SVC_BR_NS=${LAB_PREFIX}svc-br"
      echo "LAB_SVC_SUBNET=$SVC_NET/$SVC_PLEN"
      echo "LAB_SVC_IP=$SVC_IP"
      echo "LAB_SVC_GATEWAYS=\"${svcgws[*]}\""
    } >>"$env.tmp"
  fi
  {
    echo "LAB_PUB_HOSTS=\"${pubs[*]}\""
    echo "LAB_NAT_HOSTS=\"${nats[*]}\""
    echo "LAB_ROUTERS=\"${routers[*]}\""
    echo "LAB_HOSTS=\"${pubs[*]} ${nats[*]}\""
  } >>"$env.tmp"
  mv "$hosts.tmp" "$hosts"
  mv "$env.tmp" "$env"
  trap - EXIT
  log "lab up in $(awk -v a="$t0" -v b="$(now)" 'BEGIN{printf "%.2f", b-a}') s ($(wc -l <"$LAB_STATE/namespaces") namespaces, prefix $LAB_PREFIX)"
  cmd_status
}

cmd_status() {
  lab_load_topo
  echo "=== wgmesh lab (state: $LAB_STATE, prefix: $LAB_PREFIX) ==="
  local u=${LAB_UNDERLAY:-ipv4} gws=""
  [[ $u == ipv6 ]] || gws="$LAB_INET_GW/$PLEN"
  [[ $u == ipv4 ]] || gws="${gws:+$gws }$INET_GW6/$PLEN6"
  echo "internet ns $LAB_INET_NS: bridge $BR $gws (no uplink; underlay $u)"
  awk -F'\t' '{ printf "%-10s %-7s %-22s %-16s %-16s %-10s %-9s %-14s %s\n", $1, $2, $3, $4, $5, $6, $7, ($8 == "" ? "-" : $8), ($9 == "" ? "-" : $9) }' "$LAB_STATE/hosts.tsv"
  if [[ -n ${LAB_SVC_NS:-} ]]; then
    echo "service LAN: bridge $SVC_BR in ns $LAB_SVC_BR_NS, $LAB_SVC_SUBNET (no uplink); svc $LAB_SVC_IP" \
      "(ns $LAB_SVC_NS, no default route); gateways (svc0): $LAB_SVC_GATEWAYS"
  fi
}

# svc-counters: TSV "host ip rx_packets tx_packets rx_bytes tx_bytes" of every gateway's svc0
# (ARP broadcasts on the service LAN reach every gateway's svc0 too)
cmd_svc_counters() {
  lab_load_topo
  [[ -n ${LAB_SVC_GATEWAYS:-} ]] || die "this lab has no service LAN (up ... --service-lan HOST[,HOST...])"
  local g ns ip st rx tx rxb txb
  printf 'host\tip\trx_packets\ttx_packets\trx_bytes\ttx_bytes\n'
  for g in $LAB_SVC_GATEWAYS; do
    ns=$(lab_ns "$g")
    ip=$(awk -F'\t' -v h="$g" '($1==h){print $8}' "$LAB_STATE/hosts.tsv")
    st=/sys/class/net/svc0/statistics
    # `ip netns exec` mounts the namespace's own sysfs: these are svc0's counters in $g
    read -r rx tx rxb txb <<<"$(nsx "$ns" cat "$st/rx_packets" "$st/tx_packets" "$st/rx_bytes" "$st/tx_bytes" | tr '\n' ' ')"
    [[ $rx =~ ^[0-9]+$ && $tx =~ ^[0-9]+$ && $rxb =~ ^[0-9]+$ && $txb =~ ^[0-9]+$ ]] ||
      die "svc-counters: cannot read $st in $g"
    printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$g" "$ip" "$rx" "$tx" "$rxb" "$txb"
  done
}

cmd_nat() {
  lab_load_topo
  local who=${1:?usage: nat HOST|r-natK cone|symmetric} type=${2:?usage: nat HOST|r-natK cone|symmetric} r
  [[ $type == cone || $type == symmetric ]] || die "unknown NAT type '$type' (cone|symmetric)"
  who=${who#"$LAB_PREFIX"}
  if [[ $who == r-* ]]; then r=$who; else
    r=$(awk -F'\t' -v h="$who" '($1==h && $2=="nat"){print $6}' "$LAB_STATE/hosts.tsv")
    [[ -n $r ]] || die "'$who' is not a NATted host of this lab"
  fi
  local rns
  rns=$(lab_ns "$r")
  apply_nat "$rns" "$type"
  # apply_nat flushed the whole ruleset, miniupnpd's chains included: restart it (it restores
  # its mappings from its lease file)
  if upnp_enabled "$r"; then upnp_stop "$r"; upnp_start "$r" >/dev/null; fi
  awk -F'\t' -v OFS='\t' -v r="$r" -v t="$type" '($2=="nat" && $6==r){$7=t} ($1==r){$7=t} {print}' \
    "$LAB_STATE/hosts.tsv" >"$LAB_STATE/hosts.tsv.tmp" && mv "$LAB_STATE/hosts.tsv.tmp" "$LAB_STATE/hosts.tsv"
  log "$r is now $type (conntrack flushed)"
}

# flows: TSV "src src_host dst dst_host packets bytes" (host = pubI / r-natK / internet / ?)
cmd_flows() {
  lab_load_topo
  if [[ ${1:-} == --zero ]]; then
    nsx "$LAB_INET_NS" nft flush set bridge labacct flows
    nsx "$LAB_INET_NS" nft flush set bridge labacct flows6 2>/dev/null || true
    return
  fi
  { nsx "$LAB_INET_NS" nft list set bridge labacct flows
    # labs brought up before IPv6 flows were counted have no flows6 set
    nsx "$LAB_INET_NS" nft list set bridge labacct flows6 2>/dev/null || true; } |
    tr -d '\n\t' | grep -oE '[0-9a-f.:]+ \. [0-9a-f.:]+ counter packets [0-9]+ bytes [0-9]+' |
    awk -v hosts="$LAB_STATE/hosts.tsv" -v gw="$LAB_INET_GW" -v gw6="$INET_GW6" '
      BEGIN {
        OFS = "\t"
        while ((getline line < hosts) > 0) {
          split(line, f, "\t")
          if (f[2] == "pub" || f[2] == "router") { name[f[5]] = f[1]; if (f[9] != "" && f[9] != "-") name[f[9]] = f[1] }
        }
        name[gw] = "internet"
        name[gw6] = "internet"
        print "src", "src_host", "dst", "dst_host", "packets", "bytes"
      }
      { s = $1; d = $3
        print s, (s in name ? name[s] : "?"), d, (d in name ? name[d] : "?"), $6, $8 }'
}

# families [--zero]: TSV "family packets bytes" of the frames the internet bridge switched
# (ip4, ip6, arp): an IPv6 underlay shows ip4 and arp staying at 0
cmd_families() {
  lab_load_topo
  local c
  if [[ ${1:-} == --zero ]]; then
    for c in ip4 ip6 arp; do nsx "$LAB_INET_NS" nft reset counter bridge labacct "fam_$c" >/dev/null; done
    return
  fi
  printf 'family\tpackets\tbytes\n'
  for c in ip4 ip6 arp; do
    nsx "$LAB_INET_NS" nft list counter bridge labacct "fam_$c" |
      tr -d '\n' | grep -oE 'packets [0-9]+ bytes [0-9]+' | awk -v c="$c" '{ printf "%s\t%s\t%s\n", c, $2, $4 }'
  done
}

cmd_down() {
  local rc=0 ns
  if [[ -f $LAB_STATE/pids ]]; then
    log "stopping recorded processes"
    lab_kill .
  fi
  if [[ -f $LAB_STATE/namespaces ]]; then
    local pids p link
    while read -r ns; do
      [[ -n $ns ]] && ns_exists "$ns" || continue
      # tun devices (wireguard-go): deleting the link makes wireguard-go exit by itself
      for link in $(ip -n "$ns" -o -d link show 2>/dev/null | awk -F': ' '/ tun /{split($2, a, "@"); print a[1]}'); do
        ip -n "$ns" link del "$link" 2>/dev/null || true
      done
    done <"$LAB_STATE/namespaces"
    while read -r ns; do
      [[ -n $ns ]] && ns_exists "$ns" || continue
      pids=$(ip netns pids "$ns" 2>/dev/null | tr '\n' ' ')
      [[ -n ${pids// /} ]] || continue
      sleep 0.3 # give processes that lost their tun device time to exit
      pids=$(ip netns pids "$ns" 2>/dev/null | tr '\n' ' ')
      [[ -n ${pids// /} ]] || continue
      # not started through spawn (e.g. a daemonized wireguard-go): still inside *our*
      # namespace (ip netns pids compares /proc/PID/ns/net) - signal exactly those PIDs
      log "WARNING: unrecorded processes in $ns: $pids- SIGKILL by PID"
      for p in $pids; do kill -KILL "$p" 2>/dev/null || true; done
    done <"$LAB_STATE/namespaces"
  fi
  if [[ -f $LAB_STATE/wg-sockets ]]; then
    local ifn
    while read -r ifn; do
      [[ $ifn =~ ^[A-Za-z0-9_.=-]{1,15}$ ]] || continue
      [[ -S $WG_RUN_DIR/$ifn.sock ]] && rm -f -- "$WG_RUN_DIR/$ifn.sock"
      rm -f -- "$WG_RUN_DIR/$ifn.name" 2>/dev/null || true
      # the agent's claim on the interface (it removes it on a clean stop, not after SIGKILL)
      rm -f -- "$WG_RUN_DIR/$ifn.wgmesh" 2>/dev/null || true
    done <"$LAB_STATE/wg-sockets"
    rm -f "$LAB_STATE/wg-sockets"
  fi
  if [[ -f $LAB_STATE/namespaces ]]; then
    # hosts and routers first, the internet (first line) last
    while read -r ns; do
      [[ -n $ns ]] && ns_exists "$ns" || continue
      ip netns del "$ns" || { log "failed to delete $ns"; rc=1; }
    done < <(tac "$LAB_STATE/namespaces")
    while read -r ns; do
      [[ -n $ns ]] && ns_exists "$ns" && { log "ERROR: namespace left: $ns"; rc=1; }
    done <"$LAB_STATE/namespaces"
  fi
  if ((rc == 0)); then
    rm -rf -- "$LAB_STATE/upnp" # miniupnpd configs, lease files, pid files (processes are gone)
    rm -f "$LAB_STATE/topo.env" "$LAB_STATE/hosts.tsv" "$LAB_STATE/namespaces" "$LAB_STATE/pids" \
      "$LAB_STATE"/*.tmp "$LAB_STATE/owner"
    rmdir "$LAB_STATE" 2>/dev/null || true
  fi
  log "lab down"
  return $rc
}

cmd_spawn() {
  lab_load_topo
  local label=${1:?usage: spawn LABEL HOST LOGFILE CMD...} host=${2:?usage: spawn LABEL HOST LOGFILE CMD...}
  local logf=${3:?usage: spawn LABEL HOST LOGFILE CMD...}
  shift 3
  (($#)) || die "usage: spawn LABEL HOST LOGFILE CMD..."
  local ns
  ns=$(lab_ns "$host")
  lab_spawn "$label" "$ns" "$logf" "$@"
  echo "$LAB_SPAWNED_PID"
}

cmd_wg_register() {
  local ifn=${1:?usage: wg-register IFNAME}
  [[ $ifn =~ ^[A-Za-z0-9_.=-]{1,15}$ ]] || die "bad interface name '$ifn'"
  [[ -f $LAB_STATE/namespaces ]] || die "no lab is up in $LAB_STATE"
  grep -qxF -- "$ifn" "$LAB_STATE/wg-sockets" 2>/dev/null || echo "$ifn" >>"$LAB_STATE/wg-sockets"
}

cmd_gc() {
  local root=${1:-$LAB_DIR/state/runs} d pid st rc=0
  [[ -d $root ]] || return 0
  for d in "$root"/*/; do
    d=${d%/}
    [[ -f $d/owner ]] || continue
    read -r pid st <"$d/owner" || true
    # alive = same start time and not a zombie (an orphan's zombie may never be reaped)
    if [[ -n $pid && -r /proc/$pid/stat && $(pid_starttime "$pid") == "$st" ]] &&
      ! grep -qE '^[0-9]+ \(.*\) Z ' "/proc/$pid/stat" 2>/dev/null; then continue; fi
    log "gc: owner of $d (pid $pid) is gone - taking the lab down"
    (LAB_STATE=$d; cmd_down) || rc=1
  done
  return $rc
}

# --- UPnP IGD v2 / NAT-PMP gateway in a router (Debian's miniupnpd) -------------------------
# State per router: $LAB_STATE/upnp/r-natK/ (miniupnpd.conf, leases, miniupnpd.pid, enabled).
# Logs: $LAB_UPNP_LOGDIR (default the same dir) /upnp-miniupnpd-r-natK.log, upnp-stun-r-natK.log.
# Processes (recorded like every lab process, killed only by PID):
#   upnp-stun-r-natK       test/lab/upnp/stun-responder.mjs on WAN_IP:3478 inside the router.
#                          miniupnpd >= 2.2 refuses to map when its WAN address is private or
#                          reserved (all lab addresses are: 198.18.0.0/15); with
#                          ext_perform_stun=yes it asks this STUN server, which answers from
#                          inside the router itself (over lo), and then enables forwarding.
#   upnp-miniupnpd-r-natK  miniupnpd -d (foreground), HTTP on LAN_IP:5000, NAT-PMP/PCP on
#                          LAN_IP:5351, SSDP on the LAN interface only.
# Firewall: miniupnpd (nftables backend) only adds rules to existing chains, so `on` creates
# `table inet labupnp` (base chains jumping to miniupnpd, prerouting_miniupnpd,
# postrouting_miniupnpd) and inserts `ct status dnat accept` at the top of labfw's forward chain:
# without it the lab firewall (policy drop for unsolicited inbound) would drop every mapped
# packet; with it exactly the connections miniupnpd DNATed pass (the lab has no other DNAT).
UPNP_HTTP_PORT=5000
UPNP_STUN_PORT=3478
UPNP_FW_COMMENT="upnp: mapped ports"

upnp_router() { # WHO -> r-natK (natK, natK-b, r-natK, prefixed or not)
  local who=${1#"$LAB_PREFIX"} r
  if [[ $who == r-* ]]; then r=$who; else
    r=$(awk -F'\t' -v h="$who" '($1==h && $2=="nat"){print $6}' "$LAB_STATE/hosts.tsv")
  fi
  [[ -n $r ]] && awk -F'\t' -v r="$r" '($1==r && $2=="router"){f=1} END{exit !f}' "$LAB_STATE/hosts.tsv" ||
    die "'$1' is neither a router nor a NATted host of this lab"
  echo "$r"
}
upnp_enabled() { [[ -f $LAB_STATE/upnp/$1/enabled ]]; }
upnp_alive() { tr -d '\0' <"/proc/$1/cmdline" 2>/dev/null | grep -q .; } # false for zombies too
# LAB_UPNP_LOGDIR / LAB_NODE given to `upnp on` are remembered for restarts (`nat` switch)
upnp_logdir() {
  local f=$LAB_STATE/upnp/$1/logdir
  if [[ -n ${LAB_UPNP_LOGDIR:-} ]]; then echo "$LAB_UPNP_LOGDIR" >"$f"; echo "$LAB_UPNP_LOGDIR"
  elif [[ -s $f ]]; then cat "$f"
  else echo "$LAB_STATE/upnp/$1"; fi
}

upnp_fw_on() { # RNS
  local rns=$1
  nsx "$rns" nft list table inet labupnp >/dev/null 2>&1 && nsx "$rns" nft delete table inet labupnp
  nsx "$rns" nft -f - <<'EOF'
table inet labupnp {
  chain forward {
    type filter hook forward priority filter; policy accept;
    jump miniupnpd
  }
  chain miniupnpd {
  }
  chain prerouting {
    type nat hook prerouting priority dstnat; policy accept;
    jump prerouting_miniupnpd
  }
  chain prerouting_miniupnpd {
  }
  chain postrouting {
    type nat hook postrouting priority srcnat; policy accept;
    jump postrouting_miniupnpd
  }
  chain postrouting_miniupnpd {
  }
}
EOF
  if ! nsx "$rns" nft list chain inet labfw forward | grep -qF "$UPNP_FW_COMMENT"; then
    nsx "$rns" nft insert rule inet labfw forward ct status dnat accept comment "\"$UPNP_FW_COMMENT\""
  fi
}

upnp_fw_off() { # RNS
  local rns=$1 h
  nsx "$rns" nft list table inet labupnp >/dev/null 2>&1 && nsx "$rns" nft delete table inet labupnp
  for h in $(nsx "$rns" nft -a list chain inet labfw forward 2>/dev/null |
    awk -v c="$UPNP_FW_COMMENT" 'index($0, c) { print $NF }'); do
    nsx "$rns" nft delete rule inet labfw forward handle "$h"
  done
  # forget DNATed flows, so nothing mapped earlier still gets through
  nsx "$rns" conntrack -D --dst-nat >/dev/null 2>&1 || true
}

# upnp_start r-natK: firewall scaffolding, STUN responder, miniupnpd; wait until it serves
upnp_start() {
  local r=$1 rns rip wip subnet dir logd node mu uuid t
  rns=$(lab_ns "$r")
  read -r rip wip < <(awk -F'\t' -v r="$r" '($1==r && $2=="router"){print $4, $5}' "$LAB_STATE/hosts.tsv")
  subnet=$(nsx "$rns" ip -4 -o route show dev lan scope link | awk '{print $1; exit}')
  [[ -n $rip && -n $wip && -n $subnet ]] || die "upnp: cannot work out the addresses of $r"
  mu=${LAB_MINIUPNPD:-$(command -v miniupnpd || echo /usr/sbin/miniupnpd)}
  [[ -x $mu ]] || die "upnp: miniupnpd not found (apt-get install miniupnpd miniupnpd-nftables)"
  dir=$LAB_STATE/upnp/$r
  mkdir -p "$dir"
  if [[ -n ${LAB_NODE:-} ]]; then node=$LAB_NODE; echo "$node" >"$dir/node"
  elif [[ -s $dir/node ]]; then node=$(<"$dir/node")
  else node=$(command -v node) || die "upnp: node not found (set LAB_NODE)"; fi
  logd=$(upnp_logdir "$r")
  mkdir -p "$logd"
  if [[ -s $dir/uuid ]]; then uuid=$(<"$dir/uuid"); else
    uuid=$(cat /proc/sys/kernel/random/uuid); echo "$uuid" >"$dir/uuid"
  fi
  cat >"$dir/miniupnpd.conf" <<EOF
# written by test/lab/topo.sh upnp $r on
ext_ifname=wan
listening_ip=lan
http_port=$UPNP_HTTP_PORT
enable_natpmp=yes
enable_upnp=yes
secure_mode=yes
system_uptime=yes
ipv6_disable=yes
uuid=$uuid
friendly_name=wgmesh lab $r
# every lab address is reserved (198.18.0.0/15): learn the "public" address from the lab's
# STUN responder inside this router, otherwise miniupnpd refuses to map anything
ext_perform_stun=yes
ext_stun_host=$wip
ext_stun_port=$UPNP_STUN_PORT
# nftables backend: chains created by topo.sh (table inet labupnp)
upnp_table_name=labupnp
upnp_nat_table_name=labupnp
upnp_forward_chain=miniupnpd
upnp_nat_chain=prerouting_miniupnpd
upnp_nat_postrouting_chain=postrouting_miniupnpd
lease_file=$dir/leases
minissdpdsocket=$dir/minissdpd.sock
allow 1024-65535 $subnet 1024-65535
deny 0-65535 0.0.0.0/0 0-65535
EOF
  upnp_fw_on "$rns"
  : >"$logd/upnp-stun-$r.log"
  lab_spawn "upnp-stun-$r" "$rns" "$logd/upnp-stun-$r.log" "$node" "$LAB_DIR/upnp/stun-responder.mjs" "$wip" "$UPNP_STUN_PORT"
  local stun_pid=$LAB_SPAWNED_PID
  for ((t = 0; t < 100; t++)); do
    grep -q '^ready ' "$logd/upnp-stun-$r.log" 2>/dev/null && break
    upnp_alive "$stun_pid" || die "upnp: STUN responder in $r died: $(cat "$logd/upnp-stun-$r.log")"
    sleep 0.05
  done
  grep -q '^ready ' "$logd/upnp-stun-$r.log" || die "upnp: STUN responder in $r did not start"
  : >"$logd/upnp-miniupnpd-$r.log"
  lab_spawn "upnp-miniupnpd-$r" "$rns" "$logd/upnp-miniupnpd-$r.log" "$mu" -d -f "$dir/miniupnpd.conf" -P "$dir/miniupnpd.pid"
  local mu_pid=$LAB_SPAWNED_PID ml=$logd/upnp-miniupnpd-$r.log
  for ((t = 0; t < 200; t++)); do # STUN takes a few ms here; miniupnpd's own timeout is 3 s
    grep -q 'Listening for NAT-PMP/PCP traffic' "$ml" && grep -q 'Port forwarding is now enabled' "$ml" && break
    upnp_alive "$mu_pid" || die "upnp: miniupnpd in $r exited: $(tail -20 "$ml")"
    sleep 0.05
  done
  grep -q 'Port forwarding is now enabled' "$ml" ||
    die "upnp: miniupnpd in $r did not enable port forwarding: $(grep -vE 'parse_stun|table_cb' "$ml" | tail -20)"
  : >"$dir/enabled"
  echo "router=$r"
  echo "ns=$rns"
  echo "lan_ip=$rip"
  echo "wan_ip=$wip"
  echo "lan_subnet=$subnet"
  echo "http_port=$UPNP_HTTP_PORT"
  echo "desc_url=http://$rip:$UPNP_HTTP_PORT/rootDesc.xml"
  echo "pmp=$rip:5351"
  echo "pid=$mu_pid"
  echo "stun_pid=$stun_pid"
  echo "log=$ml"
  echo "config=$dir/miniupnpd.conf"
}

upnp_stop() { # r-natK: kill by recorded PID, remove the firewall scaffolding
  local r=$1 rns
  rns=$(lab_ns "$r")
  lab_kill "^upnp-(miniupnpd|stun)-$r\$"
  upnp_fw_off "$rns"
}

cmd_upnp() {
  lab_load_topo
  local usage="usage: upnp HOST|r-natK on|off|status" r
  r=$(upnp_router "${1:?$usage}")
  case ${2:?$usage} in
    on)
      if upnp_enabled "$r"; then upnp_stop "$r"; fi # restart: fresh config, same uuid/leases
      upnp_start "$r"
      log "upnp: miniupnpd running in $r (UPnP IGDv2 + NAT-PMP)"
      ;;
    off)
      upnp_stop "$r"
      rm -f -- "$LAB_STATE/upnp/$r/enabled" "$LAB_STATE/upnp/$r/leases" "$LAB_STATE/upnp/$r/miniupnpd.pid"
      log "upnp: off in $r"
      ;;
    status)
      if upnp_enabled "$r"; then echo "upnp=on"; else echo "upnp=off"; fi
      nsx "$(lab_ns "$r")" nft list chain inet labupnp prerouting_miniupnpd 2>/dev/null |
        awk '/dnat/ { print "mapping=" $0 }' | sed 's/^mapping=\s*/mapping=/'
      ;;
    *) die "$usage" ;;
  esac
}

case ${1:-} in
  upnp) shift; cmd_upnp "$@" ;;
  gc) shift; cmd_gc "$@" ;;
  up) shift; cmd_up "$@" ;;
  down) cmd_down ;;
  status) cmd_status ;;
  nat) shift; cmd_nat "$@" ;;
  flows) shift; cmd_flows "$@" ;;
  families) shift; cmd_families "$@" ;;
  exec)
    shift; lab_load_topo
    ns=$(lab_ns "${1:?usage: exec HOST CMD...}"); shift
    (($#)) || die "usage: exec HOST CMD..."
    exec ip netns exec "$ns" "$@" ;;
  spawn) shift; cmd_spawn "$@" ;;
  kill) shift; [[ -f $LAB_STATE/namespaces ]] || die "no lab in $LAB_STATE"; lab_kill "${1:?usage: kill LABEL_REGEX [SIGNAL]}" "${2:-TERM}" ;;
  wg-register) shift; cmd_wg_register "$@" ;;
  ns) shift; lab_load_topo; lab_ns "${1:?usage: ns HOST}" ;;
  svc-counters) cmd_svc_counters ;;
  *) awk 'NR == 1 { next } /^#/ { sub(/^# ?/, ""); print; next } { exit }' "$0"; exit 2 ;;
esac
