/**
 * Our side of relayed pairs: asks each relay (inside our tunnel to it, on its probe port) for
 * the port of our end of the pair, keeps the answer fresh, and forgets pairs no longer relayed.
 * Requests repeat every second until answered (UDP), and every 30 s after (the relay closes
 * pairs nobody asks for, and a restarted relay answers with a new port).
 */
import { randomInt } from 'node:crypto'
import type { RelayCtl } from '@wgmesh/core'
import type { Logger } from './logger.js'

export interface RelayClientHost {
  now: () => number
  selfId: string
  send: (to: string, msg: RelayCtl) => void
  /** An answer changed a port: re-plan. */
  changed: () => void
  log: Logger
}

interface Want {
  relayId: string
  peerId: string
  /** The relay's probe socket, "ip:port". */
  ctl: string
  id: number
  port?: number
  askedAt: number
  answeredAt: number
  wantedAt: number
  refusal?: string
}

const RETRY_MS = 1000
const REFRESH_MS = 30_000
const FORGET_MS = 60_000

export class RelayClient {
  private readonly host: RelayClientHost
  private readonly wants = new Map<string, Want>()

  constructor (host: RelayClientHost) {
    this.host = host
  }

  /** The relay's port for our end of the pair with `peerId`; asks for it when unknown. */
  port (relayId: string, ctl: string, peerId: string): number | undefined {
    const key = `${relayId} ${peerId}`
    const now = this.host.now()
    let w = this.wants.get(key)
    if (w === undefined || w.ctl !== ctl) {
      w = { relayId, peerId, ctl, id: 0, askedAt: -Infinity, answeredAt: -Infinity, wantedAt: now }
      this.wants.set(key, w)
      this.ask(w, now)
    }
    w.wantedAt = now
    return w.port
  }

  /** The port if already answered (asks nothing). */
  known (relayId: string, ctl: string, peerId: string): number | undefined {
    const w = this.wants.get(`${relayId} ${peerId}`)
    return w?.ctl === ctl ? w.port : undefined
  }

  /** Every path tick: repeat unanswered requests, refresh answered ones, forget unwanted ones. */
  tick (): void {
    const now = this.host.now()
    for (const [key, w] of this.wants) {
      if (now - w.wantedAt > FORGET_MS) { this.wants.delete(key); continue }
      if (w.port === undefined ? now - w.askedAt >= RETRY_MS : now - w.askedAt >= REFRESH_MS) this.ask(w, now)
    }
  }

  /** An authenticated answer from a relay's probe socket. */
  onAnswer (from: string, msg: Extract<RelayCtl, { t: 'ok' | 'no' }>): void {
    for (const w of this.wants.values()) {
      if (w.peerId !== msg.peer || w.id !== msg.id || w.ctl !== from) continue
      w.answeredAt = this.host.now()
      if (msg.t === 'ok') {
        w.refusal = undefined
        if (w.port !== msg.port) {
          w.port = msg.port
          this.host.log.info('relay port for a pair', { relay: w.relayId, peer: w.peerId, port: msg.port })
          this.host.changed()
        }
      } else if (w.refusal !== msg.why) {
        w.refusal = msg.why
        this.host.log.warn('a relay refused to carry a pair', { relay: w.relayId, peer: w.peerId, why: msg.why })
      }
      return
    }
  }

  private ask (w: Want, now: number): void {
    w.id = randomInt(0, 0xffffffff)
    w.askedAt = now
    this.host.send(w.ctl, { t: 'alloc', from: this.host.selfId, peer: w.peerId, id: w.id })
  }
}
