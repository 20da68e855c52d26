/**
 * Revocations of certificate mode: the mesh CA's signed word that a nodeId is out, for good.
 *
 *   "wgmr1." base64url(JSON) "." base64url(Ed25519 signature over "wgmesh-revocation-v1\0" ‖ JSON)
 *   JSON = {v:1, ca, nodeId, issuedAt, until}
 *
 * A revocation covers every certificate of that nodeId. `until` is the latest notAfter of the
 * node's certificates: after it (and the clock-skew tolerance) they are all expired anyway, and
 * the revocation can be dropped. Members spread revocations inside sealed messages
 * (`{"revocation": token}`, sealed like a record), on gossip and in sync.
 * The set a node keeps is bounded (MAX_REVOCATIONS; when full, the one that matters the
 * shortest goes first). Pure: time comes in as `now`.
 */
import { openToken, signToken, type CaPublic } from './ca.js'
import { fromBase64Url } from './keys.js'

export const REVOCATION_PREFIX = 'wgmr1'
const REVOCATION_DOMAIN = 'wgmesh-revocation-v1\0'
/** Characters of a revocation token (a typical one is ~300). */
export const MAX_REVOCATION_CHARS = 512
/** Revocations a node keeps at most. */
export const MAX_REVOCATIONS = 4096

export interface Revocation {
  v: 1
  /** Fingerprint of the CA that signed it. */
  ca: string
  /** The revoked node. */
  nodeId: string
  /** ms since epoch. */
  issuedAt: number
  /** Kept until then (the latest notAfter of the node's certificates). */
  until: number
}

const KEYS = ['ca', 'issuedAt', 'nodeId', 'until', 'v'].join(',')
const isUint = (x: unknown): x is number => Number.isSafeInteger(x) && (x as number) >= 0

export function checkRevocationShape (x: unknown): string | undefined {
  if (typeof x !== 'object' || x === null || Array.isArray(x)) return 'not an object'
  const r = x as Record<string, unknown>
  if (Object.keys(r).sort().join(',') !== KEYS) return 'fields must be exactly v, ca, nodeId, issuedAt, until'
  if (r.v !== 1) return 'v must be 1'
  if (typeof r.ca !== 'string' || fromBase64Url(r.ca)?.length !== 32) return 'ca must be a CA fingerprint'
  if (typeof r.nodeId !== 'string' || fromBase64Url(r.nodeId)?.length !== 32) return 'nodeId must be a base64url Ed25519 key'
  if (!isUint(r.issuedAt) || !isUint(r.until)) return 'issuedAt and until must be ms since epoch'
  return undefined
}

export function signRevocation (caSeed: Uint8Array, r: Revocation): string {
  const why = checkRevocationShape(r)
  if (why !== undefined) throw new RangeError(`revocation: ${why}`)
  return signToken(caSeed, REVOCATION_PREFIX, REVOCATION_DOMAIN, { v: 1, ca: r.ca, nodeId: r.nodeId, issuedAt: r.issuedAt, until: r.until })
}

export type RevocationFailure = 'oversize' | 'malformed' | 'signature' | 'wrong-ca'
export type RevocationResult = { ok: true, revocation: Revocation } | { ok: false, reason: RevocationFailure, detail: string }

/** Decode; with `ca`, also check it is this CA's and its signature. Never throws. */
export function verifyRevocation (token: string, ca?: CaPublic): RevocationResult {
  const o = openToken(token, REVOCATION_PREFIX, REVOCATION_DOMAIN, MAX_REVOCATION_CHARS, undefined)
  if (!o.ok) return { ok: false, reason: o.reason === 'signature' ? 'malformed' : o.reason, detail: o.detail }
  const why = checkRevocationShape(o.payload)
  if (why !== undefined) return { ok: false, reason: 'malformed', detail: why }
  const revocation = o.payload as Revocation
  if (ca === undefined) return { ok: true, revocation }
  if (revocation.ca !== ca.fingerprint) return { ok: false, reason: 'wrong-ca', detail: 'signed by another CA than this mesh\'s' }
  const s = openToken(token, REVOCATION_PREFIX, REVOCATION_DOMAIN, MAX_REVOCATION_CHARS, ca)
  if (!s.ok) return { ok: false, reason: 'signature', detail: s.detail }
  return { ok: true, revocation }
}

/** The sealed-message payload that carries a revocation between members. */
export function revocationMessage (token: string): Uint8Array {
  return new TextEncoder().encode(JSON.stringify({ revocation: token }))
}

const MESSAGE_HEAD = new TextEncoder().encode('{"revocation":')

/** The token in a revocation message payload; undefined for anything else (e.g. a record). */
export function revocationOfMessage (payload: Uint8Array): string | undefined {
  if (payload.length < MESSAGE_HEAD.length || !MESSAGE_HEAD.every((b, i) => payload[i] === b)) return undefined
  try {
    const x = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(payload)) as unknown
    if (typeof x !== 'object' || x === null || Object.keys(x).length !== 1) return undefined
    const t = (x as { revocation?: unknown }).revocation
    return typeof t === 'string' && t.length <= MAX_REVOCATION_CHARS ? t : undefined
  } catch {
    return undefined
  }
}

export interface HeldRevocation { revocation: Revocation, token: string }

export type AddResult =
  | { ok: true, fresh: boolean, revocation: Revocation }
  | { ok: false, reason: RevocationFailure | 'expired' | 'full', detail: string }

/** The revocations a node holds, checked against its CA, bounded. */
export class RevocationSet {
  private readonly byNode = new Map<string, HeldRevocation>()

  constructor (private readonly ca: CaPublic, private readonly max = MAX_REVOCATIONS) {}

  get size (): number { return this.byNode.size }
  has (nodeId: string): boolean { return this.byNode.has(nodeId) }
  get (nodeId: string): HeldRevocation | undefined { return this.byNode.get(nodeId) }
  all (): HeldRevocation[] { return [...this.byNode.values()] }

  /**
   * Verify and keep. `fresh`: this node was not revoked here before (spread it, act on it).
   * One that no longer matters (`until` + skew passed) is refused as `expired`.
   */
  add (token: string, now: number, skewMs: number): AddResult {
    const v = verifyRevocation(token, this.ca)
    if (!v.ok) return v
    const r = v.revocation
    if (r.until + skewMs < now) return { ok: false, reason: 'expired', detail: `it mattered until ${new Date(r.until).toISOString()}` }
    const held = this.byNode.get(r.nodeId)
    if (held !== undefined) {
      if (r.until > held.revocation.until) this.byNode.set(r.nodeId, { revocation: r, token })
      return { ok: true, fresh: false, revocation: r }
    }
    if (this.byNode.size >= this.max) {
      let victim: HeldRevocation | undefined
      for (const h of this.byNode.values()) if (victim === undefined || h.revocation.until < victim.revocation.until) victim = h
      if (victim === undefined || victim.revocation.until >= r.until) return { ok: false, reason: 'full', detail: `${this.max} revocations held, all longer-lived` }
      this.byNode.delete(victim.revocation.nodeId)
    }
    this.byNode.set(r.nodeId, { revocation: r, token })
    return { ok: true, fresh: true, revocation: r }
  }

  /** Drop the revocations that no longer matter; returns the nodeIds dropped. */
  prune (now: number, skewMs: number): string[] {
    const out: string[] = []
    for (const [id, h] of this.byNode) {
      if (h.revocation.until + skewMs < now) { this.byNode.delete(id); out.push(id) }
    }
    return out
  }
}
