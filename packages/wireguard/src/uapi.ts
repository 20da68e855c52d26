/**
 * The UAPI adapter: talks the cross-platform configuration protocol to a userspace WireGuard
 * (wireguard-go, or whatever $WG_QUICK_USERSPACE_IMPLEMENTATION names) over its unix socket
 * `/var/run/wireguard/<if>.sock`, instead of spawning `wg`. The socket path is the same for every
 * userspace implementation (it is where `wg` looks), so "the socket answers" is the test for a
 * userspace interface, as in wg's `userspace_has_wireguard_interface`.
 *
 * One connection per interface is kept open (wireguard-go serves any number of requests on one
 * connection) and carries one request at a time. A timeout, a close, an oversize answer or a
 * non-zero errno closes it; the next request reconnects.
 */
import { readFile, stat } from 'node:fs/promises'
import { connect, type Socket } from 'node:net'
import { join } from 'node:path'
import type { Dump } from './dump.js'
import { UapiConnectionError, UapiError, UapiParseError } from './errors.js'
import { decodeWireGuardKey } from './keys.js'
import type { Step } from './plan.js'
import { parseUapiGet, parseUapiSetResponse, UAPI_MAX_RESPONSE_BYTES } from './uapi-parse.js'
import { encodeUapiSet, wgSetStepToUapi, type UapiSetRequest, type WgSetAsUapi } from './uapi-set.js'

/** The seam to a userspace WireGuard's configuration socket. Real: {@link unixUapi}; tests: `FakeUapi`. */
export interface UapiTransport {
  /** Whether a userspace implementation answers for `ifname` (false for kernel interfaces and missing ones). */
  available: (ifname: string) => Promise<boolean>
  /**
   * Sends one request ("get=1\n\n" or "set=1\n...\n\n") and resolves the response up to and including
   * its terminating blank line. Rejects with {@link UapiConnectionError} (or {@link UapiParseError} when oversize).
   */
  request: (ifname: string, body: string) => Promise<string>
  /** Closes the connection to `ifname` (all when omitted). */
  close?: (ifname?: string) => void
}

export interface UnixUapiInit {
  /** Default "/var/run/wireguard" (where wireguard-go and wg put and look for sockets). */
  socketDir?: string
  /** Per request (connect included); default 5000 ms. */
  timeoutMs?: number
  /** Default {@link UAPI_MAX_RESPONSE_BYTES}. */
  maxResponseBytes?: number
}

const IFNAME = /^[A-Za-z0-9_.=+-]{1,15}$/

interface Conn {
  sock: Socket | undefined
  /** Requests on this interface run one after another. */
  tail: Promise<unknown>
}

/** A {@link UapiTransport} over node:net unix sockets. */
export function unixUapi (init: UnixUapiInit = {}): UapiTransport & { close: (ifname?: string) => void } {
  const dir = init.socketDir ?? '/var/run/wireguard'
  const timeoutMs = init.timeoutMs ?? 5000
  const maxBytes = init.maxResponseBytes ?? UAPI_MAX_RESPONSE_BYTES
  const conns = new Map<string, Conn>()

  const connOf = (ifname: string): Conn => {
    let c = conns.get(ifname)
    if (c === undefined) { c = { sock: undefined, tail: Promise.resolve() }; conns.set(ifname, c) }
    return c
  }
  const drop = (ifname: string): void => {
    const c = conns.get(ifname)
    if (c?.sock !== undefined) { c.sock.destroy(); c.sock = undefined }
  }
  const path = (ifname: string): string => {
    if (!IFNAME.test(ifname)) throw new UapiConnectionError(ifname, 'EINVAL', 'not a valid interface name')
    return join(dir, `${ifname}.sock`)
  }

  const open = async (ifname: string): Promise<Socket> => {
    const c = connOf(ifname)
    if (c.sock !== undefined && !c.sock.destroyed) return c.sock
    const p = path(ifname)
    return await new Promise<Socket>((resolve, reject) => {
      const sock = connect(p)
      const timer = setTimeout(() => { sock.destroy(); reject(new UapiConnectionError(ifname, 'ETIMEDOUT', `connecting to ${p} timed out after ${timeoutMs} ms`)) }, timeoutMs)
      sock.once('connect', () => {
        clearTimeout(timer)
        sock.removeAllListeners('error')
        sock.on('error', () => {}) // reported through the pending request's close handler
        sock.on('close', () => { if (c.sock === sock) c.sock = undefined })
        sock.unref()
        c.sock = sock
        resolve(sock)
      })
      sock.once('error', (e: NodeJS.ErrnoException) => {
        clearTimeout(timer)
        sock.destroy()
        reject(new UapiConnectionError(ifname, e.code ?? 'EIO', `cannot connect to ${p}: ${e.message}`, { cause: e }))
      })
    })
  }

  const once = async (ifname: string, body: string): Promise<string> => {
    const sock = await open(ifname)
    return await new Promise<string>((resolve, reject) => {
      const chunks: Buffer[] = []
      let size = 0
      const done = (err: Error | undefined, text?: string): void => {
        clearTimeout(timer)
        sock.off('data', onData)
        sock.off('close', onClose)
        sock.unref()
        if (err !== undefined) { drop(ifname); reject(err) } else resolve(text ?? '')
      }
      const onData = (b: Buffer): void => {
        chunks.push(b)
        size += b.length
        const all = chunks.length === 1 ? b : Buffer.concat(chunks)
        const end = all.indexOf('\n\n')
        if (end === -1) {
          if (size > maxBytes) done(new UapiParseError(`UAPI response of ${ifname} exceeds ${maxBytes} bytes`))
          return
        }
        const text = all.subarray(0, end + 2).toString('utf8')
        // bytes after the answer (protocol confusion) or an error status: start over on a fresh connection
        if (end + 2 !== all.length || !/(^|\n)errno=0\n\n$/.test(text)) drop(ifname)
        done(undefined, text)
      }
      const onClose = (): void => { done(new UapiConnectionError(ifname, 'ECLOSED', 'the UAPI socket closed before answering')) }
      const timer = setTimeout(() => { done(new UapiConnectionError(ifname, 'ETIMEDOUT', `no answer within ${timeoutMs} ms`)) }, timeoutMs)
      sock.ref()
      sock.on('data', onData)
      sock.on('close', onClose)
      sock.write(body)
    })
  }

  return {
    available: async (ifname) => {
      if (!IFNAME.test(ifname)) return false
      const c = conns.get(ifname)
      if (c?.sock !== undefined && !c.sock.destroyed) return true
      try {
        if (!(await stat(path(ifname))).isSocket()) return false
      } catch {
        return false
      }
      // a stale socket (SIGKILLed wireguard-go) refuses connections: not a userspace interface
      return await serial(connOf(ifname), async () => await open(ifname).then(() => true, () => false))
    },
    request: async (ifname, body) => await serial(connOf(ifname), async () => await once(ifname, body)),
    close: (ifname) => {
      for (const name of ifname === undefined ? [...conns.keys()] : [ifname]) drop(name)
    }
  }
}

async function serial<T> (c: Conn, fn: () => Promise<T>): Promise<T> {
  const run = c.tail.then(fn, fn)
  c.tail = run.catch(() => {})
  return await run
}

/** `get` over UAPI → {@link Dump} (private key included; callers redact). */
export async function uapiGet (t: UapiTransport, ifname: string, opts: { maxBytes?: number } = {}): Promise<Dump> {
  const text = await t.request(ifname, 'get=1\n\n')
  return parseUapiGet(text, { ...opts, interface: ifname })
}

/** `set` over UAPI. Throws {@link UapiError} (with the errno) if the device refuses it. */
export async function uapiSet (t: UapiTransport, ifname: string, req: UapiSetRequest): Promise<void> {
  const errno = parseUapiSetResponse(await t.request(ifname, encodeUapiSet(req)))
  if (errno !== 0) throw new UapiError(ifname, 'set', errno)
}

/**
 * Reads a WireGuard private key file (base64, as `wg genkey` writes it, 0600). The key never goes into a
 * message: a bad file is reported by path only.
 */
export async function readPrivateKeyFile (file: string): Promise<string> {
  const text = await readFile(file, 'utf8')
  try {
    decodeWireGuardKey(text)
  } catch {
    throw new UapiParseError(`${file} does not hold a base64 WireGuard private key`)
  }
  return text.trim()
}

/**
 * Runs a planned `wg set <if> ...` step over UAPI (reading `private-key <file>` here). Returns false,
 * doing nothing, when the step cannot be expressed in UAPI: then run it as a command.
 */
export async function runWgSetOverUapi (t: UapiTransport, ifname: string, step: Step): Promise<boolean> {
  const u = wgSetStepToUapi(step, ifname)
  if (u === undefined) return false
  await runUapiSet(t, ifname, u)
  return true
}

/** Sends a translated `wg set` (one step's, or several merged: step-batch.ts), reading its private-key file here. */
export async function runUapiSet (t: UapiTransport, ifname: string, u: WgSetAsUapi): Promise<void> {
  const req = u.privateKeyFile === undefined ? u.request : { ...u.request, privateKey: await readPrivateKeyFile(u.privateKeyFile) }
  await uapiSet(t, ifname, req)
}
