/**
 * The mesh CA of certificate mode: an Ed25519 key pair (node:crypto). Its seed stays with the
 * operator (`ca.key`); its public key (`ca.pub`, one line `wgmca1.<base64url key>`) goes to
 * every host. What the CA signs travels as one-line tokens:
 *
 *   <prefix> "." base64url(JSON payload) "." base64url(Ed25519 signature over domain ‖ payload)
 *
 * with a domain tag per kind (certificate, revocation), so a signature of one kind never
 * passes for another, nor for a record (node keys sign records under their own tag).
 * Pure: no files, no clock; decoding never throws.
 */
import { createHash, sign as edSign, verify as edVerify, type KeyObject } from 'node:crypto'
import { ed25519PrivateKeyFromSeed, ed25519PublicKeyFromRaw, ed25519RawPublicKey, fromBase64Url, toBase64Url } from './keys.js'

const CA_PUB_PREFIX = 'wgmca1.'
const CA_KEY_PREFIX = 'wgmck1.'
const SIG_CHARS = 86 // 64 bytes of base64url

/** A CA's public half, as agents hold it. */
export interface CaPublic {
  /** Raw 32-byte Ed25519 public key. */
  publicKey: Uint8Array
  /** base64url SHA-256 of the raw public key (43 chars); certificates name their CA by it. */
  fingerprint: string
  /** The verifying key, built once. */
  key: KeyObject
}

/** base64url SHA-256 of a raw public key. */
export function caFingerprint (publicKey: Uint8Array): string {
  return toBase64Url(createHash('sha256').update(publicKey).digest())
}

export function caPublicFromRaw (publicKey: Uint8Array): CaPublic {
  return { publicKey, fingerprint: caFingerprint(publicKey), key: ed25519PublicKeyFromRaw(publicKey) }
}

/** The public half of a CA seed. */
export function caPublicFromSeed (seed: Uint8Array): CaPublic {
  return caPublicFromRaw(ed25519RawPublicKey(seed))
}

/** Text of `ca.pub`. */
export function encodeCaPublic (ca: CaPublic): string {
  return CA_PUB_PREFIX + toBase64Url(ca.publicKey)
}

/** `ca.pub` text → the CA, or why not. */
export function decodeCaPublic (text: string): { ok: true, ca: CaPublic } | { ok: false, why: string } {
  const t = text.trim()
  if (!t.startsWith(CA_PUB_PREFIX)) return { ok: false, why: `not a wgmesh CA public key (a ca.pub file holds one line starting with '${CA_PUB_PREFIX}')` }
  const raw = fromBase64Url(t.slice(CA_PUB_PREFIX.length))
  if (raw?.length !== 32) return { ok: false, why: 'the CA public key is not 32 bytes of base64url' }
  try {
    return { ok: true, ca: caPublicFromRaw(raw) }
  } catch (err) {
    return { ok: false, why: `not an Ed25519 public key: ${(err as Error).message}` }
  }
}

/** Text of `ca.key` (the secret seed). */
export function encodeCaSeed (seed: Uint8Array): string {
  return CA_KEY_PREFIX + toBase64Url(seed)
}

/** `ca.key` text → the seed, or undefined. */
export function decodeCaSeed (text: string): Uint8Array | undefined {
  const t = text.trim()
  if (!t.startsWith(CA_KEY_PREFIX)) return undefined
  const seed = fromBase64Url(t.slice(CA_KEY_PREFIX.length))
  return seed?.length === 32 ? seed : undefined
}

/** Sign `payload` (a JSON object) as a token of kind `prefix` under `domain`. */
export function signToken (seed: Uint8Array, prefix: string, domain: string, payload: object): string {
  const bytes = Buffer.from(JSON.stringify(payload))
  const sig = edSign(null, Buffer.concat([Buffer.from(domain), bytes]), ed25519PrivateKeyFromSeed(seed))
  return `${prefix}.${bytes.toString('base64url')}.${sig.toString('base64url')}`
}

export type TokenFailure = 'oversize' | 'malformed' | 'signature'

/**
 * Split a token of kind `prefix`, parse its JSON payload and, when `ca` is given, check the
 * signature. The payload's shape is the caller's to check.
 */
export function openToken (token: string, prefix: string, domain: string, maxChars: number, ca: CaPublic | undefined):
{ ok: true, payload: unknown } | { ok: false, reason: TokenFailure, detail: string } {
  if (token.length > maxChars) return { ok: false, reason: 'oversize', detail: `${token.length} characters, more than ${maxChars}` }
  const parts = token.split('.')
  if (parts.length !== 3 || parts[0] !== prefix || !/^[A-Za-z0-9_-]+$/.test(parts[1]!) || !/^[A-Za-z0-9_-]+$/.test(parts[2]!) || parts[2]!.length !== SIG_CHARS) {
    return { ok: false, reason: 'malformed', detail: `not a '${prefix}.<payload>.<signature>' token` }
  }
  const bytes = Buffer.from(parts[1]!, 'base64url')
  if (bytes.toString('base64url') !== parts[1]) return { ok: false, reason: 'malformed', detail: 'payload is not canonical base64url' }
  let payload: unknown
  try {
    payload = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes))
  } catch (err) {
    return { ok: false, reason: 'malformed', detail: `payload is not JSON: ${(err as Error).message}` }
  }
  if (ca !== undefined) {
    let good = false
    try {
      good = edVerify(null, Buffer.concat([Buffer.from(domain), bytes]), ca.key, Buffer.from(parts[2]!, 'base64url'))
    } catch {
      good = false
    }
    if (!good) return { ok: false, reason: 'signature', detail: 'the CA signature does not verify' }
  }
  return { ok: true, payload }
}

