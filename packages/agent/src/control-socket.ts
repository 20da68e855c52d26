/**
 * Root-only unix control socket: one JSON request per line, one JSON response per line.
 * The socket file is 0600 inside the 0700 state directory, so only root (the owner) can talk.
 */
import { chmodSync, unlinkSync } from 'node:fs'
import { createConnection, createServer, type Server } from 'node:net'
import { ControlError } from './errors.js'

export type ControlRequest = { cmd: 'info' } | { cmd: 'leave' } | { cmd: 'metrics' } | { cmd: 'revoke', revocation: string }
export type ControlHandler = (req: ControlRequest) => Promise<unknown>

const MAX_REQUEST = 4096

/** Characters of a revocation handed to `revoke` (a token is at most 512). */
const MAX_REVOCATION_ARG = 512

function isRequest (x: unknown): x is ControlRequest {
  if (typeof x !== 'object' || x === null) return false
  const cmd = (x as { cmd?: unknown }).cmd
  if (cmd === 'revoke') {
    const r = (x as { revocation?: unknown }).revocation
    return typeof r === 'string' && r.length <= MAX_REVOCATION_ARG
  }
  return ['info', 'leave', 'metrics'].includes(cmd as string)
}

async function probe (path: string): Promise<boolean> {
  return await new Promise(resolve => {
    const s = createConnection(path)
    s.once('connect', () => { s.destroy(); resolve(true) })
    s.once('error', () => { resolve(false) })
  })
}

export async function serveControl (path: string, handler: ControlHandler): Promise<Server> {
  if (await probe(path)) throw new ControlError(`another wgmesh agent is already serving ${path} (one agent per state directory)`)
  try { unlinkSync(path) } catch {}
  const server = createServer(sock => {
    let buf = ''
    sock.setEncoding('utf8')
    sock.on('error', () => {})
    sock.on('data', (chunk: string) => {
      buf += chunk
      if (buf.length > MAX_REQUEST) { sock.end(JSON.stringify({ ok: false, error: 'request too large' }) + '\n'); return }
      const nl = buf.indexOf('\n')
      if (nl < 0) return
      const line = buf.slice(0, nl)
      buf = ''
      let req: unknown
      try { req = JSON.parse(line) } catch { req = undefined }
      if (!isRequest(req)) { sock.end(JSON.stringify({ ok: false, error: 'unknown request' }) + '\n'); return }
      handler(req).then(
        result => { sock.end(JSON.stringify({ ok: true, result }) + '\n') },
        (err: Error) => { sock.end(JSON.stringify({ ok: false, error: err.message }) + '\n') }
      )
    })
  })
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(path, () => { server.off('error', reject); resolve() })
  })
  chmodSync(path, 0o600)
  return server
}

/** Client side, used by `wgmesh info` / `wgmesh leave`. */
export async function callControl (path: string, req: ControlRequest, timeoutMs = 10_000): Promise<unknown> {
  return await new Promise((resolve, reject) => {
    const s = createConnection(path)
    let buf = ''
    const timer = setTimeout(() => { s.destroy(); reject(new ControlError(`no answer from the agent on ${path} within ${timeoutMs} ms`)) }, timeoutMs)
    s.setEncoding('utf8')
    s.on('connect', () => { s.write(JSON.stringify(req) + '\n') })
    s.on('data', (c: string) => { buf += c })
    s.on('error', (err: NodeJS.ErrnoException) => {
      clearTimeout(timer)
      const hint = err.code === 'ENOENT' || err.code === 'ECONNREFUSED'
        ? `no wgmesh agent is running with control socket ${path} (start one with 'wgmesh up' or 'wgmesh join', or pass --state-dir)`
        : err.code === 'EACCES' ? `permission denied on ${path}: the control socket is root-only (use sudo)` : err.message
      reject(new ControlError(hint))
    })
    s.on('end', () => {
      clearTimeout(timer)
      try {
        const res = JSON.parse(buf) as { ok: boolean, result?: unknown, error?: string }
        if (res.ok) resolve(res.result)
        else reject(new ControlError(res.error ?? 'agent error'))
      } catch {
        reject(new ControlError('malformed answer from the agent'))
      }
    })
  })
}
