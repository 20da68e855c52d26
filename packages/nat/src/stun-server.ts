/**
 * A minimal STUN server: answers Binding requests with the source address and port it saw.
 * Everything else is dropped silently. Against reflection with spoofed sources and CPU floods,
 * in this order, before any parsing: datagrams above {@link MAX_STUN_REQUEST_BYTES} are
 * dropped, then a per-source-IP token bucket and a global one; and an answer is never larger
 * than its request by more than the XOR-MAPPED-ADDRESS (FINGERPRINT only when the request had
 * one).
 */
import dgram from 'node:dgram'
import { MAX_STUN_REQUEST_BYTES, bindingSuccess, parseBindingRequest } from './stun-codec.js'
import { RateLimiter } from './rate-limit.js'
import { socketTypeFor } from './socket.js'
import type { SocketFactory } from './socket.js'

export interface StunServerInit {
  /** Address to bind: '0.0.0.0', '::', '127.0.0.1', … */
  host: string
  /** UDP port; 0 picks a free one (see `address()`). */
  port: number
  /**
   * An IPv6 socket takes IPv6 only (not IPv4-mapped), so that an IPv4 server on the same port
   * can run beside it (one socket per family). Ignored for IPv4. @default false
   */
  ipv6Only?: boolean
  /** Creates the socket (tests, or an already-configured socket). Default `dgram.createSocket`. */
  socketFactory?: SocketFactory
  /** Answers per second per source IP (token bucket). Default 50. */
  ratePerSecond?: number
  /** Burst per source IP. Default = `ratePerSecond`. */
  burst?: number
  /** Datagrams handled per second from all sources together (spoofed sources each get a bucket). Default 2000. */
  globalRatePerSecond?: number
  /** Milliseconds clock for the rate limiter (tests). */
  now?: () => number
  /** Called on socket errors after startup (the server keeps running). */
  onError?: (err: Error) => void
}

export interface StunServerStats {
  /** Binding requests answered. */
  answered: number
  /** Datagrams dropped by a rate limiter (before parsing). */
  rateLimited: number
  /** Datagrams parsed that were not Binding requests. */
  ignored: number
  /** Datagrams larger than {@link MAX_STUN_REQUEST_BYTES}, dropped unparsed. */
  oversized: number
  /** Datagrams handed to the parser. */
  parsed: number
}

export interface StunServer {
  /** Bound address and port. */
  address(): { host: string, port: number }
  stats(): StunServerStats
  close(): Promise<void>
}

/** Start a STUN server; resolves once the socket is bound. */
export async function startStunServer (init: StunServerInit): Promise<StunServer> {
  const type = socketTypeFor(init.host)
  const socket = init.socketFactory !== undefined ? init.socketFactory(type) : dgram.createSocket({ type, ipv6Only: type === 'udp6' && init.ipv6Only === true })
  const rate = init.ratePerSecond ?? 50
  const clock = init.now !== undefined ? { now: init.now } : {}
  const limiter = new RateLimiter({ ratePerSecond: rate, burst: init.burst ?? rate, ...clock })
  const globalRate = init.globalRatePerSecond ?? 2000
  const global = new RateLimiter({ ratePerSecond: globalRate, burst: globalRate, maxKeys: 1, ...clock })
  const stats: StunServerStats = { answered: 0, rateLimited: 0, ignored: 0, oversized: 0, parsed: 0 }

  await new Promise<void>((resolve, reject) => {
    const onError = (err: Error): void => { socket.off('listening', onListening); reject(err) }
    const onListening = (): void => { socket.off('error', onError); resolve() }
    socket.once('error', onError)
    socket.once('listening', onListening)
    socket.bind(init.port, init.host)
  })

  socket.on('error', (err: Error) => { init.onError?.(err) })
  socket.on('message', (msg: Buffer, rinfo: dgram.RemoteInfo) => {
    if (msg.length > MAX_STUN_REQUEST_BYTES) { stats.oversized++; return }
    if (!limiter.take(rinfo.address) || !global.take('')) { stats.rateLimited++; return }
    stats.parsed++
    const req = parseBindingRequest(msg)
    if (req === undefined) { stats.ignored++; return }
    let reply: Uint8Array
    try {
      reply = bindingSuccess(req.txId, rinfo.address, rinfo.port, req.fingerprint)
    } catch {
      stats.ignored++
      return
    }
    stats.answered++
    socket.send(reply, rinfo.port, rinfo.address, (err) => { if (err != null) init.onError?.(err) })
  })

  const bound = socket.address()
  let closed: Promise<void> | undefined
  return {
    address: () => ({ host: bound.address, port: bound.port }),
    stats: () => ({ ...stats }),
    close: async () => {
      closed ??= new Promise<void>(resolve => { socket.close(() => { resolve() }) })
      await closed
    }
  }
}
