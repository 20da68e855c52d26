import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { classifyNat, portPreserved } from '../src/nat-type.js'

const A = { host: '198.51.100.1', port: 3478 }
const B = { host: '203.0.113.1', port: 3478 }
const m = (server: typeof A, address: string, port: number): { server: typeof A, address: string, port: number } => ({ server, address, port })

describe('classifyNat', () => {
  const cases: Array<[string, string[], number, ReturnType<typeof m>[], string]> = [
    ['no answers', ['192.0.2.7'], 40000, [], 'unknown'],
    ['one NATed answer', ['192.0.2.7'], 40000, [m(A, '198.18.0.9', 40000)], 'unknown'],
    ['own address and port', ['198.18.0.9'], 40000, [m(A, '198.18.0.9', 40000), m(B, '198.18.0.9', 40000)], 'public'],
    ['own address, one answer', ['198.18.0.9'], 40000, [m(A, '198.18.0.9', 40000)], 'public'],
    ['own IPv6 address, non-canonical text', ['2001:DB8:0:0::1'], 5, [m(A, '2001:db8::1', 5), m(B, '2001:db8::1', 5)], 'public'],
    ['own address but port rewritten', ['198.18.0.9'], 40000, [m(A, '198.18.0.9', 1234), m(B, '198.18.0.9', 1234)], 'cone'],
    ['same mapping from two servers', ['192.0.2.7'], 40000, [m(A, '198.18.0.9', 40000), m(B, '198.18.0.9', 40000)], 'cone'],
    ['port differs per destination', ['192.0.2.7'], 40000, [m(A, '198.18.0.9', 1111), m(B, '198.18.0.9', 2222)], 'symmetric'],
    ['address differs per destination', ['192.0.2.7'], 40000, [m(A, '198.18.0.9', 1111), m(B, '198.18.0.10', 1111)], 'symmetric'],
    ['two answers from one server', ['192.0.2.7'], 40000, [m(A, '198.18.0.9', 1111), m(A, '198.18.0.9', 1111)], 'unknown'],
    // a server behind our own NAT (a LAN neighbour) sees our private address: left out
    ['cone, plus a LAN neighbour\'s answer', ['192.0.2.7'], 40000, [m({ host: '192.0.2.8', port: 3478 }, '192.0.2.7', 40000), m(A, '198.18.0.9', 40000), m(B, '198.18.0.9', 40000)], 'cone'],
    ['one public answer, plus a LAN neighbour\'s', ['192.0.2.7'], 40000, [m({ host: '192.0.2.8', port: 3478 }, '192.0.2.7', 40000), m(A, '198.18.0.9', 40000)], 'unknown'],
    ['symmetric, plus a LAN neighbour\'s answer', ['192.0.2.7'], 40000, [m({ host: '192.0.2.8', port: 3478 }, '192.0.2.7', 40000), m(A, '198.18.0.9', 1), m(B, '198.18.0.9', 2)], 'symmetric']
  ]
  for (const [name, locals, port, mappings, want] of cases) {
    it(`${name} → ${want}`, () => { assert.equal(classifyNat(locals, port, mappings), want) })
  }
})

describe('portPreserved', () => {
  it('is true only when every answer shows the local port', () => {
    assert.equal(portPreserved(51820, [m(A, '198.18.0.9', 51820), m(B, '198.18.0.9', 51820)]), true)
    assert.equal(portPreserved(51820, [m(A, '198.18.0.9', 51820), m(B, '198.18.0.9', 1)]), false)
    assert.equal(portPreserved(51820, []), false)
  })
})
