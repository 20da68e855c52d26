/**
 * The wgmesh agent: the one place that turns core's decisions into I/O.
 *   gossip (libp2p) ──records──▶ validate ─▶ Membership ─▶ planner ─▶ WireGuard configurator
 *   liveness: failure-detector probes inside the tunnels (Liveness), suspect/dead notices
 *   timers: own record on change (+ slow refresh), table/probe tick, redial (DialPolicy),
 *           digest sync (adaptive), path tick (adaptive)
 *   control socket: info / leave; state dir: keys, seq floor, addresses, known members
 *   gateway groups: advertised routes, the active gateway per group, exit node (Gateways)
 * How the parts call each other is agent-wiring.ts; what is planned, core.
 */
import { hostname } from 'node:os'
import type { Server } from 'node:net'
import {
  Membership, allocate, createSigner, meshSettings, sanitizeName, ulaPrefix,
  planWireGuardState, wgPublicKeyFromPrivate, InvalidConfigError, isLoopbackHost,
  type MeshSettings, type NodeRecord, type RecordSigner, type Cidr, type MemberChange, type Via, type DesiredWireGuard
} from '@wgmesh/core'
import { createConfigurator, type WireGuardConfigurator, type Dump } from '@wgmesh/wireguard'
import { createGossipNode, type GossipNode } from './transport/index.js'
import type { AntiEntropy } from './anti-entropy.js'
import type { Liveness } from './liveness.js'
import { StateStore, resolveMeshKey, type PersistedState } from './state-store.js'
import { createLogger, type Logger } from './logger.js'
import { AgentMetrics } from './metrics.js'
import { startMetricsEndpoint, type MetricsServer } from './metrics-server.js'
import { serveControl, type ControlRequest } from './control-socket.js'
import type { Redialer } from './redialer.js'
import { nextPersisted, restoreAddressing } from './persisted.js'
import { orderGossipAddrs, type SelfAddressing, type SelfIdentity } from './self-record.js'
import type { OwnRecord } from './own-record.js'
import { buildInfo, type AgentInfo } from './info.js'
import type { Traversal } from './traversal.js'
import { checkInit, existingInterfaceKey, DEFAULT_MESH_DOMAIN, type AgentInit } from './agent-init.js'
import { processCpuMs } from './agent-parts.js'
import type { Gateways } from './gateways.js'
import {
  createAntiEntropy, createGateways, createLiveness, createOwnRecord, createRedialer, createTraversal, gossipNodeInit, infoInput, planInput,
  selfRecord, startCerts, startLiveness, stopSteps, type AgentContext
} from './agent-wiring.js'
import { PairTimeline } from './pair-timeline.js'
import { CertMode } from './cert-mode.js'
import { takeMessage, type RecordIntakeHost } from './record-intake.js'
import { HostsFile, hostsMembers } from './hosts-file.js'
import { JoinWatch, type JoinStatus } from './join-watch.js'
import { AgentTimers } from './timers.js'

export type { AgentInit } from './agent-init.js'

export const DEFAULT_STATE_DIR = '/var/lib/wgmesh'
/** The interface is compared with the plan (and repaired) at least this often (default). */
const RECONCILE_MS = 30_000

export { meshTopic, noticeTopic } from './topics.js'

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
  private own!: OwnRecord
  private gossip?: GossipNode
  private wg!: WireGuardConfigurator
  private control?: Server
  private metricsServer?: MetricsServer
  private redialer!: Redialer
  private readonly timers: AgentTimers
  private persistTimer?: NodeJS.Timeout
  private stopped = false
  private readonly stoppedWaiters: Array<() => void> = []
  private traversal!: Traversal
  private liveness!: Liveness
  private antiEntropy!: AntiEntropy
  private tableVersion = 0
  /** Certificate mode (--ca, --cert); undefined in shared-key mode. */
  private certs?: CertMode
  private readonly timeline: PairTimeline
  startedAt = 0
  servingAt = 0
  /** Why the agent stopped by itself (certificate mode: it was revoked); undefined otherwise. */
  stopReason?: string
  private readonly intake: RecordIntakeHost
  /** --hosts-file: names of the live members; undefined when off. */
  private hosts?: HostsFile
  private joinWatch!: JoinWatch
  private context?: AgentContext
  /** Advertised routes, gateway election, exit node. */
  private gateways!: Gateways

  constructor (init: AgentInit) {
    this.init = init
    this.now = init.now ?? Date.now
    this.log = init.logger ?? createLogger()
    checkInit(init)
    this.timeline = new PairTimeline(this.log)
    this.timers = new AgentTimers(this.log)
    this.store = new StateStore(init.stateDir, this.log)
    this.metrics = new AgentMetrics(async () => ({ info: await this.info(), relay: this.traversal?.relayStats }), init.version)
    this.intake = {
      now: () => this.now(),
      stopped: () => this.stopped,
      meshKey: () => this.meshKey,
      table: () => this.table,
      certs: () => this.certs,
      metrics: this.metrics,
      log: this.log,
      ownSeqSeen: (seq) => { this.own.seen(seq) }, // state was lost: move past our old seq
      arrived: (nodeId) => { this.liveness.recordArrived(nodeId) },
      changed: (changes) => { this.onChanges(changes) }
    }
  }

  get nodeId (): string { return this.signer.nodeId }
  get record (): NodeRecord { return this.own.record }
  get peerId (): string { return this.gossip?.peerId ?? '' }
  get members (): Membership { return this.table }
  get controlPath (): string { return this.init.controlSocket ?? this.store.path('wgmesh.sock') }
  listenAddrs (): string[] { return this.gossip?.listenAddrs() ?? [] }
  /** Where --metrics-listen serves ("127.0.0.1:9586"), if it does. */
  get metricsAddress (): string | undefined { return this.metricsServer?.address }

  /** Start everything; resolves when the agent serves (gossip listening, interface configured). */
  async start (): Promise<void> {
    this.startedAt = this.now()
    const init = this.init
    this.store.ensureDir()
    // a key given with seeds is saved only once a member holding it is reached (JoinWatch)
    const deferKey = init.meshKey !== undefined && (init.peers ?? []).length > 0 && this.store.meshKey() === undefined
    this.meshKey = resolveMeshKey(this.store, init.meshKey, init.createMesh === true, this.log, !deferKey)
    this.settings = meshSettings({
      cidr4: init.cidr4, heartbeatMs: init.heartbeatMs, deadAfterMs: init.deadAfterMs, expireAfterMs: init.expireAfterMs, keepaliveS: init.keepaliveS,
      maxClockSkewMs: init.maxClockSkewMs
    })
    const seed = this.store.nodeSeed()
    const wgPriv = this.store.wgPrivateKey()
    this.signer = createSigner(seed)
    this.ula = ulaPrefix(this.meshKey)
    if (init.ca !== undefined && init.cert !== undefined) {
      this.certs = new CertMode({
        caFile: init.ca, certFile: init.cert, nodeId: this.signer.nodeId, name: init.name === undefined ? undefined : sanitizeName(init.name),
        stateDir: init.stateDir, skewMs: this.settings.maxClockSkewMs, now: this.now()
      })
    }
    this.table = new Membership({ selfId: this.signer.nodeId, settings: this.settings, ula: this.ula, certs: this.certs?.trust })
    startCerts(this.ctx())
    this.persisted = this.store.load()
    this.persisted.left = false
    this.joinWatch = new JoinWatch({
      now: this.now, log: this.log, expectsPeers: (init.peers ?? []).length > 0 || this.persisted.known.length > 0,
      saveKey: deferKey ? () => { this.store.saveMeshKey(this.meshKey) } : undefined
    })
    if (init.hostsFile !== undefined) this.hosts = new HostsFile({ path: init.hostsFile, iface: init.interface ?? 'wgmesh0', domain: init.meshDomain ?? DEFAULT_MESH_DOMAIN, log: this.log })
    this.identity = {
      nodeId: this.signer.nodeId,
      name: this.certs?.cert.name ?? sanitizeName(init.name ?? hostname()),
      wgPublicKey: wgPublicKeyFromPrivate(wgPriv),
      wgPort: init.wgPort ?? 51820,
      tags: init.tags ?? [],
      relay: false,
      cert: this.certs?.token
    }
    this.wg = createConfigurator({
      interface: init.interface ?? 'wgmesh0',
      backend: init.backend ?? 'auto',
      runner: init.wgRunner,
      expectedPublicKey: this.identity.wgPublicKey
    })
    // --backend existing: someone else owns the interface and its key: advertise the key it has
    if (init.backend === 'existing') this.identity.wgPublicKey = await existingInterfaceKey(this.wg, init.interface ?? 'wgmesh0')
    this.addressing = restoreAddressing(this.persisted, this.settings.cidr4, this.ula, this.identity.wgPublicKey, this.now())
    if (this.certs !== undefined) this.addressing = this.certs.pin(this.addressing, this.settings.cidr4, this.ula)
    // routes are checked before any socket is opened: a refused start leaves nothing behind
    this.gateways = createGateways(this.ctx(), this.identity.name)
    this.liveness = createLiveness(this.ctx())
    this.identity.probePort = await startLiveness(this.ctx(), this.liveness)
    this.traversal = createTraversal(this.ctx(), this.identity.wgPort)
    await this.traversal.startStun()
    const phases: Record<string, number> = { setupMs: this.now() - this.startedAt }
    this.own = createOwnRecord(this.ctx(), this.persisted.seq)
    this.redialer = createRedialer(this.ctx(), this.joinWatch)
    this.antiEntropy = createAntiEntropy(this.ctx())
    this.persist()

    // the interface (possibly a new wireguard-go process) comes up while the gossip node starts
    // (a seed is dialed by everyone at once: its interface must not wait behind their handshakes);
    // the first apply is strict: no WireGuard, or a missing 'existing' interface, fails the start
    this.own.renew() // addresses and keys for the plan; gossip addresses follow below
    const tApply = this.now()
    const firstApply = this.wg.apply(this.desired()).then(r => { phases.firstApplyMs = this.now() - tApply; return r })
    firstApply.catch(() => {}) // awaited below; not unhandled while the gossip node starts
    const tGossip = this.now()
    try {
      this.gossip = await createGossipNode(gossipNodeInit(this.ctx(), seed, this.antiEntropy))
    } catch (err) {
      // e.g. the gossip port is in use: do not leave an interface this start created
      await firstApply.catch(() => {})
      if (this.wg.createdWith !== undefined) await this.wg.destroy().catch(() => {})
      throw err
    }
    phases.gossipMs = this.now() - tGossip
    this.own.renew()
    this.liveness.membersChanged()
    this.redialer.redial()
    this.control = await serveControl(this.controlPath, async (req) => await this.onControl(req))
    if (init.metricsListen !== undefined) this.metricsServer = await startMetricsEndpoint(init.metricsListen, this.metrics.registry, this.log)
    // an interface this start created but could not configure (e.g. its port is taken) goes again
    await firstApply.catch(async (err) => { if (this.wg.createdWith !== undefined) await this.wg.destroy().catch(() => {}); throw err })
    await this.gateways.start()
    this.servingAt = this.now()
    this.log.info('wgmesh agent serving', {
      name: this.identity.name, nodeId: this.nodeId, ipv4: this.addressing.ipv4, ipv6: this.addressing.ipv6,
      gossip: this.listenAddrs()[0], startMs: this.servingAt - this.startedAt, processMs: Math.round(process.uptime() * 1000),
      cpuMs: processCpuMs(), ...phases
    })
    void this.own.publish()
    const hb = this.settings.heartbeatMs
    // records go out when they change (checked every heartbeat), and unchanged now and then
    this.timers.every(hb, () => { this.own.heartbeat() })
    this.own.startRefresh()
    // probe verdicts need a resolution of a fraction of the probe timeout (≥ 50 ms), no finer
    this.timers.every(Math.max(50, Math.min(200, Math.floor(hb / 5))), () => { this.onTick(); this.liveness.tick() })
    // redial at 250 ms while a seed is unreached or nobody is connected, else once a second
    let redials = 0
    this.timers.every(250, () => { if (++redials % 4 === 0 || this.redialer.urgent()) this.redialer.redial() })
    this.antiEntropy.start()
    this.traversal.startTicking(init.pathTickMs ?? 500, () => this.tableVersion)
    this.timers.every(2000, () => { this.traversal.periodicProbe() })
    await this.traversal.startDiscovery()
    this.timers.every(60_000, () => { this.persist() })
    // drift: someone changed the interface behind our back (a peer removed, an address
    // deleted): put it back; over UAPI an apply that finds nothing to do spawns nothing
    this.timers.every(init.reconcileMs ?? RECONCILE_MS, () => { void this.scheduleApply() })
    this.hosts?.update(hostsMembers(this.own.record, this.table))
    this.timers.every(1000, () => { this.gateways.tick(); this.joinWatch.tick(); this.hosts?.update(hostsMembers(this.own.record, this.table)) })
  }

  /** Resolves when the agent has stopped (after `leave` or `stop`). */
  async stoppedPromise (): Promise<void> {
    if (this.stopped) return
    await new Promise<void>(resolve => { this.stoppedWaiters.push(resolve) })
  }

  /** The agent as its parts see it (agent-wiring.ts): settings, and accessors of the current parts. */
  private ctx (): AgentContext {
    return this.context ??= {
      init: this.init,
      log: this.log,
      now: this.now,
      later: (ms, fn) => { this.timers.later(ms, fn) },
      metrics: this.metrics,
      store: this.store,
      settings: this.settings,
      ula: this.ula,
      meshKey: this.meshKey,
      signer: this.signer,
      certs: this.certs,
      table: () => this.table,
      own: () => this.own,
      gossip: () => this.stopped ? undefined : this.gossip,
      stopped: () => this.stopped,
      liveness: () => this.liveness,
      traversal: () => this.traversal,
      redialer: () => this.redialer,
      servingAt: () => this.servingAt,
      known: () => this.persisted.known,
      changed: (changes) => { this.onChanges(changes) },
      apply: () => { void this.scheduleApply() },
      take: (sealed, via) => this.take(sealed, via),
      build: (seq, now, leaving) => this.buildSelf(seq, now, leaving),
      dump: async () => await this.dump(),
      revoked: (reason) => { this.stopReason = reason; setImmediate(() => { void this.shutdown(true) }) }
    }
  }

  private gossipAddrs (): string[] {
    return orderGossipAddrs(this.gossip?.listenAddrs() ?? [], isLoopbackHost(this.init.gossipHost), this.addressing)
  }

  private buildSelf (seq: number, now: number, leaving: boolean): NodeRecord {
    return selfRecord(this.ctx(), this.identity, this.addressing, this.gossipAddrs(), this.gateways, { seq, now, leaving })
  }

  /** The one entry for records from the network (gossip validator and sync). */
  private take (sealed: Uint8Array, via: Via): 'accept' | 'reject' | 'ignore' {
    return takeMessage(this.intake, sealed, via)
  }

  private onChanges (changes: MemberChange[]): void {
    if (changes.length === 0) return
    this.tableVersion++
    this.antiEntropy.tableChanged()
    let plan = false
    let known = false
    let members = false
    for (const c of changes) {
      if (c.kind === 'dead') this.liveness.died(c.nodeId)
      members = true
      const name = this.table.get(c.nodeId)?.record.name
      if (c.kind === 'conflict-lost' && c.nodeId === this.nodeId) {
        this.readdress(c.what)
      } else if (c.kind !== 'updated') {
        this.log.info(`peer ${c.kind}`, { peer: name ?? c.nodeId, nodeId: c.nodeId })
      }
      if (c.kind === 'joined' || c.kind === 'left' || c.kind === 'expired' || c.kind === 'revoked') known = true
      if (c.kind === 'joined') this.traversal?.memberJoined(this.table.get(c.nodeId)?.record)
      plan = true
    }
    if (members) this.liveness.membersChanged()
    if (changes.some(c => c.kind === 'joined' && c.nodeId !== this.nodeId)) this.joinWatch.memberHeard()
    if (this.servingAt > 0) this.hosts?.update(hostsMembers(this.own.record, this.table))
    if (known) this.persistSoon()
    this.gateways?.evaluate()
    if (plan) void this.scheduleApply()
  }

  private readdress (what: 'ip' | 'wg-key'): void {
    if (what === 'wg-key') {
      this.log.error('another live node uses this node\'s WireGuard key (copied state directory?); it keeps it: this node stays out of the plans until one of them gets a new wg.key')
      return
    }
    if (this.certs?.pinsAddress === true) {
      this.log.error('another member\'s certificate (issued later) names this node\'s certificate\'s address: this node stays out of the plans; ask the CA which node should have it')
      return
    }
    const a = allocate(this.settings.cidr4, this.ula, this.identity.wgPublicKey, this.table.takenIPv4(this.nodeId), this.addressing.ipSalt + 1)
    this.log.warn('our new overlay address is held by another member (an older claim, seen while joining); moving', { from: this.addressing.ipv4, to: a.ipv4 })
    this.addressing = { ipv4: a.ipv4, ipv6: a.ipv6, ipSalt: a.salt, ipSince: this.now() }
    this.persist()
    this.own.update(true)
  }

  private onTick (): void {
    const changes = this.table.tick(this.now())
    if (changes.length > 0) this.onChanges(changes)
  }

  private desired (): DesiredWireGuard {
    return planWireGuardState(this.table, planInput(this.ctx(), this.gateways))
  }

  /**
   * Plan and apply. The configurator already coalesces: a call made while an apply runs waits
   * and shares one apply of the latest desired state, so every change may simply call this.
   */
  private async scheduleApply (): Promise<void> {
    if (this.stopped) return
    const desired = this.desired()
    const t0 = Date.now()
    try {
      const { steps } = await this.wg.apply(desired)
      if (steps.length > 0) this.log.debug('wireguard applied', { steps: steps.length, peers: desired.peers.length, ms: Date.now() - t0 })
      this.timeline.applied(desired, this.table, this.now())
    } catch (err) {
      this.metrics.applyFailed()
      this.log.error('applying WireGuard state failed (will retry in 1 s)', { error: (err as Error).message })
      setTimeout(() => { void this.scheduleApply() }, 1000).unref()
    }
  }

  private persistSoon (): void {
    if (this.persistTimer !== undefined) return
    this.persistTimer = setTimeout(() => { this.persistTimer = undefined; this.persist() }, 500)
    this.persistTimer.unref()
  }

  private persist (): void {
    this.persisted = nextPersisted(this.persisted, this.own?.seq ?? this.persisted.seq, this.addressing, this.settings.cidr4, this.table, this.signer?.nodeId)
    try { this.store.save(this.persisted) } catch (err) { this.log.error('saving state failed', { error: (err as Error).message }) }
  }

  private async onControl (req: ControlRequest): Promise<unknown> {
    if (req.cmd === 'info') return await this.info()
    if (req.cmd === 'metrics') return await this.metrics.registry.metrics()
    if (req.cmd === 'revoke') {
      if (this.certs === undefined) throw new InvalidConfigError('this agent runs in shared-key mode (no --ca): it has no CA to check a revocation against; restart it with --ca and --cert')
      return this.certs.fromControl(req.revocation)
    }
    setImmediate(() => { void this.leave() })
    return { leaving: true, name: this.identity.name }
  }

  async dump (): Promise<Dump | undefined> {
    try { return await this.wg.show() } catch { return undefined }
  }

  async info (): Promise<AgentInfo & { join?: JoinStatus }> {
    const join = this.joinWatch?.status()
    const info = Object.assign(buildInfo(infoInput(this.ctx(), await this.dump(), this.gateways)), join?.line === undefined ? {} : { join })
    this.metrics.observe(info) // rx/tx totals across re-created peer entries
    return info
  }

  /** Announce departure, remove the interface, stop. */
  async leave (): Promise<void> {
    if (this.stopped) return
    this.log.info('leaving the mesh')
    this.timers.clear() // no heartbeat may follow the departure record
    this.own.stop()
    const sealed = this.own.renew(true)
    await this.gossip?.publish(sealed).catch(() => {})
    // push the departure to every connected peer directly as well: gossip alone may not have
    // formed a mesh link to each of them yet
    await Promise.allSettled((this.gossip?.connectedPeers() ?? []).map(async p => await this.gossip!.sync(p)))
    this.persisted.left = true
    this.persist()
    this.hosts?.remove()
    await this.shutdown(true)
  }

  /** Stop the agent. The WireGuard interface stays (traffic keeps flowing) unless `removeInterface`. */
  async stop (): Promise<void> {
    await this.shutdown(false)
  }

  private async shutdown (removeInterface: boolean): Promise<void> {
    if (this.stopped) return
    this.stopped = true
    this.timers.clear()
    if (this.persistTimer !== undefined) clearTimeout(this.persistTimer)
    this.own?.stop()
    this.certs?.stop()
    this.antiEntropy?.stop()
    if (!removeInterface && this.addressing !== undefined) this.persist() // (undefined: start failed before addressing)
    await stopSteps(this.ctx(), [
      ['liveness', () => this.liveness?.stop()],
      ['control', async () => { await new Promise<void>(resolve => { if (this.control === undefined) resolve(); else this.control.close(() => { resolve() }) }) }],
      ['metrics', () => this.metricsServer?.close()],
      ['gossip', () => this.gossip?.stop()],
      ['traversal', () => this.traversal?.stop()],
      ['routes', () => this.gateways?.stop()],
      ...(removeInterface ? [['interface', async () => { await this.wg.destroy().catch((err: Error) => { this.log.warn('removing the interface failed', { error: err.message }) }) }] as const] : [])
    ])
    for (const w of this.stoppedWaiters.splice(0)) w()
  }
}
