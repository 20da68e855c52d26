/**
 * Shared data types of wgmesh. Pure data: no behaviour, no I/O.
 */

/** A node's self-description, gossiped to every member (inside a signed, encrypted envelope). */
export interface NodeRecord {
  /** Record format version. */
  v: 1
  /** base64url of the node's raw 32-byte Ed25519 public key (the signing key). */
  nodeId: string
  /** Monotonic per node; a record with seq <= the one held is a replay and is ignored. */
  seq: number
  /** Sender's wall clock, ms since epoch, when it signed this record. */
  issuedAt: number
  /** Human name (hostname by default), [a-z0-9-], at most 63 chars. */
  name: string
  /** base64 of the 32-byte X25519 WireGuard public key. */
  wgPublicKey: string
  /** Overlay IPv4 inside the mesh CIDR. */
  ipv4: string
  /** Overlay IPv6 inside the mesh ULA /48. */
  ipv6: string
  /** When this node first claimed its current addresses (ms epoch); the earlier claim keeps an address on collision. */
  ipSince: number
  /** Counter mixed into the address hash; bumped after losing a collision. */
  ipSalt: number
  /** WireGuard UDP listen port. */
  wgPort: number
  /** WireGuard endpoint candidates, "ip:port" / "[ip6]:port", best first. */
  endpoints: string[]
  /** libp2p multiaddrs where this node's gossip listener can be dialed. */
  gossipAddrs: string[]
  /** Extra prefixes routed to this node (CIDR strings). */
  routes: string[]
  /** Free-form labels. */
  tags: string[]
  /**
   * The gateway group this node's `routes` belong to (gateway.ts): its name, its priority
   * (higher preferred) and, while this node claims to be the group's active gateway, since when.
   * Absent = no routes. (Agents before 0.2 refuse records with this field.)
   */
  gw?: GatewayInfo
  /** Willing to relay for others. */
  relay?: boolean
  /** This node's NAT type as its own STUN probes classify it. */
  nat?: NatType
  /** UDP port of the STUN server this node runs (it answers on this port and the next). */
  stunPort?: number
  /** UDP port of this node's failure-detector probe socket (reached at its overlay IPv4). */
  probePort?: number
  /**
   * Endpoints this node observes for its direct peers in `wg show dump` (the true mapping of
   * their WireGuard sockets), keyed by the peer's short id (first 11 chars of its nodeId).
   * Only entries that differ from the peer's own advertised endpoints are sent.
   */
  seen?: Record<string, string>
  /**
   * Certificate mode: this node's certificate from the mesh CA (cert.ts, `wgmc1.…`). Receivers
   * with a CA accept the record only when it is valid for this nodeId, name and addresses.
   */
  cert?: string
  /** Graceful departure: remove at once. */
  leaving?: boolean
}

/** A gateway's group membership as its record carries it. */
export interface GatewayInfo {
  group: string
  prio: number
  /** ms epoch: this node claims to be its group's active gateway since then. */
  since?: number
}

/** How a node's address is translated, from its STUN probes. */
export type NatType = 'public' | 'cone' | 'symmetric' | 'unknown'

/** How traffic to a peer travels. */
export type PathKind = 'direct' | 'lan' | 'relay' | 'punching' | 'down'

/** A WireGuard peer as the configurator should make it. */
export interface DesiredPeer {
  /** base64 WireGuard public key. */
  publicKey: string
  /** "ip:port" or "[ip6]:port"; undefined = leave whatever WireGuard learned (roaming). */
  endpoint?: string
  /** CIDRs, canonical form (e.g. "100.96.1.2/32", "fd12:3456:789a::1/128"), sorted. */
  allowedIps: string[]
  /** Seconds; 0 or undefined = off. */
  persistentKeepalive?: number
  /**
   * Set `endpoint` again whenever WireGuard roamed away from it (while punching: packets still
   * arriving through a relay must not pull the peer entry back to the relay's port).
   */
  pinEndpoint?: boolean
  /**
   * A peer that never completed a handshake is removed and added again when this changes (the
   * path manager bumps it): WireGuard tries a handshake at most once per 5 s (REKEY_TIMEOUT),
   * and two ends that add each other at the same moment can each send their one try before
   * the other has the peer, which drops it; re-adding lets the next packet initiate at once.
   */
  kick?: number
}

/** The whole WireGuard state one agent wants on its host. */
export interface DesiredWireGuard {
  /** Interface name, e.g. "wgmesh0". */
  interface: string
  /** Path of a 0600 file holding the base64 private key (never passed in argv). */
  privateKeyFile: string
  /** UDP listen port. */
  listenPort: number
  /** Interface addresses with prefix length, e.g. ["100.96.3.4/16", "fdab:cdef:1234::5/48"]. */
  addresses: string[]
  /** Link MTU. */
  mtu: number
  /** Peers, sorted by publicKey. */
  peers: DesiredPeer[]
  /** fwmark on WireGuard's own packets (exit-node policy routing); 0 = off; undefined = leave as is. */
  fwmark?: number
}
