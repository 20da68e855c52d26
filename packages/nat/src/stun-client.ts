/**
 * STUN client on a socket we own (never the WireGuard socket: WireGuard owns that port).
 * One Binding request per server, retransmitted at 100, 200, 400… ms until an answer with the
 * same transaction id arrives or the deadline passes.
 */
import dgram from 'node:dgram'
import { canonicalIP, formatEndpoint } from '@wgmesh/core'
import { StunQueryError, StunTimeoutError } from './errors.js'
import { bindingRequest, newTransactionId, parseBindingResponse, sameTransactionId } from './stun-codec.js'
import { bareHost, socketTypeFor } from './socket.js'
import type { FilteringResult } from './nat-type.js'
import type { HostPort, SocketFactory } from './socket.js'

/** What one server saw. */
export interface StunAnswer {
  address: string
  port: number
  family: 4 | 6
  /** Where the answer came from (a change-port answer: the server's other port). */
  source: { address: string, port: number }
}

/** One server's answer, as gathered by {@link probeNat}. */
export interface StunMapping {
  server: HostPort
  address: string
  port: number
}

export interface NatProbe {
  /** The address most servers saw (undefined if none answered). */
  publicAddress?: string
  /** One entry per server that answered, in the order of `servers`. */
  mappings: StunMapping[]
  /** One entry per server that did not. */
  errors: Array<{ server: HostPort, error: Error }>
  /** Local port of the probe socket (compare with mapped ports: port preservation). */
  localPort: number
}

export interface ProbeNatOptions {
  /** Address to bind the probe socket to. Default '0.0.0.0' (or '::' for IPv6 servers). */
  bindHost?: string
  /** Per-server deadline, ms. Default 1500. */
  timeoutMs?: number
  /** Retransmissions per server. Default 3 (sent at 0, 100, 300, 700 ms). */
  retries?: number
  /** Most servers to query (distinct IPs first). Default 3; at least 2 are queried if given. */
  maxServers?: number
  socketFactory?: SocketFactory
  signal?: AbortSignal
}

const FIRST_RTO_MS = 100

/**
 * Send a Binding request from `socket` to `server` and resolve with the address it saw.
 * The socket must be bound (or bindable on first send). Rejects with {@link StunTimeoutError}
 * after `timeoutMs`, {@link StunQueryError} if sending fails or the socket errors.
 */
export async function queryStun (
  socket: dgram.Socket,
  server: HostPort,
  timeoutMs = 1500,
  retries = 3,
  options: { signal?: AbortSignal, changePort?: boolean } = {}
): Promise<StunAnswer> {
  const host = bareHost(server.host)
  const label = formatEndpoint(host, server.port)
  const txId = newTransactionId()
  const request = bindingRequest(txId, { changePort: options.changePort === true })

  return await new Promise<StunAnswer>((resolve, reject) => {
    let sent = 0
    let rto = FIRST_RTO_MS
    let retransmit: ReturnType<typeof setTimeout> | undefined
    const deadline = setTimeout(() => { finish(new StunTimeoutError(label, timeoutMs)) }, timeoutMs)

    const finish = (err: Error | undefined, answer?: StunAnswer): void => {
      clearTimeout(deadline)
      clearTimeout(retransmit)
      socket.off('message', onMessage)
      socket.off('error', onError)
      options.signal?.removeEventListener('abort', onAbort)
      if (err !== undefined) reject(err)
      else resolve(answer as StunAnswer)
    }
    const onMessage = (msg: Buffer, rinfo: dgram.RemoteInfo): void => {
      const r = parseBindingResponse(msg)
      if (r === undefined || !sameTransactionId(r.txId, txId)) return
      finish(undefined, { address: r.address, port: r.port, family: r.family, source: { address: rinfo.address, port: rinfo.port } })
    }
    const onError = (err: Error): void => { finish(new StunQueryError(label, err.message, { cause: err })) }
    const onAbort = (): void => { finish(new StunQueryError(label, 'aborted', { cause: options.signal?.reason })) }
    const send = (): void => {
      sent++
      try {
        socket.send(request, server.port, host, (err) => {
          if (err != null) finish(new StunQueryError(label, err.message, { cause: err }))
        })
      } catch (err) { // e.g. socket closed meanwhile
        finish(new StunQueryError(label, err instanceof Error ? err.message : String(err), { cause: err }))
        return
      }
      if (sent <= retries) {
        retransmit = setTimeout(send, rto)
        rto *= 2
      }
    }

    if (options.signal?.aborted === true) { onAbort(); return }
    options.signal?.addEventListener('abort', onAbort, { once: true })
    socket.on('message', onMessage)
    socket.on('error', onError)
    send()
  })
}

/**
 * Order servers for a probe: drop exact duplicates, then one server per distinct IP first
 * (mapping differences show up between destination IPs), then the rest.
 */
export function pickProbeServers (servers: HostPort[], max: number): HostPort[] {
  const seen = new Set<string>()
  const unique: HostPort[] = []
  for (const s of servers) {
    const h = canonicalIP(bareHost(s.host)) ?? bareHost(s.host)
    const key = formatEndpoint(h, s.port)
    if (seen.has(key)) continue
    seen.add(key)
    unique.push({ host: h, port: s.port })
  }
  const ips = new Set<string>()
  const first: HostPort[] = []
  const rest: HostPort[] = []
  for (const s of unique) {
    if (ips.has(s.host)) rest.push(s)
    else { ips.add(s.host); first.push(s) }
  }
  return [...first, ...rest].slice(0, Math.max(2, max))
}

/**
 * Query several STUN servers from ONE fresh ephemeral UDP socket, concurrently, and gather
 * what each saw. Never throws for unreachable servers: they land in `errors`.
 * Classify the result with `classifyNat(localAddrs, probe.localPort, probe.mappings)`.
 */
export async function probeNat (servers: HostPort[], opts: ProbeNatOptions = {}): Promise<NatProbe> {
  const chosen = pickProbeServers(servers, opts.maxServers ?? 3)
  const family = socketTypeFor(opts.bindHost ?? chosen[0]?.host ?? '0.0.0.0')
  const bindHost = opts.bindHost ?? (family === 'udp6' ? '::' : '0.0.0.0')
  const socket = await openSocket(family, bindHost, opts.socketFactory)
  try {
    const localPort = socket.address().port
    const timeoutMs = opts.timeoutMs ?? 1500
    const retries = opts.retries ?? 3
    const results = await Promise.allSettled(chosen.map(async s =>
      await queryStun(socket, s, timeoutMs, retries, opts.signal !== undefined ? { signal: opts.signal } : {})))
    const mappings: StunMapping[] = []
    const errors: NatProbe['errors'] = []
    results.forEach((r, i) => {
      const server = chosen[i] as HostPort
      if (r.status === 'fulfilled') mappings.push({ server, address: r.value.address, port: r.value.port })
      else errors.push({ server, error: r.reason instanceof Error ? r.reason : new Error(String(r.reason)) })
    })
    const publicAddress = majority(mappings.map(m => m.address))
    return { ...(publicAddress !== undefined ? { publicAddress } : {}), mappings, errors, localPort }
  } finally {
    await closeSocket(socket)
  }
}

/**
 * A change-port probe ({@link FilteringResult}): ask up to `maxServers` (default 2) servers on distinct hosts, each from a fresh socket of its
 * own (one that has sent to nothing else: a firewall must have no state for the other port),
 * to answer from their other port. Only for servers that answered a plain request just before
 * and are known to pair their ports (members' servers): a third-party server that does not
 * know CHANGE-REQUEST would say nothing, which reads as `filtered`.
 */
export async function probeFiltering (servers: HostPort[], opts: Omit<ProbeNatOptions, 'maxServers'> & { maxServers?: number } = {}): Promise<FilteringResult> {
  const max = opts.maxServers ?? 2
  const chosen: HostPort[] = []
  for (const s of pickProbeServers(servers, servers.length)) if (chosen.length < max && !chosen.some(c => c.host === s.host)) chosen.push(s)
  const results = await Promise.all(chosen.map(async (server): Promise<FilteringResult | 'silent'> => {
    const family = socketTypeFor(server.host)
    let socket: dgram.Socket | undefined
    try {
      socket = await openSocket(family, opts.bindHost ?? (family === 'udp6' ? '::' : '0.0.0.0'), opts.socketFactory)
      const a = await queryStun(socket, server, opts.timeoutMs ?? 1500, opts.retries ?? 3, { changePort: true, ...(opts.signal !== undefined ? { signal: opts.signal } : {}) })
      return a.source.port !== server.port ? 'open' : 'unsupported'
    } catch (err) { // a timeout is the firewall's silence; anything else (no socket, send failed) says nothing
      return err instanceof StunTimeoutError ? 'silent' : 'unsupported'
    } finally {
      if (socket !== undefined) await closeSocket(socket)
    }
  }))
  if (results.includes('open')) return 'open'
  return results.includes('silent') ? 'filtered' : 'unsupported'
}

async function openSocket (family: 'udp4' | 'udp6', bindHost: string, factory: SocketFactory | undefined): Promise<dgram.Socket> {
  const socket = factory !== undefined ? factory(family) : dgram.createSocket({ type: family })
  // each query listens for errors itself (a failed send rejects it); this one keeps an error
  // between queries from becoming an uncaught exception
  socket.on('error', () => {})
  try {
    await new Promise<void>((resolve, reject) => {
      const onErr = (err: Error): void => { reject(err) }
      socket.once('error', onErr)
      socket.bind(0, bindHost, () => { socket.off('error', onErr); resolve() })
    })
  } catch (err) {
    await closeSocket(socket)
    throw err
  }
  return socket
}

async function closeSocket (socket: dgram.Socket): Promise<void> {
  await new Promise<void>(resolve => {
    try { socket.close(() => { resolve() }) } catch { resolve() } // already closed
  })
}

function majority (xs: string[]): string | undefined {
  const counts = new Map<string, number>()
  let best: string | undefined
  let bestN = 0
  for (const x of xs) {
    const n = (counts.get(x) ?? 0) + 1
    counts.set(x, n)
    if (n > bestN) { best = x; bestN = n }
  }
  return best
}
