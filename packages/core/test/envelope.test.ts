import { test } from 'node:test'
import assert from 'node:assert/strict'
import nacl from 'tweetnacl'
import { createSigner, open, seal } from '../src/envelope.js'
import { MESH_KEY, OTHER_MESH_KEY, nonce, seedOf } from './fixtures.js'

const payload = new TextEncoder().encode('{"hello":1}')

test('seal then open returns the payload and the signer', () => {
  const s = createSigner(seedOf('a'))
  const r = open(MESH_KEY, seal(MESH_KEY, s, payload, nonce()))
  assert.ok(r.ok)
  assert.deepEqual(Buffer.from(r.payload), Buffer.from(payload))
  assert.equal(r.signerId, s.nodeId)
})

test('the wrong mesh key cannot open a record', () => {
  const r = open(OTHER_MESH_KEY, seal(MESH_KEY, createSigner(seedOf('a')), payload, nonce()))
  assert.deepEqual(r, { ok: false, reason: 'decrypt' })
})

test('a flipped ciphertext bit fails authentication', () => {
  const sealed = seal(MESH_KEY, createSigner(seedOf('a')), payload, nonce())
  sealed[sealed.length - 1]! ^= 1
  assert.deepEqual(open(MESH_KEY, sealed), { ok: false, reason: 'decrypt' })
})

test('a member cannot forge another member\'s signature', () => {
  // b signs, then the header's public key is swapped for a's: the signature no longer matches.
  const a = createSigner(seedOf('a'))
  const b = createSigner(seedOf('b'))
  const inner = b.sign(payload)
  inner.set(Buffer.from(a.nodeId, 'base64url'), 1)
  const n = nonce()
  const box = nacl.secretbox(inner, n, MESH_KEY)
  const sealed = new Uint8Array([...n, ...box])
  assert.deepEqual(open(MESH_KEY, sealed), { ok: false, reason: 'signature' })
})

test('oversized and truncated input are refused without throwing', () => {
  assert.deepEqual(open(MESH_KEY, new Uint8Array(5000)), { ok: false, reason: 'oversize' })
  assert.deepEqual(open(MESH_KEY, new Uint8Array(10)), { ok: false, reason: 'malformed' })
})
