/**
 * Which gossip addresses to dial now. Pure: the agent passes the time, who is connected and
 * what it knows; the policy returns addresses and remembers back-off per address.
 *
 * - seeds (`--peer`) are dialed until one dial to them has succeeded, whatever else is
 *   connected: an inbound connection from another joiner does not mean this node reached the
 *   seed's mesh (hosts started at once each `--peer` another that is still starting; giving up a
 *   seed once anyone connected in split such fleets in two). A seed never reached is retried with
 *   a short, jittered back-off (≤ `seedBackoffMaxMs`), so one mesh forms within about that long
 *   after the seed answers, however long it was away;
 * - no connection at all: every known member too;
 * - fewer than `degree` connections: enough random unconnected members to reach it;
 * - every `healEveryMs`: one random unconnected member regardless, so that two halves that
 *   each have enough connections still find each other (the split brain wesher had).
 * A failed member address waits 250 ms, doubling to 30 s, jittered to 75–100 % of the step; success resets it.
 */
import { parseIPv6 } from '@wgmesh/core'

export interface DialTarget { key: string, addr: string, peerId?: string }

export interface DialPolicyInit { degree?: number, healEveryMs?: number, seedBackoffMaxMs?: number, random?: () => number }

const BACKOFF_MIN_MS = 250
const BACKOFF_MAX_MS = 30_000
/** @default 2000 — a seed never reached is retried at least this often (jittered down to half). */
export const SEED_BACKOFF_MAX_MS = 2000

export class DialPolicy {
  private readonly degree: number
  private readonly healEveryMs: number
  private readonly seedBackoffMaxMs: number
  private readonly random: () => number
  private readonly backoff = new Map<string, { until: number, ms: number }>()
  /** Seeds with at least one successful dial: from then on they are ordinary members. */
  private readonly reached = new Set<string>()
  private lastHeal = 0

  constructor (init: DialPolicyInit = {}) {
    this.degree = init.degree ?? 8
    this.healEveryMs = init.healEveryMs ?? 10_000
    this.seedBackoffMaxMs = init.seedBackoffMaxMs ?? SEED_BACKOFF_MAX_MS
    this.random = init.random ?? Math.random
  }

  /** Whether `key` may be dialed now (not backing off). */
  ready (key: string, now: number): boolean { return (this.backoff.get(key)?.until ?? 0) <= now }

  /** Whether a dial to this seed has ever succeeded. */
  seedReached (key: string): boolean { return this.reached.has(key) }

  choose (now: number, connected: ReadonlySet<string>, seeds: DialTarget[], members: DialTarget[]): DialTarget[] {
    const ready = (t: DialTarget): boolean => (this.backoff.get(t.key)?.until ?? 0) <= now
    const isConnected = (t: DialTarget): boolean => t.peerId !== undefined && connected.has(t.peerId)
    const pendingSeeds = seeds.filter(s => !this.reached.has(s.key) && !isConnected(s) && ready(s))
    const unconnected = members.filter(m => !isConnected(m))
    if (connected.size === 0) return [...pendingSeeds, ...unconnected.filter(ready)]
    const shuffled = unconnected.filter(ready).sort(() => this.random() - 0.5)
    const want = Math.max(0, this.degree - connected.size)
    const out = [...pendingSeeds, ...shuffled.slice(0, want)]
    if (now - this.lastHeal >= this.healEveryMs) {
      this.lastHeal = now
      const extra = shuffled[want]
      if (extra !== undefined) out.push(extra)
    }
    return out
  }

  failed (key: string, now: number, seed = false): void {
    const prev = this.backoff.get(key)
    const cap = seed && !this.reached.has(key) ? this.seedBackoffMaxMs : BACKOFF_MAX_MS
    const ms = Math.min(cap, prev === undefined ? BACKOFF_MIN_MS : prev.ms * 2)
    // jitter (0.75–1.0 of the step): hosts started together do not retry in lockstep
    this.backoff.set(key, { until: now + Math.round(ms * (0.75 + 0.25 * this.random())), ms })
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
