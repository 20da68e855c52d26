import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { describe, it } from 'node:test'
import {
  bindingRequest, bindingSuccess, isBindingRequest, parseBindingRequest, parseBindingResponse, newTransactionId, STUN_MAGIC_COOKIE
} from '../src/stun-codec.js'

const tx = Uint8Array.from({ length: 12 }, (_, i) => i + 1)

describe('stun codec', () => {
  it('builds a binding request with cookie, txid, SOFTWARE and FINGERPRINT', () => {
    const b = bindingRequest(tx)
    const dv = new DataView(b.buffer)
    assert.equal(dv.getUint16(0), 0x0001)
    assert.equal(dv.getUint16(2), b.length - 20)
    assert.equal(dv.getUint32(4), STUN_MAGIC_COOKIE)
    assert.deepEqual(b.slice(8, 20), tx)
    assert.equal(dv.getUint16(b.length - 8), 0x8028)
    assert.equal(isBindingRequest(b), true)
    assert.deepEqual(parseBindingRequest(b)?.txId, tx)
    assert.equal(parseBindingResponse(b), undefined) // a request is not a response
  })

  it('round-trips IPv4 and IPv6 XOR-MAPPED-ADDRESS', () => {
    for (const [addr, port, family] of [['198.51.100.7', 51820, 4], ['2001:db8::1', 3478, 6], ['0.0.0.0', 0, 4], ['ffff:ffff::ffff', 65535, 6]] as const) {
      const r = parseBindingResponse(bindingSuccess(tx, addr, port))
      assert.deepEqual(r, { txId: tx, address: addr, port, family })
      assert.equal(isBindingRequest(bindingSuccess(tx, addr, port)), false)
    }
  })

  it('reports IPv4-mapped IPv6 sources (dual-stack sockets) as IPv4', () => {
    assert.equal(parseBindingResponse(bindingSuccess(tx, '::ffff:192.0.2.1', 1))?.address, '192.0.2.1')
    assert.equal(parseBindingResponse(bindingSuccess(tx, '::ffff:192.0.2.1', 1))?.family, 4)
  })

  it('decodes a known RFC 5769 IPv4 response vector (XOR-MAPPED-ADDRESS 192.0.2.1:32853)', () => {
    // RFC 5769 §2.2, without MESSAGE-INTEGRITY/FINGERPRINT/SOFTWARE: header + XOR-MAPPED-ADDRESS only.
    const hex = '0101000c2112a442b7e7a701bc34d686fa87dfae' + '00200008' + '0001a147e112a643'
    const r = parseBindingResponse(Buffer.from(hex, 'hex'))
    assert.equal(r?.address, '192.0.2.1')
    assert.equal(r?.port, 32853)
  })

  it('falls back to MAPPED-ADDRESS when there is no XOR-MAPPED-ADDRESS', () => {
    const hex = '0101000c2112a442' + '000102030405060708090a0b' + '00010008' + '0001ca6cc6336407'
    const r = parseBindingResponse(Buffer.from(hex, 'hex'))
    assert.equal(r?.address, '198.51.100.7')
    assert.equal(r?.port, 0xca6c)
  })

  it('rejects bad cookie, bad length, bad fingerprint, wrong type, bad family', () => {
    const good = bindingSuccess(tx, '203.0.113.5', 4242)
    const mut = (f: (b: Uint8Array) => void): Uint8Array => { const c = good.slice(); f(c); return c }
    assert.equal(parseBindingResponse(mut(b => { b[4] = 0 })), undefined) // cookie
    assert.equal(parseBindingResponse(mut(b => { b[3] = (b[3] as number) + 4 })), undefined) // length
    assert.equal(parseBindingResponse(mut(b => { b[b.length - 1]! ^= 1 })), undefined) // fingerprint
    assert.equal(parseBindingResponse(mut(b => { b[0] = 0x01; b[1] = 0x11 })), undefined) // error response
    assert.equal(parseBindingResponse(mut(b => { b[0] = 0xc1 })), undefined) // top bits set
    assert.equal(parseBindingResponse(Buffer.from('0101000c2112a442000102030405060708090a0b002000080003a147e112a643', 'hex')), undefined)
    assert.equal(parseBindingResponse(new Uint8Array(0)), undefined)
    assert.throws(() => bindingRequest(new Uint8Array(11)), { name: 'InvalidArgumentError' })
    assert.throws(() => bindingSuccess(tx, 'not-an-ip', 1), { name: 'InvalidArgumentError' })
    assert.throws(() => bindingSuccess(tx, '192.0.2.1', 70000), { name: 'InvalidArgumentError' })
  })

  it('never throws on random or truncated input', () => {
    const good = bindingSuccess(newTransactionId(), '2001:db8::42', 51820)
    for (let n = 0; n < good.length; n++) {
      assert.equal(parseBindingResponse(good.subarray(0, n)), undefined)
      assert.equal(isBindingRequest(good.subarray(0, n)), false)
    }
    for (let i = 0; i < 5000; i++) {
      const b = randomBytes(Math.floor(Math.random() * 80))
      if (i % 2 === 0 && b.length >= 20) { b.writeUInt32BE(STUN_MAGIC_COOKIE, 4); b.writeUInt16BE(b.length - 20, 2); b[0] = 1; b[1] = 1 }
      assert.doesNotThrow(() => { parseBindingResponse(b); parseBindingRequest(b) })
    }
    for (let i = 0; i < 2000; i++) { // bit flips of a valid message
      const b = Buffer.from(good)
      b[Math.floor(Math.random() * b.length)]! ^= 1 << Math.floor(Math.random() * 8)
      assert.doesNotThrow(() => parseBindingResponse(b))
    }
  })
})
