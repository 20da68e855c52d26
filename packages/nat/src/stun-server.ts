/**
 * A minimal STUN server: answers Binding requests with the source address and port it saw.
 * Everything else is dropped silently. A per-source-IP token bucket keeps it from being used
 * as a reflector/amplifier with spoofed sources.
 */
import dgram from 'node:dgram'
import { bindingSuccess, parseBindingRequest } from './stun-codec.js'
import { RateLimiter } from './rate-limit.js'
import { socketTypeFor } from './socket.js'
import type { SocketFactory } from './socket.js'

export interface StunServerInit {
  /** Address to bind: '0.0.0.0', '::', '127.0.0.1', … */
  host: string
  /** UDP port; 0 picks a free one (see `address()`). */
  port: number
  /** Creates the socket (tests, or an already-configured socket). Default `dgram.createSocket`. */
  socketFactory?: SocketFactory
  /** Answers per second per source IP (token bucket). Default 50. */
  ratePerSecond?: number
  /** Burst per source IP. Default = `ratePerSecond`. */
  burst?: number
  /** Milliseconds clock for the rate limiter (tests). */
  now?: () => number
  /** Called on socket errors after startup (the server keeps running). */
  onError?: (err: Error) => void
}

export interface StunServerStats {
  /** Binding requests answered. */
  answered: number
  /** Binding requests dropped by the rate limiter. */
  rateLimited: number
  /** Datagrams that were not Binding requests. */
  ignored: number
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
  const socket = init.socketFactory !== undefined ? init.socketFactory(type) : dgram.createSocket({ type })
  const rate = init.ratePerSecond ?? 50
  const limiter = new RateLimiter({ ratePerSecond: rate, burst: init.burst ?? rate, ...(init.now !== undefined ? { now: init.now } : {}) })
  const stats: StunServerStats = { answered: 0, rateLimited: 0, ignored: 0 }

  await new Promise<void>((resolve, reject) => {
    const onError = (err: Error): void => { socket.off('listening', onListening); reject(err) }
    const onListening = (): void => { socket.off('error', onError); resolve() }
    socket.once('error', onError)
    socket.once('listening', onListening)
    socket.bind(init.port, init.host)
  })

  socket.on('error', (err: Error) => { init.onError?.(err) })
  socket.on('message', (msg: Buffer, rinfo: dgram.RemoteInfo) => {
    const req = parseBindingRequest(msg)
    if (req === undefined) { stats.ignored++; return }
    if (!limiter.take(rinfo.address)) { stats.rateLimited++; return }
    let reply: Uint8Array
    try {
      reply = bindingSuccess(req.txId, rinfo.address, rinfo.port)
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
