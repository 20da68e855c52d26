/**
 * Wire form of the failure detector's probes: tiny UDP datagrams, normally sent to a peer's
 * overlay address (so they travel inside its WireGuard tunnel and test exactly what matters:
 * that the tunnel carries packets).
 *
 *   magic 'W' (1) | type (1) | flags (1) | nonce (8) | [ping-req: ip4 (4) | port (2)] | mac (8)
 *
 * The MAC is HMAC-SHA256 under a key derived from the mesh key, truncated to 8 bytes: outsiders
 * who reach the UDP port from the underlay cannot forge a probe. An ack must also echo a random
 * 64-bit nonce that only travelled inside the tunnel. Decoding never throws.
 */
import { createHmac, hkdfSync, timingSafeEqual } from 'node:crypto'

export type ProbeType = 'ping' | 'ack' | 'ping-req'

export interface ProbeMessage {
  type: ProbeType
  /** 16 hex chars. */
  nonce: string
  /** ping: "the sender holds you dead or suspect: refute" (publish a newer record). */
  refute?: boolean
  /** ping-req: the member to probe on the sender's behalf, "ip:port" (IPv4). */
  target?: string
}

const MAGIC = 0x57
const TYPES: ProbeType[] = ['ping', 'ack', 'ping-req']
const MAC_LEN = 8
const HEAD_LEN = 11
/** Bytes of the largest probe datagram (ping-req). */
export const MAX_PROBE_BYTES = HEAD_LEN + 6 + MAC_LEN

export function probeKey (meshKey: Uint8Array): Uint8Array {
  return new Uint8Array(hkdfSync('sha256', meshKey, new Uint8Array(0), 'wgmesh-probe-v1', 32))
}

function mac (key: Uint8Array, body: Uint8Array): Buffer {
  return createHmac('sha256', key).update(body).digest().subarray(0, MAC_LEN)
}

export function encodeProbe (key: Uint8Array, m: ProbeMessage): Uint8Array {
  const extra = m.type === 'ping-req' ? 6 : 0
  const out = new Uint8Array(HEAD_LEN + extra + MAC_LEN)
  out[0] = MAGIC
  out[1] = TYPES.indexOf(m.type) + 1
  out[2] = m.refute === true ? 1 : 0
  out.set(Buffer.from(m.nonce, 'hex').subarray(0, 8), 3)
  if (m.type === 'ping-req') {
    const [ip, port] = (m.target ?? '').split(':')
    const parts = (ip ?? '').split('.').map(Number)
    if (parts.length !== 4 || parts.some(p => !Number.isInteger(p) || p < 0 || p > 255)) throw new RangeError(`ping-req target '${m.target}' is not ipv4:port`)
    out.set(parts, HEAD_LEN)
    const p = Number(port)
    if (!Number.isInteger(p) || p < 1 || p > 65535) throw new RangeError(`ping-req target '${m.target}' has no valid port`)
    out[HEAD_LEN + 4] = p >> 8
    out[HEAD_LEN + 5] = p & 0xff
  }
  out.set(mac(key, out.subarray(0, HEAD_LEN + extra)), HEAD_LEN + extra)
  return out
}

/** The message, or undefined for anything malformed or not authenticated. */
export function decodeProbe (key: Uint8Array, b: Uint8Array): ProbeMessage | undefined {
  if (b.length < HEAD_LEN + MAC_LEN || b.length > MAX_PROBE_BYTES || b[0] !== MAGIC) return undefined
  const type = TYPES[(b[1] ?? 0) - 1]
  if (type === undefined) return undefined
  const extra = type === 'ping-req' ? 6 : 0
  if (b.length !== HEAD_LEN + extra + MAC_LEN) return undefined
  const want = mac(key, b.subarray(0, HEAD_LEN + extra))
  if (!timingSafeEqual(want, b.subarray(HEAD_LEN + extra))) return undefined
  if ((b[2]! & ~1) !== 0) return undefined
  const m: ProbeMessage = { type, nonce: Buffer.from(b.subarray(3, 11)).toString('hex') }
  if (b[2] === 1) m.refute = true
  if (type === 'ping-req') {
    const port = (b[HEAD_LEN + 4]! << 8) | b[HEAD_LEN + 5]!
    if (port === 0) return undefined
    m.target = `${[...b.subarray(HEAD_LEN, HEAD_LEN + 4)].join('.')}:${port}`
  }
  return m
}
