/**
 * LAN discovery: a sealed, signed beacon broadcast on each LAN subnet (TTL 1, never routed),
 * so that two members behind the same NAT find each other's LAN address and go direct over
 * the LAN even when the router does not hairpin. Beacons are sealed like records (mesh key +
 * node key): outsiders on the LAN learn nothing and cannot forge one.
 *
 * Against replays (anyone on the LAN can capture a beacon and send it again, from anywhere):
 * - the sealed payload names the sender's LAN addresses (`addrs`, at most 16); a beacon whose UDP source
 *   is not among them is dropped, so a replay from another address gives no candidate;
 * - each beacon carries a random nonce (`n`) and its time (`at`): one more than
 *   {@link BEACON_MAX_AGE_MS} off, or a nonce seen before, is dropped;
 * - the beacon socket rate-limits per source and in total before any signature is checked.
 * A neighbour not heard for {@link LOST_AFTER_INTERVALS} beacon intervals is lost (`onLost`),
 * so its LAN candidate goes away when its beacons stop. A neighbour is logged once per change,
 * dropped beacons at most once a minute (counted in `stats()`).
 */
import { randomBytes } from 'node:crypto'
import os from 'node:os'
import { open, parseIPv4, seal, type RecordSigner } from '@wgmesh/core'
import { MAX_BEACON_BYTES, ReplayCache, lanBroadcastTargets, startLanBeacon, type BeaconTarget, type LanBeacon } from '@wgmesh/nat'
import type { Logger } from './logger.js'

export interface LanDiscoveryInit {
  port: number
  meshKey: Uint8Array
  signer: RecordSigner
  wgPort: number
  /** Our gossip TCP port, announced so that LAN neighbours can dial it (0/undefined: not announced). */
  gossipPort?: number
  excludeInterfaces: string[]
  intervalMs: number
  log: Logger
  onFound: (nodeId: string, endpoint: string) => void
  /** A LAN neighbour's gossip address (a multiaddr without /p2p), when its beacon names one. */
  onGossip?: (nodeId: string, addr: string) => void
  /** A neighbour was not heard for {@link LOST_AFTER_INTERVALS} intervals: forget its LAN endpoint. */
  onLost?: (nodeId: string) => void
  /** Our LAN addresses, named in each beacon. Default: the IPv4 addresses we beacon from (non-excluded subnets). */
  addresses?: () => string[]
  /** Where beacons go. Default: each LAN subnet's broadcast address (tests: unicast on 127.0.0.1). */
  targets?: () => BeaconTarget[]
  /** Address the beacon socket binds. Default 0.0.0.0. */
  bindAddress?: string
  /** Beacon socket rate limits (see startLanBeacon). */
  limits?: { ratePerSecond?: number, burst?: number, globalRatePerSecond?: number }
  /** Milliseconds clock (tests). Default Date.now. */
  now?: () => number
}

/** A beacon more than this far from our clock is dropped (either way). */
export const BEACON_MAX_AGE_MS = 30_000
/** A neighbour is lost after this many beacon intervals without a beacon. */
export const LOST_AFTER_INTERVALS = 3
/** Most addresses a beacon names. */
const MAX_ADDRS = 16

export type BeaconDrop = 'unsealed' | 'schema' | 'age' | 'source' | 'replay' | 'replay-cache-full'

export interface LanDiscovery extends LanBeacon {
  /** Beacons dropped after the socket's own checks, by reason, and neighbours currently heard. */
  discoveryStats(): { dropped: Record<BeaconDrop, number>, accepted: number, neighbours: number }
}

interface Neighbour { endpoint: string, gossip?: string, heardAt: number }

/** The beacon's fields after a strict check, or the reason it is not one. Pure. */
export function decodeBeacon (payload: Uint8Array, now: number): { wgPort: number, gossipPort?: number, n: string, addrs: string[] } | 'schema' | 'age' {
  let b: unknown
  try { b = JSON.parse(new TextDecoder().decode(payload)) } catch { return 'schema' }
  if (typeof b !== 'object' || b === null || Array.isArray(b)) return 'schema'
  const o = b as Record<string, unknown>
  const port = (v: unknown): v is number => Number.isInteger(v) && (v as number) >= 1 && (v as number) <= 65535
  if (o.t !== 'lan' || !port(o.wgPort)) return 'schema'
  if (typeof o.n !== 'string' || !/^[A-Za-z0-9_-]{22}$/.test(o.n)) return 'schema'
  if (!Array.isArray(o.addrs) || o.addrs.length === 0 || o.addrs.length > MAX_ADDRS ||
    !o.addrs.every(a => typeof a === 'string' && a.length <= 15 && parseIPv4(a) !== undefined)) return 'schema'
  if (typeof o.at !== 'number' || !Number.isFinite(o.at)) return 'schema'
  if (Math.abs(now - o.at) > BEACON_MAX_AGE_MS) return 'age'
  return { wgPort: o.wgPort, ...(port(o.gossipPort) ? { gossipPort: o.gossipPort } : {}), n: o.n, addrs: o.addrs as string[] }
}

/**
 * Every non-internal IPv4 address of the interfaces we beacon on (all of them, secondary ones
 * too: the kernel picks the source of a broadcast), the beacon subnets' own addresses first.
 */
function ownLanAddresses (exclude: string[]): string[] {
  const out = lanBroadcastTargets(exclude).map(s => s.address)
  for (const [name, infos] of Object.entries(os.networkInterfaces())) {
    if (exclude.includes(name)) continue
    for (const i of infos ?? []) if (!i.internal && i.family === 'IPv4' && !out.includes(i.address)) out.push(i.address)
  }
  return out
}

/** "::ffff:192.0.2.1" → "192.0.2.1". */
const unmapped = (a: string): string => a.startsWith('::ffff:') ? a.slice(7) : a

export async function startLanDiscovery (init: LanDiscoveryInit): Promise<LanDiscovery> {
  const now = init.now ?? Date.now
  const log = init.log
  const addresses = init.addresses ?? (() => ownLanAddresses(init.excludeInterfaces))
  const replays = new ReplayCache({ ttlMs: 2 * BEACON_MAX_AGE_MS + 1000, now })
  const neighbours = new Map<string, Neighbour>()
  const dropped: Record<BeaconDrop, number> = { unsealed: 0, schema: 0, age: 0, source: 0, replay: 0, 'replay-cache-full': 0 }
  let accepted = 0
  let droppedSinceLog = 0
  let droppedLoggedAt = -Infinity
  const drop = (why: BeaconDrop, from: string): void => {
    dropped[why]++
    droppedSinceLog++
    const t = now()
    if (t - droppedLoggedAt < 60_000) return
    log.debug('LAN beacons dropped', { reason: why, from, count: droppedSinceLog })
    droppedLoggedAt = t
    droppedSinceLog = 0
  }

  const payload = (): Uint8Array => seal(init.meshKey, init.signer, new TextEncoder().encode(JSON.stringify({
    t: 'lan',
    wgPort: init.wgPort,
    at: now(),
    n: randomBytes(16).toString('base64url'),
    addrs: addresses().filter(a => parseIPv4(a) !== undefined).slice(0, MAX_ADDRS),
    ...(init.gossipPort !== undefined && init.gossipPort > 0 ? { gossipPort: init.gossipPort } : {})
  })), new Uint8Array(randomBytes(24)))

  const onBeacon = (data: Uint8Array, from: { address: string, port: number }): void => {
    const o = open(init.meshKey, data, MAX_BEACON_BYTES)
    const source = unmapped(from.address)
    if (!o.ok) { drop('unsealed', source); return }
    if (o.signerId === init.signer.nodeId) return
    const t = now()
    const b = decodeBeacon(o.payload, t)
    if (typeof b === 'string') { drop(b, source); return }
    if (!b.addrs.includes(source)) { drop('source', source); return } // replayed from elsewhere
    const seen = replays.check(`${o.signerId} ${b.n}`)
    if (seen !== 'fresh') { drop(seen === 'full' ? 'replay-cache-full' : 'replay', source); return }
    accepted++
    const nodeId = o.signerId
    const endpoint = `${source}:${b.wgPort}`
    const gossip = b.gossipPort === undefined ? undefined : `/ip4/${source}/tcp/${b.gossipPort}`
    const prev = neighbours.get(nodeId)
    if (prev === undefined || prev.endpoint !== endpoint || prev.gossip !== gossip) {
      log.debug(prev === undefined ? 'LAN neighbour heard' : 'LAN neighbour moved', { nodeId, endpoint, ...(gossip === undefined ? {} : { gossip }) })
    }
    neighbours.set(nodeId, { endpoint, ...(gossip === undefined ? {} : { gossip }), heardAt: t })
    init.onFound(nodeId, endpoint)
    if (gossip !== undefined) init.onGossip?.(nodeId, gossip)
  }

  const beacon = await startLanBeacon({
    port: init.port,
    ...(init.bindAddress !== undefined ? { bindAddress: init.bindAddress } : {}),
    ...(init.targets !== undefined ? { targets: init.targets } : {}),
    excludeInterfaces: init.excludeInterfaces,
    intervalMs: init.intervalMs,
    ...init.limits,
    payload,
    onBeacon,
    onError: (err) => { log.debug('LAN beacon error', { error: err.message }) }
  })

  const lostAfter = LOST_AFTER_INTERVALS * init.intervalMs
  const sweep = setInterval(() => {
    const t = now()
    for (const [nodeId, nb] of neighbours) {
      if (t - nb.heardAt <= lostAfter) continue
      neighbours.delete(nodeId)
      log.debug('LAN neighbour lost', { nodeId, endpoint: nb.endpoint, silentMs: t - nb.heardAt })
      try { init.onLost?.(nodeId) } catch (err) { log.warn('LAN discovery: onLost threw', { error: (err as Error).message }) }
    }
  }, Math.max(50, Math.min(init.intervalMs, 5000)))
  sweep.unref()

  return {
    ...beacon,
    discoveryStats: () => ({ dropped: { ...dropped }, accepted, neighbours: neighbours.size }),
    close: async () => {
      clearInterval(sweep)
      await beacon.close()
    }
  }
}
