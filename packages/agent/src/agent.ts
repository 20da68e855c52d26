/**
 * The wgmesh agent: the one place that turns core's decisions into I/O.
 *   gossip (libp2p) ──records──▶ validate ─▶ Membership ─▶ planner ─▶ WireGuard configurator
 *   timers: heartbeat (republish), tick (liveness), redial (DialPolicy), periodic sync
 *   control socket: info / leave; state dir: keys, seq floor, addresses, known members
 */
import { randomBytes } from 'node:crypto'
import { hostname } from 'node:os'
import type { Server } from 'node:net'
import {
  Membership, allocate, createSigner, encodeRecord, meshSettings, sanitizeName, seal, ulaPrefix,
  planWireGuardState, validateSealed, wgPublicKeyFromPrivate, formatCidr, isValidTag, parseEndpoint, InvalidConfigError, MAX_TAGS,
  pathPolicy, formatEndpoint,
  type MeshSettings, type NodeRecord, type RecordSigner, type Cidr, type MemberChange, type Via
} from '@wgmesh/core'
import type { DesiredWireGuard } from '@wgmesh/core'
import { createConfigurator, type CommandRunner, type WireGuardConfigurator, type BackendKind, type Dump } from '@wgmesh/wireguard'
import { createGossipNode, type GossipNode } from './transport/index.js'
import { StateStore, type PersistedState } from './state-store.js'
import { MeshKeyError } from './errors.js'
import { createLogger, type Logger } from './logger.js'
import { AgentMetrics, type PeerSample } from './metrics.js'
import { serveControl, type ControlRequest } from './control-socket.js'
import { DialPolicy, seedToMultiaddr, type DialTarget } from './dial-policy.js'
import { buildSelfRecord, nextSeq, peerIdOf, type SelfAddressing, type SelfIdentity } from './self-record.js'
import { endpointCandidates, localAddresses } from './local-addresses.js'
import { buildInfo, type AgentInfo } from './info.js'
import { NatService } from './nat-service.js'
import { PathManager } from './path-manager.js'
import { startLanDiscovery } from './lan-discovery.js'
import { enableForwarding } from './forwarding.js'
import { execRunner } from '@wgmesh/wireguard'
import type { LanBeacon } from '@wgmesh/nat'

export interface AgentInit {
  /** State directory (keys, addresses, known members). @default '/var/lib/wgmesh' */
  stateDir: string
  /** Mesh key to use (join). Must match a stored one if the state dir has one. */
  meshKey?: Uint8Array
  /** Create a new mesh key when none is given or stored (`wgmesh up`). */
  createMesh?: boolean
  /** Seeds: host[:port] or multiaddrs of any member. */
  peers?: string[]
  name?: string
  interface?: string
  wgPort?: number
  gossipPort?: number
  /** Address the gossip listener binds. @default '0.0.0.0' */
  gossipHost?: string
  cidr4?: string
  backend?: BackendKind | 'auto'
  /** Extra endpoint candidates to advertise first ("ip:port"), e.g. a public address. */
  advertise?: string[]
  tags?: string[]
  heartbeatMs?: number
  deadAfterMs?: number
  expireAfterMs?: number
  keepaliveS?: number
  mtu?: number
  /** UDP port of this node's STUN server (it also answers on port + 1); 0 = none. @default 3478 */
  stunPort?: number
  /** Extra STUN servers (host:port) to probe besides the members' own. */
  stunServers?: string[]
  /** Relay for others: 'auto' = when this node turns out to be public. @default 'auto' */
  relay?: 'auto' | 'on' | 'off'
  /** Ask the router for a UPnP-IGD / NAT-PMP mapping of the WireGuard port. @default true */
  upnp?: boolean
  /** UDP port for LAN discovery beacons; 0 = off. @default gossipPort + 1 (51822) */
  lanPort?: number
  /** How often paths are re-evaluated from WireGuard's counters. @default 500 */
  pathTickMs?: number
  /** Control socket path. @default '<stateDir>/wgmesh.sock' */
  controlSocket?: string
  logger?: Logger
  /** Seam for tests: a fake WireGuard host. */
  wgRunner?: CommandRunner
  /** Injected clock. @default Date.now */
  now?: () => number
}

export const DEFAULT_STATE_DIR = '/var/lib/wgmesh'

/** The gossipsub topic of a mesh: one per mesh, named after its ULA prefix (derived from the mesh key). */
export function meshTopic (ula: Cidr): string {
  return `wgmesh/${formatCidr(ula)}/records`
}

export class Agent {
  private readonly init: AgentInit
  private readonly log: Logger
  private readonly now: () => number
  readonly store: StateStore
  readonly metrics: AgentMetrics
  private settings!: MeshSettings
  private meshKey!: Uint8Array
  private signer!: RecordSigner
  private ula!: Cidr
  private table!: Membership
  private persisted!: PersistedState
  private identity!: SelfIdentity
  private addressing!: SelfAddressing
  private seq = 0
  private selfRecord!: NodeRecord
  private gossip?: GossipNode
  private wg!: WireGuardConfigurator
  private control?: Server
  private readonly dialer = new DialPolicy()
  private readonly dialing = new Set<string>()
  private readonly timers: NodeJS.Timeout[] = []
  private applyQueued = false
  private applying: Promise<void> = Promise.resolve()
  private persistTimer?: NodeJS.Timeout
  private stopped = false
  private readonly stoppedWaiters: Array<() => void> = []
  private seeds: DialTarget[] = []
  private nat!: NatService
  private paths!: PathManager
  private beacon?: LanBeacon
  private readonly lanFound = new Map<string, string>()
  private seen: Record<string, string> = {}
  private forwarding = false
  startedAt = 0
  servingAt = 0

  constructor (init: AgentInit) {
    this.init = init
    this.now = init.now ?? Date.now
    this.log = init.logger ?? createLogger()
    for (const t of init.tags ?? []) {
      if (!isValidTag(t)) throw new InvalidConfigError(`tag '${t}' is not valid: 1..64 characters of A-Z a-z 0-9 _ . : = / -`)
    }
    if ((init.tags ?? []).length > MAX_TAGS) throw new InvalidConfigError(`at most ${MAX_TAGS} tags`)
    for (const e of init.advertise ?? []) {
      if (parseEndpoint(e) === undefined) throw new InvalidConfigError(`--advertise '${e}' is not ip:port (e.g. 203.0.113.7:51820 or [2001:db8::7]:51820)`)
    }
    this.store = new StateStore(init.stateDir)
    this.metrics = new AgentMetrics(async () => await this.peerSamples())
  }

  get nodeId (): string { return this.signer.nodeId }
  get record (): NodeRecord { return this.selfRecord }
  get peerId (): string { return this.gossip?.peerId ?? '' }
  get members (): Membership { return this.table }
  get controlPath (): string { return this.init.controlSocket ?? this.store.path('wgmesh.sock') }
  listenAddrs (): string[] { return this.gossip?.listenAddrs() ?? [] }

  /** Start everything; resolves when the agent serves (gossip listening, interface configured). */
  async start (): Promise<void> {
    this.startedAt = this.now()
    const init = this.init
    this.store.ensureDir()
    this.meshKey = this.resolveMeshKey()
    this.settings = meshSettings({
      cidr4: init.cidr4, heartbeatMs: init.heartbeatMs, deadAfterMs: init.deadAfterMs, expireAfterMs: init.expireAfterMs, keepaliveS: init.keepaliveS
    })
    const seed = this.store.nodeSeed()
    const wgPriv = this.store.wgPrivateKey()
    this.signer = createSigner(seed)
    this.ula = ulaPrefix(this.meshKey)
    this.table = new Membership({ selfId: this.signer.nodeId, settings: this.settings, ula: this.ula })
    this.persisted = this.store.load()
    this.persisted.left = false
    this.identity = {
      nodeId: this.signer.nodeId,
      name: sanitizeName(init.name ?? hostname()),
      wgPublicKey: wgPublicKeyFromPrivate(wgPriv),
      wgPort: init.wgPort ?? 51820,
      tags: init.tags ?? [],
      relay: false
    }
    this.wg = createConfigurator({
      interface: init.interface ?? 'wgmesh0',
      backend: init.backend ?? 'auto',
      runner: init.wgRunner,
      expectedPublicKey: this.identity.wgPublicKey
    })
    if (init.backend === 'existing') {
      // someone else owns the interface and its private key: advertise the key it really has
      const ifname = init.interface ?? 'wgmesh0'
      const dump = await this.wg.show().catch(() => undefined)
      if (dump === undefined) throw new InvalidConfigError(`interface ${ifname} does not exist: --backend existing only manages the peers and addresses of an interface someone else created; create it first, or use --backend auto`)
      const key = dump.interface.publicKey
      if (key === undefined) throw new InvalidConfigError(`interface ${init.interface ?? 'wgmesh0'} has no private key set; set one (wg set … private-key …) or use --backend auto`)
      this.identity.wgPublicKey = key
    }
    this.addressing = this.initialAddressing()
    this.paths = new PathManager(pathPolicy(this.settings.keepaliveS))
    this.nat = new NatService({
      stunPort: init.stunPort ?? 3478,
      wgPort: this.identity.wgPort,
      extraStunServers: (init.stunServers ?? []).map(s => { const e = parseEndpoint(s); if (e === undefined) throw new InvalidConfigError(`--stun-server '${s}' is not ip:port`); return { host: e.host, port: e.port } }),
      upnp: init.upnp ?? true,
      log: this.log,
      onChange: () => { this.refreshSelf(); void this.publish() }
    })
    await this.nat.start()
    this.seq = nextSeq(this.persisted.seq, this.now())
    this.seeds = (init.peers ?? []).map(p => { const addr = seedToMultiaddr(p, init.gossipPort ?? 51821); return { key: addr, addr, peerId: peerIdOf(addr) } })
    this.persist()

    this.gossip = await createGossipNode({
      identitySeed: seed,
      meshKey: this.meshKey,
      listen: [`/ip4/${init.gossipHost ?? '0.0.0.0'}/tcp/${init.gossipPort ?? 51821}`],
      topic: meshTopic(this.ula),
      validate: (data) => this.onGossip(data),
      onMessage: () => {},
      onSyncRequest: () => this.table.sealedRecords(),
      onSyncRecords: (records) => { for (const r of records) this.take(r, 'sync') },
      onPeerConnect: (p) => { this.log.debug('gossip peer connected', { peer: p }) },
      onPeerDisconnect: (p) => { this.log.debug('gossip peer disconnected', { peer: p }) },
      logger: { debug: (m, meta) => { this.log.debug(m, meta as Record<string, unknown>) }, warn: (m, meta) => { this.log.warn(m, meta as Record<string, unknown>) } }
    })
    this.refreshSelf()
    // the interface (possibly a new wireguard-go process) comes up while we dial the seeds
    const firstApply = this.applyOnce()
    this.redial()
    this.control = await serveControl(this.controlPath, async (req) => await this.onControl(req))
    await firstApply
    this.servingAt = this.now()
    this.log.info('wgmesh agent serving', {
      name: this.identity.name, nodeId: this.nodeId, ipv4: this.addressing.ipv4, ipv6: this.addressing.ipv6,
      gossip: this.listenAddrs()[0], startMs: this.servingAt - this.startedAt, processMs: Math.round(process.uptime() * 1000)
    })
    void this.publish()
    const hb = this.settings.heartbeatMs
    this.every(hb, () => { this.refreshSelf(); void this.publish() })
    this.every(Math.max(50, Math.min(250, Math.floor(hb / 4))), () => { this.onTick() })
    this.every(250, () => { this.redial() })
    this.every(10_000, () => { void this.syncRandomPeer() })
    this.every(init.pathTickMs ?? 500, () => { void this.pathTick() })
    let probes = 0
    this.every(2000, () => { if (this.nat.natType === 'unknown' || ++probes % 8 === 0) void this.probeNat() })
    setTimeout(() => { void this.probeNat() }, 200).unref() // after the first sync: records of public members
    const lanPort = init.lanPort ?? ((init.gossipPort ?? 51821) === 0 ? 0 : (init.gossipPort ?? 51821) + 1)
    if (lanPort !== 0) {
      this.beacon = await startLanDiscovery({
        port: lanPort,
        meshKey: this.meshKey,
        signer: this.signer,
        wgPort: this.identity.wgPort,
        excludeInterfaces: [init.interface ?? 'wgmesh0', 'lo'],
        intervalMs: 5000,
        log: this.log,
        onFound: (nodeId, endpoint) => {
          if (this.lanFound.get(nodeId) !== endpoint) this.log.info('peer found on the LAN', { nodeId, endpoint })
          this.lanFound.set(nodeId, endpoint)
        }
      }).catch((err: Error) => { this.log.warn('LAN discovery off: cannot bind its port', { port: lanPort, error: err.message }); return undefined })
    }
    this.every(60_000, () => { this.persist() })
  }

  /** Resolves when the agent has stopped (after `leave` or `stop`). */
  async stoppedPromise (): Promise<void> {
    if (this.stopped) return
    await new Promise<void>(resolve => { this.stoppedWaiters.push(resolve) })
  }

  private resolveMeshKey (): Uint8Array {
    const stored = this.store.meshKey()
    const given = this.init.meshKey
    if (given !== undefined) {
      if (stored !== undefined && Buffer.compare(Buffer.from(stored), Buffer.from(given)) !== 0) {
        throw new MeshKeyError(`the state directory ${this.store.dir} belongs to another mesh (its mesh.key differs from the one given). Use another --state-dir, or delete it to leave that mesh for good.`)
      }
      if (stored === undefined) this.store.saveMeshKey(given)
      return given
    }
    if (stored !== undefined) return stored
    if (this.init.createMesh === true) {
      const key = new Uint8Array(randomBytes(32))
      this.store.saveMeshKey(key)
      this.log.info('created a new mesh', { file: this.store.path('mesh.key') })
      return key
    }
    throw new MeshKeyError('no mesh key: pass --mesh-key-file FILE or set WGMESH_MESH_KEY (copy mesh.key from a member\'s state directory), or run \'wgmesh up\' to create a new mesh')
  }

  private initialAddressing (): SelfAddressing {
    const p = this.persisted
    const cidr = formatCidr(this.settings.cidr4)
    if (p.ipv4 !== undefined && p.ipv6 !== undefined && p.cidr4 === cidr && p.ipSalt !== undefined && p.ipSince !== undefined) {
      return { ipv4: p.ipv4, ipv6: p.ipv6, ipSalt: p.ipSalt, ipSince: p.ipSince }
    }
    const a = allocate(this.settings.cidr4, this.ula, this.identity.wgPublicKey, new Set())
    return { ipv4: a.ipv4, ipv6: a.ipv6, ipSalt: a.salt, ipSince: this.now() }
  }

  private gossipAddrs (): string[] {
    const all = this.gossip?.listenAddrs() ?? []
    const loopbackOnly = (this.init.gossipHost ?? '').startsWith('127.')
    const overlay = (a: string): boolean => a.includes(`/ip4/${this.addressing.ipv4}/`) || a.includes(`/ip6/${this.addressing.ipv6}/`)
    const usable = all.filter(a => loopbackOnly || !(a.includes('/ip4/127.') || a.includes('/ip6/::1/')))
    return [...usable.filter(a => !overlay(a)), ...usable.filter(overlay)].slice(0, 8)
  }

  /** Rebuild the own record (addresses may have changed) with a new seq, and take it into the table. */
  private refreshSelf (leaving = false): void {
    const now = this.now()
    this.seq = nextSeq(this.seq, now)
    const iface = this.init.interface ?? 'wgmesh0'
    const locals = localAddresses({ iface, ranges: [this.settings.cidr4, this.ula] })
    const advertised = [...(this.init.advertise ?? [])]
    const mapped = this.nat?.mappedEndpoint()
    if (mapped !== undefined) advertised.push(mapped)
    const pub = this.nat?.publicAddress
    if (pub !== undefined && !locals.some(l => l.address === pub)) advertised.push(formatEndpoint(pub, this.identity.wgPort))
    const endpoints = endpointCandidates(locals, this.identity.wgPort, advertised)
    const mode = this.init.relay ?? 'auto'
    this.identity.relay = mode === 'on' || (mode === 'auto' && this.nat?.natType === 'public')
    this.selfRecord = buildSelfRecord(this.identity, this.addressing, this.seq, now, endpoints, this.gossipAddrs(), leaving)
    if (this.nat !== undefined) {
      this.selfRecord.nat = this.nat.natType
      const stun = this.nat.stunPort
      if (stun !== undefined) this.selfRecord.stunPort = stun
    }
    if (Object.keys(this.seen).length > 0) this.selfRecord.seen = this.seen
    if (this.identity.relay && !this.forwarding && this.servingAt > 0) void this.enableRelayForwarding()
    this.table.accept(this.selfRecord, this.sealSelf(), now, 'self')
  }

  private sealSelf (): Uint8Array {
    return seal(this.meshKey, this.signer, encodeRecord(this.selfRecord), new Uint8Array(randomBytes(24)))
  }

  private async publish (): Promise<void> {
    const sealed = this.table.get(this.nodeId)?.sealed
    if (sealed === undefined || this.gossip === undefined) return
    try {
      await this.gossip.publish(sealed)
    } catch (err) {
      this.log.debug('publish failed', { error: (err as Error).message })
    }
  }

  /** Gossip validator: the one entry for records from the network. */
  private onGossip (data: Uint8Array): 'accept' | 'reject' | 'ignore' {
    const v = this.take(data, 'gossip')
    return v
  }

  private take (sealed: Uint8Array, via: Via): 'accept' | 'reject' | 'ignore' {
    if (this.stopped) return 'ignore'
    const now = this.now()
    const v = validateSealed(this.meshKey, sealed, this.table, now)
    if (v.verdict === 'reject') {
      if (via === 'sync' && v.reason === 'replay') {
        this.metrics.ignored.inc({ reason: 'stale' })
        return 'ignore'
      }
      this.metrics.reject(v.reason)
      this.log.debug('record rejected', { reason: v.reason, detail: v.detail, via })
      return v.reason === 'replay' ? 'ignore' : 'reject'
    }
    if (v.verdict === 'ignore') {
      this.metrics.ignored.inc({ reason: v.reason })
      if (v.reason === 'self' && v.record.seq > this.seq) this.seq = v.record.seq // state was lost: move past our old seq
      return 'ignore'
    }
    this.metrics.accepted.inc({ via })
    this.onChanges(this.table.accept(v.record, sealed, now, via))
    return 'accept'
  }

  private onChanges (changes: MemberChange[]): void {
    let plan = false
    let known = false
    for (const c of changes) {
      const name = this.table.get(c.nodeId)?.record.name
      if (c.kind === 'conflict-lost' && c.nodeId === this.nodeId) {
        this.readdress(c.what)
      } else if (c.kind !== 'updated') {
        this.log.info(`peer ${c.kind}`, { peer: name ?? c.nodeId, nodeId: c.nodeId })
      }
      if (c.kind === 'joined' || c.kind === 'left' || c.kind === 'expired') known = true
      if (c.kind === 'joined' && this.nat?.natType === 'unknown' && this.table.get(c.nodeId)?.record.stunPort !== undefined) void this.probeNat()
      plan = true
    }
    if (known) this.persistSoon()
    if (plan) void this.scheduleApply()
  }

  private readdress (what: 'ip' | 'wg-key'): void {
    if (what === 'wg-key') {
      this.log.error('another live node uses this node\'s WireGuard key (copied state directory?); it keeps it: this node stays out of the plans until one of them gets a new wg.key')
      return
    }
    const a = allocate(this.settings.cidr4, this.ula, this.identity.wgPublicKey, this.table.takenIPv4(this.nodeId), this.addressing.ipSalt + 1)
    this.log.warn('overlay address taken by an earlier claim; moving', { from: this.addressing.ipv4, to: a.ipv4 })
    this.addressing = { ipv4: a.ipv4, ipv6: a.ipv6, ipSalt: a.salt, ipSince: this.now() }
    this.persist()
    this.refreshSelf()
    void this.publish()
  }

  private onTick (): void {
    const changes = this.table.tick(this.now())
    if (changes.length > 0) this.onChanges(changes)
  }

  private memberTargets (): DialTarget[] {
    const out: DialTarget[] = []
    const seen = new Set<string>()
    for (const m of this.table.all()) {
      if (m.record.nodeId === this.nodeId || m.status === 'left') continue
      for (const addr of m.record.gossipAddrs) {
        const peerId = peerIdOf(addr)
        if (seen.has(addr)) continue
        seen.add(addr)
        out.push({ key: addr, addr, peerId })
      }
    }
    for (const k of this.persisted.known) {
      for (const addr of k.gossipAddrs) {
        if (!seen.has(addr)) { seen.add(addr); out.push({ key: addr, addr, peerId: peerIdOf(addr) }) }
      }
    }
    return out
  }

  private redial (): void {
    if (this.gossip === undefined || this.stopped) return
    const connected = new Set(this.gossip.connectedPeers())
    const targets = this.dialer.choose(this.now(), connected, this.seeds, this.memberTargets())
    for (const t of targets) {
      if (this.dialing.has(t.key) || (t.peerId !== undefined && t.peerId === this.peerId)) continue
      this.dialing.add(t.key)
      this.gossip.dial(t.addr).then(
        () => { this.dialer.succeeded(t.key) },
        (err: Error) => { this.dialer.failed(t.key, this.now()); this.log.debug('dial failed', { addr: t.addr, error: err.message }) }
      ).finally(() => { this.dialing.delete(t.key) })
    }
  }

  private async syncRandomPeer (): Promise<void> {
    const peers = this.gossip?.connectedPeers() ?? []
    const p = peers[Math.floor(Math.random() * peers.length)]
    if (p === undefined) return
    try { await this.gossip!.sync(p) } catch (err) { this.log.debug('periodic sync failed', { peer: p, error: (err as Error).message }) }
  }

  /** The first apply: its failure (no WireGuard, missing 'existing' interface…) fails the start. */
  private async applyOnce (): Promise<void> {
    this.applying = this.wg.apply(this.desired()).then(() => {})
    await this.applying
  }

  private desired (): DesiredWireGuard {
    return planWireGuardState(this.table, {
      interface: this.init.interface ?? 'wgmesh0',
      privateKeyFile: this.store.wgKeyPath(),
      mtu: this.init.mtu ?? 1420,
      keepaliveS: this.settings.keepaliveS,
      cidr4: this.settings.cidr4,
      ula: this.ula,
      self: this.selfRecord,
      routes: this.paths.current
    })
  }

  private localSubnets (): Cidr[] {
    return localAddresses({ iface: this.init.interface ?? 'wgmesh0', ranges: [this.settings.cidr4, this.ula] })
      .flatMap(l => l.subnet === undefined ? [] : [l.subnet])
  }

  /** Re-evaluate every peer's path from WireGuard's counters; apply when routes change. */
  private async pathTick (): Promise<void> {
    if (this.stopped) return
    const dump = await this.dump()
    const changed = this.paths.step(this.now(), this.table, this.selfRecord, this.nat.natType, dump, this.localSubnets(), this.lanFound)
    for (const c of this.paths.changes) {
      if (c.path !== 'punching') this.log.info('peer path', { peer: c.name, nodeId: c.nodeId, path: c.path, ...(c.via === undefined ? {} : { via: c.via }) })
    }
    const seen = this.paths.observations(this.table, dump)
    if (JSON.stringify(seen) !== JSON.stringify(this.seen)) this.seen = seen // goes out with the next heartbeat
    if (changed) void this.scheduleApply()
  }

  private async probeNat (): Promise<void> {
    // members known to be public first; 'unknown' ones (still classifying) only to bootstrap
    const servers: Array<{ host: string, port: number }> = []
    const members = this.table.active().filter(m => m.record.nodeId !== this.nodeId && m.record.stunPort !== undefined && m.status === 'alive')
    const pub = members.filter(m => m.record.nat === 'public')
    for (const m of pub.length > 0 ? pub : members.filter(x => x.record.nat === undefined || x.record.nat === 'unknown')) {
      const host = parseEndpoint(m.record.endpoints[0] ?? '')?.host
      if (host === undefined) continue
      servers.push({ host, port: m.record.stunPort! }, { host, port: m.record.stunPort! + 1 })
      if (servers.length >= 4) break
    }
    const locals = localAddresses({ iface: this.init.interface ?? 'wgmesh0', ranges: [this.settings.cidr4, this.ula] }).map(l => l.address)
    await this.nat.probe(servers, locals)
  }

  private async enableRelayForwarding (): Promise<void> {
    this.forwarding = true
    try {
      await enableForwarding(this.init.wgRunner ?? execRunner(), this.init.interface ?? 'wgmesh0')
      this.log.info('relaying for peers that cannot reach each other directly (forwarding on the mesh interface)')
    } catch (err) {
      this.log.warn('cannot enable forwarding; this node will not relay', { error: (err as Error).message })
    }
  }

  /** Coalesce plan+apply: at most one running, at most one queued. */
  private scheduleApply (): Promise<void> {
    if (this.applyQueued) return this.applying
    this.applyQueued = true
    this.applying = this.applying.catch(() => {}).then(async () => {
      this.applyQueued = false
      if (this.stopped) return
      const desired = this.desired()
      try {
        const { steps } = await this.wg.apply(desired)
        if (steps.length > 0) this.log.debug('wireguard applied', { steps: steps.length, peers: desired.peers.length })
      } catch (err) {
        this.log.error('applying WireGuard state failed (will retry on the next change)', { error: (err as Error).message })
        setTimeout(() => { void this.scheduleApply() }, 1000).unref()
      }
    })
    return this.applying
  }

  private persistSoon (): void {
    if (this.persistTimer !== undefined) return
    this.persistTimer = setTimeout(() => { this.persistTimer = undefined; this.persist() }, 500)
    this.persistTimer.unref()
  }

  private persist (): void {
    const known = this.table?.active()
      .filter(m => m.record.nodeId !== this.signer?.nodeId)
      .map(m => ({ nodeId: m.record.nodeId, name: m.record.name, gossipAddrs: m.record.gossipAddrs })) ?? []
    this.persisted = {
      ...this.persisted,
      version: 1,
      // a floor comfortably above anything published before the next persist
      seq: Math.max(this.persisted.seq, this.seq + 120_000),
      ipv4: this.addressing.ipv4,
      ipv6: this.addressing.ipv6,
      ipSalt: this.addressing.ipSalt,
      ipSince: this.addressing.ipSince,
      cidr4: formatCidr(this.settings.cidr4),
      known: known.length > 0 || this.persisted.left === true ? known : this.persisted.known
    }
    try { this.store.save(this.persisted) } catch (err) { this.log.error('saving state failed', { error: (err as Error).message }) }
  }

  private async onControl (req: ControlRequest): Promise<unknown> {
    if (req.cmd === 'info') return await this.info()
    if (req.cmd === 'metrics') return await this.metrics.registry.metrics()
    setImmediate(() => { void this.leave() })
    return { leaving: true, name: this.identity.name }
  }

  async dump (): Promise<Dump | undefined> {
    try { return await this.wg.show() } catch { return undefined }
  }

  async info (): Promise<AgentInfo> {
    return buildInfo({
      self: this.selfRecord,
      interface: this.init.interface ?? 'wgmesh0',
      table: this.table,
      dump: await this.dump(),
      now: this.now(),
      gossipPeers: this.gossip?.connectedPeers() ?? [],
      rejected: this.metrics.rejections(),
      cidr4: formatCidr(this.settings.cidr4),
      ula: formatCidr(this.ula),
      nat: this.nat?.natType ?? 'unknown',
      paths: this.paths
    })
  }

  private async peerSamples (): Promise<PeerSample[]> {
    const info = await this.info()
    return info.peers.map(p => ({ name: p.name, nodeId: p.nodeId, status: p.status, rxBytes: p.rxBytes, txBytes: p.txBytes, latestHandshake: p.latestHandshake ?? 0 }))
  }

  /** Announce departure, remove the interface, stop. */
  async leave (): Promise<void> {
    if (this.stopped) return
    this.log.info('leaving the mesh')
    this.clearTimers() // no heartbeat may follow the departure record
    this.refreshSelf(true)
    const sealed = this.table.get(this.nodeId)!.sealed
    await this.gossip?.publish(sealed).catch(() => {})
    // push the departure to every connected peer directly as well: gossip alone may not have
    // formed a mesh link to each of them yet
    await Promise.allSettled((this.gossip?.connectedPeers() ?? []).map(async p => await this.gossip!.sync(p)))
    this.persisted.left = true
    this.persist()
    await this.shutdown(true)
  }

  /** Stop the agent. The WireGuard interface stays (traffic keeps flowing) unless `removeInterface`. */
  async stop (): Promise<void> {
    await this.shutdown(false)
  }

  private async shutdown (removeInterface: boolean): Promise<void> {
    if (this.stopped) return
    this.stopped = true
    this.clearTimers()
    if (this.persistTimer !== undefined) clearTimeout(this.persistTimer)
    await this.applying.catch(() => {})
    if (!removeInterface && this.addressing !== undefined) this.persist() // (undefined: start failed before addressing)
    await new Promise<void>(resolve => { if (this.control === undefined) resolve(); else this.control.close(() => { resolve() }) })
    await this.gossip?.stop().catch(() => {})
    await this.beacon?.close().catch(() => {})
    await this.nat?.stop().catch(() => {})
    if (removeInterface) await this.wg.destroy().catch((err: Error) => { this.log.warn('removing the interface failed', { error: err.message }) })
    for (const w of this.stoppedWaiters.splice(0)) w()
  }

  private clearTimers (): void {
    for (const t of this.timers.splice(0)) clearInterval(t)
  }

  private every (ms: number, fn: () => void): void {
    const t = setInterval(() => { try { fn() } catch (err) { this.log.error('timer failed', { error: (err as Error).message }) } }, ms)
    this.timers.push(t)
  }
}
