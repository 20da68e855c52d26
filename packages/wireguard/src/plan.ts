/**
 * The planner (pure): observed state + desired state → the `wg set` / `ip` commands
 * that make them equal. Idempotent (equal states plan zero steps), minimal (one
 * changed peer is one step) and add-before-remove (traffic keeps flowing while a
 * peer or address is swapped). Modelled on tailscale's `router.Set(desired)`.
 */
import type { DesiredPeer, DesiredWireGuard } from '@wgmesh/core'
import type { LinkInfo } from './addr.js'
import { canonicalCidr, canonicalIp } from './cidr.js'
import type { Dump, DumpPeer } from './dump.js'

/** One command, as argv: `['wg', 'set', ...]` or `['ip', ...]`. */
export type Step = string[]

/** What is on the host now. `undefined` (in place of a CurrentState) = the interface does not exist. */
export interface CurrentState {
  dump: Dump
  /** "addr/plen" from `ip -o addr show`, link-local excluded. */
  addresses: string[]
  link: LinkInfo
}

export interface PlanOptions {
  /**
   * base64 public key of `desired.privateKeyFile`'s key (see `publicKeyFromPrivateKey`).
   * When given, a different public key on the interface makes the planner set the private key.
   * Without it the key is set only when the interface has none, or `privateKeyFile` changed since `lastApplied`.
   */
  expectedPublicKey?: string
  /**
   * false = someone else owns the interface (backend 'existing'): only peers and
   * addresses are planned; private key, listen port, MTU and up/down are left alone. Default true.
   */
  manageInterface?: boolean
}

function byKey (a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0
}

/** "host:port" / "[v6]:port" with the host canonicalized; unparseable text is returned as is. */
export function canonicalEndpoint (ep: string): string {
  const m = ep.match(/^\[([^\]]+)\]:(\d+)$/) ?? ep.match(/^([^:]+):(\d+)$/)
  if (m == null) return ep
  const host = canonicalIp(m[1] ?? '')
  return host.includes(':') ? `[${host}]:${m[2] ?? ''}` : `${host}:${m[2] ?? ''}`
}

function allowedSet (ips: string[]): string {
  return [...new Set(ips.map(s => canonicalCidr(s.trim(), true)))].sort(byKey).join(',')
}

function keepalive (n: number | undefined): number {
  return n === undefined || n <= 0 ? 0 : n
}

function addPeerStep (ifname: string, p: DesiredPeer): Step {
  const step = ['wg', 'set', ifname, 'peer', p.publicKey]
  if (p.endpoint !== undefined) step.push('endpoint', p.endpoint)
  if (keepalive(p.persistentKeepalive) > 0) step.push('persistent-keepalive', String(keepalive(p.persistentKeepalive)))
  step.push('allowed-ips', p.allowedIps.join(','))
  return step
}

function updatePeerSteps (ifname: string, want: DesiredPeer, have: DumpPeer, last: DesiredPeer | undefined): Step[] {
  const args: string[] = []
  // Endpoint: do not fight WireGuard roaming. Push ours only if WireGuard has none, or ours
  // changed since we last pushed it, or it is pinned (punching).
  const pushEndpoint = want.endpoint !== undefined &&
      (have.endpoint === undefined ||
       (canonicalEndpoint(have.endpoint) !== canonicalEndpoint(want.endpoint) && (want.endpoint !== last?.endpoint || want.pinEndpoint === true)))
  // A peer that never completed a handshake is re-created instead, so that WireGuard initiates
  // at once instead of after its 5 s REKEY_TIMEOUT (a peer initiates at most once per 5 s):
  // when it gets a new endpoint (the next punching candidate, or the peer's real address learnt
  // late: its one try went to the old one), or when the path manager asks for another try at
  // the same one (DesiredPeer.kick: first contact).
  if (have.latestHandshake === 0 && (pushEndpoint || (want.kick !== undefined && want.kick !== last?.kick))) {
    return [['wg', 'set', ifname, 'peer', want.publicKey, 'remove'], addPeerStep(ifname, want)]
  }
  if (pushEndpoint && want.endpoint !== undefined) args.push('endpoint', want.endpoint)
  const ka = keepalive(want.persistentKeepalive)
  if (ka !== keepalive(have.persistentKeepalive)) args.push('persistent-keepalive', ka === 0 ? 'off' : String(ka))
  if (allowedSet(want.allowedIps) !== allowedSet(have.allowedIps)) args.push('allowed-ips', want.allowedIps.join(','))
  return args.length === 0 ? [] : [['wg', 'set', ifname, 'peer', want.publicKey, ...args]]
}

/** The IPv4 subnet ("100.96.0.0/16") an address belongs to; undefined for IPv6. */
function v4Subnet (a: string): string | undefined {
  const c = canonicalCidr(a.trim(), true)
  return c.includes(':') ? undefined : c
}

/**
 * Address adds before deletions — except where Linux would undo the add: deleting an
 * IPv4 *primary* address also deletes the *secondary* addresses of the same subnet
 * (unless net.ipv4.conf.<if>.promote_secondaries=1). A new address in the subnet of a
 * deleted one is a secondary, so for such subnets the deletion goes first, then the
 * new addresses are added and kept ones re-asserted with `ip address replace`
 * (idempotent: it succeeds whether or not the deletion took them along).
 */
function addressSteps (ifname: string, have: string[], want: string[]): Step[] {
  const canon = (a: string): string => canonicalCidr(a.trim(), false)
  const haveSet = new Set(have.map(canon))
  const wantSet = new Set(want.map(canon))
  const byCanon = new Map<string, string>()
  for (const a of want) if (!byCanon.has(canon(a))) byCanon.set(canon(a), a)
  const wantUnique = [...byCanon.values()]
  const adds = wantUnique.filter(a => !haveSet.has(canon(a)))
  const kept = wantUnique.filter(a => haveSet.has(canon(a)))
  const dels = have.filter(a => !wantSet.has(canon(a)))
  const wantedSubnets = new Set(wantUnique.map(v4Subnet))
  const flushed = new Set(dels.map(v4Subnet).filter(n => n !== undefined && wantedSubnets.has(n)))
  const inFlushed = (a: string): boolean => flushed.has(v4Subnet(a))
  const step = (verb: string) => (a: string): Step => ['ip', 'address', verb, a, 'dev', ifname]
  return [
    ...adds.filter(a => !inFlushed(a)).map(step('add')),
    ...dels.filter(inFlushed).map(step('del')),
    ...adds.filter(inFlushed).map(step('add')),
    ...kept.filter(inFlushed).map(step('replace')),
    ...dels.filter(a => !inFlushed(a)).map(step('del'))
  ]
}

/**
 * Plans the commands that turn `current` into `desired`.
 *
 * Order: private key/listen port → peer adds and updates (by public key) → peer
 * removals (by public key) → address adds → address deletions (see below for IPv4
 * primary/secondary) → MTU → link up.
 * If `current` is undefined the interface is assumed freshly created (empty), so the full configuration is planned;
 * creating it is the backend's job, not a step here.
 *
 * @param lastApplied - the desired state of the previous successful apply; used so that an endpoint
 *   WireGuard roamed to is left alone while our desired endpoint for that peer is unchanged.
 */
export function planWireGuard (current: CurrentState | undefined, desired: DesiredWireGuard, lastApplied?: DesiredWireGuard, opts: PlanOptions = {}): Step[] {
  const ifname = desired.interface
  const manage = opts.manageInterface ?? true
  const steps: Step[] = []
  const iface = current?.dump.interface

  if (manage && (iface === undefined ||
      iface.privateKey === undefined ||
      iface.listenPort !== desired.listenPort ||
      (opts.expectedPublicKey !== undefined && iface.publicKey !== opts.expectedPublicKey) ||
      (lastApplied !== undefined && lastApplied.privateKeyFile !== desired.privateKeyFile))) {
    steps.push(['wg', 'set', ifname, 'listen-port', String(desired.listenPort), 'private-key', desired.privateKeyFile])
  }
  if (manage && desired.fwmark !== undefined && (iface?.fwmark ?? 0) !== desired.fwmark) {
    steps.push(['wg', 'set', ifname, 'fwmark', desired.fwmark === 0 ? 'off' : String(desired.fwmark)])
  }

  const have = new Map((current?.dump.peers ?? []).map(p => [p.publicKey, p]))
  const want = new Map(desired.peers.map(p => [p.publicKey, p]))
  const last = new Map((lastApplied?.peers ?? []).map(p => [p.publicKey, p]))
  for (const pk of [...want.keys()].sort(byKey)) {
    const w = want.get(pk) as DesiredPeer
    const h = have.get(pk)
    steps.push(...(h === undefined ? [addPeerStep(ifname, w)] : updatePeerSteps(ifname, w, h, last.get(pk))))
  }
  for (const pk of [...have.keys()].sort(byKey)) {
    if (!want.has(pk)) steps.push(['wg', 'set', ifname, 'peer', pk, 'remove'])
  }

  steps.push(...addressSteps(ifname, current?.addresses ?? [], desired.addresses))

  // one `ip link set` for the MTU and up: each step is a process spawned from the agent
  // (100-400 ms each when 8 agents start on 2 cores)
  const link: string[] = []
  if (manage && (current === undefined || current.link.mtu !== desired.mtu)) link.push('mtu', String(desired.mtu))
  if (manage && (current === undefined || !current.link.up)) link.push('up')
  if (link.length > 0) steps.push(['ip', 'link', 'set', 'dev', ifname, ...link])
  return steps
}
