/**
 * This node's view of its own reachability: a STUN server (on two ports, so that one public
 * member is enough to tell a cone NAT from a symmetric one), periodic STUN probes of other
 * members' servers (never a public STUN server unless configured), and an optional
 * UPnP-IGD / NAT-PMP mapping of the WireGuard port.
 */
import {
  classifyNat, createPortMapper, probeNat, startStunServer,
  type HostPort, type NatType, type PortMapper, type PortMappingLease, type StunServer
} from '@wgmesh/nat'
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

export class NatService {
  natType: NatType = 'unknown'
  publicAddress?: string
  lease?: PortMappingLease
  private readonly init: NatServiceInit
  private readonly servers: StunServer[] = []
  private probing = false
  private mapping = false
  private refreshTimer?: NodeJS.Timeout
  private stopped = false

  constructor (init: NatServiceInit) {
    this.init = init
  }

  async start (): Promise<void> {
    if (this.init.stunPort === 0) return
    for (const port of [this.init.stunPort, this.init.stunPort + 1]) {
      try {
        this.servers.push(await startStunServer({ host: '0.0.0.0', port }))
      } catch (err) {
        this.init.log.warn('STUN server could not start (peers will use other members\' servers)', { port, error: (err as Error).message })
      }
    }
  }

  get stunPort (): number | undefined {
    return this.servers.length === 2 ? this.init.stunPort : undefined
  }

  /** Probe the given servers (other members'); classify; maybe map a port. */
  async probe (servers: HostPort[], localAddresses: string[]): Promise<void> {
    const all = [...servers, ...this.init.extraStunServers]
    if (this.probing || this.stopped || all.length === 0) return
    this.probing = true
    try {
      const p = await probeNat(all, { timeoutMs: 800, retries: 2, maxServers: 4 })
      const type = classifyNat(localAddresses, p.localPort, p.mappings)
      // one answer cannot tell cone from symmetric: keep what we knew rather than flap to unknown
      const next = type === 'unknown' && p.mappings.length > 0 ? this.natType : type
      if (next !== this.natType || p.publicAddress !== this.publicAddress) {
        this.natType = next
        if (p.publicAddress !== undefined) this.publicAddress = p.publicAddress
        this.init.log.info('NAT probed', { nat: this.natType, publicAddress: this.publicAddress, answers: p.mappings.length })
        this.init.onChange()
      }
      if (this.init.upnp && this.natType !== 'public' && this.natType !== 'unknown' && this.lease === undefined) void this.mapPort()
    } catch (err) {
      this.init.log.debug('NAT probe failed', { error: (err as Error).message })
    } finally {
      this.probing = false
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
      ...this.servers.splice(0).map(async s => await s.close()),
      lease?.unmap()
    ])
  }
}
