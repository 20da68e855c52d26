/**
 * How the agent's parts are connected to each other: each factory takes the agent's context
 * (accessors of its current parts, never copies: parts are created one after another and some
 * call back into parts made after them) and returns the part with its host wired. Agent.start()
 * reads as the order of things; the wires are here.
 */
import { randomBytes } from 'node:crypto'
import {
  InvalidConfigError, formatCidr, gossipListenAddrs, seal,
  type MemberChange, type Membership, type PlanInput, type MeshSettings, type NodeRecord, type RecordSigner, type Via, type Cidr
} from '@wgmesh/core'
import type { Dump } from '@wgmesh/wireguard'
import { AntiEntropy } from './anti-entropy.js'
import type { CertMode } from './cert-mode.js'
import type { AgentInit } from './agent-init.js'
import { gatewaysInit, livenessInit, routeRunner, traversalInit } from './agent-parts.js'
import { seedToMultiaddr } from './dial-policy.js'
import { Gateways } from './gateways.js'
import { HostRoutes, checkGatewayHost } from './host-routes.js'
import type { JoinWatch } from './join-watch.js'
import { Liveness } from './liveness.js'
import type { Logger } from './logger.js'
import type { AgentMetrics } from './metrics.js'
import { OwnRecord } from './own-record.js'
import { Redialer } from './redialer.js'
import type { KnownMember, StateStore } from './state-store.js'
import { Traversal } from './traversal.js'
import type { GossipNode, GossipNodeInit } from './transport/index.js'
import type { InfoInput } from './info.js'
import { endpointCandidates } from './local-addresses.js'
import { buildSelfRecord, type SelfAddressing, type SelfIdentity } from './self-record.js'
import { meshTopic, noticeTopic } from './topics.js'

/** What the parts need of the agent: its settings, and accessors of the other parts. */
export interface AgentContext {
  init: AgentInit
  log: Logger
  now: () => number
  /** Run `fn` once in `ms` (cleared when the agent stops). */
  later: (ms: number, fn: () => void) => void
  metrics: AgentMetrics
  store: StateStore
  settings: MeshSettings
  ula: Cidr
  meshKey: Uint8Array
  signer: RecordSigner
  certs?: CertMode
  table: () => Membership
  own: () => OwnRecord
  /** undefined once stopped */
  gossip: () => GossipNode | undefined
  stopped: () => boolean
  liveness: () => Liveness
  traversal: () => Traversal | undefined
  redialer: () => Redialer | undefined
  servingAt: () => number
  known: () => KnownMember[]
  changed: (changes: MemberChange[]) => void
  apply: () => void
  take: (sealed: Uint8Array, via: Via) => 'accept' | 'reject' | 'ignore'
  build: (seq: number, now: number, leaving: boolean) => NodeRecord
  dump: () => Promise<Dump | undefined>
  /** The CA revoked this node: stop, with this reason. */
  revoked: (reason: string) => void
}

const ifname = (c: AgentContext): string => c.init.interface ?? 'wgmesh0'

/** Certificate mode's revocations: gossip, sync and the table. */
export function startCerts (c: AgentContext): void {
  c.certs?.start({
    now: c.now,
    log: c.log,
    store: c.store,
    table: c.table,
    changed: c.changed,
    seal: (payload) => seal(c.meshKey, c.signer, payload, new Uint8Array(randomBytes(24))),
    publish: (sealed) => { void c.gossip()?.publish(sealed).catch(() => {}) },
    pushToPeers: () => { const g = c.gossip(); void Promise.allSettled((g?.connectedPeers() ?? []).map(async p => await g!.sync(p))) },
    revokedSelf: () => { c.revoked('the mesh CA revoked this node; it stopped (start this host as a new node to come back: see \'wgmesh id\')') }
  })
}

/** Advertised routes checked (certificate grants, the host's forwarding) before any socket opens. */
export function createGateways (c: AgentContext, name: string): Gateways {
  const init = c.init
  const gwInit = gatewaysInit(init, c.settings, c.ula, name)
  c.certs?.checkOwnRoutes(gwInit.routes)
  if (gwInit.routes.length > 0 && init.routeRunner === undefined && init.wgRunner === undefined) checkGatewayHost()
  const certs = c.certs
  return new Gateways(gwInit, {
    now: c.now,
    log: c.log,
    table: c.table,
    self: () => c.own().record,
    servingAt: c.servingAt,
    localAddrs: () => (c.traversal()?.locals() ?? []).map(l => l.address),
    recordChanged: () => { c.own().update(false) },
    planChanged: c.apply,
    routes: new HostRoutes(routeRunner(init), ifname(c), c.log, c.store.path('forwarding.json'), c.store.path('exit-routing')),
    counted: (what, group) => { (what === 'failover' ? c.metrics.gatewayFailovers : c.metrics.routesRejected).inc({ group }) },
    grants: certs === undefined ? undefined : (r, cidr) => certs.grantsRoute(r, cidr)
  })
}

export function createLiveness (c: AgentContext): Liveness {
  return new Liveness(livenessInit(c.init, c.settings, c.meshKey, c.signer, c.log), {
    now: c.now,
    table: c.table,
    changed: c.changed,
    publishNotice: (sealed) => { void c.gossip()?.publishNotice(sealed).catch((err: Error) => { c.log.debug('notice publish failed', { error: err.message }) }) },
    refute: (why) => { c.own().refute(why) },
    deadAnswered: (nodeId) => { c.redialer()?.dialMember(nodeId) }
  })
}

/** The liveness probe socket bound; its port, or a clear error. */
export async function startLiveness (c: AgentContext, liveness: Liveness): Promise<number> {
  const gossipPort = c.init.gossipPort ?? 51821
  return await liveness.start().catch((err: Error) => {
    throw new InvalidConfigError(`cannot bind the probe port (UDP ${c.init.probePort ?? gossipPort + 2}): ${err.message}; choose another with --probe-port`)
  })
}

export function createTraversal (c: AgentContext, wgPort: number): Traversal {
  const t = new Traversal(traversalInit(c.init, c.settings, c.ula, wgPort, c.meshKey, c.signer, c.log), {
    now: c.now,
    table: c.table,
    self: () => c.own().record,
    dump: c.dump,
    recordChanged: () => { c.own().update(false) },
    routesChanged: c.apply,
    lanGossip: (nodeId, addr) => { c.redialer()?.discovered(nodeId, addr) },
    sendRelayControl: (to, msg) => { c.liveness().socket.sendRelayControl(to, msg) },
    unanswered: () => c.liveness().unanswered(),
    familyDied: (nodeId, family) => { c.redialer()?.familyDied(nodeId, family) }
  })
  c.liveness().socket.onRelayControl = (from, msg) => { t.onRelayControl(from, msg) }
  return t
}

export function createOwnRecord (c: AgentContext, seq: number): OwnRecord {
  return new OwnRecord({
    now: c.now,
    log: c.log,
    meshKey: c.meshKey,
    signer: c.signer,
    build: c.build,
    accept: (r, sealed, now) => { c.table().accept(r, sealed, now, 'self') },
    gossip: c.gossip,
    members: () => c.table().size,
    refreshMs: c.settings.refreshMs,
    refuted: () => { c.liveness().refuted(); return { localHealth: c.liveness().localHealth } }
  }, seq)
}

export function createRedialer (c: AgentContext, joinWatch: JoinWatch): Redialer {
  return new Redialer((c.init.peers ?? []).map(p => seedToMultiaddr(p, c.init.gossipPort || 51821)), {
    now: c.now,
    gossip: c.gossip,
    table: c.table,
    selfId: () => c.signer.nodeId,
    known: c.known,
    log: joinWatch.tap(c.log),
    later: c.later
  })
}

export function createAntiEntropy (c: AgentContext): AntiEntropy {
  const certs = c.certs
  return new AntiEntropy({
    table: c.table,
    selfId: () => c.signer.nodeId,
    selfSeq: () => c.own().seq,
    take: (sealed) => c.take(sealed, 'sync'),
    changed: c.changed,
    refute: (why) => { c.own().refute(why) },
    publish: (sealed) => { void c.gossip()?.publish(sealed).catch(() => {}) },
    syncRandomPeer: async () => { await c.redialer()?.syncRandomPeer() },
    extraDigest: certs === undefined ? undefined : () => certs.digestEntries(),
    extraSealed: certs === undefined ? undefined : (id) => certs.sealedOf(id)
  })
}

/** The gossip node's settings: both families by default, records and notices into the agent. */
export function gossipNodeInit (c: AgentContext, identitySeed: Uint8Array, antiEntropy: AntiEntropy): GossipNodeInit {
  return {
    identitySeed,
    meshKey: c.meshKey,
    listen: gossipListenAddrs(c.init.gossipHost, c.init.gossipPort ?? 51821),
    topic: meshTopic(c.ula),
    noticeTopic: noticeTopic(c.ula),
    validate: (data) => c.take(data, 'gossip'),
    validateNotice: (data) => c.stopped() ? 'ignore' : c.liveness().onNotice(data),
    onMessage: () => {},
    sync: antiEntropy.handler,
    onSyncResult: (r, from) => { antiEntropy.result(r, from) },
    onPeerConnect: (p) => { c.log.debug('gossip peer connected', { peer: p }) },
    onPeerDisconnect: (p) => { c.log.debug('gossip peer disconnected', { peer: p }) },
    logger: { debug: (m, meta) => { c.log.debug(m, meta as Record<string, unknown>) }, warn: (m, meta) => { c.log.warn(m, meta as Record<string, unknown>) } }
  }
}

/** What `wgmesh info` is built from (info.ts), at this moment. */
export function infoInput (c: AgentContext, dump: Dump | undefined, gateways: Gateways | undefined): InfoInput {
  const t = c.traversal()
  return {
    self: c.own().record,
    interface: ifname(c),
    table: c.table(),
    dump,
    now: c.now(),
    gossipPeers: c.gossip()?.connectedPeers() ?? [],
    rejected: c.metrics.rejections(),
    cidr4: formatCidr(c.settings.cidr4),
    ula: formatCidr(c.ula),
    nat: t?.natType ?? 'unknown',
    paths: t?.pathManager,
    cert: c.certs?.info,
    version: c.init.version,
    rtt: (id) => c.liveness()?.rttOf(id),
    ...(gateways === undefined ? {} : { groups: gateways.info() }),
    ...(c.init.exitNode === undefined ? {} : { exitNode: c.init.exitNode })
  }
}

/** This node's record: endpoints (local, mapped, advertised), relay offer, routes, traversal fields. */
export function selfRecord (c: AgentContext, identity: SelfIdentity, addressing: SelfAddressing, gossipAddrs: string[], gateways: Gateways | undefined,
  at: { seq: number, now: number, leaving: boolean }): NodeRecord {
  const t = c.traversal()
  const locals = t?.locals() ?? []
  const endpoints = endpointCandidates(locals, identity.wgPort, t?.advertised(c.init.advertise ?? [], locals) ?? c.init.advertise)
  // certificate mode: only with the CA's relay role (others would not choose us anyway)
  identity.relay = (t?.relays() ?? false) && (c.certs?.grantsRelay ?? true)
  const r = buildSelfRecord(identity, addressing, at.seq, at.now, endpoints, gossipAddrs, at.leaving)
  const gw = gateways?.gwInfo()
  if (gw !== undefined && !at.leaving) { r.routes = gateways!.routes; r.gw = gw }
  t?.decorate(r, c.servingAt() > 0)
  return r
}

/** The planner's input: the interface, paths from the traversal, routes from the gateway groups. */
export function planInput (c: AgentContext, gateways: Gateways | undefined): PlanInput {
  return {
    interface: ifname(c),
    privateKeyFile: c.store.wgKeyPath(),
    mtu: c.init.mtu ?? 1420,
    keepaliveS: c.settings.keepaliveS,
    cidr4: c.settings.cidr4,
    ula: c.ula,
    self: c.own().record,
    routes: c.traversal()?.routes,
    extraAllowedIps: gateways?.allowedIps,
    fwmark: gateways?.fwmark
  }
}

/** Longest wait for one part while stopping. */
const STOP_STEP_MS = 5000

/**
 * A stop, part by part, in order: each part is bounded (a stop never hangs on one part — a client
 * that keeps the control socket open, a gossip connection slow to close); a failure or a run
 * past STOP_STEP_MS is warned and the stop goes on; how long each took is logged.
 */
export async function stopSteps (c: AgentContext, steps: ReadonlyArray<readonly [string, () => Promise<unknown> | undefined]>): Promise<void> {
  const took: Record<string, number> = {}
  for (const [name, run] of steps) {
    const t0 = c.now()
    let timer: NodeJS.Timeout | undefined
    const late = new Promise<'late'>(resolve => { timer = setTimeout(() => { resolve('late') }, STOP_STEP_MS) })
    const r = await Promise.race([Promise.resolve(run()).catch((err: Error) => { c.log.warn(`stopping: ${name} failed`, { error: err.message }) }), late])
    clearTimeout(timer)
    if (r === 'late') c.log.warn(`stopping: ${name} did not finish within ${STOP_STEP_MS} ms; going on`)
    took[name] = c.now() - t0
  }
  c.log.debug('stopped', { stepsMs: took })
}
