/**
 * This node's view of its own reachability: a STUN server (on two ports, so that one public
 * member is enough to tell a cone NAT from a symmetric one; one socket per family on each, so
 * members on an IPv6 underlay are answered too), periodic STUN probes of other members' servers
 * (never a public STUN server unless configured) — per family, each from its own socket —, and
 * an optional UPnP-IGD / NAT-PMP mapping of the WireGuard port (IPv4).
 */
import {
  classifyNat, createPortMapper, probeNat, startStunServer, underlayNatType,
  type HostPort, type NatType, type PortMapper, type PortMappingLease, type StunServer
} from '@wgmesh/nat'
import { parseIP } from '@wgmesh/core'
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
  /** Called when the NAT type, public address or port mapping changed. */
  onChange: () => void
}

/** What the probes of one family found. */
interface FamilyView { nat: NatType, publicAddress?: string }

export class NatService {
  lease?: PortMappingLease
  private readonly init: NatServiceInit
  private readonly servers: Record<4 | 6, StunServer[]> = { 4: [], 6: [] }
  private readonly view: Record<4 | 6, FamilyView> = { 4: { nat: 'unknown' }, 6: { nat: 'unknown' } }
  private probing = false
  private mapping = false
  private refreshTimer?: NodeJS.Timeout
  private stopped = false

  constructor (init: NatServiceInit) {
    this.init = init
  }

  /** The one NAT type of the record: IPv4's where IPv4 was classified, else IPv6's (underlayNatType). */
  get natType (): NatType { return underlayNatType(this.view[4].nat, this.view[6].nat) }
  /** The NAT type of one family (what its probes found). */
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
    if (this.probing || this.stopped || all.length === 0) return
    const localFamilies = new Set(localAddresses.map(a => parseIP(a)?.family))
    const families = ([4, 6] as const).filter(f => all.some(s => familyOf(s) === f) && (localFamilies.has(f) || (f === 4 && localAddresses.length === 0)))
    if (families.length === 0) return
    this.probing = true
    try {
      const changed = await Promise.all(families.map(async f => await this.probeFamily(f, all.filter(s => familyOf(s) === f), localAddresses)))
      if (changed.some(c => c)) this.init.onChange()
      const nat4 = this.view[4].nat
      if (this.init.upnp && nat4 !== 'public' && nat4 !== 'unknown' && this.lease === undefined) void this.mapPort()
    } finally {
      this.probing = false
    }
  }

  /** One family's probe, from its own socket; true when its view changed. */
  private async probeFamily (family: 4 | 6, servers: HostPort[], localAddresses: string[]): Promise<boolean> {
    const v = this.view[family]
    try {
      const p = await probeNat(servers, { timeoutMs: 800, retries: 2, maxServers: 4 })
      const type = classifyNat(localAddresses, p.localPort, p.mappings)
      // one answer cannot tell cone from symmetric: keep what we knew rather than flap to unknown
      const next = type === 'unknown' && p.mappings.length > 0 ? v.nat : type
      if (next === v.nat && (p.publicAddress === undefined || p.publicAddress === v.publicAddress)) return false
      v.nat = next
      if (p.publicAddress !== undefined) v.publicAddress = p.publicAddress
      this.init.log.info('NAT probed', { family, nat: v.nat, publicAddress: v.publicAddress, answers: p.mappings.length })
      return true
    } catch (err) {
      this.init.log.debug('NAT probe failed', { family, error: (err as Error).message })
      return false
    }
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
