import { test } from 'node:test'
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { defaultCrypto } from '@chainsafe/libp2p-noise/crypto'
import { fastNoiseCrypto, KEPT_PRIVATE_KEYS } from '../src/transport/noise-crypto.js'
import { x25519PrivateKeyFromRaw } from '@wgmesh/core'
import { createPrivateKey, createPublicKey } from 'node:crypto'

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex')

test('X25519: the same shared secrets as noise\'s own implementation, both ways', () => {
  const fast = fastNoiseCrypto()
  for (let i = 0; i < 5; i++) {
    const a = fast.generateX25519KeyPair()
    const b = defaultCrypto.generateX25519KeyPair()
    assert.equal(a.publicKey.byteLength, 32)
    assert.equal(a.privateKey.byteLength, 32)
    const ab = fast.generateX25519SharedKey(a.privateKey, b.publicKey)
    assert.equal(hex(ab), hex(defaultCrypto.generateX25519SharedKey(b.privateKey, a.publicKey)))
    assert.equal(hex(ab), hex(defaultCrypto.generateX25519SharedKey(a.privateKey, b.publicKey)))
    // a key pair made elsewhere (not kept): noise's own path, the same answer
    assert.equal(hex(fast.generateX25519SharedKey(b.privateKey, a.publicKey)), hex(ab))
  }
})

test('X25519 pairs made from random bytes: the public half is the one noise derives from the private half', () => {
  const fast = fastNoiseCrypto()
  const seen = new Set<string>()
  for (let i = 0; i < 20; i++) {
    const kp = fast.generateX25519KeyPair()
    assert.equal(hex(kp.publicKey), hex(defaultCrypto.generateX25519KeyPairFromSeed(kp.privateKey).publicKey))
    seen.add(hex(kp.privateKey))
  }
  assert.equal(seen.size, 20)
})

test('x25519PrivateKeyFromRaw: the JWK import is the PKCS#8 key (its fallback)', () => {
  const d = new Uint8Array(randomBytes(32))
  const viaJwk = x25519PrivateKeyFromRaw(d)
  const viaDer = createPrivateKey({ key: Buffer.concat([Buffer.from('302e020100300506032b656e04220420', 'hex'), d]), format: 'der', type: 'pkcs8' })
  assert.equal(createPublicKey(viaJwk).export({ format: 'jwk' }).x, createPublicKey(viaDer).export({ format: 'jwk' }).x)
  assert.equal(viaJwk.export({ format: 'jwk' }).d, Buffer.from(d).toString('base64url'))
})

test('X25519 from a seed: the pair noise derives, and DH with it agrees', () => {
  const fast = fastNoiseCrypto()
  const seed = new Uint8Array(randomBytes(32))
  const kp = fast.generateX25519KeyPairFromSeed(seed)
  const ref = defaultCrypto.generateX25519KeyPairFromSeed(seed)
  assert.equal(hex(kp.publicKey), hex(ref.publicKey))
  const other = defaultCrypto.generateX25519KeyPair()
  assert.equal(hex(fast.generateX25519SharedKey(kp.privateKey, other.publicKey)), hex(defaultCrypto.generateX25519SharedKey(other.privateKey, kp.publicKey)))
})

test('keys kept are bounded; an evicted one still works (through noise\'s path)', () => {
  const fast = fastNoiseCrypto()
  const first = fast.generateX25519KeyPair()
  for (let i = 0; i < KEPT_PRIVATE_KEYS + 10; i++) fast.generateX25519KeyPair()
  const other = defaultCrypto.generateX25519KeyPair()
  assert.equal(hex(fast.generateX25519SharedKey(first.privateKey, other.publicKey)), hex(defaultCrypto.generateX25519SharedKey(other.privateKey, first.publicKey)))
})

test('HKDF: OpenSSL gives noise\'s own three keys (random chaining keys and inputs, 32 bytes and empty)', () => {
  const fast = fastNoiseCrypto()
  for (let i = 0; i < 20; i++) {
    const ck = new Uint8Array(randomBytes(32))
    const ikm = new Uint8Array(randomBytes(i === 0 ? 0 : 32))
    const want = defaultCrypto.getHKDF(ck, ikm).map(k => Buffer.from(k).toString('hex'))
    const got = fast.getHKDF(ck, ikm).map(k => Buffer.from(k).toString('hex'))
    assert.deepEqual(got, want)
    assert.equal(new Set(got).size, 3)
  }
})
