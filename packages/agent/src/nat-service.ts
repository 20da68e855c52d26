/**
 * This node's view of its own reachability: a STUN server (on two ports, so that one public
 * member is enough to tell a cone NAT from a symmetric one; one socket per family on each, so
 * members on an IPv6 underlay are answered too; the two ports of a family paired, so that a
 * change-port request is answered from the other one), periodic STUN probes of other members'
 * servers (never a public STUN server unless configured) — per family, each from its own
 * socket —, and an optional UPnP-IGD / NAT-PMP mapping of the WireGuard port (IPv4).
 *
 * A probe that sees our own address asks the members' servers that answered for an answer from
 * their other port, from a fresh socket: none arriving, twice in a row, means a stateful
 * firewall (`firewalled`, said `cone` in the record). A probe that got no answer at all is retried soon (1, 2, 4, 8, 8 s)
 * with other members' servers: those that stayed silent are passed over for a minute (a
 * firewalled member's server answers nobody), and members seen in earlier probes stand in when
 * the caller named only silent ones. Until the retries run out, the family keeps what it knew.
 */
import {
  classifyNat, createPortMapper, probeFiltering, probeNat, recordNatType, startStunServer, underlayNatType, withFiltering,
  type FilteringResult, type HostPort, type NatType, type PortMapper, type PortMappingLease, type RecordNatType, type SocketFactory, type StunServer
} from '@wgmesh/nat'
import { canonicalIP, parseIP } from '@wgmesh/core'
import type { Logger } from './logger.js'

export interface NatServiceInit {
  /** UDP port of our STUN server; it also answers on port + 1. 0 = no STUN server. */
  stunPort: number
  wgPort: number
  /** Extra STUN servers ("host:port") for real deployments. */
  extraStunServers: HostPort[]
  upnp: boolean
  portMapper?: PortMapper
  log: Logger
  /** Creates the probes' sockets (tests). Default dgram.createSocket. */
  socketFactory?: SocketFactory
  /** Called when the NAT type, public address or port mapping changed. */
  onChange: () => void
}

/** What the probes of one family found. */
interface FamilyView { nat: NatType, publicAddress?: string }

/** Retries of a probe that got no answer: after 1, 2, 4, 8 and 8 s (then the caller's own schedule). */
export const PROBE_RETRY_MS = [1000, 2000, 4000, 8000, 8000] as const
/** A server host that answered nothing is passed over this long. */
const SILENT_MS = 60_000
/** Servers seen in earlier probes stand in for silent ones this long (at most POOL_MAX hosts). */
const POOL_MS = 10 * 60_000
const POOL_MAX = 64
/** A family whose public address has not moved reuses its filtering verdict this long (probes run every 16 s). */
export const FILTERING_RECHECK_MS = 5 * 60_000

export class NatService {
  lease?: PortMappingLease
  private readonly init: NatServiceInit
  private readonly servers: Record<4 | 6, StunServer[]> = { 4: [], 6: [] }
  private readonly view: Record<4 | 6, FamilyView> = { 4: { nat: 'unknown' }, 6: { nat: 'unknown' } }
  /** Members' servers seen lately (key host|port), and hosts that answered nothing (→ until when). */
  private readonly pool = new Map<string, { server: HostPort, at: number }>()
  private readonly silent = new Map<string, number>()
  /** Per family: the retry pending after an unanswered probe, and how many ran. */
  private readonly retry: Record<4 | 6, { timer?: NodeJS.Timeout, n: number }> = { 4: { n: 0 }, 6: { n: 0 } }
  /** Per family: the last filtering verdict, for which public address, and when. */
  private readonly filteringSeen: Record<4 | 6, { verdict: FilteringResult, address?: string, at: number } | undefined> = { 4: undefined, 6: undefined }
  private lastLocals: string[] = []
  private lastGiven: HostPort[] = []
  private probing = false
  private queued?: { servers: HostPort[], localAddresses: string[] }
  private mapping = false
  private refreshTimer?: NodeJS.Timeout
  private stopped = false

  constructor (init: NatServiceInit) {
    this.init = init
  }

  /**
   * The one NAT type of the record: IPv4's where IPv4 was classified, else IPv6's
   * (underlayNatType); `firewalled` says `cone` (recordNatType: older agents know no other).
   */
  get natType (): RecordNatType { return recordNatType(underlayNatType(this.view[4].nat, this.view[6].nat)) }
  /** The NAT type of one family (what its probes found; `firewalled` included). */
  natTypeOf (family: 4 | 6): NatType { return this.view[family].nat }
  /** Our IPv4 address as members' STUN servers saw it. */
  get publicAddress (): string | undefined { return this.view[4].publicAddress }
  /** Our IPv6 address as members' STUN servers saw it. */
  get publicAddress6 (): string | undefined { return this.view[6].publicAddress }

  async start (): Promise<void> {
    if (this.init.stunPort === 0) return
    for (const port of [this.init.stunPort, this.init.stunPort + 1]) {
      try {
        this.servers[4].push(await startStunServer({ host: '0.0.0.0', port }))
      } catch (err) {
        this.init.log.warn('STUN server could not start (peers will use other members\' servers)', { port, error: (err as Error).message })
      }
      try {
        this.servers[6].push(await startStunServer({ host: '::', port, ipv6Only: true }))
      } catch (err) { // no IPv6 on this host: nobody can ask over IPv6 either
        this.init.log.debug('STUN server not on IPv6', { port, error: (err as Error).message })
      }
    }
    for (const f of [4, 6] as const) {
      const [a, b] = this.servers[f]
      if (a !== undefined && b !== undefined) a.pair(b) // change-port requests answered from the other port
    }
  }

  /** The port our STUN servers answer on (and the one above), when both run in one family at least. */
  get stunPort (): number | undefined {
    return this.servers[4].length === 2 || this.servers[6].length === 2 ? this.init.stunPort : undefined
  }

  /**
   * Probe the given servers (other members'; either family) and classify each family that has
   * servers and one of our addresses; maybe map a port.
   */
  async probe (servers: HostPort[], localAddresses: string[]): Promise<void> {
    const all = [...servers, ...this.init.extraStunServers]
    if (this.stopped || all.length === 0) return
    // a probe is running (e.g. the seed guess below): this one runs when it ends, not never
    if (this.probing) { this.queued = { servers, localAddresses }; return }
    const localFamilies = new Set(localAddresses.map(a => parseIP(a)?.family))
    const families = ([4, 6] as const).filter(f => all.some(s => familyOf(s) === f) && (localFamilies.has(f) || (f === 4 && localAddresses.length === 0)))
    if (families.length === 0) return
    const now = Date.now()
    for (const s of servers) this.remember(s, now)
    this.lastLocals = localAddresses
    this.lastGiven = servers
    await this.run(families, f => this.choose(f, servers, now))
  }

  /**
   * Before any member's record is here: ask our seeds' servers at a guessed port (ours: a fleet
   * shares its settings), so that the first record out already carries the public address and
   * NAT type — members learn the right endpoint at once instead of after the seed's record, a
   * probe and a second record (~0.5 s while a fleet starts). A guess: short timeouts, nothing
   * is marked silent and no retry follows, and only a NAT is concluded from it (a public host
   * waits for the members' probes, which also judge its filtering); the members' records take
   * over when they arrive.
   */
  async probeSeeds (servers: HostPort[], localAddresses: string[]): Promise<void> {
    if (this.probing || this.stopped || servers.length === 0 || this.natType !== 'unknown') return
    const localFamilies = new Set(localAddresses.map(a => parseIP(a)?.family))
    const families = ([4, 6] as const).filter(f => servers.some(s => familyOf(s) === f) && localFamilies.has(f))
    this.lastLocals = localAddresses
    await this.run(families, f => servers.filter(s => familyOf(s) === f), true)
  }

  /** Probe `families` (servers from `pick`), report a change, maybe map a port. */
  private async run (families: ReadonlyArray<4 | 6>, pick: (f: 4 | 6) => HostPort[], guess = false): Promise<void> {
    if (this.probing || this.stopped) return
    this.probing = true
    try {
      const changed = await Promise.all(families.map(async f => await this.probeFamily(f, pick(f), this.lastLocals, guess)))
      if (changed.some(c => c)) this.init.onChange()
      const nat4 = this.view[4].nat
      if (this.init.upnp && nat4 !== 'public' && nat4 !== 'unknown' && nat4 !== 'firewalled' && this.lease === undefined) void this.mapPort()
    } finally {
      this.probing = false
      const q = this.queued
      this.queued = undefined
      if (q !== undefined) void this.probe(q.servers, q.localAddresses)
    }
  }

  /**
   * The servers of `family` to ask: the caller's that have not been silent lately; if all were,
   * other members' seen in earlier probes that were not; if those were too, the caller's again.
   * The extra (configured) servers always.
   */
  private choose (family: 4 | 6, given: HostPort[], now: number): HostPort[] {
    const quiet = (s: HostPort): boolean => (this.silent.get(hostKey(s)) ?? 0) > now
    const mine = given.filter(s => familyOf(s) === family)
    const extra = this.init.extraStunServers.filter(s => familyOf(s) === family)
    const fresh = mine.filter(s => !quiet(s))
    if (fresh.length > 0 || mine.length === 0) return [...fresh, ...extra]
    const stand = [...this.pool.values()].filter(e => familyOf(e.server) === family && now - e.at <= POOL_MS && !quiet(e.server)).map(e => e.server)
    return [...(stand.length > 0 ? stand : mine), ...extra]
  }

  private remember (s: HostPort, now: number): void {
    const key = `${hostKey(s)}|${s.port}`
    this.pool.delete(key) // re-inserted last: the oldest go first
    this.pool.set(key, { server: s, at: now })
    while (this.pool.size > POOL_MAX) this.pool.delete(this.pool.keys().next().value as string)
  }

  /** One family's probe, from its own socket; true when its view changed. */
  private async probeFamily (family: 4 | 6, servers: HostPort[], localAddresses: string[], guess = false): Promise<boolean> {
    const v = this.view[family]
    if (servers.length === 0) return false
    try {
      const sockets = this.init.socketFactory === undefined ? {} : { socketFactory: this.init.socketFactory }
      const p = await probeNat(servers, { timeoutMs: guess ? 300 : 800, retries: guess ? 1 : 2, maxServers: 4, ...sockets })
      if (!guess) this.noteSilence(family, p.mappings.map(m => m.server), p.errors.map(e => e.server))
      let type = classifyNat(localAddresses, p.localPort, p.mappings)
      // the guess is for NATted joiners (their first record then carries the mapped address); a
      // public one's own address is right already, and its filtering verdict (kept for minutes)
      // must not come from a seed whose second STUN port may not be up yet
      if (guess && (p.mappings.length === 0 || type === 'public')) return false
      let filtering: FilteringResult | undefined
      const members = p.mappings.filter(m => !this.isExtra(m.server)).map(m => m.server)
      if (type === 'public' && members.length > 0) {
        // our own address: open, or a stateful firewall? (members' servers only: they pair their
        // ports). Asked again only when the address moved or the verdict is old, not every probe.
        const seen = this.filteringSeen[family]
        if (seen !== undefined && seen.address === p.publicAddress && Date.now() - seen.at < FILTERING_RECHECK_MS) {
          filtering = seen.verdict
        } else {
          filtering = await probeFiltering(members, { timeoutMs: 800, retries: 2, ...sockets })
          // three datagrams lost once are not a firewall: a second probe must say so too
          if (filtering === 'filtered') filtering = await probeFiltering(members, { timeoutMs: 800, retries: 2, ...sockets })
          this.filteringSeen[family] = { verdict: filtering, address: p.publicAddress, at: Date.now() }
        }
        type = withFiltering(type, filtering)
      }
      // one answer cannot tell cone from symmetric, and no answer says nothing while other
      // servers are still to be tried: keep what we knew rather than flap to unknown
      const keep = type === 'unknown' && (p.mappings.length > 0 || this.retry[family].timer !== undefined)
      const next = keep ? v.nat : type
      if (next === v.nat && (p.publicAddress === undefined || p.publicAddress === v.publicAddress)) return false
      v.nat = next
      if (p.publicAddress !== undefined) v.publicAddress = p.publicAddress
      this.init.log.info('NAT probed', { family, nat: v.nat, publicAddress: v.publicAddress, answers: p.mappings.length, ...(filtering === undefined ? {} : { filtering }) })
      return true
    } catch (err) {
      this.init.log.debug('NAT probe failed', { family, error: (err as Error).message })
      return false
    }
  }

  /** Hosts that answered nothing are passed over for a while; no answer at all → a retry soon. */
  private noteSilence (family: 4 | 6, answered: HostPort[], unanswered: HostPort[]): void {
    const now = Date.now()
    const heard = new Set(answered.map(hostKey))
    for (const h of heard) this.silent.delete(h)
    for (const s of unanswered) if (!heard.has(hostKey(s))) this.silent.set(hostKey(s), now + SILENT_MS)
    for (const [h, until] of this.silent) if (until <= now) this.silent.delete(h)
    const r = this.retry[family]
    clearTimeout(r.timer)
    r.timer = undefined
    if (answered.length > 0) { r.n = 0; return }
    const delay = PROBE_RETRY_MS[r.n]
    if (delay === undefined || this.stopped) { r.n = 0; return }
    r.n++
    r.timer = setTimeout(() => {
      r.timer = undefined
      this.init.log.debug('NAT probe retried (no answer from the servers asked)', { family, attempt: r.n })
      void this.run([family], f => this.choose(f, this.lastGiven, Date.now()))
    }, delay)
    r.timer.unref()
  }

  private isExtra (s: HostPort): boolean {
    return this.init.extraStunServers.some(x => hostKey(x) === hostKey(s) && x.port === s.port)
  }

  private async mapPort (): Promise<void> {
    if (this.mapping || this.stopped) return
    this.mapping = true
    const ttlS = 600
    try {
      const mapper = this.init.portMapper ?? createPortMapper()
      this.lease = await mapper.map({ localPort: this.init.wgPort, protocol: 'UDP', ttlS, description: 'wgmesh' })
      this.init.log.info('WireGuard port mapped by the router', { method: this.lease.method, external: `${this.lease.externalAddress}:${this.lease.externalPort}` })
      this.refreshTimer = setInterval(() => {
        this.lease?.refresh().catch((err: Error) => { this.init.log.warn('port mapping refresh failed', { error: err.message }) })
      }, (ttlS / 2) * 1000)
      this.refreshTimer.unref()
      this.init.onChange()
    } catch (err) {
      this.init.log.debug('no port mapping from the router', { error: (err as Error).message })
    } finally {
      this.mapping = false
    }
  }

  /** The mapped endpoint, if the router gave one. */
  mappedEndpoint (): string | undefined {
    return this.lease === undefined ? undefined : `${this.lease.externalAddress}:${this.lease.externalPort}`
  }

  async stop (): Promise<void> {
    this.stopped = true
    if (this.refreshTimer !== undefined) clearInterval(this.refreshTimer)
    for (const f of [4, 6] as const) clearTimeout(this.retry[f].timer)
    const lease = this.lease
    this.lease = undefined
    await Promise.allSettled([
      ...[...this.servers[4].splice(0), ...this.servers[6].splice(0)].map(async s => await s.close()),
      lease?.unmap()
    ])
  }
}

/** A server's family (hosts are IP literals, IPv6 without brackets). */
function familyOf (s: HostPort): 4 | 6 {
  return s.host.includes(':') ? 6 : 4
}

function hostKey (s: HostPort): string {
  return canonicalIP(s.host) ?? s.host
}
