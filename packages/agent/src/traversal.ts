/**
 * The agent's NAT traversal: its own NAT (STUN server + probes, port mapping), LAN discovery,
 * the per-peer paths (punch / direct / relay) and relaying (relaying.ts). The agent hands in a
 * narrow host interface and gets back what goes into its record and its WireGuard plan.
 */
import {
  formatEndpoint, InvalidConfigError, isGlobalV6, parseEndpoint, parseIP, pathPolicy,
  type Cidr, type Membership, type NatType, type NodeRecord, type PeerRoute, type RecordSigner
} from '@wgmesh/core'
import type { CommandRunner, Dump } from '@wgmesh/wireguard'
import type { RelayCtl } from '@wgmesh/core'
import type { LanBeacon } from '@wgmesh/nat'
import { NatService } from './nat-service.js'
import { PathManager } from './path-manager.js'
import { startLanDiscovery } from './lan-discovery.js'
import { Relaying } from './relaying.js'
import type { ProbeVia } from './liveness.js'
import { localAddresses, type LocalAddress } from './local-addresses.js'
import type { Logger } from './logger.js'

export interface TraversalInit {
  iface: string
  /** Overlay ranges: never endpoint candidates. */
  overlay: Cidr[]
  wgPort: number
  keepaliveS: number
  stunPort: number
  stunServers: string[]
  relay: 'auto' | 'on' | 'off'
  upnp: boolean
  /** UDP port of LAN beacons; 0 = off. */
  lanPort: number
  /** Our gossip TCP port, announced in LAN beacons. */
  gossipPort: number
  /** Hosts of our seeds (--peer): the first STUN servers to ask while nobody is classified. */
  seedHosts: string[]
  meshKey: Uint8Array
  signer: RecordSigner
  runner: CommandRunner
  /** Where relay control messages go (as probes do). */
  probeVia: ProbeVia
  selfId: string
  log: Logger
}

/** What the traversal needs from the agent. */
export interface TraversalHost {
  now: () => number
  table: () => Membership
  self: () => NodeRecord
  dump: () => Promise<Dump | undefined>
  /** Our record should change (NAT type, public address, mapping): rebuild and publish it. */
  recordChanged: () => void
  /** Routes changed: re-plan and apply WireGuard. */
  routesChanged: () => void
  /** A LAN neighbour's gossip address (from its beacon): dial it if not connected. */
  lanGossip: (nodeId: string, addr: string) => void
  /** Send a relay control message from the probe socket. */
  sendRelayControl: (to: string, msg: RelayCtl) => void
  /** Members whose failure-detector pings go unanswered, since when (a dead direct path may fall back to the other family). */
  unanswered?: () => ReadonlyMap<string, number>
  /** A peer's path fell back from a family whose path died: its gossip over that family is dead too. */
  familyDied?: (nodeId: string, family: 4 | 6) => void
}

export class Traversal {
  private readonly init: TraversalInit
  private readonly host: TraversalHost
  private readonly nat: NatService
  private readonly paths: PathManager
  private beacon?: LanBeacon
  private readonly lanFound = new Map<string, string>()
  /** LAN neighbours on our WireGuard port (→ whether we warned about it yet). */
  private readonly portClashes = new Map<string, boolean>()
  private seen: Record<string, string> = {}
  private readonly relaying: Relaying
  private lastDump?: Dump
  private probes = 0
  private tickTimer?: NodeJS.Timeout
  private stopped = false

  constructor (init: TraversalInit, host: TraversalHost) {
    this.init = init
    this.host = host
    this.paths = new PathManager(pathPolicy(init.keepaliveS))
    this.nat = new NatService({
      stunPort: init.stunPort,
      wgPort: init.wgPort,
      extraStunServers: init.stunServers.map(s => {
        const e = parseEndpoint(s)
        if (e === undefined) throw new InvalidConfigError(`--stun-server '${s}' is not ip:port`)
        return { host: e.host, port: e.port }
      }),
      upnp: init.upnp,
      log: init.log,
      onChange: () => { host.recordChanged() }
    })
    this.relaying = new Relaying({
      now: host.now,
      selfId: init.selfId,
      table: host.table,
      lastDump: () => this.lastDump,
      send: host.sendRelayControl,
      changed: () => { host.routesChanged() },
      via: init.probeVia,
      log: init.log
    })
  }

  /** An authenticated relay control message from the probe socket. */
  onRelayControl (from: string, msg: RelayCtl): void {
    this.relaying.onControl(from, msg)
  }

  /** Relay statistics while this node relays. */
  get relayStats (): { pairs: number, packets: number, bytes: number } | undefined {
    const s = this.relaying.serving
    return s === undefined ? undefined : { pairs: s.size, packets: s.stats.packets, bytes: s.stats.bytes }
  }

  get natType (): NatType { return this.nat.natType }
  get routes (): ReadonlyMap<string, PeerRoute> { return this.paths.current }
  get pathManager (): PathManager { return this.paths }

  /** The STUN server (before the first record goes out). */
  async startStun (): Promise<void> {
    await this.nat.start()
  }

  /** LAN beacons and the first NAT probe (once the agent serves and has synced). */
  async startDiscovery (): Promise<void> {
    void this.probe() // no member known yet: the seeds' servers at a guessed port
    setTimeout(() => { void this.probe() }, 200).unref() // after the first sync: records of public members
    if (this.init.lanPort === 0) return
    this.beacon = await startLanDiscovery({
      port: this.init.lanPort,
      meshKey: this.init.meshKey,
      signer: this.init.signer,
      wgPort: this.init.wgPort,
      gossipPort: this.init.gossipPort,
      excludeInterfaces: [this.init.iface, 'lo'],
      // 5 s for the first 30 s (and whenever a newcomer is heard), then 30 s: every beacon costs
      // every neighbour a signature check (~0.3 % of a core at idle with 7 neighbours at 5 s)
      intervalMs: 5000,
      slowIntervalMs: 30_000,
      log: this.init.log,
      onFound: (nodeId, endpoint) => {
        if (this.lanFound.get(nodeId) !== endpoint) this.init.log.info('peer found on the LAN', { nodeId, endpoint })
        this.lanFound.set(nodeId, endpoint)
        // one NAT in front of both (IPv4 only: a neighbour at an IPv6 address is not behind our NAT)
        const ep = parseEndpoint(endpoint)
        if (ep?.port === this.init.wgPort && ep.family === 4 && !this.portClashes.has(nodeId)) this.portClashes.set(nodeId, false)
      },
      onLost: (nodeId) => {
        this.lanFound.delete(nodeId)
        this.portClashes.delete(nodeId)
        this.init.log.info('peer lost on the LAN', { nodeId })
      },
      onGossip: (nodeId, addr) => { this.host.lanGossip(nodeId, addr) }
    }).catch((err: Error) => { this.init.log.warn('LAN discovery off: cannot bind its port', { port: this.init.lanPort, error: err.message }); return undefined })
  }

  locals (): LocalAddress[] {
    return localAddresses({ iface: this.init.iface, ranges: this.init.overlay })
  }

  /** Endpoints to advertise before the interface addresses: --advertise, the router's mapping, the STUN address. */
  advertised (extra: string[], locals: LocalAddress[]): string[] {
    const out = [...extra]
    const mapped = this.nat.mappedEndpoint()
    if (mapped !== undefined) out.push(mapped)
    // what members' STUN servers saw, of each family, unless it is one of our own addresses
    for (const pub of [this.nat.publicAddress, this.nat.publicAddress6]) {
      if (pub !== undefined && !locals.some(l => l.address === pub)) out.push(formatEndpoint(pub, this.init.wgPort))
    }
    return out
  }

  /**
   * Whether this node relays for others now. `auto`: when it is public on IPv4 or on IPv6 —
   * relay ports take both families; members use it over the families it is public on
   * (core relay-choice.ts: IPv4 when the record's nat is public, IPv6 at a global address).
   */
  relays (): boolean {
    return this.init.relay === 'on' || (this.init.relay === 'auto' && (this.nat.natTypeOf(4) === 'public' || this.nat.natTypeOf(6) === 'public'))
  }

  /** Fill the traversal fields of our record; serve as a relay while the record says we relay. */
  decorate (r: NodeRecord, serving: boolean): void {
    r.nat = this.nat.natType
    const stun = this.nat.stunPort
    if (stun !== undefined) r.stunPort = stun
    if (Object.keys(this.seen).length > 0) r.seen = this.seen
    this.relaying.serve(r.relay === true && serving)
  }

  /** Every path tick: re-evaluate each peer's path from WireGuard's counters. */
  async tick (): Promise<void> {
    const dump = await this.host.dump()
    this.lastDump = dump
    const table = this.host.table()
    const subnets = this.locals().flatMap(l => l.subnet === undefined ? [] : [l.subnet])
    const changed = this.paths.step(this.host.now(), table, this.host.self(), this.nat.natType, dump, subnets, this.lanFound, this.relaying.endpoint,
      this.host.unanswered?.())
    this.relaying.tick()
    for (const c of this.paths.changes) {
      if (c.path !== 'punching') this.init.log.info('peer path', { peer: c.name, nodeId: c.nodeId, path: c.path, ...(c.via === undefined ? {} : { via: c.via }) })
    }
    for (const f of this.paths.fallbacks) {
      this.init.log.info('peer path fell back to the other family (probes unanswered, nothing received)', { peer: f.name, nodeId: f.nodeId, from: f.from, to: f.to })
      const family = parseEndpoint(f.from)?.family
      if (family !== undefined) this.host.familyDied?.(f.nodeId, family)
    }
    this.warnPortClash()
    const seen = this.paths.observations(table, dump)
    if (JSON.stringify(seen) !== JSON.stringify(this.seen)) this.seen = seen // goes out with the next heartbeat
    if (changed) this.host.routesChanged()
  }

  /**
   * Two members behind one NAT on the same WireGuard port: the router can keep that port for
   * only one of them per destination, so the other's mapping depends on who sent first to
   * whom, and a cone peer cannot predict it (its pairs with other NATted members may end up
   * relayed). Said once per neighbour, once we know we are behind a NAT.
   */
  private warnPortClash (): void {
    const t = this.nat.natType
    if (t !== 'cone' && t !== 'symmetric') return
    for (const [nodeId, warned] of this.portClashes) {
      if (warned) continue
      this.portClashes.set(nodeId, true)
      this.init.log.warn('a LAN neighbour behind the same NAT uses our WireGuard port: give one of them another --listen-port, or direct paths to other NATted members may fall back to a relay',
        { nodeId, endpoint: this.lanFound.get(nodeId), wgPort: this.init.wgPort })
    }
  }

  /**
   * Re-evaluate paths from WireGuard's counters every `fastMs` while any peer is still punching
   * or relayed, the membership (`version`) changed lately, or a member's probes began to go
   * unanswered (a dead direct path: see paths.ts, family fallback); every 5 s once all are settled (a
   * direct path's death takes 2.5 keepalives to show anyway). Wakes every `fastMs` to check.
   */
  startTicking (fastMs: number, version: () => number): void {
    let lastVersion = -1
    let quietSince = this.host.now()
    let lastTick = -Infinity
    const next = (): void => {
      if (this.stopped) return
      const now = this.host.now()
      const settledFor = now - quietSince > 10_000
      // an episode of unanswered probes that began in the last 10 s (a dead member's, which
      // can last an hour, does not keep the ticks fast)
      const probesFailing = [...(this.host.unanswered?.().values() ?? [])].some(since => now - since < 10_000)
      if (settledFor && version() === lastVersion && now - lastTick < Math.max(fastMs, 5000) && !probesFailing) {
        this.tickTimer = setTimeout(next, fastMs)
        return
      }
      lastTick = now
      void this.tick().catch((err: Error) => { this.init.log.error('path tick failed', { error: err.message }) }).finally(() => {
        if (this.stopped) return
        if (version() !== lastVersion || !this.settled()) { lastVersion = version(); quietSince = this.host.now() }
        this.tickTimer = setTimeout(next, fastMs)
      })
    }
    this.tickTimer = setTimeout(next, fastMs)
  }

  /** Every peer's path is direct or lan (nothing is punching or relayed). */
  settled (): boolean {
    return this.paths.allDirect()
  }

  /** Every 2 s: probe while unclassified, then every 16 s. */
  periodicProbe (): void {
    if (this.nat.natType === 'unknown' || ++this.probes % 8 === 0) void this.probe()
  }

  /** A member joined: if it serves STUN and we are still unclassified, probe now. */
  memberJoined (r: NodeRecord | undefined): void {
    if (this.nat.natType === 'unknown' && r?.stunPort !== undefined) void this.probe()
  }

  private async probe (): Promise<void> {
    // members known to be public first; 'unknown' ones (still classifying) only to bootstrap,
    // our seeds among them first (a seed is a member we know we can reach). Shuffled, so that
    // repeated probes do not keep asking the same unreachable members (a NATted member's first
    // endpoint is its LAN address until it learns better).
    const self = this.host.self().nodeId
    const members = this.host.table().active().filter(m => m.record.nodeId !== self && m.record.stunPort !== undefined && m.status === 'alive')
    const pub = members.filter(m => m.record.nat === 'public')
    const shuffle = <T>(xs: T[]): T[] => xs.map(x => ({ x, k: Math.random() })).sort((a, b) => a.k - b.k).map(e => e.x)
    const mine = new Set(this.locals().map(l => l.address))
    const seeds = new Set(this.init.seedHosts.filter(h => h !== '' && !mine.has(h))) // a fleet's --peer list may name this host
    const isSeed = (r: NodeRecord): boolean => r.endpoints.some(e => seeds.has(parseEndpoint(e)?.host ?? '')) || r.gossipAddrs.some(a => [...seeds].some(h => a.includes(`/${h}/`)))
    const unknown = shuffle(members.filter(x => x.record.nat === undefined || x.record.nat === 'unknown'))
    // while nobody is classified, wait for a seed: the first members we hear of may be LAN
    // neighbours (LAN discovery), behind our own NAT, whose answers show our private address
    if (pub.length === 0 && seeds.size > 0 && !unknown.some(m => isSeed(m.record))) {
      // no seed's record yet: guess the seeds' STUN servers at our own port (nat-service.ts probeSeeds)
      const port = this.init.stunPort
      const guess = [...seeds].filter(h => parseIP(h) !== undefined).slice(0, 4).flatMap(host => [{ host, port }, { host, port: port + 1 }])
      if (port > 0 && members.length === 0) await this.nat.probeSeeds(guess, this.locals().map(l => l.address))
      return
    }
    const order = pub.length > 0 ? shuffle(pub) : [...unknown.filter(m => isSeed(m.record)), ...unknown.filter(m => !isSeed(m.record))]
    // each member's servers at its first endpoint of each family: the IPv4 and the IPv6 probe
    // go out separately (each from its own socket), each to at most 4 members
    const servers: Record<4 | 6, Array<{ host: string, port: number }>> = { 4: [], 6: [] }
    for (const m of order) {
      for (const family of [4, 6] as const) {
        const host = m.record.endpoints.map(e => parseEndpoint(e)).find(e => e?.family === family && (family === 4 || isGlobalV6(e.host)))?.host
        if (host === undefined || servers[family].length >= 8) continue
        servers[family].push({ host, port: m.record.stunPort! }, { host, port: m.record.stunPort! + 1 })
      }
      if (servers[4].length >= 8 && servers[6].length >= 8) break
    }
    await this.nat.probe([...servers[4], ...servers[6]], this.locals().map(l => l.address))
  }

  async stop (): Promise<void> {
    this.stopped = true
    clearTimeout(this.tickTimer)
    this.relaying.stop()
    await this.beacon?.close().catch(() => {})
    await this.nat.stop().catch(() => {})
  }
}
