/**
 * Relaying: the control messages by which an end asks a relay for its port, what a relay
 * forwards (WireGuard-shaped datagrams only) and what it serves at most. Which relay a pair
 * uses, over which families, is relay-choice.ts.
 */
import { createHmac, timingSafeEqual } from 'node:crypto'

export * from './relay-choice.js'

/*
 * The relay forwards ciphertext only. A relayed pair keeps its own WireGuard session end to
 * end: each end points its peer entry for the other at a UDP port the relay allocated for that
 * end of the pair, and the relay copies WireGuard datagrams between the pair's two ports. It is
 * never a WireGuard peer for their addresses and routes nothing (no IP forwarding).
 *
 * Allocation is asked for inside the tunnel to the relay (on its probe port), with the control
 * messages below: MAC'd under the probe key, at most MAX_RELAY_CTL_BYTES.
 *
 *   'R' (1) | JSON (…) | HMAC-SHA256 tag (16)
 */

/** A relay control message. `from` is the requester (checked against the tunnel's source). */
export type RelayCtl =
  | { t: 'alloc', from: string, peer: string, id: number }
  | { t: 'ok', peer: string, port: number, id: number }
  | { t: 'no', peer: string, id: number, why: string }

export const RELAY_CTL_MAGIC = 0x52
export const MAX_RELAY_CTL_BYTES = 200
const RELAY_TAG_LEN = 16
const NODE_ID = /^[A-Za-z0-9_-]{43}$/

function relayTag (key: Uint8Array, body: Uint8Array): Buffer {
  return createHmac('sha256', key).update('wgmesh-relay-v1\0').update(body).digest().subarray(0, RELAY_TAG_LEN)
}

export function encodeRelayCtl (key: Uint8Array, m: RelayCtl): Uint8Array {
  const json = Buffer.from(JSON.stringify(m))
  const body = Buffer.concat([Buffer.from([RELAY_CTL_MAGIC]), json])
  const out = Buffer.concat([body, relayTag(key, body)])
  if (out.length > MAX_RELAY_CTL_BYTES) throw new RangeError(`relay control message of ${out.length} bytes (max ${MAX_RELAY_CTL_BYTES})`)
  return new Uint8Array(out)
}

/** Decodes and authenticates; undefined for anything malformed, oversized or forged. Never throws. */
export function decodeRelayCtl (key: Uint8Array, buf: Uint8Array): RelayCtl | undefined {
  if (buf.length > MAX_RELAY_CTL_BYTES || buf.length < RELAY_TAG_LEN + 3 || buf[0] !== RELAY_CTL_MAGIC) return undefined
  const body = buf.subarray(0, buf.length - RELAY_TAG_LEN)
  const tag = buf.subarray(buf.length - RELAY_TAG_LEN)
  if (!timingSafeEqual(relayTag(key, body), tag)) return undefined
  let o: unknown
  try { o = JSON.parse(Buffer.from(body.subarray(1)).toString('utf8')) } catch { return undefined }
  if (typeof o !== 'object' || o === null || Array.isArray(o)) return undefined
  const x = o as Record<string, unknown>
  const id = x.id
  if (!Number.isInteger(id) || (id as number) < 0 || (id as number) > 0xffffffff) return undefined
  if (typeof x.peer !== 'string' || !NODE_ID.test(x.peer)) return undefined
  const keys = Object.keys(x).sort().join(',')
  switch (x.t) {
    case 'alloc':
      if (keys !== 'from,id,peer,t' || typeof x.from !== 'string' || !NODE_ID.test(x.from) || x.from === x.peer) return undefined
      return { t: 'alloc', from: x.from, peer: x.peer, id: id as number }
    case 'ok':
      if (keys !== 'id,peer,port,t' || !Number.isInteger(x.port) || (x.port as number) < 1 || (x.port as number) > 65535) return undefined
      return { t: 'ok', peer: x.peer, port: x.port as number, id: id as number }
    case 'no':
      if (keys !== 'id,peer,t,why' || typeof x.why !== 'string' || x.why.length > 64) return undefined
      return { t: 'no', peer: x.peer, id: id as number, why: x.why }
    default:
      return undefined
  }
}

/**
 * Whether a datagram has the shape of a WireGuard message (type 1–4, reserved bytes zero, the
 * type's length): a relay forwards nothing else.
 */
export function isWireGuardDatagram (b: Uint8Array): boolean {
  if (b.length < 32 || b[1] !== 0 || b[2] !== 0 || b[3] !== 0) return false
  switch (b[0]) {
    case 1: return b.length === 148 // handshake initiation
    case 2: return b.length === 92 // handshake response
    case 3: return b.length === 64 // cookie reply
    // transport data: 16-byte header, payload, 16-byte tag (the payload is padded to a multiple
    // of 16 only up to the interface MTU, so its length says nothing more)
    case 4: return true
    default: return false
  }
}

/** What a relay serves at most. */
export interface RelayLimits {
  /** Pairs relayed at once. @default 1024 */
  maxSessions: number
  /** Pairs one member may be part of. @default 64 */
  maxPerMember: number
  /** A pair nobody asked for and nothing crossed for this long is closed. @default 180000 */
  idleMs: number
}

export const DEFAULT_RELAY_LIMITS: Readonly<RelayLimits> = Object.freeze({ maxSessions: 1024, maxPerMember: 64, idleMs: 180_000 })

/** The key of an unordered pair. */
export function pairKey (a: string, b: string): string {
  return a < b ? `${a} ${b}` : `${b} ${a}`
}

/**
 * Whether a relay with `sessions` (pair keys) open may open one for {a, b}: refusal reason or
 * undefined. An existing session is always fine.
 */
export function admitRelaySession (sessions: Iterable<string>, a: string, b: string, limits: RelayLimits): string | undefined {
  const key = pairKey(a, b)
  let total = 0
  const per = new Map<string, number>()
  for (const s of sessions) {
    if (s === key) return undefined
    total++
    for (const id of s.split(' ')) per.set(id, (per.get(id) ?? 0) + 1)
  }
  if (total >= limits.maxSessions) return 'relay full'
  if ((per.get(a) ?? 0) >= limits.maxPerMember || (per.get(b) ?? 0) >= limits.maxPerMember) return 'too many pairs for one member'
  return undefined
}
