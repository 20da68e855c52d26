import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { parseDump } from '../src/dump.js'
import { DumpParseError } from '../src/errors.js'

const PRIV = 'yAnz5TF+lXXJte14tji3zlMNq+hd2rYUIgJBgB3fBmk='
const PUB = 'HIgo9xNzJMWLKASShiTqIybxZ0U3wGLiUeJ1PKf8ykw='
const P1 = 'xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg='
const P2 = 'TrMvSoP4jYQlY6RIzBgbssQqY3vxI2Pi+y71lOWWXX0='

describe('parseDump', () => {
  it('parses the interface line and peers, mapping (none)/off/0 to unset', () => {
    const text = [
      `${PRIV}\t${PUB}\t51820\toff`,
      `${P1}\t(none)\t192.0.2.7:51820\t100.96.1.2/32,fd12:3456:789a::1/128\t1732233000\t1234\t5678\t25`,
      `${P2}\t(none)\t(none)\t(none)\t0\t0\t0\toff`
    ].join('\n') + '\n'
    assert.deepEqual(parseDump(text), {
      interface: { privateKey: PRIV, publicKey: PUB, listenPort: 51820 },
      peers: [
        { publicKey: P1, endpoint: '192.0.2.7:51820', allowedIps: ['100.96.1.2/32', 'fd12:3456:789a::1/128'], latestHandshake: 1732233000, transferRx: 1234, transferTx: 5678, persistentKeepalive: 25 },
        { publicKey: P2, allowedIps: [], latestHandshake: 0, transferRx: 0, transferTx: 0 }
      ]
    })
  })

  it('handles an interface without keys or peers, a hex fwmark, IPv6 endpoints and CRLF', () => {
    assert.deepEqual(parseDump('(none)\t(none)\t0\t0x1a\r\n'), { interface: { listenPort: 0, fwmark: 26 }, peers: [] })
    const d = parseDump(`${PRIV}\t${PUB}\t1\toff\n${P1}\t${PRIV}\t[2001:db8::1]:51820\t10.0.0.0/8\t5\t6\t7\toff\n\n`)
    assert.equal(d.peers[0]?.endpoint, '[2001:db8::1]:51820')
    assert.equal(d.peers[0]?.presharedKey, PRIV)
    assert.equal(d.peers.length, 1)
  })

  it('throws DumpParseError on empty input', () => {
    assert.throws(() => parseDump(''), { name: 'DumpParseError' })
    assert.throws(() => parseDump('\n\n'), DumpParseError)
  })

  it('throws DumpParseError on a short interface line', () => {
    assert.throws(() => parseDump(`${PRIV}\t${PUB}\t51820\n`), { name: 'DumpParseError', message: /line 1: expected 4/ })
  })

  it('throws DumpParseError on a peer line with the wrong field count, naming the line', () => {
    const text = `${PRIV}\t${PUB}\t51820\toff\n${P1}\t(none)\t(none)\t(none)\t0\t0\t0\n`
    assert.throws(() => parseDump(text), { name: 'DumpParseError', message: /line 2: expected 8/ })
  })

  it('throws DumpParseError on non-numeric counters or a space-separated line', () => {
    assert.throws(() => parseDump(`${PRIV}\t${PUB}\t51820\toff\n${P1}\t(none)\t(none)\t(none)\tyesterday\t0\t0\toff`), { name: 'DumpParseError', message: /latest-handshake/ })
    assert.throws(() => parseDump(`${PRIV} ${PUB} 51820 off`), { name: 'DumpParseError' })
    assert.throws(() => parseDump(`${PRIV}\t${PUB}\tabc\toff`), { name: 'DumpParseError', message: /listen-port/ })
  })
})
