/**
 * Advertised routes and one-of-N gateway failover, on one node (core gateway.ts decides, this
 * wires it): which live member is each group's active gateway, this node's own claim, the extra
 * AllowedIPs for the planner, the kernel routes and — on a gateway — forwarding, and on an
 * exit-node consumer the policy routing. Re-evaluated on every membership change (a death
 * marked by the failure detector switches at once) and once a second (claim hold-downs).
 */
import {
  claimDecision, electGateways, gatewayAllowedIps, isExitRoute, parseRouteSpec, resolveRouteConflicts,
  type GatewayInfo, type GatewayMember, type GroupState, type Membership, type NodeRecord
} from '@wgmesh/core'
import { execRunner, type CommandRunner } from '@wgmesh/wireguard'
import type { Logger } from './logger.js'
import type { HostRoutes } from './host-routes.js'
import { EXIT_FWMARK } from './host-routes-plan.js'

export interface GatewaysInit {
  /** This node's advertised routes, canonical ([] = not a gateway). */
  routes: string[]
  group: string
  priority: number
  policy: 'preferred' | 'sticky'
  /** A returning better gateway ('preferred') takes over only after serving this long. */
  preemptDelayMs: number
  /** Send this host's default route through this group's active gateway. */
  exitGroup?: string
  masquerade: boolean
  /** Run as `hook active|standby GROUP` when this node becomes / stops being its group's active gateway. */
  hook?: string
  /** The mesh's own ranges: advertised routes may not overlap them. */
  meshRanges: string[]
}

export interface GatewaysHost {
  now: () => number
  log: Logger
  table: () => Membership
  self: () => NodeRecord
  /** When this agent began serving (0 = not yet). */
  servingAt: () => number
  /** This host's own underlay addresses (a route holding one of them is reached directly). */
  localAddrs: () => string[]
  /** Our gw claim changed: build and publish the own record. */
  recordChanged: () => void
  /** The AllowedIPs changed: plan and apply WireGuard. */
  planChanged: () => void
  routes: HostRoutes
  counted: (what: 'failover' | 'route-rejected', group: string) => void
  hookRunner?: CommandRunner
  /** Certificate mode: whether a record's certificate lets it advertise a route. Absent = shared-key mode (any member may). */
  grants?: (r: NodeRecord, cidr: string) => boolean
}

export interface GroupInfo {
  group: string
  routes: string[]
  active?: { nodeId: string, name: string, since: number }
  members: Array<{ nodeId: string, name: string, priority: number, claims: boolean }>
}

const SELF_HOOK_TIMEOUT_MS = 30_000

export class Gateways {
  private claimSince?: number
  private groups = new Map<string, GroupState>()
  /** group → the active this node saw, and since when (its own clock) */
  private readonly seen = new Map<string, { nodeId: string, since: number }>()
  private allowed = new Map<string, string[]>()
  private allowedKey = ''
  private readonly rejectedOnce = new Set<string>()
  private chain: Promise<void> = Promise.resolve()
  private stopped = false
  private selfActive = false

  constructor (private readonly init: GatewaysInit, private readonly host: GatewaysHost) {}

  get advertises (): boolean { return this.init.routes.length > 0 }
  /** This node's advertised routes (the record's `routes`). */
  get routes (): string[] { return this.init.routes }

  /** The record's `gw` field. */
  gwInfo (): GatewayInfo | undefined {
    if (!this.advertises) return undefined
    return { group: this.init.group, prio: this.init.priority, ...(this.claimSince === undefined ? {} : { since: this.claimSince }) }
  }

  /** Per peer nodeId: the subnets its WireGuard entry carries besides its own addresses. */
  get allowedIps (): ReadonlyMap<string, string[]> { return this.allowed }

  /** WireGuard fwmark for the planner: exit-node consumers mark WireGuard's own packets. */
  get fwmark (): number { return this.init.exitGroup === undefined ? 0 : EXIT_FWMARK }

  /** First set-up: forwarding on (gateway) or left-overs of an earlier run removed. */
  async start (): Promise<void> {
    await this.serial(async () => {
      if (this.advertises) await this.host.routes.gatewayUp({ routes: this.init.routes, masquerade: this.init.masquerade })
      else await this.host.routes.gatewayDown()
      if (this.init.exitGroup === undefined) await this.host.routes.exitSync({ v4: false, v6: false }, { v4: [], v6: [] })
    })
    this.evaluate()
  }

  /** Everything this node set up for routes taken back (leave, stop): the host routes as before. */
  async stop (): Promise<void> {
    this.stopped = true
    await this.chain
    await this.host.routes.exitSync({ v4: false, v6: false }, { v4: [], v6: [] }).catch((err: Error) => { this.host.log.warn('removing the exit routing failed', { error: err.message }) })
    await this.host.routes.syncRoutes([]).catch((err: Error) => { this.host.log.warn('removing the mesh routes failed', { error: err.message }) })
    if (this.advertises) await this.host.routes.gatewayDown().catch((err: Error) => { this.host.log.warn('removing gateway forwarding failed', { error: err.message }) })
  }

  private serial (fn: () => Promise<void>): Promise<void> {
    this.chain = this.chain.then(fn).catch((err: Error) => { this.host.log.error('applying routes failed (retried on the next change or in 1 s)', { error: err.message }) })
    return this.chain
  }

  /** The live gateway members as records say, with their routes checked (bad or conflicting ones dropped and counted). */
  private liveMembers (): GatewayMember[] {
    const self = this.host.self()
    const out: GatewayMember[] = []
    const consider = (r: NodeRecord): void => {
      if (r.gw === undefined || r.routes.length === 0) return
      const routes: string[] = []
      for (const c of r.routes) {
        const p = parseRouteSpec(c, this.init.meshRanges)
        if (!p.ok || p.cidr !== c) this.reject(r, c, p.ok ? 'not canonical' : p.error, r.gw.group)
        else if (this.host.grants !== undefined && !this.host.grants(r, c)) this.reject(r, c, 'its certificate does not grant this route', r.gw.group)
        else routes.push(c)
      }
      if (routes.length > 0) out.push({ nodeId: r.nodeId, name: r.name, group: r.gw.group, priority: r.gw.prio, routes, ...(r.gw.since === undefined ? {} : { since: r.gw.since }) })
    }
    for (const m of this.host.table().active()) {
      if (m.status === 'alive' && m.conflict === undefined && m.record.nodeId !== self.nodeId) consider(m.record)
    }
    if (this.advertises) consider({ ...self, routes: this.init.routes, gw: this.gwInfo() })
    const { accepted, rejected } = resolveRouteConflicts(out.map(m => ({ nodeId: m.nodeId, group: m.group, routes: m.routes })))
    for (const x of rejected) {
      const m = out.find(o => o.nodeId === x.nodeId)
      if (m !== undefined) this.reject({ nodeId: m.nodeId, name: m.name } as NodeRecord, x.cidr, `overlaps group ${x.with}'s routes`, m.group)
    }
    return out.map(m => ({ ...m, routes: accepted.get(m.nodeId) ?? [] })).filter(m => m.routes.length > 0)
  }

  private reject (r: Pick<NodeRecord, 'nodeId' | 'name'>, cidr: string, why: string, group: string): void {
    const k = `${r.nodeId} ${cidr}`
    if (this.rejectedOnce.has(k)) return
    this.rejectedOnce.add(k)
    this.host.counted('route-rejected', group)
    this.host.log.warn('advertised route refused', { peer: r.name, nodeId: r.nodeId, route: cidr, reason: why })
  }

  /**
   * The once-a-second timer: only a gateway has anything time-driven to decide (its claim's
   * hold-down); everything else a node elects from changes with the membership, and
   * `evaluate` runs on every membership change.
   */
  tick (): void {
    if (this.advertises) this.evaluate()
  }

  /** Elect, claim or release, and re-plan when the result changed. */
  evaluate (): void {
    if (this.stopped) return
    const now = this.host.now()
    const selfId = this.host.self().nodeId
    let live = this.liveMembers()
    if (this.advertises) {
      const me = live.find(m => m.nodeId === selfId)
      if (me !== undefined) {
        const serving = this.host.servingAt()
        const d = claimDecision({
          self: me, selfClaiming: this.claimSince !== undefined, policy: this.init.policy, live: live.filter(m => m.nodeId !== selfId),
          now, aliveForMs: serving === 0 ? 0 : now - serving, preemptDelayMs: this.init.preemptDelayMs
        })
        // a node that just started has not heard its group yet: claiming now could take the role
        // from a live claimer it does not know of (sticky). Electing needs no claim (the best
        // live member wins without one), so a claim may wait for the hold-down.
        const settled = serving !== 0 && now - serving >= this.init.preemptDelayMs
        if ((d === 'claim' && settled) || d === 'release') {
          this.claimSince = d === 'claim' ? now : undefined
          this.host.log.info(d === 'claim' ? 'claiming the active gateway role' : 'releasing the active gateway role', { group: this.init.group })
          this.host.recordChanged()
          live = this.liveMembers()
        }
      }
    }
    this.groups = electGateways(live)
    for (const [g, st] of this.groups) this.noteActive(g, st, now)
    for (const g of [...this.seen.keys()]) if (!this.groups.has(g)) this.noteActive(g, undefined, now)
    const ownGroups = new Set(this.advertises ? [this.init.group] : [])
    // the host's addresses (a getifaddrs call) only when some other group's routes are in play
    const others = [...this.groups.keys()].some(g => !ownGroups.has(g))
    const allowed = gatewayAllowedIps(this.groups, {
      self: selfId, ownGroups, localAddrs: others ? this.host.localAddrs() : [], exitGroup: this.init.exitGroup
    })
    const key = JSON.stringify([...allowed].sort((a, b) => (a[0] < b[0] ? -1 : 1)))
    if (key !== this.allowedKey) {
      this.allowedKey = key
      this.allowed = allowed
      this.host.planChanged()
    }
    void this.syncHost()
  }

  private noteActive (group: string, st: GroupState | undefined, now: number): void {
    const prev = this.seen.get(group)
    if (prev?.nodeId === st?.active) return
    const table = this.host.table()
    const nameOf = (id: string | undefined): string | undefined => id === undefined ? undefined : (id === this.host.self().nodeId ? this.host.self().name : table.get(id)?.record.name ?? id)
    if (st === undefined) this.seen.delete(group)
    else this.seen.set(group, { nodeId: st.active, since: now })
    const old = prev === undefined ? undefined : table.get(prev.nodeId)
    const reason = prev === undefined ? 'elected' : st === undefined ? 'no live gateway' : old === undefined || old.status === 'left' ? 'left' : old.status === 'dead' ? 'dead' : 'claimed'
    const meta: Record<string, unknown> = { group, from: nameOf(prev?.nodeId), to: nameOf(st?.active), reason }
    // how long this node had no sign of life from the old active when it switched
    if (prev !== undefined && old !== undefined && old.status !== 'alive') meta.gapMs = now - old.lastHeard
    if (prev !== undefined) this.host.counted('failover', group)
    this.host.log.info(prev === undefined ? 'gateway group active' : 'gateway switched', meta)
    const selfActive = st?.active === this.host.self().nodeId && group === this.init.group
    if (group === this.init.group && selfActive !== this.selfActive) {
      this.selfActive = selfActive
      this.runHook(selfActive ? 'active' : 'standby')
    }
  }

  private runHook (event: 'active' | 'standby'): void {
    const hook = this.init.hook
    if (hook === undefined) return
    const runner = this.host.hookRunner ?? execRunner({ timeoutMs: SELF_HOOK_TIMEOUT_MS })
    const t0 = this.host.now()
    this.host.log.info('gateway hook started', { hook, event, group: this.init.group })
    void runner.run([hook, event, this.init.group], { allowFail: true }).then(r => {
      const meta = { hook, event, group: this.init.group, code: r.code, durationMs: this.host.now() - t0, stderr: r.stderr.slice(0, 200) }
      if (r.code === 0) this.host.log.info('gateway hook exited', meta)
      else this.host.log.warn('gateway hook failed', meta)
    })
  }

  private async syncHost (): Promise<void> {
    const kernel = new Set<string>()
    for (const list of this.allowed.values()) for (const c of list) if (!isExitRoute(c)) kernel.add(c)
    // exit routing only while the exit group has an active gateway: without one (none known yet,
    // or all of them gone) the host keeps its own default route — and its gossip to the seeds
    const exitRoutes = this.init.exitGroup === undefined ? undefined : this.groups.get(this.init.exitGroup)?.routes
    const families = { v4: exitRoutes?.includes('0.0.0.0/0') === true, v6: exitRoutes?.includes('::/0') === true }
    const exit = this.init.exitGroup
    const peers = { v4: [] as string[], v6: [] as string[] }
    if (exit !== undefined) {
      for (const m of this.host.table().active()) {
        for (const e of [...m.record.endpoints, ...m.record.gossipAddrs]) {
          const v4 = /^(\d+\.\d+\.\d+\.\d+):\d+$/.exec(e)?.[1] ?? /^\/ip4\/([\d.]+)\//.exec(e)?.[1]
          const v6 = /^\[([0-9a-fA-F:]+)\]:\d+$/.exec(e)?.[1] ?? /^\/ip6\/([0-9a-fA-F:]+)\//.exec(e)?.[1]
          if (v4 !== undefined && !peers.v4.includes(v4)) peers.v4.push(v4)
          if (v6 !== undefined && !peers.v6.includes(v6)) peers.v6.push(v6)
        }
      }
    }
    await this.serial(async () => {
      if (this.stopped) return
      await this.host.routes.syncRoutes([...kernel])
      if (exit !== undefined) await this.host.routes.exitSync(families, peers)
    })
  }

  info (): GroupInfo[] {
    const out: GroupInfo[] = []
    const table = this.host.table()
    const self = this.host.self()
    for (const [g, st] of [...this.groups].sort((a, b) => (a[0] < b[0] ? -1 : 1))) {
      const activeName = st.active === self.nodeId ? self.name : table.get(st.active)?.record.name ?? st.active
      out.push({
        group: g,
        routes: st.routes,
        active: { nodeId: st.active, name: activeName, since: this.seen.get(g)?.since ?? 0 },
        members: st.members.map(m => ({ nodeId: m.nodeId, name: m.name, priority: m.priority, claims: m.since !== undefined }))
      })
    }
    return out
  }
}
