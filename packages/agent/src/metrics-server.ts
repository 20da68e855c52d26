/**
 * The Prometheus endpoint (`--metrics-listen`): GET/HEAD /metrics over plain HTTP/1.x.
 *
 * Written on node:net rather than node:http so every limit is this file's and visible:
 *  - one request per connection (`Connection: close`): no keep-alive to hold;
 *  - the request head (request line and headers) must arrive whole within `headMs` (an
 *    absolute deadline, not an idle timeout: a slowloris trickling a byte a second is cut at
 *    the same time as one sending nothing) and within `MAX_HEAD` bytes, else 408/431 and close;
 *  - a body is never read; a connection is closed 1 s after its answer went out (the client
 *    reads it and closes), or `lingerMs` after its request head when the answer cannot go out;
 *  - at most `maxConnections` open; at the limit a new connection pushes out the oldest one
 *    that has not yet sent a whole request head or was answered already (idle holders cannot
 *    starve a scraper, whose request arrives in one segment), or is refused when all are
 *    being answered;
 *  - renders are shared: concurrent scrapes wait for one render, and a render younger than
 *    `cacheMs` is served again (a flood of scrapes costs one render a second).
 * Anything but GET/HEAD on /metrics gets 405, any other path 404, a malformed head 400.
 */
import { createServer, isIPv4, isIPv6, type Server, type Socket } from 'node:net'
import { InvalidConfigError } from '@wgmesh/core'
import type { Logger } from './logger.js'

const MAX_HEAD = 8192

export interface MetricsServerInit {
  host: string
  port: number
  render: () => Promise<string>
  contentType: string
  /** Open connections at most. @default 32 */
  maxConnections?: number
  /** The whole request head must arrive within this. @default 5000 */
  headMs?: number
  /** A connection is closed this long after its answer started, at the latest. @default 10000 */
  lingerMs?: number
  /** A render is reused this long. @default 1000 */
  cacheMs?: number
}

export interface MetricsServer {
  /** Where it listens ("127.0.0.1:9586", "[::1]:9586"). */
  readonly address: string
  readonly port: number
  /** Requests answered by status, connections pushed out or refused at the limit. */
  readonly stats: { byStatus: Record<number, number>, evicted: number, refused: number }
  close: () => Promise<void>
}

/** started: its request head is complete; answered: an answer is going out; flushed: all of it went to the kernel. */
interface Conn { sock: Socket, started: boolean, answered: boolean, flushed: boolean, timer: NodeJS.Timeout }

const REASONS: Record<number, string> = { 200: 'OK', 400: 'Bad Request', 404: 'Not Found', 405: 'Method Not Allowed', 408: 'Request Timeout', 431: 'Request Header Fields Too Large', 500: 'Internal Server Error', 505: 'HTTP Version Not Supported' }

export async function serveMetrics (init: MetricsServerInit): Promise<MetricsServer> {
  const maxConns = init.maxConnections ?? 32
  const headMs = init.headMs ?? 5000
  const lingerMs = init.lingerMs ?? 10_000
  const cacheMs = init.cacheMs ?? 1000
  const conns = new Set<Conn>() // insertion order: oldest first
  const stats = { byStatus: {} as Record<number, number>, evicted: 0, refused: 0 }
  let cached: { text: string, at: number } | undefined
  let rendering: Promise<string> | undefined

  const render = async (): Promise<string> => {
    if (cached !== undefined && Date.now() - cached.at < cacheMs) return cached.text
    rendering ??= init.render().then(text => { cached = { text, at: Date.now() }; return text }).finally(() => { rendering = undefined })
    return await rendering
  }

  const answer = (c: Conn, status: number, body: string, head: boolean, extra = ''): void => {
    if (c.answered) return
    c.answered = true
    stats.byStatus[status] = (stats.byStatus[status] ?? 0) + 1
    clearTimeout(c.timer)
    c.timer = setTimeout(() => { c.sock.destroy() }, lingerMs)
    c.timer.unref()
    const type = status === 200 ? init.contentType : 'text/plain; charset=utf-8'
    const len = Buffer.byteLength(body)
    c.sock.end(`HTTP/1.1 ${status} ${REASONS[status] ?? ''}\r\nContent-Type: ${type}\r\nContent-Length: ${len}\r\nConnection: close\r\n${extra}\r\n${head ? '' : body}`)
  }

  const onHead = (c: Conn, head: string): void => {
    const m = /^([A-Z]{1,16}) (\S{1,2048}) HTTP\/(\d)\.(\d)$/.exec(head.slice(0, head.indexOf('\r\n')))
    if (m === null) { answer(c, 400, 'bad request\n', false); return }
    if (m[3] !== '1') { answer(c, 505, 'HTTP/1.x only\n', false); return }
    const method = m[1]!
    const target = m[2]!
    const path = target.startsWith('http://') || target.startsWith('https://') ? target.replace(/^https?:\/\/[^/]*/, '') : target
    if (path.split('?')[0] !== '/metrics') { answer(c, 404, 'not found: the metrics are at /metrics\n', method === 'HEAD'); return }
    if (method !== 'GET' && method !== 'HEAD') { answer(c, 405, 'GET or HEAD only\n', false, 'Allow: GET, HEAD\r\n'); return }
    render().then(
      text => { if (!c.sock.destroyed) answer(c, 200, text, method === 'HEAD') },
      () => { if (!c.sock.destroyed) answer(c, 500, 'collecting metrics failed\n', method === 'HEAD') }
    )
  }

  const server: Server = createServer({ allowHalfOpen: false }, (sock) => {
    sock.on('error', () => {})
    if (conns.size >= maxConns) {
      const idle = [...conns].find(c => (!c.started && !c.answered) || c.flushed)
      if (idle === undefined) { stats.refused++; sock.destroy(); return }
      stats.evicted++
      idle.sock.destroy()
    }
    const c: Conn = { sock, started: false, answered: false, flushed: false, timer: setTimeout(() => { answer(c, 408, 'request head not received in time\n', false) }, headMs) }
    c.timer.unref()
    conns.add(c)
    sock.once('close', () => { clearTimeout(c.timer); conns.delete(c) })
    // answered and flushed: the client has a second to read and close, then it is cut
    sock.once('finish', () => { c.flushed = true; clearTimeout(c.timer); c.timer = setTimeout(() => { sock.destroy() }, 1000); c.timer.unref() })
    let buf = ''
    sock.setEncoding('latin1')
    sock.on('data', (chunk: string) => {
      if (c.answered || c.started) return // nothing after the head is read
      buf += chunk
      const end = buf.indexOf('\r\n\r\n')
      if (end < 0) {
        if (buf.length > MAX_HEAD) answer(c, 431, 'request head too large\n', false)
        return
      }
      if (end > MAX_HEAD) { answer(c, 431, 'request head too large\n', false); return }
      c.started = true
      clearTimeout(c.timer)
      c.timer = setTimeout(() => { c.sock.destroy() }, lingerMs)
      c.timer.unref()
      onHead(c, buf.slice(0, end + 2))
      buf = ''
    })
  })
  server.maxConnections = maxConns * 4 // the kernel's backlog aside, a hard ceiling above ours
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen({ host: init.host, port: init.port }, () => { server.off('error', reject); resolve() })
  })
  const port = (server.address() as { port: number }).port
  return {
    address: `${isIPv6(init.host) ? `[${init.host}]` : init.host}:${port}`,
    port,
    stats,
    close: async () => {
      await new Promise<void>(resolve => {
        server.close(() => { resolve() })
        for (const c of conns) c.sock.destroy()
      })
    }
  }
}

/** Whether `host` (an IP literal) is a loopback address. */
export function isLoopback (host: string): boolean {
  if (isIPv4(host)) return host.startsWith('127.')
  return host === '::1' || /^::ffff:127\./i.test(host)
}

/**
 * `--metrics-listen`: "PORT", ":PORT" (both 127.0.0.1), "HOST:PORT" or "[IPv6]:PORT", HOST an IP
 * literal or 'localhost'. Undefined when it is none of these.
 */
export function parseListen (s: string): { host: string, port: number } | undefined {
  const m = /^(?:(?:\[([0-9a-fA-F:.]+)\]|([0-9.]+|localhost))?:)?([0-9]{1,5})$/.exec(s.trim())
  if (m === null) return undefined
  const port = Number(m[3])
  if (port > 65535) return undefined
  const host = m[1] ?? (m[2] === 'localhost' || m[2] === undefined ? '127.0.0.1' : m[2])
  if (!isIPv4(host) && !isIPv6(host)) return undefined
  return { host, port }
}

/**
 * Start the endpoint for `--metrics-listen` (already checked by checkInit). A bind failure is
 * an InvalidConfigError naming the flag.
 */
export async function startMetricsEndpoint (listen: string, registry: { metrics: () => Promise<string>, contentType: string }, log: Logger): Promise<MetricsServer> {
  const where = parseListen(listen)
  if (where === undefined) throw new InvalidConfigError(`--metrics-listen '${listen}' is not [HOST:]PORT`)
  const server = await serveMetrics({ ...where, render: async () => await registry.metrics(), contentType: registry.contentType }).catch((err: Error) => {
    throw new InvalidConfigError(`cannot listen for metrics on ${listen}: ${err.message}; choose another address with --metrics-listen`)
  })
  log.info('metrics endpoint listening', { address: `http://${server.address}/metrics` })
  return server
}
