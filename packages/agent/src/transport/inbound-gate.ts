/**
 * Pre-authentication limits for inbound libp2p connections, as a libp2p connection gater.
 *
 * libp2p counts inbound connections that are not yet upgraded (mesh gate, noise, muxer)
 * against one global cap (`maxIncomingPendingConnections`), before anything proves the dialer
 * holds the mesh key. Idle TCP connections from one outsider could fill it and lock every
 * joiner out. This gate caps the pending connections per source address (an IPv4 address, or
 * an IPv6 /64), counted from `denyInboundConnection` (the first hook, before the mesh gate)
 * until noise has authenticated the peer (`denyInboundEncryptedConnection`, after the mesh
 * gate: the dialer holds the mesh key) or the connection closes. So one address holds at most
 * `maxPendingPerAddress` of the global slots, for at most the upgrade timeout each.
 */
import { formatIPv4, parseIPv6 } from '@wgmesh/core'

interface AddrLike { getComponents(): Array<{ name: string, value?: string }> }
interface ConnLike {
  remoteAddr: AddrLike
  addEventListener(type: 'close', fn: () => void, opts?: { once?: boolean }): void
}

export interface InboundGateInit {
  /** Most not-yet-authenticated inbound connections per source address (IPv6: per /64). */
  maxPendingPerAddress: number
  /** A pending entry is released after this long even if no close event came (a safety net). */
  releaseAfterMs: number
}

/** The key connections are counted under: "4 a.b.c.d", or "6 <first 64 bits>" (mapped IPv4 as IPv4). */
export function addressKey (addr: AddrLike): string | undefined {
  for (const c of addr.getComponents()) {
    if (c.value === undefined) continue
    if (c.name === 'ip4') return `4 ${c.value}`
    if (c.name === 'ip6') {
      const v = parseIPv6(c.value)
      if (v === undefined) return `6 ${c.value}`
      if (v >> 32n === 0xffffn) return `4 ${formatIPv4(v & 0xffffffffn)}` // ::ffff:a.b.c.d
      return `6 ${(v >> 64n).toString(16)}`
    }
  }
  return undefined
}

export class InboundGate {
  private readonly init: InboundGateInit
  private readonly pending = new Map<string, number>()
  private readonly held = new Map<ConnLike, { key: string, timer: NodeJS.Timeout }>()
  /** Inbound connections refused because their address had too many pending. */
  refused = 0

  constructor (init: InboundGateInit) {
    this.init = init
  }

  /** libp2p ConnectionGater hook: before the mesh gate. */
  denyInboundConnection (maConn: ConnLike): boolean {
    const key = addressKey(maConn.remoteAddr)
    if (key === undefined) return false
    const n = this.pending.get(key) ?? 0
    if (n >= this.init.maxPendingPerAddress) {
      this.refused++
      return true
    }
    this.pending.set(key, n + 1)
    const timer = setTimeout(() => { this.release(maConn) }, this.init.releaseAfterMs)
    timer.unref()
    this.held.set(maConn, { key, timer })
    maConn.addEventListener('close', () => { this.release(maConn) }, { once: true })
    return false
  }

  /** libp2p ConnectionGater hook: after the mesh gate and noise (the peer holds the mesh key). */
  denyInboundEncryptedConnection (_peer: unknown, maConn: ConnLike): boolean {
    this.release(maConn)
    return false
  }

  /** Pending connections of one address key (tests, metrics). */
  pendingOf (key: string): number { return this.pending.get(key) ?? 0 }

  /** Forget everything (node stopped). */
  clear (): void {
    for (const { timer } of this.held.values()) clearTimeout(timer)
    this.held.clear()
    this.pending.clear()
  }

  private release (maConn: ConnLike): void {
    const h = this.held.get(maConn)
    if (h === undefined) return
    this.held.delete(maConn)
    clearTimeout(h.timer)
    const n = (this.pending.get(h.key) ?? 1) - 1
    if (n <= 0) this.pending.delete(h.key)
    else this.pending.set(h.key, n)
  }
}
