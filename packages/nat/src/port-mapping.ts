/**
 * Ask the LAN router to forward the WireGuard UDP port: NAT-PMP (when the gateway IP is
 * known) and UPnP IGD v2, through `@achingbrain/nat-port-mapper` v4. Behind the
 * {@link PortMapper} interface so the agent can inject a fake.
 *
 * Facts about nat-port-mapper 4.0.x this wrapper works around:
 * - UPnP: only `InternetGatewayDevice:2` / `WANIPConnection:2` (AddAnyPortMapping) is
 *   supported; IGD v1-only routers are not found. Lease is at least 3600 s (`ttl` is in ms).
 * - NAT-PMP: the `ttl` option is written to the wire as-is, i.e. in *seconds* (despite the
 *   docs saying ms), so we pass seconds. There is no retransmission: without a signal a silent
 *   gateway hangs forever, so every call here carries a deadline. The gateway object is an
 *   EventEmitter whose 'error' event would crash the process if nobody listened.
 * - `autoRefresh` is turned off: with it, NAT-PMP unmap (ttl 0) schedules an immediate
 *   refresh loop. The agent calls `refresh()` itself, from its timer.
 * - NAT-PMP answers: the library takes the first datagram on its UDP 5350 socket with the
 *   expected opcode from *any* source, and reads its fields without a length check (a short
 *   one threw inside the socket's 'message' handler: an uncaught exception). We put a filter in
 *   front of its handler ({@link onlyFromGateway}): only datagrams from the gateway's address
 *   and port 5351, of the answer's full length, reach it. What the library still does and we
 *   cannot change: it binds 0.0.0.0:5350 with SO_REUSEADDR (another local process can bind it
 *   too), and NAT-PMP has no authentication, so a host on the LAN that spoofs the gateway's
 *   address is still believed (as by every NAT-PMP client).
 * - UPnP: SSDP answers come from anyone on the LAN; when the default gateway is known only a
 *   device at that address is used (before, the last device found was used when none matched).
 */
import dgram from 'node:dgram'
import { readFile } from 'node:fs/promises'
import os from 'node:os'
import { cidrContainsText, deadline, formatIPv4, parseCidr, parseIP } from '@wgmesh/core'
import { pmpNat, upnpNat } from '@achingbrain/nat-port-mapper'
import type { Gateway, MapPortOptions, UPnPNAT, UPnPNATOptions, GlobalMapPortOptions } from '@achingbrain/nat-port-mapper'
import { GatewayNotFoundError, InvalidArgumentError, PortMappingError } from './errors.js'

export type PortMappingMethod = 'pmp' | 'upnp'

export interface MapPortRequest {
  /** The WireGuard listen port. Also requested as the external port. */
  localPort: number
  protocol: 'UDP'
  /** Requested lease, seconds. UPnP leases are at least 3600 s (library minimum). */
  ttlS: number
  /**
   * The router: an IPv4 address (NAT-PMP to it, then UPnP discovery), or a UPnP device
   * description URL like 'http://192.0.2.1:5000/rootDesc.xml' (no SSDP discovery).
   * Default: the IPv4 default gateway from /proc/net/route, plus UPnP discovery.
   */
  gateway?: string
  /** Our LAN address to map to. Default: the local address on the gateway's subnet. */
  internalAddress?: string
  /** Which protocols to try, in order. Default ['pmp', 'upnp']. */
  methods?: PortMappingMethod[]
  /** Per-method deadline, ms. Default 3000 (NAT-PMP), 5000 (UPnP discovery + SOAP). */
  pmpTimeoutMs?: number
  upnpTimeoutMs?: number
  description?: string
  signal?: AbortSignal
}

export interface PortMappingLease {
  method: PortMappingMethod
  externalAddress: string
  externalPort: number
  internalAddress: string
  internalPort: number
  /** Renew the lease (call well before `ttlS` runs out). */
  refresh(signal?: AbortSignal): Promise<void>
  /** Remove the mapping and release sockets. Best effort: errors are reported, not retried. */
  unmap(signal?: AbortSignal): Promise<void>
}

/** What the agent depends on. */
export interface PortMapper {
  map(req: MapPortRequest): Promise<PortMappingLease>
}

/** The two factories of `@achingbrain/nat-port-mapper` (an injection seam for tests). */
export interface NatPortMapperClient {
  upnpNat(options?: UPnPNATOptions): UPnPNAT
  pmpNat(ipAddress: string, options?: GlobalMapPortOptions): Gateway
}

export interface PortMapperInit {
  client?: NatPortMapperClient
  /** Interface table used to pick the internal address. Default `os.networkInterfaces`. */
  networkInterfaces?: () => NodeJS.Dict<os.NetworkInterfaceInfo[]>
  /** Default IPv4 gateway lookup. Default: parse /proc/net/route. */
  defaultGateway?: () => Promise<string | undefined>
}

const realClient: NatPortMapperClient = { upnpNat, pmpNat }

/**
 * The IPv4 default gateway from the text of /proc/net/route (lowest metric, with a gateway
 * set); undefined if there is none. Pure.
 */
export function parseProcNetRoute (text: string, excludeInterfaces: string[] = []): string | undefined {
  let best: { gw: string, metric: number } | undefined
  for (const line of text.split('\n').slice(1)) {
    const f = line.trim().split(/\s+/)
    if (f.length < 8) continue
    const [iface, dest, gw, flags, , , metric, mask] = f as [string, string, string, string, string, string, string, string]
    if (excludeInterfaces.includes(iface)) continue
    if (dest !== '00000000' || mask !== '00000000' || !/^[0-9A-Fa-f]{8}$/.test(gw) || gw === '00000000') continue
    if ((parseInt(flags, 16) & 0x3) !== 0x3) continue // RTF_UP | RTF_GATEWAY
    const le = parseInt(gw, 16)
    const addr = formatIPv4(BigInt(((le & 0xff) << 24 | (le >>> 8 & 0xff) << 16 | (le >>> 16 & 0xff) << 8 | (le >>> 24 & 0xff)) >>> 0))
    const m = Number(metric)
    if (best === undefined || m < best.metric) best = { gw: addr, metric: m }
  }
  return best?.gw
}

async function procDefaultGateway (): Promise<string | undefined> {
  try { return parseProcNetRoute(await readFile('/proc/net/route', 'utf8')) } catch { return undefined }
}

/** Our IPv4 address on the subnet that contains `gatewayHost`, from an interface table. Pure. */
export function localAddressFor (gatewayHost: string, interfaces: NodeJS.Dict<os.NetworkInterfaceInfo[]>): string | undefined {
  for (const infos of Object.values(interfaces)) {
    for (const i of infos ?? []) {
      if (i.internal || i.family !== 'IPv4' || i.cidr == null) continue
      try {
        if (cidrContainsText(parseCidr(i.cidr), gatewayHost)) return i.address
      } catch { /* malformed entry */ }
    }
  }
  return undefined
}

/** The source address the kernel would use towards `host` (UDP connect: sends nothing). */
async function routeSourceAddress (host: string): Promise<string | undefined> {
  const s = dgram.createSocket('udp4')
  s.on('error', () => {})
  try {
    await new Promise<void>((resolve, reject) => {
      s.once('error', reject)
      s.connect(9, host, () => { resolve() })
    })
    return s.address().address
  } catch {
    return undefined
  } finally {
    s.close()
  }
}

/** NAT-PMP server port (RFC 6886). */
const PMP_SERVER_PORT = 5351

/**
 * Let only the gateway's answers reach nat-port-mapper's NAT-PMP handler: from `host`:5351,
 * at least as long as the answer to its opcode (external address: 12 bytes, mapping: 16).
 * The library's socket calls `this.onMessage(msg, rinfo)`, so an own property replaces it.
 * Gateways without that method (fakes, another library version) are left as they are.
 * Returns a counter of the datagrams dropped.
 */
export function onlyFromGateway (gw: Gateway, host: string): { dropped: number } {
  const count = { dropped: 0 }
  const g = gw as unknown as { onMessage?: (msg: Buffer, rinfo: { address: string, port: number }) => void }
  if (typeof g.onMessage !== 'function') return count
  const handler = g.onMessage.bind(gw)
  g.onMessage = (msg, rinfo) => {
    const op = msg.length >= 2 ? msg[1] : undefined
    const need = op === 128 ? 12 : 16
    if (rinfo.address !== host || rinfo.port !== PMP_SERVER_PORT || op === undefined || msg.length < need) { count.dropped++; return }
    handler(msg, rinfo)
  }
  return count
}

/** Swallow (but surface as a rejection) 'error' events of EventEmitter gateways (PMP). */
function guardErrors (gw: Gateway): Promise<never> {
  return new Promise<never>((_resolve, reject) => {
    const em = gw as unknown as { on?: (ev: string, fn: (e: Error) => void) => void }
    if (typeof em.on === 'function') em.on('error', (e: Error) => { reject(e) })
  })
}

async function stopQuietly (gw: Gateway | undefined): Promise<void> {
  if (gw === undefined) return
  const d = deadline(2000)
  try { await gw.stop({ signal: d.signal }) } catch { /* best effort */ } finally { d.clear() }
}

function describe (err: unknown): string {
  return err instanceof Error ? err.message : String(err)
}

export function createPortMapper (init: PortMapperInit = {}): PortMapper {
  const client = init.client ?? realClient
  const interfaces = init.networkInterfaces ?? (() => os.networkInterfaces())
  const defaultGateway = init.defaultGateway ?? procDefaultGateway

  async function internalFor (req: MapPortRequest, gatewayHost: string | undefined): Promise<string> {
    if (req.internalAddress !== undefined) return req.internalAddress
    if (gatewayHost !== undefined && parseIP(gatewayHost)?.family === 4) {
      const a = localAddressFor(gatewayHost, interfaces()) ?? await routeSourceAddress(gatewayHost)
      if (a !== undefined) return a
    }
    throw new GatewayNotFoundError(`no local IPv4 address towards gateway ${gatewayHost ?? '(unknown)'}`)
  }

  async function viaPmp (req: MapPortRequest, gatewayIp: string): Promise<PortMappingLease> {
    const internalAddress = await internalFor(req, gatewayIp)
    const opts = (signal: AbortSignal, ttl: number): MapPortOptions => ({
      protocol: 'udp', externalPort: req.localPort, ttl, autoRefresh: false, signal, description: req.description ?? 'wgmesh'
    })
    // One short-lived gateway object per operation: it binds UDP 5350 until stopped.
    const once = async <T>(signal: AbortSignal | undefined, fn: (gw: Gateway, s: AbortSignal) => Promise<T>): Promise<T> => {
      const d = deadline(req.pmpTimeoutMs ?? 3000, signal)
      const s = d.signal
      let gw: Gateway | undefined
      try {
        gw = client.pmpNat(gatewayIp, { autoRefresh: false })
        onlyFromGateway(gw, gatewayIp)
        return await Promise.race([fn(gw, s), guardErrors(gw)])
      } catch (err) {
        if (s.aborted && signal?.aborted !== true) {
          throw new GatewayNotFoundError(`NAT-PMP gateway ${gatewayIp} did not answer`, { cause: err })
        }
        throw new PortMappingError('pmp', `NAT-PMP mapping via ${gatewayIp} failed: ${describe(err)}`, { cause: err })
      } finally {
        d.clear()
        await stopQuietly(gw)
      }
    }
    const m = await once(req.signal, async (gw, s) => await gw.map(req.localPort, internalAddress, opts(s, req.ttlS)))
    return lease('pmp', m.externalHost, m.externalPort, internalAddress, req.localPort, {
      refresh: async (signal) => { await once(signal, async (gw, s) => await gw.map(req.localPort, internalAddress, opts(s, req.ttlS))) },
      // the library's unmap() defaults to TCP; its options go through to map(), so say UDP
      unmap: async (signal) => { await once(signal, async (gw, s) => { await gw.unmap(req.localPort, { signal: s, protocol: 'udp' } as unknown as { signal: AbortSignal }) }) }
    })
  }

  async function viaUpnp (req: MapPortRequest, gateway: string | undefined): Promise<PortMappingLease> {
    const upnp = client.upnpNat({ autoRefresh: false })
    const timeoutMs = req.upnpTimeoutMs ?? 5000
    const d = deadline(timeoutMs, req.signal)
    const s = d.signal
    let gw: Gateway | undefined
    try {
      if (gateway !== undefined && /^https?:\/\//i.test(gateway)) {
        gw = await upnp.getGateway(new URL(gateway), { signal: s })
      } else {
        for await (const g of upnp.findGateways({ signal: s, searchInterval: 1000 })) {
          // anyone on the LAN can answer SSDP: with a known gateway, only a device there is used
          if (g.family !== 'IPv4' || (gateway !== undefined && g.host !== gateway)) continue
          gw = g
          break
        }
      }
    } catch (err) {
      d.clear()
      await stopQuietly(gw)
      throw new GatewayNotFoundError(`UPnP gateway lookup failed: ${describe(err)}`, { cause: err })
    }
    if (gw === undefined) { d.clear(); throw new GatewayNotFoundError('no UPnP IGDv2 gateway answered SSDP discovery') }
    const found = gw
    const internalAddress = await internalFor(req, found.host).catch(async (err) => { d.clear(); await stopQuietly(found); throw err })
    const opts = (signal: AbortSignal): MapPortOptions => ({
      protocol: 'UDP', externalPort: req.localPort, ttl: req.ttlS * 1000, autoRefresh: false, signal, description: req.description ?? 'wgmesh'
    })
    const map = async (signal: AbortSignal | undefined, dl?: { signal: AbortSignal, clear: () => void }): Promise<{ externalHost: string, externalPort: number }> => {
      const op = dl ?? deadline(timeoutMs, signal)
      try {
        return await found.map(req.localPort, internalAddress, opts(op.signal))
      } catch (err) {
        throw new PortMappingError('upnp', `UPnP mapping via ${found.host} failed: ${describe(err)}`, { cause: err })
      } finally {
        op.clear()
      }
    }
    let m: { externalHost: string, externalPort: number }
    try {
      m = await map(undefined, d)
    } catch (err) {
      await stopQuietly(found)
      throw err
    }
    return lease('upnp', m.externalHost, m.externalPort, internalAddress, req.localPort, {
      refresh: async (signal) => { await map(signal) },
      unmap: async (signal) => {
        const op = deadline(timeoutMs, signal)
        try {
          await found.unmap(req.localPort, { signal: op.signal })
        } finally {
          op.clear()
          await stopQuietly(found)
        }
      }
    })
  }

  function lease (
    method: PortMappingMethod, externalAddress: string, externalPort: number, internalAddress: string, internalPort: number,
    ops: Pick<PortMappingLease, 'refresh' | 'unmap'>
  ): PortMappingLease {
    if (parseIP(externalAddress) === undefined || !Number.isInteger(externalPort) || externalPort < 1 || externalPort > 65535) {
      void ops.unmap().catch(() => {})
      throw new PortMappingError(method, `gateway returned an unusable mapping ${externalAddress}:${externalPort}`)
    }
    return { method, externalAddress, externalPort, internalAddress, internalPort, ...ops }
  }

  return {
    async map (req) {
      if (req.protocol !== 'UDP') throw new InvalidArgumentError('only UDP is mapped (WireGuard)')
      if (!Number.isInteger(req.localPort) || req.localPort < 1 || req.localPort > 65535) {
        throw new InvalidArgumentError(`bad local port ${req.localPort}`)
      }
      if (!(req.ttlS > 0)) throw new InvalidArgumentError(`bad ttlS ${req.ttlS}`)
      const isUrl = req.gateway !== undefined && /^https?:\/\//i.test(req.gateway)
      const gatewayIp = isUrl ? undefined : (req.gateway ?? await defaultGateway())
      const errors: Error[] = []
      for (const method of req.methods ?? ['pmp', 'upnp']) {
        if (req.signal?.aborted === true) break
        if (method === 'pmp' && (gatewayIp === undefined || parseIP(gatewayIp)?.family !== 4)) continue
        try {
          return method === 'pmp' ? await viaPmp(req, gatewayIp as string) : await viaUpnp(req, isUrl ? req.gateway : gatewayIp)
        } catch (err) {
          errors.push(err instanceof Error ? err : new Error(String(err)))
        }
      }
      const refused = errors.find(e => e instanceof PortMappingError || e instanceof InvalidArgumentError)
      if (refused !== undefined) throw refused
      throw new GatewayNotFoundError('no UPnP/NAT-PMP gateway mapped the port', { cause: new AggregateError(errors) })
    }
  }
}

/** One-shot convenience over {@link createPortMapper}. */
export async function mapWireGuardPort (req: MapPortRequest & PortMapperInit): Promise<PortMappingLease> {
  return await createPortMapper(req).map(req)
}
