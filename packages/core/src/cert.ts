/**
 * Node certificates of certificate mode: the mesh CA (ca.ts) binds a nodeId to a name,
 * optional overlay addresses and roles, for a validity window, under a serial.
 *
 *   "wgmc1." base64url(JSON) "." base64url(Ed25519 signature over "wgmesh-cert-v1\0" ‖ JSON)
 *   JSON = {v:1, ca, serial, nodeId, name, ipv4?, ipv6?, routes?, roles, notBefore, notAfter}
 *
 * The shape is strict (unknown fields, unknown roles, non-canonical addresses are refused) and
 * the token is at most MAX_CERT_CHARS. Pure: time comes in as `now`; decoding never throws.
 */
import { openToken, signToken, type CaPublic } from './ca.js'
import { canonicalIP, cidrContains, formatCidr, parseIPv4, parseIPv6, tryParseCidr } from './ip.js'
import { fromBase64Url } from './keys.js'
import { MAX_CERT_CHARS, isValidName } from './record.js'

export const CERT_PREFIX = 'wgmc1'
const CERT_DOMAIN = 'wgmesh-cert-v1\0'

/** Roles a certificate can grant. `relay`: may relay for others; `gateway`: may advertise the certificate's `routes`. */
export const CERT_ROLES = ['relay', 'gateway'] as const
export type CertRole = typeof CERT_ROLES[number]

/** Longest validity the CA signs (10 years). */
export const MAX_CERT_VALIDITY_MS = 3650 * 86_400_000

export interface NodeCert {
  v: 1
  /** Fingerprint of the CA that signed it (caFingerprint). */
  ca: string
  /** 128 random bits, hex. */
  serial: string
  /** The node's Ed25519 identity (base64url raw public key). */
  nodeId: string
  /** The only name the node may use. */
  name: string
  /** When given, the only overlay IPv4 the node may use (canonical text). */
  ipv4?: string
  /** When given, the only overlay IPv6 the node may use (canonical text). */
  ipv6?: string
  /**
   * With the `gateway` role: the subnets (canonical CIDRs; 0.0.0.0/0 or ::/0 = exit) the node may
   * advertise — a route it advertises must be one of these or inside one. Absent = none.
   */
  routes?: string[]
  roles: CertRole[]
  /** ms since epoch. */
  notBefore: number
  notAfter: number
}

const KEYS = new Set(['v', 'ca', 'serial', 'nodeId', 'name', 'ipv4', 'ipv6', 'routes', 'roles', 'notBefore', 'notAfter'])
/** Routes a certificate can grant. */
export const MAX_CERT_ROUTES = 16
const isUint = (x: unknown): x is number => Number.isSafeInteger(x) && (x as number) >= 0

/** Why `x` is not a well-formed certificate payload, or undefined. */
export function checkCertShape (x: unknown): string | undefined {
  if (typeof x !== 'object' || x === null || Array.isArray(x)) return 'not an object'
  const c = x as Record<string, unknown>
  for (const k of Object.keys(c)) if (!KEYS.has(k)) return `unknown field '${k}'`
  if (c.v !== 1) return 'v must be 1'
  if (typeof c.ca !== 'string' || fromBase64Url(c.ca)?.length !== 32) return 'ca must be a CA fingerprint'
  if (typeof c.serial !== 'string' || !/^[0-9a-f]{32}$/.test(c.serial)) return 'serial must be 32 hex digits'
  if (typeof c.nodeId !== 'string' || fromBase64Url(c.nodeId)?.length !== 32) return 'nodeId must be a base64url Ed25519 key'
  if (typeof c.name !== 'string' || !isValidName(c.name)) return 'name must match [a-z0-9-]{1,63}'
  if (c.ipv4 !== undefined && (typeof c.ipv4 !== 'string' || parseIPv4(c.ipv4) === undefined || canonicalIP(c.ipv4) !== c.ipv4)) return 'ipv4 must be an IPv4 address in canonical form'
  if (c.ipv6 !== undefined && (typeof c.ipv6 !== 'string' || parseIPv6(c.ipv6) === undefined || canonicalIP(c.ipv6) !== c.ipv6)) return 'ipv6 must be an IPv6 address in canonical form'
  if (!Array.isArray(c.roles) || c.roles.length > CERT_ROLES.length || !c.roles.every(r => (CERT_ROLES as readonly unknown[]).includes(r)) ||
    new Set(c.roles).size !== c.roles.length) return `roles must be distinct values of ${CERT_ROLES.join(', ')}`
  if (c.routes !== undefined) {
    if (!Array.isArray(c.routes) || c.routes.length === 0 || c.routes.length > MAX_CERT_ROUTES) return `routes must be 1..${MAX_CERT_ROUTES} CIDRs`
    for (const r of c.routes) {
      const p = typeof r === 'string' ? tryParseCidr(r) : undefined
      if (p === undefined || formatCidr(p) !== r) return 'routes must be CIDRs in canonical form'
    }
    if (!(c.roles as unknown[]).includes('gateway')) return 'routes need the gateway role'
  }
  if (!isUint(c.notBefore) || !isUint(c.notAfter)) return 'notBefore and notAfter must be ms since epoch'
  if (c.notAfter <= c.notBefore) return 'notAfter must be after notBefore'
  if (c.notAfter - c.notBefore > MAX_CERT_VALIDITY_MS) return 'validity longer than 10 years'
  return undefined
}

/** Sign a certificate with the CA seed. Throws (an operator error) when `cert` is malformed. */
export function signCert (caSeed: Uint8Array, cert: NodeCert): string {
  const why = checkCertShape(cert)
  if (why !== undefined) throw new RangeError(`certificate: ${why}`)
  // fixed field order, so the same certificate always has the same bytes
  const body: NodeCert = { v: 1, ca: cert.ca, serial: cert.serial, nodeId: cert.nodeId, name: cert.name, roles: [...cert.roles], notBefore: cert.notBefore, notAfter: cert.notAfter }
  if (cert.ipv4 !== undefined) body.ipv4 = cert.ipv4
  if (cert.ipv6 !== undefined) body.ipv6 = cert.ipv6
  if (cert.routes !== undefined) body.routes = [...cert.routes]
  const token = signToken(caSeed, CERT_PREFIX, CERT_DOMAIN, body)
  if (token.length > MAX_CERT_CHARS) throw new RangeError(`certificate of ${token.length} characters (max ${MAX_CERT_CHARS})`)
  return token
}

export type CertFailure = 'oversize' | 'malformed' | 'signature' | 'wrong-ca' | 'node-id' | 'expired' | 'not-yet-valid'
export type CertResult = { ok: true, cert: NodeCert } | { ok: false, reason: CertFailure, detail: string }

/** Decode without checking the signature (to show a certificate, or read roles of one verified before). */
export function decodeCert (token: string): CertResult {
  const o = openToken(token, CERT_PREFIX, CERT_DOMAIN, MAX_CERT_CHARS, undefined)
  if (!o.ok) return { ok: false, reason: o.reason === 'signature' ? 'malformed' : o.reason, detail: o.detail }
  const why = checkCertShape(o.payload)
  if (why !== undefined) return { ok: false, reason: 'malformed', detail: why }
  return { ok: true, cert: o.payload as NodeCert }
}

/**
 * Everything but the clock: the shape, the CA (by fingerprint, then signature) and, when given,
 * that the certificate is `nodeId`'s.
 */
export function verifyCertSignature (token: string, ca: CaPublic, nodeId?: string): CertResult {
  const d = decodeCert(token)
  if (!d.ok) return d
  if (d.cert.ca !== ca.fingerprint) return { ok: false, reason: 'wrong-ca', detail: `signed by CA ${d.cert.ca.slice(0, 12)}…, not by this mesh's CA ${ca.fingerprint.slice(0, 12)}…` }
  const o = openToken(token, CERT_PREFIX, CERT_DOMAIN, MAX_CERT_CHARS, ca)
  if (!o.ok) return { ok: false, reason: o.reason === 'signature' ? 'signature' : 'malformed', detail: o.detail }
  if (nodeId !== undefined && d.cert.nodeId !== nodeId) return { ok: false, reason: 'node-id', detail: `issued to node ${d.cert.nodeId}, not to ${nodeId}` }
  return d
}

/** Whether `cert` is valid at `now`, with `skewMs` of tolerance either side (the records' clock-skew tolerance). */
export function certTimeFailure (cert: NodeCert, now: number, skewMs: number): { reason: 'expired' | 'not-yet-valid', detail: string } | undefined {
  if (now > cert.notAfter + skewMs) return { reason: 'expired', detail: `expired at ${new Date(cert.notAfter).toISOString()}` }
  if (now < cert.notBefore - skewMs) return { reason: 'not-yet-valid', detail: `not valid before ${new Date(cert.notBefore).toISOString()}` }
  return undefined
}

/** Signature, CA, nodeId and validity at `now` (± `skewMs`). */
export function verifyCert (token: string, ca: CaPublic, nodeId: string | undefined, now: number, skewMs: number): CertResult {
  const v = verifyCertSignature(token, ca, nodeId)
  if (!v.ok) return v
  const t = certTimeFailure(v.cert, now, skewMs)
  return t === undefined ? v : { ok: false, ...t }
}

/** Decoded certificates by token, for role lookups on the hot path (bounded; cleared when full). */
const roleCache = new Map<string, readonly CertRole[]>()
const ROLE_CACHE_MAX = 4096

/**
 * The roles a certificate token names (decoded, not verified: only tokens a table accepted,
 * so verified, should be asked about). A malformed token grants none.
 */
export function certRoles (token: string): readonly CertRole[] {
  let roles = roleCache.get(token)
  if (roles === undefined) {
    const d = decodeCert(token)
    roles = d.ok ? d.cert.roles : []
    if (roleCache.size >= ROLE_CACHE_MAX) roleCache.clear()
    roleCache.set(token, roles)
  }
  return roles
}

/** Whether certificate `a` was issued after `b` (later notBefore, then the higher serial): the CA's latest word. */
export function issuedAfter (a: NodeCert, b: NodeCert): boolean {
  return a.notBefore > b.notBefore || (a.notBefore === b.notBefore && a.serial > b.serial)
}

/**
 * Whether a certificate lets its node advertise `cidr`: it has the gateway role and `cidr` is
 * one of its routes or inside one (an exit route only where the certificate names it).
 */
export function certGrantsRoute (cert: NodeCert, cidr: string): boolean {
  if (!cert.roles.includes('gateway') || cert.routes === undefined) return false
  const want = tryParseCidr(cidr)
  if (want === undefined) return false
  return cert.routes.some(g => {
    const have = tryParseCidr(g)
    return have !== undefined && have.prefix <= want.prefix && cidrContains(have, want.family, want.base)
  })
}
