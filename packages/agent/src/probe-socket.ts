/**
 * The failure detector's UDP socket: sends and receives probe datagrams (core's probe-wire.ts),
 * and carries relay control messages (core's relay.ts, first byte 'R') to `onRelayControl`.
 * Anyone who can reach the port can send to it, so input is bounded: datagrams larger than a
 * probe (or a relay control message), unauthenticated ones and anything beyond `maxPerSecond`
 * are dropped and counted.
 */
import { createSocket, type Socket } from 'node:dgram'
import { decodeProbe, decodeRelayCtl, encodeProbe, encodeRelayCtl, MAX_PROBE_BYTES, MAX_RELAY_CTL_BYTES, RELAY_CTL_MAGIC, type ProbeMessage, type RelayCtl } from '@wgmesh/core'
import type { Logger } from './logger.js'

export interface ProbeSocketInit {
  port: number
  /** Bind address. @default '0.0.0.0' */
  host?: string
  key: Uint8Array
  log: Logger
  /** Datagrams handled per second at most (the rest are dropped). @default 2000 */
  maxPerSecond?: number
  onMessage: (from: string, msg: ProbeMessage) => void
}

export class ProbeSocket {
  private readonly init: ProbeSocketInit
  private sock?: Socket
  /** Relay control messages (authenticated), if this node handles them. */
  onRelayControl?: (from: string, msg: RelayCtl) => void
  private windowStart = 0
  private inWindow = 0
  /** Dropped datagrams by reason. */
  readonly dropped = { oversize: 0, invalid: 0, rate: 0 }
  bytesIn = 0
  bytesOut = 0

  constructor (init: ProbeSocketInit) {
    this.init = init
  }

  /** Bind; resolves with the bound port. */
  async start (): Promise<number> {
    const sock = createSocket({ type: 'udp4' })
    this.sock = sock
    sock.on('message', (buf, rinfo) => { this.onDatagram(buf, `${rinfo.address}:${rinfo.port}`) })
    sock.on('error', (err) => { this.init.log.warn('probe socket error', { error: err.message }) })
    await new Promise<void>((resolve, reject) => {
      sock.once('error', reject)
      sock.bind(this.init.port, this.init.host ?? '0.0.0.0', () => { sock.off('error', reject); resolve() })
    })
    return sock.address().port
  }

  private onDatagram (buf: Buffer, from: string): void {
    const now = Date.now()
    if (now - this.windowStart >= 1000) { this.windowStart = now; this.inWindow = 0 }
    if (++this.inWindow > (this.init.maxPerSecond ?? 2000)) { this.dropped.rate++; return }
    if (buf[0] === RELAY_CTL_MAGIC) {
      if (buf.length > MAX_RELAY_CTL_BYTES) { this.dropped.oversize++; return }
      this.bytesIn += buf.length
      const ctl = decodeRelayCtl(this.init.key, buf)
      if (ctl === undefined || this.onRelayControl === undefined) { this.dropped.invalid++; return }
      this.onRelayControl(from, ctl)
      return
    }
    if (buf.length > MAX_PROBE_BYTES) { this.dropped.oversize++; return }
    this.bytesIn += buf.length
    const msg = decodeProbe(this.init.key, buf)
    if (msg === undefined) { this.dropped.invalid++; return }
    this.init.onMessage(from, msg)
  }

  send (to: string, msg: ProbeMessage): void {
    this.sendBytes(to, encodeProbe(this.init.key, msg))
  }

  sendRelayControl (to: string, msg: RelayCtl): void {
    this.sendBytes(to, encodeRelayCtl(this.init.key, msg))
  }

  private sendBytes (to: string, b: Uint8Array): void {
    const i = to.lastIndexOf(':')
    const host = to.slice(0, i)
    const port = Number(to.slice(i + 1))
    if (this.sock === undefined || !Number.isInteger(port)) return
    this.bytesOut += b.length
    // errors (no route yet: the tunnel is still forming) are the detector's business, not ours
    this.sock.send(b, port, host, () => {})
  }

  async close (): Promise<void> {
    const s = this.sock
    this.sock = undefined
    if (s !== undefined) await new Promise<void>(resolve => { s.close(() => { resolve() }) })
  }
}
