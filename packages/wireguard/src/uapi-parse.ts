/**
 * Parser of the cross-platform UAPI `get` response (pure) into the same {@link Dump} that
 * `parseDump` makes from `wg show <if> dump`. Protocol: https://www.wireguard.com/xplatform/
 *
 *   private_key=<hex>            device lines first (each only when set: wireguard-go omits
 *   listen_port=51820            a zero key, port or fwmark)
 *   fwmark=0
 *   public_key=<hex>             starts a peer; the lines after it belong to that peer
 *   preshared_key=<hex>          all zeros = none
 *   protocol_version=1
 *   endpoint=198.51.100.7:51820  or [2001:db8::1]:51820; absent = none
 *   last_handshake_time_sec=...  (and _nsec)
 *   tx_bytes=... rx_bytes=...
 *   persistent_keepalive_interval=25   0 = off
 *   allowed_ip=100.96.0.1/32     one line each
 *   errno=0
 *   (blank line)
 *
 * It follows `wg` (wireguard-tools' ipc-uapi.h): device keys after the first peer and peer keys
 * before it are ignored, unknown keys are ignored, a value `wg` would reject is an error. Output is
 * formatted as `wg show dump` prints it (glibc `inet_ntop`, `[v6]:port`, the public key derived from
 * the private key), so both parsers give equal Dumps for the same device.
 */
import { parseIPv4, parseIPv6, wgPublicKeyFromPrivate } from '@wgmesh/core'

/** The public key of the interface's private key, derived once (every `get` would otherwise redo an X25519 scalar mult). */
let lastKey: { priv: string, pub: string } | undefined
function publicKeyOf (priv: string): string {
  if (lastKey?.priv !== priv) lastKey = { priv, pub: wgPublicKeyFromPrivate(priv) }
  return lastKey.pub
}
import type { Dump, DumpInterface, DumpPeer } from './dump.js'
import { UapiError, UapiParseError } from './errors.js'

/** Default cap on a UAPI response (16 MiB: ~30 000 peers with a few allowed-ips each). */
export const UAPI_MAX_RESPONSE_BYTES = 16 * 1024 * 1024

const U16 = 0xffffn
const U32 = 0xffffffffn
const I64 = 0x7fffffffffffffffn
const U64 = 0xffffffffffffffffn

/** Hex of a 32-byte key → base64; undefined if not exactly 64 hex digits. */
export function keyHexToBase64 (hex: string): string | undefined {
  return /^[0-9a-fA-F]{64}$/.test(hex) ? Buffer.from(hex, 'hex').toString('base64') : undefined
}

/** IPv4 as `inet_ntop` prints it. */
function ntop4 (v: bigint): string {
  return [24n, 16n, 8n, 0n].map(s => ((v >> s) & 0xffn).toString()).join('.')
}

/**
 * IPv6 as glibc's `inet_ntop` prints it (what `wg show` shows): the first longest run of two or more
 * zero groups becomes `::`, and `::ffff:a.b.c.d` / `::a.b.c.d` keep the embedded IPv4.
 */
export function ntop6 (v: bigint): string {
  const w: number[] = []
  for (let i = 7; i >= 0; i--) w.push(Number((v >> BigInt(i * 16)) & 0xffffn))
  let best = { base: -1, len: 0 }
  let cur = { base: -1, len: 0 }
  for (let i = 0; i < 8; i++) {
    if (w[i] === 0) {
      cur = cur.base === -1 ? { base: i, len: 1 } : { base: cur.base, len: cur.len + 1 }
      if (best.base === -1 || cur.len > best.len) best = cur
    } else {
      cur = { base: -1, len: 0 }
    }
  }
  if (best.len < 2) best = { base: -1, len: 0 }
  let out = ''
  for (let i = 0; i < 8; i++) {
    if (best.base !== -1 && i >= best.base && i < best.base + best.len) {
      if (i === best.base) out += ':'
      continue
    }
    if (i !== 0) out += ':'
    if (i === 6 && best.base === 0 && (best.len === 6 || (best.len === 7 && w[7] !== 1) || (best.len === 5 && w[5] === 0xffff))) {
      out += ntop4(v & 0xffffffffn)
      break
    }
    out += (w[i] ?? 0).toString(16)
  }
  if (best.base !== -1 && best.base + best.len === 8) out += ':'
  return out
}

/** An IP endpoint: "1.2.3.4:51820", "[2001:db8::1]:51820", "[fe80::1%eth0]:51820" (IP literals only). */
export interface ParsedEndpoint {
  family: 4 | 6
  value: bigint
  /** IPv6 zone (scope), without the '%'. */
  zone?: string
  port: number
}

/** Parses an IP-literal endpoint; undefined for anything else (host names included). */
export function parseEndpoint (s: string): ParsedEndpoint | undefined {
  if (s.length > 128) return undefined
  const m = /^\[([^\]]+)\]:(\d{1,5})$/.exec(s) ?? /^([^:[\]]+):(\d{1,5})$/.exec(s)
  if (m == null) return undefined
  const port = Number(m[2])
  if (port > 65535) return undefined
  let host = m[1] ?? ''
  let zone: string | undefined
  const pct = host.indexOf('%')
  if (pct !== -1) {
    zone = host.slice(pct + 1)
    host = host.slice(0, pct)
    if (!/^[A-Za-z0-9_.-]{1,64}$/.test(zone)) return undefined
  }
  const v4 = parseIPv4(host)
  if (v4 !== undefined) return zone === undefined ? { family: 4, value: v4, port } : undefined
  const v6 = parseIPv6(host)
  if (v6 === undefined) return undefined
  return zone === undefined ? { family: 6, value: v6, port } : { family: 6, value: v6, zone, port }
}

/** The endpoint as `wg show` prints it: "a.b.c.d:port" or "[v6]:port". */
export function formatEndpoint (ep: ParsedEndpoint): string {
  if (ep.family === 4) return `${ntop4(ep.value)}:${ep.port}`
  return `[${ntop6(ep.value)}${ep.zone === undefined ? '' : `%${ep.zone}`}]:${ep.port}`
}

/** "ip/plen" (a bare IP is a host route) → { family, value, plen }; undefined if invalid. */
export function parseCidrText (s: string): { family: 4 | 6, value: bigint, plen: number } | undefined {
  if (s.length > 64) return undefined
  const slash = s.indexOf('/')
  const ipText = slash === -1 ? s : s.slice(0, slash)
  const plenText = slash === -1 ? undefined : s.slice(slash + 1)
  if (plenText !== undefined && !/^\d{1,3}$/.test(plenText)) return undefined
  const v4 = parseIPv4(ipText)
  const family = v4 !== undefined ? 4 : 6
  const value = v4 ?? parseIPv6(ipText)
  if (value === undefined) return undefined
  const bits = family === 4 ? 32 : 128
  const plen = plenText === undefined ? bits : Number(plenText)
  if (plen > bits) return undefined
  return { family, value, plen }
}

/** "ip/plen" as `wg show` prints an allowed-ip. */
export function formatCidr (c: { family: 4 | 6, value: bigint, plen: number }): string {
  return `${c.family === 4 ? ntop4(c.value) : ntop6(c.value)}/${c.plen}`
}

function fail (line: number, what: string): never {
  throw new UapiParseError(`UAPI response line ${line}: ${what}`)
}

/** Decimal, as wg's NUM(max): digits only, at most `max`. */
function num (value: string, max: bigint, key: string, line: number): number {
  if (!/^\d{1,20}$/.test(value) || BigInt(value) > max) fail(line, `${key} is not a number in range: ${JSON.stringify(value.slice(0, 24))}`)
  return Number(value)
}

/** The `errno=` of a response, checked for shape; throws {@link UapiParseError} if there is none. */
function errnoOf (value: string, line: number): number {
  if (!/^-?\d{1,10}$/.test(value)) fail(line, `errno is not a number: ${JSON.stringify(value.slice(0, 24))}`)
  const n = Number(value)
  if (n > 0x7fffffff || n < -0x80000000) fail(line, 'errno out of range')
  return n
}

/**
 * Splits a response into its key=value lines, up to the terminating blank line. Throws
 * {@link UapiParseError} on oversize input, a missing terminator, text after it, or a line without '='.
 */
function responseLines (text: string, maxBytes: number): Array<[key: string, value: string, line: number]> {
  if (typeof text !== 'string') throw new UapiParseError('UAPI response is not text')
  if (text.length > maxBytes) throw new UapiParseError(`UAPI response exceeds ${maxBytes} bytes`)
  const end = text.indexOf('\n\n')
  if (end === -1 && text !== '\n') throw new UapiParseError('UAPI response is not terminated by a blank line')
  if (end !== -1 && end + 2 !== text.length) throw new UapiParseError('UAPI response has data after its terminating blank line')
  const body = end === -1 ? '' : text.slice(0, end)
  if (body === '') return []
  return body.split('\n').map((l, i): [string, string, number] => {
    const eq = l.indexOf('=')
    if (eq <= 0) fail(i + 1, `not a key=value line: ${JSON.stringify(l.slice(0, 40))}`)
    return [l.slice(0, eq), l.slice(eq + 1), i + 1]
  })
}

export interface ParseUapiOptions {
  /** Default {@link UAPI_MAX_RESPONSE_BYTES}. */
  maxBytes?: number
  /** Interface name for {@link UapiError} messages. */
  interface?: string
}

/**
 * Parses a whole UAPI `get` response (including `errno=0` and the blank line) into a {@link Dump}.
 * Throws {@link UapiParseError} on malformed input and {@link UapiError} when the response reports a
 * non-zero errno (or none at all: then `UapiParseError`). Error messages never contain key material.
 */
export function parseUapiGet (text: string, opts: ParseUapiOptions = {}): Dump {
  const lines = responseLines(text, opts.maxBytes ?? UAPI_MAX_RESPONSE_BYTES)
  const iface: DumpInterface = { listenPort: 0 }
  const peers: DumpPeer[] = []
  let peer: DumpPeer | undefined
  let errno: number | undefined
  for (const [key, value, line] of lines) {
    if (key === 'errno') {
      errno = errnoOf(value, line)
    } else if (key === 'public_key') {
      const pk = keyHexToBase64(value)
      if (pk === undefined) fail(line, 'public_key is not 64 hex digits')
      peer = { publicKey: pk, allowedIps: [], latestHandshake: 0, transferRx: 0, transferTx: 0 }
      peers.push(peer)
    } else if (peer === undefined) {
      if (key === 'private_key') {
        const sk = keyHexToBase64(value)
        if (sk === undefined) fail(line, 'private_key is not 64 hex digits') // never echo the value
        iface.privateKey = sk
        iface.publicKey = publicKeyOf(sk)
      } else if (key === 'listen_port') {
        iface.listenPort = num(value, U16, key, line)
      } else if (key === 'fwmark') {
        const mark = num(value, U32, key, line)
        if (mark === 0) delete iface.fwmark
        else iface.fwmark = mark
      }
    } else if (key === 'preshared_key') {
      const psk = keyHexToBase64(value)
      if (psk === undefined) fail(line, 'preshared_key is not 64 hex digits')
      if (/^0+$/.test(value)) delete peer.presharedKey
      else peer.presharedKey = psk
    } else if (key === 'endpoint') {
      const ep = parseEndpoint(value)
      if (ep === undefined) fail(line, `endpoint is not ip:port or [ip6]:port: ${JSON.stringify(value.slice(0, 64))}`)
      peer.endpoint = formatEndpoint(ep)
    } else if (key === 'persistent_keepalive_interval') {
      const ka = num(value, U16, key, line)
      if (ka === 0) delete peer.persistentKeepalive
      else peer.persistentKeepalive = ka
    } else if (key === 'allowed_ip') {
      const c = value.includes('/') ? parseCidrText(value) : undefined
      if (c === undefined) fail(line, `allowed_ip is not ip/plen: ${JSON.stringify(value.slice(0, 64))}`)
      peer.allowedIps.push(formatCidr(c))
    } else if (key === 'last_handshake_time_sec') {
      peer.latestHandshake = num(value, I64, key, line)
    } else if (key === 'last_handshake_time_nsec') {
      num(value, I64, key, line)
    } else if (key === 'rx_bytes') {
      peer.transferRx = num(value, U64, key, line)
    } else if (key === 'tx_bytes') {
      peer.transferTx = num(value, U64, key, line)
    }
    // anything else (protocol_version, keys of newer versions) is ignored, as wg does
  }
  if (errno === undefined) throw new UapiParseError('UAPI response has no errno line')
  if (errno !== 0) throw new UapiError(opts.interface ?? '?', 'get', errno)
  return { interface: iface, peers }
}

/** The errno of a UAPI `set` response ("errno=0\n\n"). Throws {@link UapiParseError} if malformed. */
export function parseUapiSetResponse (text: string): number {
  let errno: number | undefined
  for (const [key, value, line] of responseLines(text, 4096)) {
    if (key === 'errno') errno = errnoOf(value, line)
  }
  if (errno === undefined) throw new UapiParseError('UAPI set response has no errno line')
  return errno
}
