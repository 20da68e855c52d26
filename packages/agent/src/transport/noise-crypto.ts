/**
 * Noise's X25519 without OpenSSL's key decoders. @chainsafe/libp2p-noise's node:crypto
 * implementation turns raw keys into KeyObjects through PKCS#8 / SPKI DER for every
 * Diffie-Hellman: OpenSSL 3 decodes a PKCS#8 X25519 key in ~850 µs and an SPKI one in
 * ~170 µs on this project's machine, the DH itself takes ~60 µs. A handshake does 3 DH per side,
 * so ~3.5 ms of CPU per side went to decoding. Here:
 * - key pairs are made as KeyObjects from 32 random bytes (X25519 clamps the scalar itself), the
 *   public half read back through JWK (~40 µs). Not with generateKeyPairSync: on Node 20, exporting
 *   a key while the GC finalizes the KeyGenJob that made it deadlocks the process (the export
 *   holds the key's mutex and allocates, the job's destructor takes the same mutex). An agent
 *   hung for good inside a noise handshake: test/inproc/attacks-members hung 3 times in ~25 runs,
 *   main thread in futex wait under ~KeyGenJob < GC < ExportJWKEdKey (gdb);
 * - the private KeyObjects of the last few key pairs made here (this node's static key, each
 *   handshake's ephemeral, used twice) are kept, so a DH finds its private key without decoding;
 * - the remote public key is imported through JWK (~20 µs).
 * A private key not made here (not expected) falls back to noise's own path. HKDF is OpenSSL's
 * too (noise's default is @noble/hashes in JavaScript: 4 per handshake side, and the agent's
 * JavaScript runs unoptimized: see scripts/bundle.mjs). Hash and ChaCha20-Poly1305 are noise's
 * default (node:crypto).
 */
import { createPrivateKey, createPublicKey, diffieHellman, hkdfSync, randomBytes, type KeyObject } from 'node:crypto'
import { defaultCrypto } from '@chainsafe/libp2p-noise/crypto'
import type { ICryptoInterface } from '@chainsafe/libp2p-noise'
import { x25519PrivateKeyFromRaw } from '@wgmesh/core'

/** How many private keys made here are kept (FIFO): a static key plus in-flight handshakes' ephemerals. */
export const KEPT_PRIVATE_KEYS = 64

type Bytes = Uint8Array | { subarray: () => Uint8Array }
const raw = (b: Bytes): Uint8Array => b instanceof Uint8Array ? b : b.subarray()
const b64u = (b: Uint8Array): string => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('base64url')

export function fastNoiseCrypto (base: ICryptoInterface = defaultCrypto): ICryptoInterface {
  const kept = new Map<string, KeyObject>()
  const keep = (priv: string, key: KeyObject): void => {
    if (kept.size >= KEPT_PRIVATE_KEYS) kept.delete(kept.keys().next().value!)
    kept.set(priv, key)
  }
  return {
    ...base,
    generateX25519KeyPair () {
      const d = new Uint8Array(randomBytes(32))
      const privateKey = x25519PrivateKeyFromRaw(d)
      const x = createPublicKey(privateKey).export({ format: 'jwk' }).x
      if (typeof x !== 'string') throw new Error('x25519: a public key without x')
      keep(b64u(d), privateKey)
      return { publicKey: new Uint8Array(Buffer.from(x, 'base64url')), privateKey: d }
    },
    generateX25519KeyPairFromSeed (seed) {
      const kp = base.generateX25519KeyPairFromSeed(seed)
      const d = b64u(raw(kp.privateKey))
      if (!kept.has(d)) keep(d, createPrivateKey({ key: { kty: 'OKP', crv: 'X25519', d, x: b64u(raw(kp.publicKey)) }, format: 'jwk' }))
      return kp
    },
    getHKDF (ck, ikm) {
      // RFC 5869 with salt = ck and no info, 96 bytes: what noise's HKDF(ck, ikm, 3) is
      const okm = new Uint8Array(hkdfSync('sha256', raw(ikm), raw(ck), new Uint8Array(0), 96))
      return [okm.subarray(0, 32), okm.subarray(32, 64), okm.subarray(64, 96)]
    },
    generateX25519SharedKey (privateKey, publicKey) {
      const priv = kept.get(b64u(raw(privateKey)))
      if (priv === undefined) return base.generateX25519SharedKey(privateKey, publicKey)
      const pub = createPublicKey({ key: { kty: 'OKP', crv: 'X25519', x: b64u(raw(publicKey)) }, format: 'jwk' })
      return diffieHellman({ privateKey: priv, publicKey: pub })
    }
  }
}
