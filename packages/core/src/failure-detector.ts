/**
 * Failure detection with a bounded cost per node (SWIM's probe / indirect probe, on a ring).
 * Pure: time, members and received probes come in; datagrams to send and verdicts come out.
 *
 * Each node watches its `observers` successors on the ring of live members (sorted by nodeId),
 * so every member has that many watchers and each node sends `observers` pings per interval,
 * whatever the size of the mesh (SWIM's random target order gives the same average cost but an
 * unbounded worst case before a dead member is first probed; the ring bounds it by one interval).
 *   ping ──(probeTimeoutMs, no ack)──▶ ping-req through `indirectProbes` other members
 *        ──(probeTimeoutMs, no ack)──▶ 'suspect' (the agent gossips it; see Membership.suspect)
 * An ack, direct or relayed, is proof of life. A member first seen less than `joinGraceMs` ago
 * is not suspected before it has answered once (its tunnels may still be forming). Dead members are pinged now and then
 * (one every `deadProbeEveryMs`) with the `refute` flag, so a member that comes back (a healed
 * partition) learns it is held dead and refutes with a newer record.
 *
 * Local health (Lifeguard's LHM): a node that is itself slow — its event loop stalled past a
 * probe timeout, its probes keep failing, or it had to refute — trusts its own verdicts less:
 * its probe interval and timeouts stretch by (1 + health), health 0..8, and a stall voids the
 * verdicts it would have reached while stalled. On an overloaded host this turns a storm of
 * false suspicions (each one a refutation, a record, a re-plan) into slower detection.
 */
import type { ProbeMessage } from './probe-wire.js'

export interface DetectorSettings {
  /** One round of pings to the watched members per interval. @default heartbeat (1000 ms) */
  intervalMs: number
  /** Wait for an ack this long before asking others, and as long again before suspecting. */
  probeTimeoutMs: number
  /** Members asked to probe on our behalf when a direct ping gets no answer. @default 2 */
  indirectProbes: number
  /** Successors on the ring each node watches. @default 2 */
  observers: number
  /** No suspicion of a member first seen this recently. @default 10000 */
  joinGraceMs: number
  /** One ping to a random dead member this often. @default 3000 */
  deadProbeEveryMs: number
}

export interface ProbeTarget {
  nodeId: string
  /** Where its probe socket listens, "ip:port". */
  addr: string
  /** When this node first knew it (our clock). */
  firstSeen: number
  state: 'alive' | 'suspect' | 'dead'
}

export type DetectorEffect =
  | { kind: 'send', to: string, msg: ProbeMessage }
  /** Direct and indirect probes went unanswered. */
  | { kind: 'suspect', nodeId: string }
  /** An ack arrived: the member's tunnel carries packets now. */
  | { kind: 'alive', nodeId: string }
  /** A member holds us dead or suspect: publish a newer record. */
  | { kind: 'refute', from: string }

interface Outstanding { nodeId: string, addr: string, sentAt: number, phase: 'direct' | 'indirect', quiet: boolean, firstSent: number }
interface Relaying { requester: string, nonce: string, at: number }

const MAX_RELAYING = 256
/** Direct pings in a row a member left unanswered before `unanswered()` names it. */
export const UNANSWERED_MISSES = 2
/** Local health ceiling: timeouts stretch at most 9-fold. */
export const MAX_HEALTH = 8

export class FailureDetector {
  private readonly selfId: string
  private readonly s: DetectorSettings
  private readonly random: () => number
  private readonly newNonce: () => string
  private members: ProbeTarget[] = []
  private byId = new Map<string, ProbeTarget>()
  private watched: ProbeTarget[] = []
  private readonly outstanding = new Map<string, Outstanding>()
  private readonly relaying = new Map<string, Relaying>()
  private readonly lastPing = new Map<string, number>()
  private lastDeadProbe = -Infinity
  private lastPingIn = -Infinity
  private lastTick = -Infinity
  private health = 0
  private readonly answered = new Set<string>()
  /** Per member: direct pings unanswered in a row since its last direct ack, and when the first was sent. */
  private readonly missed = new Map<string, { since: number, count: number }>()

  constructor (selfId: string, settings: DetectorSettings, random: () => number, newNonce: () => string) {
    this.selfId = selfId
    this.s = settings
    this.random = random
    this.newNonce = newNonce
  }

  get settings (): Readonly<DetectorSettings> { return this.s }

  /** The members (excluding self); call when the membership changes, not every tick. */
  setMembers (members: ProbeTarget[]): void {
    this.members = members.filter(m => m.nodeId !== this.selfId)
    this.byId = new Map(this.members.map(m => [m.nodeId, m]))
    const ring = this.members.filter(m => m.state !== 'dead').sort((a, b) => (a.nodeId < b.nodeId ? -1 : 1))
    const after = ring.filter(m => m.nodeId > this.selfId)
    const before = ring.filter(m => m.nodeId < this.selfId)
    this.watched = [...after, ...before].slice(0, this.s.observers)
    for (const id of this.lastPing.keys()) if (!this.byId.has(id)) this.lastPing.delete(id)
    for (const id of this.answered) if (!this.byId.has(id)) this.answered.delete(id)
    for (const id of this.missed.keys()) if (!this.byId.has(id)) this.missed.delete(id)
  }

  /**
   * Members whose last {@link UNANSWERED_MISSES} (or more) direct pings went unanswered — no
   * direct ack since (a relayed one says it lives, not that our tunnel reaches it) — each
   * with the time the first of them was sent. Only members we ping: our ring successors, and
   * dead members now and then. The path manager reads it: a path that carries nothing while
   * its member's probes fail is dead, whatever the keepalives say.
   */
  unanswered (): Map<string, number> {
    const out = new Map<string, number>()
    for (const [id, m] of this.missed) if (m.count >= UNANSWERED_MISSES) out.set(id, m.since)
    return out
  }

  private miss (o: Outstanding): void {
    const m = this.missed.get(o.nodeId)
    if (m === undefined) this.missed.set(o.nodeId, { since: o.firstSent, count: 1 })
    else m.count++
  }

  /** The members this node watches now (its ring successors). */
  watching (): string[] { return this.watched.map(m => m.nodeId) }

  /**
   * Local health (after Lifeguard): whether members' pings reach us. A member accused while
   * none do should not refute through gossip (its tunnels are the broken part, and refuting
   * would only start the accusation again): it waits for a ping with `refute` to get through.
   */
  reachable (now: number): boolean {
    return now - this.lastPingIn <= 2 * this.s.intervalMs + 2 * this.s.probeTimeoutMs
  }

  /** A member is alive by some other proof (a newer record): drop a pending probe's verdict. */
  forget (nodeId: string): void {
    for (const [n, o] of this.outstanding) if (o.nodeId === nodeId) this.outstanding.delete(n)
  }

  /** Local health score (0 = healthy): timeouts and the probe interval are stretched by (1 + it). */
  get localHealth (): number { return this.health }

  /** We had to refute an accusation: we may be the slow one. */
  refuted (): void { this.worse() }

  private worse (): void { this.health = Math.min(MAX_HEALTH, this.health + 1) }
  private better (): void { this.health = Math.max(0, this.health - 1) }

  tick (now: number): DetectorEffect[] {
    const out: DetectorEffect[] = []
    // a stall (event loop blocked, CPU starved): acks may be sitting unread; no verdicts now
    if (now - this.lastTick > this.s.probeTimeoutMs && this.lastTick !== -Infinity) {
      this.worse()
      for (const o of this.outstanding.values()) o.sentAt = now
    }
    this.lastTick = now
    const mult = 1 + this.health
    const timeout = this.s.probeTimeoutMs * mult
    for (const [nonce, o] of this.outstanding) {
      if (now - o.sentAt < timeout) continue
      if (o.phase === 'direct') this.miss(o)
      if (o.phase === 'direct' && !o.quiet) {
        const helpers = this.members.filter(m => m.state === 'alive' && m.nodeId !== o.nodeId)
        for (let i = 0; i < this.s.indirectProbes && helpers.length > 0; i++) {
          const h = helpers.splice(Math.floor(this.random() * helpers.length), 1)[0]!
          out.push({ kind: 'send', to: h.addr, msg: { type: 'ping-req', nonce, target: o.addr } })
        }
        o.phase = 'indirect'
        o.sentAt = now
        continue
      }
      this.outstanding.delete(nonce)
      const m = this.byId.get(o.nodeId)
      if (!o.quiet && m !== undefined && m.state === 'alive' && (this.answered.has(m.nodeId) || now - m.firstSeen >= this.s.joinGraceMs)) {
        out.push({ kind: 'suspect', nodeId: o.nodeId })
        this.worse()
      }
    }
    for (const [n, r] of this.relaying) if (now - r.at > 2 * this.s.probeTimeoutMs) this.relaying.delete(n)
    for (const m of this.watched) {
      if (now - (this.lastPing.get(m.nodeId) ?? -Infinity) < this.s.intervalMs * mult) continue
      if ([...this.outstanding.values()].some(o => o.nodeId === m.nodeId)) continue
      this.lastPing.set(m.nodeId, now)
      out.push(this.ping(now, m, m.state !== 'alive', false))
    }
    if (now - this.lastDeadProbe >= this.s.deadProbeEveryMs) {
      const dead = this.members.filter(m => m.state === 'dead')
      if (dead.length > 0) {
        this.lastDeadProbe = now
        out.push(this.ping(now, dead[Math.floor(this.random() * dead.length)]!, true, true))
      }
    }
    return out
  }

  private ping (now: number, m: ProbeTarget, refute: boolean, quiet: boolean): DetectorEffect {
    const nonce = this.newNonce()
    this.outstanding.set(nonce, { nodeId: m.nodeId, addr: m.addr, sentAt: now, phase: 'direct', quiet, firstSent: now })
    const msg: ProbeMessage = { type: 'ping', nonce }
    if (refute) msg.refute = true
    return { kind: 'send', to: m.addr, msg }
  }

  /**
   * A datagram from `from` ("ip:port"), already authenticated. `isMember(addr)` tells whether a
   * ping-req target is a member's probe address (we never probe arbitrary addresses for others).
   */
  receive (now: number, from: string, msg: ProbeMessage, isMember: (addr: string) => boolean): DetectorEffect[] {
    switch (msg.type) {
      case 'ping': {
        this.lastPingIn = now
        const out: DetectorEffect[] = [{ kind: 'send', to: from, msg: { type: 'ack', nonce: msg.nonce } }]
        if (msg.refute === true) out.push({ kind: 'refute', from })
        return out
      }
      case 'ack': {
        const o = this.outstanding.get(msg.nonce)
        if (o !== undefined) {
          this.outstanding.delete(msg.nonce)
          if (!o.quiet) this.better()
          // only its own answer ends the join grace: our tunnel to it works (a relayed ack
          // says it lives, not that we can reach it)
          if (from === o.addr) {
            this.answered.add(o.nodeId)
            this.missed.delete(o.nodeId)
          }
          return [{ kind: 'alive', nodeId: o.nodeId }]
        }
        const r = this.relaying.get(msg.nonce)
        if (r === undefined) return []
        this.relaying.delete(msg.nonce)
        return [{ kind: 'send', to: r.requester, msg: { type: 'ack', nonce: r.nonce } }]
      }
      case 'ping-req': {
        const target = msg.target
        if (target === undefined || !isMember(target) || this.relaying.size >= MAX_RELAYING) return []
        const nonce = this.newNonce()
        this.relaying.set(nonce, { requester: from, nonce: msg.nonce, at: now })
        return [{ kind: 'send', to: target, msg: { type: 'ping', nonce } }]
      }
    }
  }
}

/**
 * Detector timings from the two user settings: probe every `heartbeatMs`; a dead member must be
 * marked dead everywhere within `deadAfterMs`. Worst case: it dies just after answering, is
 * pinged one interval later, suspected two probe timeouts after that, and dead once the
 * suspicion timeout ran out; what is left of `deadAfterMs` (less a margin for gossip) is the
 * suspicion window in which a falsely suspected member can refute.
 */
export function detectorTimings (heartbeatMs: number, deadAfterMs: number): { detector: DetectorSettings, suspicionMaxMs: number, suspicionMinMs: number } {
  const probeTimeoutMs = Math.max(50, Math.min(500, Math.round(heartbeatMs * 0.3)))
  const suspicionMaxMs = Math.max(200, deadAfterMs - heartbeatMs - 2 * probeTimeoutMs - 200)
  return {
    detector: { intervalMs: heartbeatMs, probeTimeoutMs, indirectProbes: 2, observers: 2, joinGraceMs: 10_000, deadProbeEveryMs: 3000 },
    suspicionMaxMs,
    suspicionMinMs: Math.max(100, Math.round(suspicionMaxMs / 2))
  }
}
