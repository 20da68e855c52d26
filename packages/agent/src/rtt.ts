/**
 * Round-trip times to members, through their tunnels, from the failure detector's own probes.
 *
 * Passive: every ping this node sends (the detector's pings to its ring successors each
 * heartbeat, its pings on behalf of a ping-req, its pings to dead members) is timed, and the ack
 * from the address it went to gives a sample. That covers the watched members at no cost.
 * Active: the others are measured by one extra ping (an ordinary detector ping: 19 bytes of
 * payload, acked by any agent) every `everyMs` at most, to the alive member whose sample is
 * oldest, and only while some sample is older than `freshMs`. So the extra traffic is constant
 * in the mesh size: at most one ping and one ack per `everyMs` per node (plus answering others'),
 * ~2 × 136 B on the underlay per 10 s.
 * The estimate is the median of a member's last 5 samples: a sample only ever errs upwards
 * (the first one carries a WireGuard handshake; either agent's event loop may be late to
 * answer or to read the ack), and the median drops such outliers without hiding a lasting
 * change. Times are from a monotonic clock.
 */
import { performance } from 'node:perf_hooks'

export interface RttEstimate { ms: number, ageMs: number }

export interface RttInit {
  /** At most one active RTT ping this often. @default 10000 */
  everyMs?: number
  /** An active ping goes to a member whose latest sample is older than this. @default 60000 */
  freshMs?: number
  /** Monotonic clock, ms. @default performance.now */
  clock?: () => number
}

/** Pings awaiting their ack (older ones are dropped: a late ack is no useful sample). */
const MAX_PENDING = 256
const PENDING_MS = 5000
/** Samples kept per member; the estimate is their median. */
const KEEP = 5

export class RttTracker {
  private readonly pending = new Map<string, { addr: string, t: number }>()
  private readonly samples = new Map<string, { last: number[], at: number }>()
  /** When each member last got an extra RTT ping (an unanswered one must not keep the turn). */
  private readonly tried = new Map<string, number>()
  private lastActive = -Infinity
  private readonly everyMs: number
  private readonly freshMs: number
  private readonly clock: () => number

  constructor (init: RttInit = {}) {
    this.everyMs = init.everyMs ?? 10_000
    this.freshMs = init.freshMs ?? 60_000
    this.clock = init.clock ?? (() => performance.now())
  }

  /** A ping with `nonce` went to `addr` ("ip:port") now. */
  sent (nonce: string, addr: string): void {
    const t = this.clock()
    for (const [n, p] of this.pending) {
      if (this.pending.size < MAX_PENDING && t - p.t < PENDING_MS) break // insertion order: oldest first
      this.pending.delete(n)
    }
    this.pending.set(nonce, { addr, t })
  }

  /** An ack with `nonce` came from `from`, a member's probe address (nodeId) or not (undefined). */
  acked (nonce: string, from: string, nodeId: string | undefined): void {
    const p = this.pending.get(nonce)
    if (p === undefined || p.addr !== from) return
    this.pending.delete(nonce)
    if (nodeId === undefined) return
    const t = this.clock()
    const ms = t - p.t
    if (ms > PENDING_MS) return
    const s = this.samples.get(nodeId) ?? { last: [], at: t }
    s.last.push(ms)
    if (s.last.length > KEEP) s.last.shift()
    s.at = t
    this.samples.set(nodeId, s)
  }

  /** The member to ping for RTT now (one with the oldest sample, if stale), or undefined. */
  due (members: ReadonlyArray<{ nodeId: string, addr: string }>): { nodeId: string, addr: string } | undefined {
    const t = this.clock()
    if (t - this.lastActive < this.everyMs) return undefined
    let best: { nodeId: string, addr: string } | undefined
    let bestAt = Infinity
    for (const m of members) {
      const at = Math.max(this.samples.get(m.nodeId)?.at ?? -Infinity, this.tried.get(m.nodeId) ?? -Infinity)
      if (t - at < this.freshMs) continue
      if (at < bestAt) { best = m; bestAt = at }
    }
    if (best !== undefined) { this.lastActive = t; this.tried.set(best.nodeId, t) }
    return best
  }

  get (nodeId: string): RttEstimate | undefined {
    const s = this.samples.get(nodeId)
    if (s === undefined) return undefined
    const sorted = [...s.last].sort((a, b) => a - b)
    const mid = sorted.length >> 1
    const ms = sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2
    return { ms, ageMs: this.clock() - s.at }
  }

  /** Drop samples of members no longer in the table. */
  retain (keep: (nodeId: string) => boolean): void {
    for (const id of this.samples.keys()) if (!keep(id)) this.samples.delete(id)
    for (const id of this.tried.keys()) if (!keep(id)) this.tried.delete(id)
  }
}
