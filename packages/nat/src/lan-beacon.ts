/**
 * LAN discovery by IPv4 broadcast, limited to the local link (TTL 1, subnet broadcast
 * addresses only, never 255.255.255.255 routed anywhere). The payload is opaque here: the
 * agent seals it with the mesh key and drops what does not open. Opening costs a signature
 * check, so before it, datagrams are dropped when too big or beyond a per-source-IP and a
 * global rate (counted in `stats()`).
 */
import dgram from 'node:dgram'
import os from 'node:os'
import { formatIPv4, parseIPv4 } from '@wgmesh/core'
import { RateLimiter } from './rate-limit.js'
import type { SocketFactory } from './socket.js'

/** Largest datagram accepted or sent. Beacons are small; anything bigger is not ours. */
export const MAX_BEACON_BYTES = 1200

export interface BeaconTarget {
  address: string
  port: number
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
  /** The bytes to send, produced fresh each round (≤ {@link MAX_BEACON_BYTES}). */
  payload: () => Uint8Array
  /** Called for every datagram received from someone else. */
  onBeacon: (data: Uint8Array, from: { address: string, port: number }) => void
  /** Period between rounds, ms. Default 10 000. The first round is sent at once. */
  intervalMs?: number
  /** Drop datagrams from one of our own addresses with our own port (our own broadcasts). Default true. */
  ignoreSelf?: boolean
  socketFactory?: SocketFactory
  onError?: (err: Error) => void
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
}

export interface LanBeacon {
  /** Bound address (port is useful with `port: 0`). */
  address(): { address: string, port: number }
  stats(): LanBeaconStats
  /** Send one round now (also done on every tick). */
  announce(): Promise<void>
  close(): Promise<void>
}

export async function startLanBeacon (init: LanBeaconInit): Promise<LanBeacon> {
  const socket = init.socketFactory !== undefined ? init.socketFactory('udp4') : dgram.createSocket({ type: 'udp4' })
  const onError = init.onError ?? (() => {})
  await new Promise<void>((resolve, reject) => {
    const onErr = (err: Error): void => { reject(err) }
    socket.once('error', onErr)
    socket.bind(init.port, init.bindAddress ?? '0.0.0.0', () => { socket.off('error', onErr); resolve() })
  })
  socket.on('error', (err: Error) => { onError(err) })
  socket.setBroadcast(true)
  socket.setTTL(1)
  const bound = socket.address()

  const isSelf = (address: string, port: number): boolean => {
    if (port !== bound.port) return false
    for (const infos of Object.values(os.networkInterfaces())) {
      if (infos?.some(i => i.address === address) === true) return true
    }
    return false
  }
  const clock = init.now !== undefined ? { now: init.now } : {}
  const rate = init.ratePerSecond ?? 2
  const perSource = new RateLimiter({ ratePerSecond: rate, burst: init.burst ?? 2 * rate, maxKeys: 4096, ...clock })
  const globalRate = init.globalRatePerSecond ?? 100
  const global = new RateLimiter({ ratePerSecond: globalRate, burst: globalRate, maxKeys: 1, ...clock })
  const stats: LanBeaconStats = { delivered: 0, oversized: 0, rateLimited: 0 }
  socket.on('message', (msg: Buffer, rinfo: dgram.RemoteInfo) => {
    if (msg.length === 0 || msg.length > MAX_BEACON_BYTES) { stats.oversized++; return }
    if ((init.ignoreSelf ?? true) && isSelf(rinfo.address, rinfo.port)) return
    if (!perSource.take(rinfo.address) || !global.take('')) { stats.rateLimited++; return }
    stats.delivered++
    try {
      init.onBeacon(new Uint8Array(msg), { address: rinfo.address, port: rinfo.port })
    } catch (err) {
      onError(err instanceof Error ? err : new Error(String(err)))
    }
  })

  const targets = init.targets ?? (() =>
    lanBroadcastTargets(init.excludeInterfaces ?? []).map(s => ({ address: s.broadcast, port: init.port })))
  let closed = false

  const announce = async (): Promise<void> => {
    if (closed) return
    let data: Uint8Array
    try {
      data = init.payload()
    } catch (err) {
      onError(err instanceof Error ? err : new Error(String(err)))
      return
    }
    if (data.length > MAX_BEACON_BYTES) {
      onError(new RangeError(`beacon payload of ${data.length} bytes exceeds ${MAX_BEACON_BYTES}`))
      return
    }
    await Promise.all(targets().map(async t => {
      await new Promise<void>(resolve => {
        try {
          socket.send(data, t.port, t.address, (err) => {
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

  const timer = setInterval(() => { void announce() }, init.intervalMs ?? 10_000)
  timer.unref()
  void announce()

  return {
    address: () => ({ address: bound.address, port: bound.port }),
    stats: () => ({ ...stats }),
    announce,
    close: async () => {
      if (closed) return
      closed = true
      clearInterval(timer)
      await new Promise<void>(resolve => { socket.close(() => { resolve() }) })
    }
  }
}
