/**
 * Which gossip addresses to dial now. Pure: the agent passes the time, who is connected and
 * what it knows; the policy returns addresses and remembers back-off per address.
 *
 * - no connection at all: every seed and known member (seeds are never forgotten);
 * - fewer than `degree` connections: enough random unconnected members to reach it;
 * - every `healEveryMs`: one random unconnected member regardless, so that two halves that
 *   each have enough connections still find each other (the split brain wesher had).
 * A failed address waits 250 ms, doubling to 30 s; success resets it (a seed that is still
 * starting is retried quickly; a dead one costs little).
 */
export interface DialTarget { key: string, addr: string, peerId?: string }

export interface DialPolicyInit { degree?: number, healEveryMs?: number, random?: () => number }

const BACKOFF_MIN_MS = 250
const BACKOFF_MAX_MS = 30_000

export class DialPolicy {
  private readonly degree: number
  private readonly healEveryMs: number
  private readonly random: () => number
  private readonly backoff = new Map<string, { until: number, ms: number }>()
  private lastHeal = 0

  constructor (init: DialPolicyInit = {}) {
    this.degree = init.degree ?? 8
    this.healEveryMs = init.healEveryMs ?? 10_000
    this.random = init.random ?? Math.random
  }

  choose (now: number, connected: ReadonlySet<string>, seeds: DialTarget[], members: DialTarget[]): DialTarget[] {
    const ready = (t: DialTarget): boolean => (this.backoff.get(t.key)?.until ?? 0) <= now
    const unconnected = members.filter(m => m.peerId === undefined || !connected.has(m.peerId))
    if (connected.size === 0) return [...seeds, ...unconnected].filter(ready)
    const shuffled = unconnected.filter(ready).sort(() => this.random() - 0.5)
    const want = Math.max(0, this.degree - connected.size)
    const out = shuffled.slice(0, want)
    if (now - this.lastHeal >= this.healEveryMs) {
      this.lastHeal = now
      const extra = shuffled[want]
      if (extra !== undefined) out.push(extra)
    }
    return out
  }

  failed (key: string, now: number): void {
    const prev = this.backoff.get(key)
    const ms = Math.min(BACKOFF_MAX_MS, prev === undefined ? BACKOFF_MIN_MS : prev.ms * 2)
    this.backoff.set(key, { until: now + ms, ms })
  }

  succeeded (key: string): void {
    this.backoff.delete(key)
  }
}

/** "198.18.1.1", "198.18.1.1:7000", "[fd00::1]:7000", "host.example:7000" or a multiaddr → multiaddr. */
export function seedToMultiaddr (seed: string, defaultPort: number): string {
  const s = seed.trim()
  if (s.startsWith('/')) return s
  let host = s
  let port = defaultPort
  const v6 = /^\[([0-9a-fA-F:]+)\](?::([0-9]+))?$/.exec(s)
  if (v6 !== null) {
    host = v6[1]!
    if (v6[2] !== undefined) port = Number(v6[2])
    return `/ip6/${host}/tcp/${port}`
  }
  const m = /^([^:/\s]+)(?::([0-9]+))?$/.exec(s)
  if (m === null) throw new Error(`'${seed}' is not host[:port]`)
  host = m[1]!
  if (m[2] !== undefined) port = Number(m[2])
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw new Error(`'${seed}': port must be 1..65535`)
  const proto = /^[0-9.]+$/.test(host) ? 'ip4' : 'dns4'
  return `/${proto}/${host}/tcp/${port}`
}
