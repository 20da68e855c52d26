/**
 * LAN discovery by IPv4 broadcast, limited to the local link (TTL 1, subnet broadcast
 * addresses only, never 255.255.255.255 routed anywhere), and by IPv6 link-local multicast
 * to {@link LAN_BEACON_GROUP6} (hop limit 1; joined and sent per interface that has an IPv6
 * link-local address, with its scope) from a second, IPv6-only socket on the same port. The
 * payload is opaque here (one per family: the agent names each family's addresses): the agent
 * seals it with the mesh key and drops what does not open. Opening costs a signature check, so
 * before it, datagrams of either family are dropped when too big or beyond a per-source-IP and
 * a global rate, shared by both sockets (counted in `stats()`). A host without IPv6 runs the
 * IPv4 socket alone (one debug line says why).
 */
import dgram from 'node:dgram'
import os from 'node:os'
import { formatIPv4, parseIPv4, v6Scope } from '@wgmesh/core'
import { RateLimiter } from './rate-limit.js'
import type { SocketFactory } from './socket.js'

/** Largest datagram accepted or sent. Beacons are small; anything bigger is not ours. */
export const MAX_BEACON_BYTES = 1200

export interface BeaconTarget {
  address: string
  port: number
}

/**
 * The IPv6 group LAN beacons go to: link-local scope (ff02::/16, never forwarded by a router),
 * group ID 0x80007767 — in the dynamic range of RFC 3307 §4.1 (0x80000000-0xFFFFFFFF, no IANA
 * assignment), 0x7767 = "wg". On Ethernet it maps to 33:33:80:00:77:67.
 */
export const LAN_BEACON_GROUP6 = 'ff02::8000:7767'

/** An interface to beacon on over IPv6, from {@link lanMulticastLinks6}. */
export interface LanLink6 {
  interface: string
  /** Its link-local addresses (beacons leave from one of them). */
  linkLocal: string[]
}

/** A subnet to beacon on, from {@link lanBroadcastTargets}. */
export interface LanSubnet {
  interface: string
  address: string
  netmask: string
  broadcast: string
}

/**
 * The directed broadcast address of `address`/`netmask` ("192.0.2.7", "255.255.255.0" →
 * "192.0.2.255"). Undefined for non-IPv4 input, non-contiguous masks, and /31 or /32
 * (point-to-point links have no broadcast address).
 */
export function broadcastAddress (address: string, netmask: string): string | undefined {
  const a = parseIPv4(address)
  const m = parseIPv4(netmask)
  if (a === undefined || m === undefined) return undefined
  const host = ~m & 0xffffffffn
  if ((host & (host + 1n)) !== 0n) return undefined // mask bits not contiguous
  if (host < 3n) return undefined // /31, /32
  return formatIPv4((a & m) | host)
}

/** Whether `name` matches an exclude entry (exact string, or RegExp). */
function excluded (name: string, exclude: Array<string | RegExp>): boolean {
  return exclude.some(e => typeof e === 'string' ? e === name : e.test(name))
}

/**
 * IPv4 subnets to beacon on: every non-internal IPv4 address of every interface whose name is
 * not excluded (pass the WireGuard interface, container bridges…). Pure given `interfaces`.
 */
export function lanBroadcastTargets (
  exclude: Array<string | RegExp> = [],
  interfaces: NodeJS.Dict<os.NetworkInterfaceInfo[]> = os.networkInterfaces()
): LanSubnet[] {
  const out: LanSubnet[] = []
  const seen = new Set<string>()
  for (const [name, infos] of Object.entries(interfaces)) {
    if (infos === undefined || excluded(name, exclude)) continue
    for (const i of infos) {
      if (i.internal || i.family !== 'IPv4') continue
      const broadcast = broadcastAddress(i.address, i.netmask)
      if (broadcast === undefined || seen.has(broadcast)) continue
      seen.add(broadcast)
      out.push({ interface: name, address: i.address, netmask: i.netmask, broadcast })
    }
  }
  return out
}

/**
 * Interfaces to beacon on over IPv6: every non-internal one whose name is not excluded and that
 * has an IPv6 link-local address (an interface that is down has none). Pure given `interfaces`.
 */
export function lanMulticastLinks6 (
  exclude: Array<string | RegExp> = [],
  interfaces: NodeJS.Dict<os.NetworkInterfaceInfo[]> = os.networkInterfaces()
): LanLink6[] {
  const out: LanLink6[] = []
  for (const [name, infos] of Object.entries(interfaces)) {
    if (infos === undefined || excluded(name, exclude)) continue
    const ll = infos.filter(i => !i.internal && i.family === 'IPv6' && v6Scope(i.address) === 'link-local').map(i => i.address)
    if (ll.length > 0) out.push({ interface: name, linkLocal: ll })
  }
  return out
}

/** "fe80::1%eth0" → "fe80::1". */
export function withoutZone (address: string): string {
  const i = address.indexOf('%')
  return i < 0 ? address : address.slice(0, i)
}

export interface LanBeaconInit {
  /** UDP port beacons are sent to and received on. 0 = ephemeral (tests with `targets`). */
  port: number
  /** Address to receive on. Default '0.0.0.0' (broadcasts only arrive on a wildcard bind). */
  bindAddress?: string
  /**
   * Where to send. Default: the broadcast address of each LAN subnet
   * ({@link lanBroadcastTargets}) at `port`, recomputed every round (addresses change).
   */
  targets?: () => BeaconTarget[]
  /** Interface names (or patterns) never beaconed on, e.g. the WireGuard interface. */
  excludeInterfaces?: Array<string | RegExp>
  /**
   * The IPv6 socket. Default: on with a real port (`port` ≠ 0), off with port 0 unless
   * `bindAddress6` or `targets6` is given (tests: a beacon to an ephemeral port reaches nobody).
   */
  ipv6?: boolean
  /** Address the IPv6 socket binds. Default '::' (multicast arrives on a wildcard bind). */
  bindAddress6?: string
  /**
   * Where IPv6 beacons go. Default: {@link LAN_BEACON_GROUP6} at `port` on each interface of
   * {@link lanMulticastLinks6} ("ff02::8000:7767%eth0"), joined on each first.
   */
  targets6?: () => BeaconTarget[]
  /** The bytes to send to each family, produced fresh each round (≤ {@link MAX_BEACON_BYTES}); undefined: none to that family. */
  payload: (family: 4 | 6) => Uint8Array | undefined
  /** Called for every datagram received from someone else (`address` of an IPv6 link-local source carries its zone). */
  onBeacon: (data: Uint8Array, from: { address: string, port: number, family: 4 | 6 }) => void
  /** Period between rounds, ms. Default 10 000. The first round is sent at once. */
  intervalMs?: number
  /**
   * After `fastRounds` rounds at `intervalMs` (counted from the start and from every
   * `announce()`), rounds come every `slowIntervalMs` instead (default: `intervalMs`, i.e. never
   * slower). Beacons cost every neighbour a verify each: once the LAN is known, they only need
   * to show that a neighbour is still there.
   */
  slowIntervalMs?: number
  /** Rounds at `intervalMs` before slowing down. Default 6. */
  fastRounds?: number
  /** Drop datagrams from one of our own addresses with our own port (our own broadcasts). Default true. */
  ignoreSelf?: boolean
  socketFactory?: SocketFactory
  onError?: (err: Error) => void
  /** Debug lines that are not errors (IPv6 beaconing off, and why). */
  onDebug?: (msg: string, fields?: Record<string, unknown>) => void
  /** Datagrams handed to `onBeacon` per second per source IP (token bucket). Default 2, burst 4. */
  ratePerSecond?: number
  burst?: number
  /** Datagrams handed to `onBeacon` per second from all sources together. Default 100. */
  globalRatePerSecond?: number
  /** Milliseconds clock for the rate limiters (tests). */
  now?: () => number
}

export interface LanBeaconStats {
  /** Datagrams handed to `onBeacon`. */
  delivered: number
  /** Empty or larger than {@link MAX_BEACON_BYTES}. */
  oversized: number
  /** Beyond the per-source or the global rate. */
  rateLimited: number
  /** Interfaces the IPv6 socket joined {@link LAN_BEACON_GROUP6} on (0: no IPv6 beacons). */
  links6: number
}

export interface LanBeacon {
  /** Bound address (port is useful with `port: 0`). */
  address(): { address: string, port: number }
  /** The IPv6 socket's bound address, undefined when it is off. */
  address6(): { address: string, port: number } | undefined
  stats(): LanBeaconStats
  /** Send one round now (also done on every tick). */
  announce(): Promise<void>
  close(): Promise<void>
}

async function bind (socket: dgram.Socket, port: number, address: string): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    const onErr = (err: Error): void => { reject(err) }
    socket.once('error', onErr)
    socket.bind(port, address, () => { socket.off('error', onErr); resolve() })
  })
}

async function closeQuietly (socket: dgram.Socket): Promise<void> {
  await new Promise<void>(resolve => {
    try { socket.close(() => { resolve() }) } catch { resolve() } // never bound, or closed already
  })
}

export async function startLanBeacon (init: LanBeaconInit): Promise<LanBeacon> {
  const socket = init.socketFactory !== undefined ? init.socketFactory('udp4') : dgram.createSocket({ type: 'udp4' })
  const onError = init.onError ?? (() => {})
  const debug = init.onDebug ?? (() => {})
  await bind(socket, init.port, init.bindAddress ?? '0.0.0.0')
  socket.on('error', (err: Error) => { onError(err) })
  socket.setBroadcast(true)
  socket.setTTL(1)
  const bound = socket.address()

  // IPv6: a socket of its own (IPv6 only, so that it shares the port with the IPv4 one)
  const wantV6 = init.ipv6 ?? (init.port !== 0 || init.bindAddress6 !== undefined || init.targets6 !== undefined)
  let socket6: dgram.Socket | undefined
  if (wantV6) {
    const s6 = init.socketFactory !== undefined ? init.socketFactory('udp6') : dgram.createSocket({ type: 'udp6', ipv6Only: true })
    try {
      await bind(s6, init.port, init.bindAddress6 ?? '::')
      s6.on('error', (err: Error) => { onError(err) })
      s6.setTTL(1)
      s6.setMulticastTTL(1)
      s6.setMulticastLoopback(false)
      socket6 = s6
    } catch (err) { // no IPv6 on this host (or the port is taken on it): IPv4 only
      debug('LAN beacons over IPv6 off: no IPv6 socket', { port: init.port, error: (err as Error).message })
      await closeQuietly(s6)
    }
  }
  const bound6 = socket6?.address()

  // our own addresses, read at most once a second: every datagram is checked, before the rate
  // limiters, so a flood must not cost a getifaddrs() each
  let own: { at: number, addrs: Set<string> } | undefined
  const ownAddresses = (): Set<string> => {
    const t = Date.now()
    if (own === undefined || t - own.at >= 1000 || t < own.at) {
      own = { at: t, addrs: new Set(Object.values(os.networkInterfaces()).flatMap(infos => (infos ?? []).map(i => i.address))) }
    }
    return own.addrs
  }
  const isSelf = (address: string, port: number, family: 4 | 6): boolean =>
    port === (family === 4 ? bound.port : bound6?.port) && ownAddresses().has(withoutZone(address))
  const clock = init.now !== undefined ? { now: init.now } : {}
  const rate = init.ratePerSecond ?? 2
  const perSource = new RateLimiter({ ratePerSecond: rate, burst: init.burst ?? 2 * rate, maxKeys: 4096, ...clock })
  const globalRate = init.globalRatePerSecond ?? 100
  const global = new RateLimiter({ ratePerSecond: globalRate, burst: globalRate, maxKeys: 1, ...clock })
  const stats: LanBeaconStats = { delivered: 0, oversized: 0, rateLimited: 0, links6: 0 }
  const receive = (family: 4 | 6) => (msg: Buffer, rinfo: dgram.RemoteInfo): void => {
    if (msg.length === 0 || msg.length > MAX_BEACON_BYTES) { stats.oversized++; return }
    if ((init.ignoreSelf ?? true) && isSelf(rinfo.address, rinfo.port, family)) return
    if (!perSource.take(withoutZone(rinfo.address)) || !global.take('')) { stats.rateLimited++; return }
    stats.delivered++
    try {
      init.onBeacon(new Uint8Array(msg), { address: rinfo.address, port: rinfo.port, family })
    } catch (err) {
      onError(err instanceof Error ? err : new Error(String(err)))
    }
  }
  socket.on('message', receive(4))
  socket6?.on('message', receive(6))

  const targets = init.targets ?? (() =>
    lanBroadcastTargets(init.excludeInterfaces ?? []).map(s => ({ address: s.broadcast, port: init.port })))
  // the group is joined once per interface, by name; an interface that goes away takes its
  // membership with it, so it is forgotten here too (and joined again if it comes back)
  const joined = new Set<string>()
  let saidNoLink = false
  const targets6 = init.targets6 ?? ((): BeaconTarget[] => {
    if (socket6 === undefined || init.port === 0) return []
    const links = lanMulticastLinks6(init.excludeInterfaces ?? [])
    if (links.length === 0 && !saidNoLink) {
      saidNoLink = true
      debug('LAN beacons over IPv6 off for now: no interface with an IPv6 link-local address')
    }
    for (const name of joined) if (!links.some(l => l.interface === name)) joined.delete(name)
    const out: BeaconTarget[] = []
    for (const l of links) {
      if (!joined.has(l.interface)) {
        try {
          socket6.addMembership(LAN_BEACON_GROUP6, `::%${l.interface}`)
        } catch (err) { // EADDRINUSE: still a member (its link-local address came back); else not beaconed on
          if ((err as NodeJS.ErrnoException).code !== 'EADDRINUSE') {
            onError(new Error(`cannot join ${LAN_BEACON_GROUP6} on ${l.interface}: ${(err as Error).message}`))
            continue
          }
        }
        joined.add(l.interface)
      }
      out.push({ address: `${LAN_BEACON_GROUP6}%${l.interface}`, port: init.port })
    }
    stats.links6 = joined.size
    return out
  })
  let closed = false

  const sendAll = async (s: dgram.Socket, family: 4 | 6, to: BeaconTarget[]): Promise<void> => {
    if (to.length === 0) return
    let data: Uint8Array | undefined
    try {
      data = init.payload(family)
    } catch (err) {
      onError(err instanceof Error ? err : new Error(String(err)))
      return
    }
    if (data === undefined) return
    if (data.length > MAX_BEACON_BYTES) {
      onError(new RangeError(`beacon payload of ${data.length} bytes exceeds ${MAX_BEACON_BYTES}`))
      return
    }
    const bytes = data
    await Promise.all(to.map(async t => {
      await new Promise<void>(resolve => {
        try {
          s.send(bytes, t.port, t.address, (err) => {
            if (err != null) onError(err)
            resolve()
          })
        } catch (err) { // closed meanwhile
          if (!closed) onError(err instanceof Error ? err : new Error(String(err)))
          resolve()
        }
      })
    }))
  }

  const announce = async (): Promise<void> => {
    if (closed) return
    await Promise.all([
      sendAll(socket, 4, targets()),
      socket6 === undefined ? undefined : sendAll(socket6, 6, targets6())
    ])
  }

  // fast rounds first (and again after every announce() from outside), then slow ones
  const fastMs = init.intervalMs ?? 10_000
  const slowMs = Math.max(fastMs, init.slowIntervalMs ?? fastMs)
  const fastRounds = init.fastRounds ?? 6
  let rounds = 0
  let timer: NodeJS.Timeout | undefined
  const schedule = (): void => {
    if (closed) return
    timer = setTimeout(() => { rounds++; void announce(); schedule() }, rounds < fastRounds ? fastMs : slowMs)
    timer.unref()
  }
  void announce()
  schedule()

  return {
    address: () => ({ address: bound.address, port: bound.port }),
    address6: () => bound6 === undefined ? undefined : { address: bound6.address, port: bound6.port },
    stats: () => ({ ...stats }),
    announce: async () => {
      // a round now, and fast rounds again from here (something changed on the LAN)
      rounds = 0
      clearTimeout(timer)
      schedule()
      await announce()
    },
    close: async () => {
      if (closed) return
      closed = true
      clearTimeout(timer)
      await Promise.all([socket, ...(socket6 === undefined ? [] : [socket6])].map(closeQuietly))
    }
  }
}
