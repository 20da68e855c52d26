/**
 * Key encodings and derivations. node:crypto only (deterministic, no I/O, no randomness here:
 * key generation lives in the agent).
 */
import { createPrivateKey, createPublicKey, type KeyObject } from 'node:crypto'

const ED25519_PKCS8_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex')
const ED25519_SPKI_PREFIX = Buffer.from('302a300506032b6570032100', 'hex')
const X25519_PKCS8_PREFIX = Buffer.from('302e020100300506032b656e04220420', 'hex')

export function toBase64Url (b: Uint8Array): string {
  return Buffer.from(b).toString('base64url')
}

export function fromBase64Url (s: string): Uint8Array | undefined {
  if (!/^[A-Za-z0-9_-]*$/.test(s)) return undefined
  const b = Buffer.from(s, 'base64url')
  // canonical only: unused trailing bits must be zero, so one key has one text
  if (b.toString('base64url') !== s) return undefined
  return new Uint8Array(b)
}

/** Strict standard base64 of exactly `len` bytes (WireGuard keys: 32 → 44 chars). */
export function decodeBase64Exact (s: string, len: number): Uint8Array | undefined {
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(s)) return undefined
  const b = Buffer.from(s, 'base64')
  if (b.length !== len || b.toString('base64') !== s) return undefined
  return new Uint8Array(b)
}

export function ed25519PrivateKeyFromSeed (seed: Uint8Array): KeyObject {
  return createPrivateKey({ key: Buffer.concat([ED25519_PKCS8_PREFIX, seed]), format: 'der', type: 'pkcs8' })
}

/** Through JWK, not SPKI DER: OpenSSL 3 imports a raw key ~8x faster that way (~20 vs ~170 µs here). */
export function ed25519PublicKeyFromRaw (raw: Uint8Array): KeyObject {
  if (raw.byteLength !== 32) throw new RangeError('an Ed25519 public key is 32 bytes')
  return createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength).toString('base64url') }, format: 'jwk' })
}

export function ed25519RawPublicKey (seed: Uint8Array): Uint8Array {
  const spki = createPublicKey(ed25519PrivateKeyFromSeed(seed)).export({ format: 'der', type: 'spki' })
  return new Uint8Array(spki.subarray(ED25519_SPKI_PREFIX.length))
}

/** The nodeId of the node whose Ed25519 seed is `seed`. */
export function nodeIdFromSeed (seed: Uint8Array): string {
  return toBase64Url(ed25519RawPublicKey(seed))
}

// the last derivation: an agent asks for its own interface's key at every read of the interface
// (UAPI get, twice a second) and OpenSSL's import costs ~0.6 ms each
let lastWgKey: { priv: string, pub: string } | undefined

/** WireGuard public key (base64) from a WireGuard private key (base64). */
export function wgPublicKeyFromPrivate (privateKeyB64: string): string {
  if (lastWgKey?.priv === privateKeyB64) return lastWgKey.pub
  const pub = deriveWgPublicKey(privateKeyB64)
  lastWgKey = { priv: privateKeyB64, pub }
  return pub
}

/**
 * An X25519 private KeyObject from its 32 raw bytes. Through JWK (Node 20 imports an OKP JWK's
 * `d` and ignores `x`, the public half not known yet); a Node that checks `x` refuses that, and
 * then the key goes through PKCS#8 (~850 µs, correct either way).
 */
export function x25519PrivateKeyFromRaw (raw: Uint8Array): KeyObject {
  if (raw.byteLength !== 32) throw new RangeError('an X25519 private key is 32 bytes')
  const d = Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength).toString('base64url')
  try {
    return createPrivateKey({ key: { kty: 'OKP', crv: 'X25519', d, x: d }, format: 'jwk' })
  } catch {
    return createPrivateKey({ key: Buffer.concat([X25519_PKCS8_PREFIX, raw]), format: 'der', type: 'pkcs8' })
  }
}

function deriveWgPublicKey (privateKeyB64: string): string {
  const raw = decodeBase64Exact(privateKeyB64, 32)
  if (raw === undefined) throw new Error('WireGuard private key must be 32 bytes of base64')
  const priv = x25519PrivateKeyFromRaw(raw)
  const spki = createPublicKey(priv).export({ format: 'der', type: 'spki' })
  return Buffer.from(spki.subarray(spki.length - 32)).toString('base64')
}
