/**
 * NodeRecord schema: encode to JSON bytes and decode + check shape, field by field, with a reason.
 * Written by hand (no schema library): the record is small and this is the hot path.
 */
import { decodeBase64Exact, fromBase64Url } from './keys.js'
import { parseEndpoint, parseIPv4, parseIPv6, tryParseCidr } from './ip.js'
import { isValidGossipAddr } from './gossip-addr.js'
import type { NodeRecord } from './types.js'

export const MAX_ENDPOINTS = 16
/** An agent advertises at most 8 (see the agent's `orderGossipAddrs`). */
export const MAX_GOSSIP_ADDRS = 8
export const MAX_ROUTES = 64
export const MAX_TAGS = 32
const NAME_RE = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/
const TAG_RE = /^[A-Za-z0-9_.:=/-]{1,64}$/

/** Whether `s` is a valid node name ([a-z0-9-], 1..63 chars, no leading or trailing '-'). */
export function isValidName (s: string): boolean {
  return NAME_RE.test(s)
}

/** Whether `s` is a valid tag ([A-Za-z0-9_.:=/-], 1..64 chars). */
export function isValidTag (s: string): boolean {
  return TAG_RE.test(s)
}
const KNOWN_KEYS = new Set(['v', 'nodeId', 'seq', 'issuedAt', 'name', 'wgPublicKey', 'ipv4', 'ipv6', 'ipSince', 'ipSalt',
  'wgPort', 'endpoints', 'gossipAddrs', 'routes', 'tags', 'relay', 'leaving', 'nat', 'stunPort', 'probePort', 'seen', 'cert', 'gw'])
/** Gateway priority range (higher is preferred). */
export const MAX_GATEWAY_PRIORITY = 1000
export const MAX_SEEN = 32
/** Characters of a certificate carried in a record (cert.ts; a typical one is ~450). */
export const MAX_CERT_CHARS = 1024
/** The outer shape of a certificate token: "wgmc1." payload "." signature, base64url. */
export const CERT_TOKEN_RE = /^wgmc1\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]{86}$/
const NAT_TYPES = new Set(['public', 'cone', 'symmetric', 'unknown'])

export function encodeRecord (r: NodeRecord): Uint8Array {
  return new TextEncoder().encode(JSON.stringify(r))
}

export type DecodeResult = { ok: true, record: NodeRecord } | { ok: false, reason: 'malformed' | 'schema', detail: string }

const isObj = (x: unknown): x is Record<string, unknown> => typeof x === 'object' && x !== null && !Array.isArray(x)
const isUint = (x: unknown, max = Number.MAX_SAFE_INTEGER): x is number => Number.isSafeInteger(x) && (x as number) >= 0 && (x as number) <= max
const strArray = (x: unknown, max: number, ok: (s: string) => boolean): x is string[] =>
  Array.isArray(x) && x.length <= max && x.every(s => typeof s === 'string' && s.length <= 256 && ok(s))

/** Lower-case a host name into the record's name alphabet ("My_Host.example" → "my-host"). */
export function sanitizeName (s: string): string {
  const n = s.toLowerCase().split('.')[0]!.replace(/[^a-z0-9-]/g, '-').replace(/^-+|-+$/g, '').slice(0, 63)
  return n === '' ? 'node' : n
}

export function checkRecordShape (x: unknown): string | undefined {
  if (!isObj(x)) return 'not an object'
  for (const k of Object.keys(x)) if (!KNOWN_KEYS.has(k)) return `unknown field '${k}'`
  if (x.v !== 1) return 'v must be 1'
  if (typeof x.nodeId !== 'string' || fromBase64Url(x.nodeId)?.length !== 32) return 'nodeId must be a base64url Ed25519 key'
  if (!isUint(x.seq) || x.seq === 0) return 'seq must be a positive integer'
  if (!isUint(x.issuedAt)) return 'issuedAt must be ms since epoch'
  if (typeof x.name !== 'string' || !NAME_RE.test(x.name)) return 'name must match [a-z0-9-]{1,63}'
  if (typeof x.wgPublicKey !== 'string' || decodeBase64Exact(x.wgPublicKey, 32) === undefined) return 'wgPublicKey must be 32 bytes of base64'
  if (typeof x.ipv4 !== 'string' || parseIPv4(x.ipv4) === undefined) return 'ipv4 is not an IPv4 address'
  if (typeof x.ipv6 !== 'string' || parseIPv6(x.ipv6) === undefined) return 'ipv6 is not an IPv6 address'
  if (!isUint(x.ipSince)) return 'ipSince must be ms since epoch'
  if (!isUint(x.ipSalt, 1_000_000)) return 'ipSalt out of range'
  if (!isUint(x.wgPort, 65535) || x.wgPort === 0) return 'wgPort must be 1..65535'
  if (!strArray(x.endpoints, MAX_ENDPOINTS, s => parseEndpoint(s) !== undefined)) return 'endpoints must be ip:port strings'
  const nodeId = x.nodeId
  if (!strArray(x.gossipAddrs, MAX_GOSSIP_ADDRS, s => isValidGossipAddr(s, nodeId))) {
    return `gossipAddrs must be at most ${MAX_GOSSIP_ADDRS} of /ip4|ip6|dns4|dns6|dns/<host>/tcp/<port>[/p2p/<own PeerId>]`
  }
  if (!strArray(x.routes, MAX_ROUTES, s => tryParseCidr(s) !== undefined)) return 'routes must be CIDR strings'
  if (!strArray(x.tags, MAX_TAGS, s => TAG_RE.test(s))) return 'tags must be short [A-Za-z0-9_.:=/-] strings'
  if (x.relay !== undefined && typeof x.relay !== 'boolean') return 'relay must be boolean'
  if (x.leaving !== undefined && typeof x.leaving !== 'boolean') return 'leaving must be boolean'
  if (x.nat !== undefined && !NAT_TYPES.has(x.nat as string)) return 'nat must be public|cone|symmetric|unknown'
  if (x.stunPort !== undefined && (!isUint(x.stunPort, 65534) || x.stunPort === 0)) return 'stunPort must be 1..65534'
  if (x.probePort !== undefined && (!isUint(x.probePort, 65535) || x.probePort === 0)) return 'probePort must be 1..65535'
  if (x.seen !== undefined) {
    if (!isObj(x.seen)) return 'seen must be an object'
    const entries = Object.entries(x.seen)
    if (entries.length > MAX_SEEN) return `seen has more than ${MAX_SEEN} entries`
    for (const [k, v] of entries) {
      if (!/^[A-Za-z0-9_-]{11}$/.test(k) || typeof v !== 'string' || parseEndpoint(v) === undefined) return 'seen must map short node ids to ip:port'
    }
  }
  if (x.cert !== undefined && (typeof x.cert !== 'string' || x.cert.length > MAX_CERT_CHARS || !CERT_TOKEN_RE.test(x.cert))) {
    return `cert must be a wgmesh certificate (wgmc1.…) of at most ${MAX_CERT_CHARS} characters`
  }
  if (x.gw !== undefined) {
    const g = x.gw
    if (!isObj(g)) return 'gw must be an object'
    for (const k of Object.keys(g)) if (k !== 'group' && k !== 'prio' && k !== 'since') return `unknown gw field '${k}'`
    if (typeof g.group !== 'string' || !NAME_RE.test(g.group)) return 'gw.group must match [a-z0-9-]{1,63}'
    if (!isUint(g.prio, MAX_GATEWAY_PRIORITY)) return `gw.prio must be 0..${MAX_GATEWAY_PRIORITY}`
    if (g.since !== undefined && !isUint(g.since)) return 'gw.since must be ms since epoch'
    if ((x.routes as string[]).length === 0) return 'gw needs routes'
  }
  return undefined
}

export function decodeRecord (payload: Uint8Array): DecodeResult {
  let x: unknown
  try {
    x = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(payload))
  } catch (err) {
    return { ok: false, reason: 'malformed', detail: (err as Error).message }
  }
  const why = checkRecordShape(x)
  if (why !== undefined) return { ok: false, reason: 'schema', detail: why }
  return { ok: true, record: x as NodeRecord }
}
