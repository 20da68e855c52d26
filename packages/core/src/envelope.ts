/**
 * Wire form of a record: secretbox(meshKey, nonce, 0x01 || ed25519Pub(32) || sig(64) || json).
 *
 * - The mesh key (32 bytes, xsalsa20-poly1305 via tweetnacl) keeps records confidential to
 *   members: outsiders can neither read nor forge them.
 * - The node key (Ed25519 via node:crypto: ~40x faster than tweetnacl's here) binds a record to
 *   its author, so one member cannot speak for another.
 * Signing covers a domain tag plus the JSON bytes exactly as sent.
 */
import { sign as edSign, verify as edVerify, type KeyObject } from 'node:crypto'
import nacl from 'tweetnacl'
import { ed25519PrivateKeyFromSeed, ed25519PublicKeyFromRaw, ed25519RawPublicKey, toBase64Url } from './keys.js'
import { MAX_SEALED_RECORD_BYTES } from './settings.js'

const VERSION = 0x01
const DOMAIN = Buffer.from('wgmesh-record-v1\0')
const NONCE_LEN = nacl.secretbox.nonceLength // 24
const PUB_LEN = 32
const SIG_LEN = 64
const HEADER_LEN = 1 + PUB_LEN + SIG_LEN

export type OpenFailure = 'oversize' | 'decrypt' | 'malformed' | 'signature'

export type OpenResult =
  | { ok: true, payload: Uint8Array, signerId: string }
  | { ok: false, reason: OpenFailure }

/** A signer holding one node's Ed25519 key (the KeyObject is built once). */
export interface RecordSigner {
  nodeId: string
  sign: (payload: Uint8Array) => Uint8Array
}

export function createSigner (seed: Uint8Array): RecordSigner {
  const priv = ed25519PrivateKeyFromSeed(seed)
  const pub = ed25519RawPublicKey(seed)
  return {
    nodeId: toBase64Url(pub),
    sign: (payload) => {
      const sig = edSign(null, Buffer.concat([DOMAIN, payload]), priv)
      const out = new Uint8Array(HEADER_LEN + payload.length)
      out[0] = VERSION
      out.set(pub, 1)
      out.set(sig, 1 + PUB_LEN)
      out.set(payload, HEADER_LEN)
      return out
    }
  }
}

/**
 * Seal: sign then encrypt. `nonce` must be 24 fresh random bytes (the caller supplies them so
 * this module stays deterministic).
 */
export function seal (meshKey: Uint8Array, signer: RecordSigner, payload: Uint8Array, nonce: Uint8Array): Uint8Array {
  if (nonce.length !== NONCE_LEN) throw new Error(`nonce must be ${NONCE_LEN} bytes`)
  const inner = signer.sign(payload)
  const box = nacl.secretbox(inner, nonce, meshKey)
  const out = new Uint8Array(NONCE_LEN + box.length)
  out.set(nonce, 0)
  out.set(box, NONCE_LEN)
  return out
}

/** Verifying keys are cached: the same few hundred members sign every heartbeat. */
const verifyKeyCache = new Map<string, KeyObject>()
const VERIFY_CACHE_MAX = 4096

function verifyKey (raw: Uint8Array): KeyObject {
  const k = Buffer.from(raw).toString('base64')
  let key = verifyKeyCache.get(k)
  if (key === undefined) {
    key = ed25519PublicKeyFromRaw(raw)
    if (verifyKeyCache.size >= VERIFY_CACHE_MAX) verifyKeyCache.clear()
    verifyKeyCache.set(k, key)
  }
  return key
}

/** Open: decrypt then verify. Never throws on bad input; says why instead. */
export function open (meshKey: Uint8Array, sealed: Uint8Array, maxBytes = MAX_SEALED_RECORD_BYTES): OpenResult {
  if (sealed.length > maxBytes) return { ok: false, reason: 'oversize' }
  if (sealed.length < NONCE_LEN + nacl.secretbox.overheadLength + HEADER_LEN) return { ok: false, reason: 'malformed' }
  const inner = nacl.secretbox.open(sealed.subarray(NONCE_LEN), sealed.subarray(0, NONCE_LEN), meshKey)
  if (inner === null) return { ok: false, reason: 'decrypt' }
  if (inner.length < HEADER_LEN || inner[0] !== VERSION) return { ok: false, reason: 'malformed' }
  const pub = inner.subarray(1, 1 + PUB_LEN)
  const sig = inner.subarray(1 + PUB_LEN, HEADER_LEN)
  const payload = inner.subarray(HEADER_LEN)
  let good = false
  try {
    good = edVerify(null, Buffer.concat([DOMAIN, payload]), verifyKey(pub), sig)
  } catch {
    good = false
  }
  if (!good) return { ok: false, reason: 'signature' }
  return { ok: true, payload, signerId: toBase64Url(pub) }
}
