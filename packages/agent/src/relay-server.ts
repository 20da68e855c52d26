/**
 * The relay's side of a relayed pair: it copies WireGuard ciphertext between the pair's two
 * ends and never holds a key or a route for their addresses.
 *
 * A member asks (inside its tunnel to us, see core relay.ts) for a port for its end of the pair
 * {it, peer}. Each pair gets two UDP sockets, one per end: a datagram arriving on A's socket from
 * one of A's underlay hosts is WireGuard-shaped or dropped, teaches us A's current address (its
 * NAT mapping towards us), and goes out of B's socket to B's last address — so each end sees the
 * other at the relay's port for its own end. Idle pairs nobody asks for are closed.
 *
 * Both families (issue 11): each end's port is one dual-stack UDP socket (`udp6` bound to `::`
 * without IPV6_V6ONLY), so an end reaches it over its own family — an IPv6-only end at the
 * relay's IPv6 address, an IPv4-only one at its IPv4 address, the same port — and one pair
 * joins the two. One socket per end rather than an IPv4 and an IPv6 socket sharing a port
 * number: one descriptor and one port per end as before (no second bind that can find the port
 * taken), at the cost of IPv4 sources arriving v4-mapped (::ffff:a.b.c.d), which are compared
 * unmapped and answered as they came. A host without IPv6 gets `udp4` sockets (IPv4 ends only).
 * Dual-stack sockets need net.ipv6.bindv6only=0 (Linux's default); with 1 they would take
 * IPv6 only, so then the ports are IPv4 (said once in the log).
 */
import { createSocket, type RemoteInfo, type Socket } from 'node:dgram'
import { readFileSync } from 'node:fs'
import {
  admitRelaySession, DEFAULT_RELAY_LIMITS, isWireGuardDatagram, pairKey, unmapV4,
  type NodeRecord, type RelayCtl, type RelayLimits
} from '@wgmesh/core'
import type { Logger } from './logger.js'

export interface RelayServerHost {
  now: () => number
  /** An active, not leaving member, or undefined. */
  member: (nodeId: string) => NodeRecord | undefined
  /** Whether a control message claiming to be from `nodeId` came from it (the tunnel's source). */
  fromMatches: (nodeId: string, fromHost: string) => boolean
  /** Underlay hosts a member may send from (its endpoints' hosts, where WireGuard hears it; canonical IPv4 and IPv6 texts). */
  sourcesOf: (nodeId: string) => Set<string>
  reply: (to: string, msg: RelayCtl) => void
  log: Logger
  /** Whether relay ports may be dual-stack (default: IPv6 works here and net.ipv6.bindv6only is 0). */
  dualStack?: () => boolean
}

interface End {
  nodeId: string
  sock: Socket
  port: number
  sources: Set<string>
  /** The end's last source as the socket reported it (v4-mapped on a dual-stack socket): where its peer's datagrams go. */
  addr?: { host: string, port: number }
}

interface Session { a: End, b: End, lastActive: number, lastAsked: number }

/** Kernel buffers for the copy sockets: a relay forwards bursts of full-size datagrams. */
const SOCKET_BUFFER = 2 * 1024 * 1024

export class RelayServer {
  private readonly host: RelayServerHost
  private readonly limits: RelayLimits
  private readonly sessions = new Map<string, Session>()
  private readonly opening = new Map<string, Promise<Session>>()
  private sweepTimer?: NodeJS.Timeout
  private closed = false
  readonly stats = { packets: 0, bytes: 0, dropped: { shape: 0, source: 0, noPeer: 0 }, refused: 0 }
  /** Relay ports are dual-stack until a host shows it cannot have them (decided on the first port). */
  private dual: boolean | undefined

  constructor (host: RelayServerHost, limits: RelayLimits = DEFAULT_RELAY_LIMITS) {
    this.host = host
    this.limits = limits
    this.sweepTimer = setInterval(() => { this.sweep() }, 10_000)
    this.sweepTimer.unref()
  }

  get size (): number { return this.sessions.size }

  /** An authenticated 'alloc' from `from` ("ip:port" of the requester's probe socket). */
  onAlloc (from: string, msg: Extract<RelayCtl, { t: 'alloc' }>): void {
    const refuse = (why: string): void => {
      this.stats.refused++
      this.host.reply(from, { t: 'no', peer: msg.peer, id: msg.id, why })
    }
    if (this.closed) { refuse('not relaying'); return }
    const fromHost = from.slice(0, from.lastIndexOf(':'))
    if (this.host.member(msg.from) === undefined || !this.host.fromMatches(msg.from, fromHost)) { refuse('unknown requester'); return }
    if (this.host.member(msg.peer) === undefined) { refuse('unknown peer'); return }
    const key = pairKey(msg.from, msg.peer)
    const why = this.sessions.has(key) || this.opening.has(key) ? undefined : admitRelaySession(this.sessions.keys(), msg.from, msg.peer, this.limits)
    if (why !== undefined) { refuse(why); return }
    void this.session(key, msg.from, msg.peer).then(s => {
      s.lastAsked = this.host.now()
      const mine = s.a.nodeId === msg.from ? s.a : s.b
      mine.sources = this.host.sourcesOf(mine.nodeId)
      this.host.reply(from, { t: 'ok', peer: msg.peer, port: mine.port, id: msg.id })
    }, (err: Error) => {
      this.host.log.warn('cannot open a relay port', { error: err.message })
      refuse('no port')
    })
  }

  private async session (key: string, x: string, y: string): Promise<Session> {
    const open = this.sessions.get(key)
    if (open !== undefined) return open
    let p = this.opening.get(key)
    if (p === undefined) {
      p = (async () => {
        const now = this.host.now()
        const [a, b] = await Promise.all([this.openEnd(x), this.openEnd(y)])
        const s: Session = { a, b, lastActive: now, lastAsked: now }
        a.sock.on('message', (buf, rinfo) => { this.copy(s, a, b, buf, rinfo) })
        b.sock.on('message', (buf, rinfo) => { this.copy(s, b, a, buf, rinfo) })
        if (this.closed) { closeEnd(a); closeEnd(b); throw new Error('relay stopped') }
        this.sessions.set(key, s)
        this.host.log.info('relaying a pair (ciphertext only)', { a: x, b: y, ports: [a.port, b.port] })
        return s
      })().finally(() => { this.opening.delete(key) })
      this.opening.set(key, p)
    }
    return await p
  }

  private async openEnd (nodeId: string): Promise<End> {
    this.dual ??= this.host.dualStack?.() ?? dualStackHere(this.host.log)
    let sock: Socket | undefined
    if (this.dual) {
      sock = await bindPort('udp6').catch((err: Error) => {
        // no IPv6 on this host (disabled, or no such address family): IPv4 ports from now on
        this.dual = false
        this.host.log.info('relay ports are IPv4 only: no IPv6 socket here', { error: err.message })
        return undefined
      })
    }
    sock ??= await bindPort('udp4')
    sock.on('error', (err) => { this.host.log.debug('relay socket error', { error: err.message }) })
    return { nodeId, sock, port: sock.address().port, sources: this.host.sourcesOf(nodeId) }
  }

  private copy (s: Session, from: End, to: End, buf: Buffer, rinfo: RemoteInfo): void {
    if (!isWireGuardDatagram(buf)) { this.stats.dropped.shape++; return }
    if (!from.sources.has(unmapV4(rinfo.address))) { this.stats.dropped.source++; return }
    if (from.addr?.host !== rinfo.address || from.addr.port !== rinfo.port) from.addr = { host: rinfo.address, port: rinfo.port }
    if (to.addr === undefined) { this.stats.dropped.noPeer++; return }
    to.sock.send(buf, to.addr.port, to.addr.host)
    s.lastActive = this.host.now()
    this.stats.packets++
    this.stats.bytes += buf.length
  }

  /** Close pairs idle and unasked for `idleMs`, or with an end no longer a member; refresh sources. */
  sweep (): void {
    const now = this.host.now()
    for (const [key, s] of this.sessions) {
      const gone = this.host.member(s.a.nodeId) === undefined || this.host.member(s.b.nodeId) === undefined
      if (gone || now - Math.max(s.lastActive, s.lastAsked) > this.limits.idleMs) {
        this.sessions.delete(key)
        closeEnd(s.a)
        closeEnd(s.b)
        this.host.log.info('relay pair closed', { a: s.a.nodeId, b: s.b.nodeId, why: gone ? 'member gone' : 'idle' })
        continue
      }
      s.a.sources = this.host.sourcesOf(s.a.nodeId)
      s.b.sources = this.host.sourcesOf(s.b.nodeId)
    }
  }

  close (): void {
    this.closed = true
    clearInterval(this.sweepTimer)
    for (const s of this.sessions.values()) { closeEnd(s.a); closeEnd(s.b) }
    this.sessions.clear()
  }
}

/** A copy socket on a port of the kernel's choice, every address of its family (`udp6`: both families). */
async function bindPort (type: 'udp4' | 'udp6'): Promise<Socket> {
  // every destination is a literal learnt from a datagram's source: no resolver per send
  const sock = createSocket({ type, ipv6Only: false, recvBufferSize: SOCKET_BUFFER, sendBufferSize: SOCKET_BUFFER, lookup: literalLookup })
  try {
    await new Promise<void>((resolve, reject) => {
      sock.once('error', reject)
      sock.bind(0, type === 'udp6' ? '::' : '0.0.0.0', () => { sock.off('error', reject); resolve() })
    })
  } catch (err) {
    closeSocket(sock)
    throw err
  }
  return sock
}

/** Whether a `::` socket here takes IPv4 too (net.ipv6.bindv6only=0, Linux's default). */
function dualStackHere (log: Logger): boolean {
  let v: string
  try {
    v = readFileSync('/proc/sys/net/ipv6/bindv6only', 'utf8').trim()
  } catch (err) { // no IPv6 here at all (or not Linux): the udp6 bind decides
    log.debug('net.ipv6.bindv6only unreadable', { error: (err as Error).message })
    return true
  }
  if (v === '0') return true
  log.warn('relay ports are IPv4 only: net.ipv6.bindv6only is not 0, so a dual-stack socket would take IPv6 only (IPv6-only members cannot be relayed by this node)', { bindv6only: v })
  return false
}

/** dgram's lookup for a host that is always an IP literal: answers at once. */
function literalLookup (host: string, _opts: unknown, cb: (err: NodeJS.ErrnoException | null, address: string, family: number) => void): void {
  cb(null, host, host.includes(':') ? 6 : 4)
}

function closeSocket (s: Socket): void {
  try { s.close() } catch { /* never bound, or already closed */ }
}

function closeEnd (e: End): void {
  closeSocket(e.sock)
}
