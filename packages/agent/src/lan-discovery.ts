/**
 * LAN discovery: a sealed, signed beacon broadcast on each IPv4 LAN subnet (TTL 1, never
 * routed) and multicast to an IPv6 link-local group on each link (hop limit 1; see
 * @wgmesh/nat's lan-beacon.ts), so that two members behind the same NAT — or on one IPv6 link
 * with no IPv4 at all — find each other's LAN address and go direct over the LAN even when
 * the router does not hairpin, or with no `--peer` at all. Beacons are sealed like records
 * (mesh key + node key): outsiders on the LAN learn nothing and cannot forge one.
 *
 * Each family's beacon names that family's addresses (`addrs`): IPv4 ones in IPv4 broadcasts
 * (what older agents expect), global and ULA IPv6 ones in IPv6 multicasts — never a link-local
 * one, which is no candidate and no gossip address; an IPv6 beacon leaves from a link-local
 * address, so it names those apart (`ll`, only to check the source). A neighbour heard over
 * both families is reached over IPv4 (as before IPv6 beacons existed); over IPv6 when only
 * those are heard: at its address on one of our IPv6 subnets, else its first.
 *
 * Against replays (anyone on the LAN can capture a beacon and send it again, from anywhere):
 * - the sealed payload names the sender's addresses (`addrs`, at most 16 IPv4 or 8 IPv6, and
 *   up to 8 `ll`); a beacon whose UDP source is not among them is dropped, so a replay from
 *   another address gives no candidate;
 * - each beacon carries a random nonce (`n`) and its time (`at`): one more than
 *   {@link BEACON_MAX_AGE_MS} off, or a nonce seen before, is dropped;
 * - the beacon sockets rate-limit per source and in total before any signature is checked.
 * Beacons go every `intervalMs` for their first rounds, then every `slowIntervalMs`; a
 * neighbour heard for the first time gets a round at once (and fast rounds again), so a
 * newcomer hears everyone within one fast interval although the LAN beacons slowly.
 * A neighbour not heard for {@link LOST_AFTER_INTERVALS} slow intervals is lost (`onLost`),
 * so its LAN candidate goes away when its beacons stop. A neighbour is logged once per change,
 * dropped beacons at most once a minute (counted in `stats()`).
 */
import { randomBytes } from 'node:crypto'
import os from 'node:os'
import { canonicalIP, cidrContainsText, formatEndpoint, open, parseIPv4, seal, tryParseCidr, v6Scope, type Cidr, type RecordSigner } from '@wgmesh/core'
import {
  MAX_BEACON_BYTES, ReplayCache, lanBroadcastTargets, lanMulticastLinks6, startLanBeacon, withoutZone, type BeaconTarget, type LanBeacon
} from '@wgmesh/nat'
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
  /** Once the first rounds went out: this period (default `intervalMs`). */
  slowIntervalMs?: number
  log: Logger
  onFound: (nodeId: string, endpoint: string) => void
  /** A LAN neighbour's gossip address (a multiaddr without /p2p), when its beacon names one. */
  onGossip?: (nodeId: string, addr: string) => void
  /** A neighbour was not heard for {@link LOST_AFTER_INTERVALS} intervals: forget its LAN endpoint. */
  onLost?: (nodeId: string) => void
  /** Our LAN addresses, named in each IPv4 beacon. Default: the IPv4 addresses we beacon from (non-excluded subnets). */
  addresses?: () => string[]
  /** Our IPv6 addresses named in each IPv6 beacon. Default: the global, then ULA, addresses of non-excluded interfaces. */
  addresses6?: () => string[]
  /** The link-local addresses IPv6 beacons leave from. Default: those of the interfaces we beacon on. */
  linkLocal?: () => string[]
  /** Our IPv6 subnets (a neighbour's address on one of them is the one we use). Default: the non-excluded interfaces'. */
  subnets6?: () => Cidr[]
  /** Where beacons go. Default: each LAN subnet's broadcast address (tests: unicast on 127.0.0.1). */
  targets?: () => BeaconTarget[]
  /** Where IPv6 beacons go. Default: the link-local group on each link (tests: unicast on ::1). */
  targets6?: () => BeaconTarget[]
  /** Address the beacon socket binds. Default 0.0.0.0. */
  bindAddress?: string
  /** Address the IPv6 beacon socket binds. Default '::'. */
  bindAddress6?: string
  /** Beacon socket rate limits (see startLanBeacon). */
  limits?: { ratePerSecond?: number, burst?: number, globalRatePerSecond?: number }
  /** Milliseconds clock (tests). Default Date.now. */
  now?: () => number
  /** Starts the beacon sockets (tests: a stand-in that hands beacons in directly). Default startLanBeacon. */
  startBeacon?: typeof startLanBeacon
}

/** A beacon more than this far from our clock is dropped (either way). */
export const BEACON_MAX_AGE_MS = 30_000
/** A neighbour is lost after this many beacon intervals without a beacon. */
export const LOST_AFTER_INTERVALS = 3
/** Most addresses an IPv4 beacon names. */
const MAX_ADDRS = 16
/** Most addresses, and link-local ones, an IPv6 beacon names (8 + 8 of 45 characters fit in MAX_BEACON_BYTES). */
const MAX_ADDRS6 = 8
const MAX_ADDR6_CHARS = 45

export type BeaconDrop = 'unsealed' | 'schema' | 'age' | 'source' | 'replay' | 'replay-cache-full'

export interface LanDiscovery extends LanBeacon {
  /** Beacons dropped after the socket's own checks, by reason, and neighbours currently heard. */
  discoveryStats(): { dropped: Record<BeaconDrop, number>, accepted: number, neighbours: number }
}

interface Heard { endpoint: string, gossip?: string, heardAt: number }
/** What each family's beacons of one neighbour said; `reported` is what onFound/onGossip last got. */
interface Neighbour { 4?: Heard, 6?: Heard, reported?: Heard }

export interface DecodedBeacon { wgPort: number, gossipPort?: number, n: string, addrs: string[], ll: string[] }

const v6Of = (scopes: string[]) => (a: unknown): a is string =>
  typeof a === 'string' && a.length <= MAX_ADDR6_CHARS && scopes.includes(v6Scope(a) ?? '')

/** The beacon's fields after a strict check (IPv4 or IPv6 addresses, by the family it came over), or the reason it is not one. Pure. */
export function decodeBeacon (payload: Uint8Array, now: number, family: 4 | 6 = 4): DecodedBeacon | 'schema' | 'age' {
  let b: unknown
  try { b = JSON.parse(new TextDecoder().decode(payload)) } catch { return 'schema' }
  if (typeof b !== 'object' || b === null || Array.isArray(b)) return 'schema'
  const o = b as Record<string, unknown>
  const port = (v: unknown): v is number => Number.isInteger(v) && (v as number) >= 1 && (v as number) <= 65535
  if (o.t !== 'lan' || !port(o.wgPort)) return 'schema'
  if (typeof o.n !== 'string' || !/^[A-Za-z0-9_-]{22}$/.test(o.n)) return 'schema'
  let addrs: string[]
  let ll: string[] = []
  if (family === 4) {
    if (!Array.isArray(o.addrs) || o.addrs.length === 0 || o.addrs.length > MAX_ADDRS ||
      !o.addrs.every(a => typeof a === 'string' && a.length <= 15 && parseIPv4(a) !== undefined)) return 'schema'
    addrs = o.addrs as string[]
  } else {
    if (!Array.isArray(o.addrs) || o.addrs.length === 0 || o.addrs.length > MAX_ADDRS6 || !o.addrs.every(v6Of(['global', 'ula']))) return 'schema'
    if (o.ll !== undefined && (!Array.isArray(o.ll) || o.ll.length > MAX_ADDRS6 || !o.ll.every(v6Of(['link-local'])))) return 'schema'
    addrs = (o.addrs as string[]).map(a => canonicalIP(a) ?? a)
    ll = ((o.ll ?? []) as string[]).map(a => canonicalIP(a) ?? a)
  }
  if (typeof o.at !== 'number' || !Number.isFinite(o.at)) return 'schema'
  if (Math.abs(now - o.at) > BEACON_MAX_AGE_MS) return 'age'
  return { wgPort: o.wgPort, ...(port(o.gossipPort) ? { gossipPort: o.gossipPort } : {}), n: o.n, addrs, ll }
}

/** The IPv6 address of a neighbour to use: its first on one of our subnets, else its first global one, else its first. Pure. */
export function pickAddress6 (addrs: string[], subnets: Cidr[]): string | undefined {
  return addrs.find(a => subnets.some(c => cidrContainsText(c, a))) ?? addrs.find(a => v6Scope(a) === 'global') ?? addrs[0]
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

/** Global then ULA IPv6 addresses (and their subnets) of the non-excluded interfaces. */
function ownV6 (exclude: string[]): Array<{ address: string, subnet?: Cidr }> {
  const out: Array<{ address: string, subnet?: Cidr, global: boolean }> = []
  for (const [name, infos] of Object.entries(os.networkInterfaces())) {
    if (exclude.includes(name)) continue
    for (const i of infos ?? []) {
      const scope = i.family === 'IPv6' && !i.internal ? v6Scope(i.address) : undefined
      if ((scope !== 'global' && scope !== 'ula') || out.some(x => x.address === i.address)) continue
      const subnet = i.cidr === null ? undefined : tryParseCidr(i.cidr)
      out.push({ address: i.address, global: scope === 'global', ...(subnet === undefined ? {} : { subnet }) })
    }
  }
  return out.sort((x, y) => Number(y.global) - Number(x.global))
}

/** "::ffff:192.0.2.1" → "192.0.2.1". */
const unmapped = (a: string): string => a.startsWith('::ffff:') ? a.slice(7) : a

export async function startLanDiscovery (init: LanDiscoveryInit): Promise<LanDiscovery> {
  const now = init.now ?? Date.now
  const log = init.log
  const exclude = init.excludeInterfaces
  const slow = Math.max(init.intervalMs, init.slowIntervalMs ?? init.intervalMs)
  const addresses = init.addresses ?? (() => ownLanAddresses(exclude))
  const addresses6 = init.addresses6 ?? (() => ownV6(exclude).map(a => a.address))
  const linkLocal = init.linkLocal ?? (() => lanMulticastLinks6(exclude).flatMap(l => l.linkLocal))
  const subnets6 = init.subnets6 ?? (() => ownV6(exclude).flatMap(a => a.subnet === undefined ? [] : [a.subnet]))
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

  const payload = (family: 4 | 6): Uint8Array | undefined => {
    const addrs = family === 4
      ? addresses().filter(a => parseIPv4(a) !== undefined).slice(0, MAX_ADDRS)
      : addresses6().filter(v6Of(['global', 'ula'])).slice(0, MAX_ADDRS6)
    if (family === 6 && addrs.length === 0) return undefined // nothing a neighbour could use
    const ll = family === 6 ? linkLocal().map(withoutZone).filter(v6Of(['link-local'])).slice(0, MAX_ADDRS6) : []
    return seal(init.meshKey, init.signer, new TextEncoder().encode(JSON.stringify({
      t: 'lan',
      wgPort: init.wgPort,
      at: now(),
      n: randomBytes(16).toString('base64url'),
      addrs,
      ...(ll.length > 0 ? { ll } : {}),
      ...(init.gossipPort !== undefined && init.gossipPort > 0 ? { gossipPort: init.gossipPort } : {})
    })), new Uint8Array(randomBytes(24)))
  }

  /** Tell the traversal what a neighbour is reached at now (IPv4 when heard over IPv4, else IPv6), logging a change. */
  const report = (nodeId: string, nb: Neighbour): void => {
    const cur = nb[4] ?? nb[6]
    if (cur === undefined) return
    const prev = nb.reported
    if (prev === undefined || prev.endpoint !== cur.endpoint || prev.gossip !== cur.gossip) {
      log.debug(prev === undefined ? 'LAN neighbour heard' : 'LAN neighbour moved', { nodeId, family: nb[4] !== undefined ? 4 : 6, endpoint: cur.endpoint, ...(cur.gossip === undefined ? {} : { gossip: cur.gossip }) })
    }
    nb.reported = cur
    init.onFound(nodeId, cur.endpoint)
    if (cur.gossip !== undefined) init.onGossip?.(nodeId, cur.gossip)
  }

  const onBeacon = (data: Uint8Array, from: { address: string, port: number, family: 4 | 6 }): void => {
    const o = open(init.meshKey, data, MAX_BEACON_BYTES)
    const source = from.family === 4 ? unmapped(from.address) : (canonicalIP(withoutZone(from.address)) ?? from.address)
    if (!o.ok) { drop('unsealed', source); return }
    if (o.signerId === init.signer.nodeId) return
    const t = now()
    const b = decodeBeacon(o.payload, t, from.family)
    if (typeof b === 'string') { drop(b, source); return }
    if (!b.addrs.includes(source) && !b.ll.includes(source)) { drop('source', source); return } // replayed from elsewhere
    const seen = replays.check(`${o.signerId} ${b.n}`)
    if (seen !== 'fresh') { drop(seen === 'full' ? 'replay-cache-full' : 'replay', source); return }
    accepted++
    const nodeId = o.signerId
    // over IPv6 the source is link-local (no candidate): the neighbour's address on our link's subnet
    const host = from.family === 4 ? source : pickAddress6(b.addrs, subnets6()) as string
    const gossip = b.gossipPort === undefined ? undefined : `/ip${from.family}/${host}/tcp/${b.gossipPort}`
    const newcomer = !neighbours.has(nodeId)
    const nb = neighbours.get(nodeId) ?? {}
    nb[from.family] = { endpoint: formatEndpoint(host, b.wgPort), ...(gossip === undefined ? {} : { gossip }), heardAt: t }
    neighbours.set(nodeId, nb)
    report(nodeId, nb)
    // a newcomer must not wait for our slow round: answer now (at most once per fast interval)
    if (newcomer && beacon !== undefined && t - lastAnswer >= init.intervalMs) {
      lastAnswer = t
      void beacon.announce()
    }
  }
  let lastAnswer = -Infinity

  // eslint-disable-next-line prefer-const -- onBeacon (above) may run before the await returns
  let beacon: Awaited<ReturnType<typeof startLanBeacon>> | undefined
  beacon = await (init.startBeacon ?? startLanBeacon)({
    port: init.port,
    ...(init.bindAddress !== undefined ? { bindAddress: init.bindAddress } : {}),
    ...(init.bindAddress6 !== undefined ? { bindAddress6: init.bindAddress6 } : {}),
    ...(init.targets !== undefined ? { targets: init.targets } : {}),
    ...(init.targets6 !== undefined ? { targets6: init.targets6 } : {}),
    excludeInterfaces: exclude,
    intervalMs: init.intervalMs,
    slowIntervalMs: slow,
    ...init.limits,
    payload,
    onBeacon,
    onError: (err) => { log.debug('LAN beacon error', { error: err.message }) },
    onDebug: (msg, fields) => { log.debug(msg, fields) }
  })

  const lostAfter = LOST_AFTER_INTERVALS * slow
  const sweep = setInterval(() => {
    const t = now()
    for (const [nodeId, nb] of neighbours) {
      for (const f of [4, 6] as const) {
        const h = nb[f]
        if (h !== undefined && t - h.heardAt > lostAfter) delete nb[f]
      }
      if (nb[4] !== undefined || nb[6] !== undefined) {
        if ((nb[4] ?? nb[6]) !== nb.reported) report(nodeId, nb) // one family went silent: the other one's address
        continue
      }
      neighbours.delete(nodeId)
      log.debug('LAN neighbour lost', { nodeId, endpoint: nb.reported?.endpoint, silentMs: t - (nb.reported?.heardAt ?? t) })
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
