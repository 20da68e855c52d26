/**
 * Which gossip addresses to dial now. Pure: the agent passes the time, who is connected and
 * what it knows; the policy returns addresses and remembers back-off per address.
 *
 * - seeds (`--peer`) are dialed until one dial to them has succeeded, whatever else is
 *   connected: an inbound connection from another joiner does not mean this node reached the
 *   seed's mesh (hosts started at once each `--peer` another that is still starting; giving up a
 *   seed once anyone connected in split such fleets in two). A seed never reached is retried with
 *   a short, jittered back-off (100 ms, doubling to `seedBackoffMaxMs`), so one mesh forms within
 *   about that long after the seed answers, however long it was away. A fleet started at once
 *   finds its seed not listening yet at the first dial (refused: a SYN and a reset, cheap to
 *   repeat); the seed's first joiners then wait ~0.1 s for it, not a redial tick or two;
 * - no connection at all: every known member too;
 * - fewer than `degree` connections: random unconnected members towards it — one address per
 *   member (its first ready one, in the record's order: underlay first), so two addresses of one
 *   member never take two slots or make two connections. Not at once: from `degreeDelayMs`
 *   after the first connection, one member per `degreePaceMs`. While a fleet starts, its
 *   records and syncs already flow through the seeds; every extra connection is ~25 ms of CPU
 *   at each end (noise, yamux, gossipsub, a sync) that 8 agents starting on 2 cores
 *   took from the start itself — t_full is CPU-bound (docs/PERFORMANCE.md);
 * - every `healEveryMs` (from the first call on): one random unconnected member regardless, so
 *   that two halves that each have enough connections still find each other (the split brain
 *   wesher had). One minute: a heal is a whole connection set-up (~2.5 KB, ~30 ms of CPU for
 *   both ends), and a node below `maxConnections` keeps what it healed.
 * A failed member address waits 250 ms, doubling to 30 s, jittered to 75–100 % of the step; success resets it.
 *
 * And which connections to close (`trim`): heals and other members' dials add connections, so
 * without a ceiling every node would end up connected to every other (O(N) keepalives, memory
 * and gossip fan-in per node). Above `maxConnections` the excess is closed down to 2 × degree,
 * chosen at random among connections older than `trimMinAgeMs` (a joiner's first connections
 * are left alone while it syncs).
 */
import { parseIPv6 } from '@wgmesh/core'

export interface DialTarget { key: string, addr: string, peerId?: string }

export interface DialPolicyInit {
  degree?: number
  maxConnections?: number
  trimMinAgeMs?: number
  healEveryMs?: number
  seedBackoffMaxMs?: number
  /** Dials towards the degree start this long after the first connection. @default {@link DEGREE_DELAY_MS} */
  degreeDelayMs?: number
  /** … one member per this long; 0 = all that are missing at once. @default {@link DEGREE_PACE_MS} */
  degreePaceMs?: number
  random?: () => number
}

/** @default 2 s — a node's first connection brings the records; the degree can wait. */
export const DEGREE_DELAY_MS = 2000
/** @default 500 ms — one more member dialed towards the degree at most this often. */
export const DEGREE_PACE_MS = 500

/** @default 4 — outbound dials top a node up to this many gossip connections. */
export const DIAL_DEGREE = 4
/** @default 3 × degree — above this many gossip connections the excess is closed (to 2 × degree). */
export const MAX_CONNECTIONS_FACTOR = 3
/** @default 60 s — one dial to a random unconnected member this often, whatever the degree. */
export const HEAL_EVERY_MS = 60_000
/** A connection younger than this is never closed by `trim`, ms. */
export const TRIM_MIN_AGE_MS = 30_000

const BACKOFF_MIN_MS = 250
const BACKOFF_MAX_MS = 30_000
/** The first back-off of a seed never reached. */
export const SEED_BACKOFF_MIN_MS = 100
/** @default 2000 — a seed never reached is retried at least this often (jittered down to half). */
export const SEED_BACKOFF_MAX_MS = 2000

export class DialPolicy {
  private readonly degree: number
  private readonly maxConnections: number
  private readonly trimMinAgeMs: number
  private readonly healEveryMs: number
  private readonly seedBackoffMaxMs: number
  private readonly random: () => number
  private readonly degreeDelayMs: number
  private readonly degreePaceMs: number
  private firstConnectedAt?: number
  private lastDegreeDial = -Infinity
  private readonly backoff = new Map<string, { until: number, ms: number }>()
  /** Seeds with at least one successful dial: from then on they are ordinary members. */
  private readonly reached = new Set<string>()
  private lastHeal?: number

  constructor (init: DialPolicyInit = {}) {
    this.degree = init.degree ?? DIAL_DEGREE
    this.maxConnections = init.maxConnections ?? MAX_CONNECTIONS_FACTOR * this.degree
    this.trimMinAgeMs = init.trimMinAgeMs ?? TRIM_MIN_AGE_MS
    this.healEveryMs = init.healEveryMs ?? HEAL_EVERY_MS
    this.seedBackoffMaxMs = init.seedBackoffMaxMs ?? SEED_BACKOFF_MAX_MS
    this.random = init.random ?? Math.random
    this.degreeDelayMs = init.degreeDelayMs ?? DEGREE_DELAY_MS
    this.degreePaceMs = init.degreePaceMs ?? DEGREE_PACE_MS
  }

  /** Whether `key` may be dialed now (not backing off). */
  ready (key: string, now: number): boolean { return (this.backoff.get(key)?.until ?? 0) <= now }

  /** Whether a dial to this seed has ever succeeded. */
  seedReached (key: string): boolean { return this.reached.has(key) }

  /** `inFlight`: member dials still pending (they count toward the degree until they fail). */
  choose (now: number, connected: ReadonlySet<string>, seeds: DialTarget[], members: DialTarget[], inFlight = 0): DialTarget[] {
    this.lastHeal ??= now
    const ready = (t: DialTarget): boolean => (this.backoff.get(t.key)?.until ?? 0) <= now
    const isConnected = (t: DialTarget): boolean => t.peerId !== undefined && connected.has(t.peerId)
    const pendingSeeds = seeds.filter(s => !this.reached.has(s.key) && !isConnected(s) && ready(s))
    const unconnected = members.filter(m => !isConnected(m))
    if (connected.size === 0) return [...pendingSeeds, ...unconnected.filter(ready)]
    this.firstConnectedAt ??= now
    // one address per member: its first ready one
    const members1: DialTarget[] = []
    const picked = new Set<string>()
    for (const m of unconnected) {
      if (!ready(m)) continue
      if (m.peerId !== undefined) {
        if (picked.has(m.peerId)) continue
        picked.add(m.peerId)
      }
      members1.push(m)
    }
    const shuffled = members1.sort(() => this.random() - 0.5)
    const missing = Math.max(0, this.degree - connected.size - inFlight)
    const paced = this.degreePaceMs > 0
    const want = now - this.firstConnectedAt < this.degreeDelayMs || now - this.lastDegreeDial < this.degreePaceMs ? 0 : paced ? Math.min(1, missing) : missing
    if (want > 0 && shuffled.length > 0) this.lastDegreeDial = now
    const out = [...pendingSeeds, ...shuffled.slice(0, want)]
    if (now - this.lastHeal >= this.healEveryMs) {
      this.lastHeal = now
      const extra = shuffled[want]
      if (extra !== undefined) out.push(extra)
    }
    return out
  }

  /**
   * Peers whose connection to close now: none at or below `maxConnections`; above it, enough
   * random ones older than `trimMinAgeMs` to come down to 2 × degree. `since`: when each
   * connected peer was first seen connected.
   */
  trim (now: number, since: ReadonlyMap<string, number>): string[] {
    if (since.size <= this.maxConnections) return []
    const old = [...since].filter(([, t]) => now - t >= this.trimMinAgeMs).map(([p]) => p).sort(() => this.random() - 0.5)
    return old.slice(0, Math.max(0, since.size - 2 * this.degree))
  }

  /** A dial to `key` failed: it backs off. Returns when it may be dialed again. */
  failed (key: string, now: number, seed = false): number {
    const prev = this.backoff.get(key)
    const unreachedSeed = seed && !this.reached.has(key)
    const cap = unreachedSeed ? this.seedBackoffMaxMs : BACKOFF_MAX_MS
    const ms = Math.min(cap, prev === undefined ? (unreachedSeed ? SEED_BACKOFF_MIN_MS : BACKOFF_MIN_MS) : prev.ms * 2)
    // jitter (0.75–1.0 of the step): hosts started together do not retry in lockstep
    const until = now + Math.round(ms * (0.75 + 0.25 * this.random()))
    this.backoff.set(key, { until, ms })
    return until
  }

  succeeded (key: string, seed = false): void {
    this.backoff.delete(key)
    if (seed) this.reached.add(key)
  }
}

/**
 * "198.18.1.1", "198.18.1.1:7000", "[2001:db8::1]:7000", "2001:db8::1", "host.example:7000" or a
 * multiaddr → multiaddr. A host name becomes `/dns/…`: resolved to either family when dialed.
 */
export function seedToMultiaddr (seed: string, defaultPort: number): string {
  const s = seed.trim()
  if (s.startsWith('/')) return s
  let host = s
  let port = defaultPort
  const v6 = /^\[([0-9a-fA-F:.]+)\](?::([0-9]+))?$/.exec(s) ?? (/^[0-9a-fA-F:.]*:[0-9a-fA-F:.]*:[0-9a-fA-F:.]*$/.test(s) ? [s, s] : null)
  if (v6 !== null) {
    if (parseIPv6(v6[1]!) === undefined) throw new Error(`'${seed}': '${v6[1]!}' is not an IPv6 address`)
    host = v6[1]!
    if (v6[2] !== undefined) port = Number(v6[2])
    if (!Number.isInteger(port) || port < 1 || port > 65535) throw new Error(`'${seed}': port must be 1..65535`)
    return `/ip6/${host}/tcp/${port}`
  }
  const m = /^([^:/\s]+)(?::([0-9]+))?$/.exec(s)
  if (m === null) throw new Error(`'${seed}' is not host[:port]`)
  host = m[1]!
  if (m[2] !== undefined) port = Number(m[2])
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw new Error(`'${seed}': port must be 1..65535`)
  const proto = /^[0-9.]+$/.test(host) ? 'ip4' : 'dns'
  return `/${proto}/${host}/tcp/${port}`
}
