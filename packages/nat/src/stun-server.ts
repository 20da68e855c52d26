/**
 * A minimal STUN server: answers Binding requests with the source address and port it saw.
 * Everything else is dropped silently. Against reflection with spoofed sources and CPU floods,
 * in this order, before any parsing: datagrams above {@link MAX_STUN_REQUEST_BYTES} are
 * dropped, then a per-source-IP token bucket and a global one; and an answer is never larger
 * than its request by more than the XOR-MAPPED-ADDRESS (FINGERPRINT only when the request had
 * one).
 *
 * Two servers of one family can be paired ({@link StunServer.pair}): a request asking for the
 * answer from another port (CHANGE-REQUEST, change port) is answered from the other server's
 * socket instead of this one's — still one answer per request, of the same size, after the same
 * limiters (nothing to amplify: it only changes the port the answer leaves from). A host that sees
 * its own address but never such an answer is behind a stateful firewall (it lets in only
 * replies to what it sent). Unpaired, such a request gets the plain answer.
 */
import dgram from 'node:dgram'
import { MAX_STUN_REQUEST_BYTES, bindingSuccess, parseBindingRequest } from './stun-codec.js'
import { InvalidArgumentError } from './errors.js'
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
  /** Of `answered`: change-port requests answered from the paired server's socket. */
  changed: number
}

export interface StunServer {
  /** Bound address and port. */
  address(): { host: string, port: number }
  stats(): StunServerStats
  /**
   * Answer change-port requests from `other`'s socket, and `other`'s from ours (the two must be
   * of one family; normally the ports p and p + 1 of one host). Throws on a mixed pair.
   */
  pair(other: StunServer): void
  close(): Promise<void>
}

type Send = (b: Uint8Array, port: number, address: string) => void
/** Each server's family, its way to send from its own socket, and the setter of its alternate (for `pair`). */
const pairing = new WeakMap<StunServer, { type: 'udp4' | 'udp6', send: Send, setAlternate: (s: Send) => void }>()

/** Start a STUN server; resolves once the socket is bound. */
export async function startStunServer (init: StunServerInit): Promise<StunServer> {
  const type = socketTypeFor(init.host)
  const socket = init.socketFactory !== undefined ? init.socketFactory(type) : dgram.createSocket({ type, ipv6Only: type === 'udp6' && init.ipv6Only === true })
  const rate = init.ratePerSecond ?? 50
  const clock = init.now !== undefined ? { now: init.now } : {}
  const limiter = new RateLimiter({ ratePerSecond: rate, burst: init.burst ?? rate, ...clock })
  const globalRate = init.globalRatePerSecond ?? 2000
  const global = new RateLimiter({ ratePerSecond: globalRate, burst: globalRate, maxKeys: 1, ...clock })
  const stats: StunServerStats = { answered: 0, rateLimited: 0, ignored: 0, oversized: 0, parsed: 0, changed: 0 }
  let alternate: Send | undefined
  let closed: Promise<void> | undefined
  const send: Send = (b, port, address) => {
    if (closed !== undefined) return
    socket.send(b, port, address, (err) => { if (err != null) init.onError?.(err) })
  }

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
    if (req.changePort && alternate !== undefined) {
      stats.answered++
      stats.changed++
      alternate(reply, rinfo.port, rinfo.address)
      return
    }
    stats.answered++
    send(reply, rinfo.port, rinfo.address)
  })

  const bound = socket.address()
  const server: StunServer = {
    address: () => ({ host: bound.address, port: bound.port }),
    stats: () => ({ ...stats }),
    pair: (other) => {
      const theirs = pairing.get(other)
      if (theirs === undefined || theirs.type !== type || other === server) throw new InvalidArgumentError('a STUN server pairs with another one of its own family')
      alternate = theirs.send
      theirs.setAlternate(send)
    },
    close: async () => {
      closed ??= new Promise<void>(resolve => { socket.close(() => { resolve() }) })
      await closed
    }
  }
  pairing.set(server, { type, send, setAlternate: (s) => { alternate = s } })
  return server
}
