import { test } from 'node:test'
import assert from 'node:assert/strict'
import { ed25519RawPublicKey, wgPublicKeyFromPrivate } from '../src/keys.js'

const b64 = (hex: string): string => Buffer.from(hex, 'hex').toString('base64')

// RFC 7748 §6.1 (X25519): Alice's and Bob's private and public keys
const ALICE = { priv: b64('77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a'), pub: b64('8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a') }
const BOB = { priv: b64('5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb'), pub: b64('de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f') }

test('wgPublicKeyFromPrivate: the RFC 7748 vectors, also when asked again and in turn (it keeps the last derivation)', () => {
  for (const k of [ALICE, ALICE, BOB, ALICE, BOB, BOB]) assert.equal(wgPublicKeyFromPrivate(k.priv), k.pub)
})

test('wgPublicKeyFromPrivate: a key that is not 32 bytes of base64 is an error, and does not disturb the last derivation', () => {
  assert.equal(wgPublicKeyFromPrivate(ALICE.priv), ALICE.pub)
  assert.throws(() => wgPublicKeyFromPrivate('c2hvcnQ='), /32 bytes/)
  assert.throws(() => wgPublicKeyFromPrivate(''), /32 bytes/)
  assert.equal(wgPublicKeyFromPrivate(ALICE.priv), ALICE.pub)
})

test('ed25519RawPublicKey: the RFC 8032 §7.1 test 1 vector', () => {
  const seed = Buffer.from('9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60', 'hex')
  assert.equal(Buffer.from(ed25519RawPublicKey(seed)).toString('hex'), 'd75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a')
})
