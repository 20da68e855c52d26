import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { describe, it } from 'node:test'
import { parseDump } from '../src/dump.js'
import { UapiError, UapiParseError } from '../src/errors.js'
import { formatEndpoint, ntop6, parseEndpoint, parseUapiGet, parseUapiSetResponse } from '../src/uapi-parse.js'

const PRIV = 'yAnz5TF+lXXJte14tji3zlMNq+hd2rYUIgJBgB3fBmk='
const PUB = 'HIgo9xNzJMWLKASShiTqIybxZ0U3wGLiUeJ1PKf8ykw='
const P1 = 'xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg='
const P2 = 'TrMvSoP4jYQlY6RIzBgbssQqY3vxI2Pi+y71lOWWXX0='
const hex = (b64: string): string => Buffer.from(b64, 'base64').toString('hex')
const ZERO = '0'.repeat(64)

/** What wireguard-go sends for a device with two peers (peer order is Go map order). */
const RESPONSE = [
  `private_key=${hex(PRIV)}`,
  'listen_port=51820',
  `public_key=${hex(P1)}`,
  `preshared_key=${ZERO}`,
  'protocol_version=1',
  'endpoint=192.0.2.7:51820',
  'last_handshake_time_sec=1732233000',
  'last_handshake_time_nsec=123456789',
  'tx_bytes=5678',
  'rx_bytes=1234',
  'persistent_keepalive_interval=25',
  'allowed_ip=100.96.1.2/32',
  'allowed_ip=fd12:3456:789a::1/128',
  `public_key=${hex(P2)}`,
  `preshared_key=${ZERO}`,
  'protocol_version=1',
  'last_handshake_time_sec=0',
  'last_handshake_time_nsec=0',
  'tx_bytes=0',
  'rx_bytes=0',
  'persistent_keepalive_interval=0',
  'errno=0',
  '', ''
].join('\n')

describe('parseUapiGet', () => {
  it('gives the same Dump as parseDump of the equivalent `wg show dump`', () => {
    const dump = [
      `${PRIV}\t${PUB}\t51820\toff`,
      `${P1}\t(none)\t192.0.2.7:51820\t100.96.1.2/32,fd12:3456:789a::1/128\t1732233000\t1234\t5678\t25`,
      `${P2}\t(none)\t(none)\t(none)\t0\t0\t0\toff`
    ].join('\n') + '\n'
    assert.deepEqual(parseUapiGet(RESPONSE), parseDump(dump))
  })

  it('an empty device: no key, port 0, no fwmark, no peers', () => {
    assert.deepEqual(parseUapiGet('errno=0\n\n'), { interface: { listenPort: 0 }, peers: [] })
    assert.deepEqual(parseUapiGet('fwmark=0\nerrno=0\n\n'), { interface: { listenPort: 0 }, peers: [] })
    assert.deepEqual(parseUapiGet('fwmark=26\nerrno=0\n\n').interface.fwmark, 26)
  })

  it('formats endpoints and allowed-ips the way wg show does (glibc inet_ntop)', () => {
    const r = parseUapiGet([`public_key=${hex(P1)}`, 'endpoint=[2001:DB8:0:0:0:0:0:1]:51820', 'allowed_ip=::ffff:10.0.0.1/128',
      'allowed_ip=2001:db8:0:1:0:0:0:0/64', 'allowed_ip=0.0.0.0/0', `public_key=${hex(P2)}`, 'endpoint=[fe80::1%eth0]:1', 'errno=0', '', ''].join('\n'))
    assert.equal(r.peers[0]?.endpoint, '[2001:db8::1]:51820')
    assert.deepEqual(r.peers[0]?.allowedIps, ['::ffff:10.0.0.1/128', '2001:db8:0:1::/64', '0.0.0.0/0'])
    assert.equal(r.peers[1]?.endpoint, '[fe80::1%eth0]:1')
  })

  it('ntop6 matches glibc: single zero groups stay, first longest run compressed, embedded IPv4', () => {
    const v = (s: string): bigint => { const e = parseEndpoint(`[${s}]:1`); assert.ok(e); return e.value }
    assert.equal(ntop6(v('2001:db8:0:1:1:1:1:1')), '2001:db8:0:1:1:1:1:1')
    assert.equal(ntop6(v('1:0:0:2:0:0:3:4')), '1::2:0:0:3:4')
    assert.equal(ntop6(0n), '::')
    assert.equal(ntop6(1n), '::1')
    assert.equal(ntop6(v('::1.2.3.4')), '::1.2.3.4')
    assert.equal(ntop6(v('1::')), '1::')
    assert.equal(formatEndpoint({ family: 4, value: 0x01020304n, port: 9 }), '1.2.3.4:9')
  })

  it('ignores unknown keys, device keys after a peer and peer keys before one (like wg)', () => {
    const r = parseUapiGet(['some_future_key=1', 'endpoint=1.2.3.4:5', 'listen_port=7', `public_key=${hex(P1)}`, 'listen_port=9', 'x=y', 'errno=0', '', ''].join('\n'))
    assert.deepEqual(r, { interface: { listenPort: 7 }, peers: [{ publicKey: P1, allowedIps: [], latestHandshake: 0, transferRx: 0, transferTx: 0 }] })
  })

  it('a non-zero errno is a UapiError carrying the errno', () => {
    assert.throws(() => parseUapiGet('errno=-22\n\n', { interface: 'wg0' }), (e: unknown) => e instanceof UapiError && e.errno === -22 && e.name === 'UapiError' && /wg0/.test(e.message))
  })

  it('malformed input is a UapiParseError that never echoes key material', () => {
    const bad = [
      '', 'errno=0\n', 'errno=0\n\nmore', 'noequals\nerrno=0\n\n', '=x\nerrno=0\n\n', 'listen_port=70000\nerrno=0\n\n',
      'listen_port=-1\nerrno=0\n\n', `public_key=${hex(P1)}\nendpoint=host.example:1\nerrno=0\n\n`, `public_key=${hex(P1)}\nallowed_ip=10.0.0.1\nerrno=0\n\n`,
      `public_key=${hex(P1)}\nallowed_ip=10.0.0.1/33\nerrno=0\n\n`, 'public_key=abc\nerrno=0\n\n', 'listen_port=1\n\n', 'errno=x\n\n',
      `public_key=${hex(P1)}\nrx_bytes=18446744073709551616\nerrno=0\n\n`
    ]
    for (const t of bad) assert.throws(() => parseUapiGet(t), { name: 'UapiParseError' }, JSON.stringify(t))
    const secret = hex(PRIV).slice(0, 63) + 'z'
    assert.throws(() => parseUapiGet(`private_key=${secret}\nerrno=0\n\n`), (e: unknown) => e instanceof UapiParseError && !e.message.includes(secret.slice(0, 20)))
  })

  it('caps the input size', () => {
    assert.throws(() => parseUapiGet('x=' + 'a'.repeat(100) + '\nerrno=0\n\n', { maxBytes: 64 }), { name: 'UapiParseError', message: /exceeds 64 bytes/ })
  })

  it('fuzz: random and mutated input throws nothing but UapiParseError / UapiError', () => {
    const alphabet = '=\n0123456789abcdef:[]./%-_xyz'
    const keys = ['private_key', 'listen_port', 'fwmark', 'public_key', 'preshared_key', 'endpoint', 'allowed_ip', 'rx_bytes', 'errno', 'persistent_keepalive_interval', 'last_handshake_time_sec']
    let seed = 12345
    const rnd = (n: number): number => { seed = (seed * 1103515245 + 12345) & 0x7fffffff; return seed % n }
    const check = (t: string): void => {
      try { parseUapiGet(t) } catch (e) {
        if (!(e instanceof UapiParseError || e instanceof UapiError)) throw new Error(`unexpected ${String(e)} for ${JSON.stringify(t)}`)
      }
      try { parseUapiSetResponse(t) } catch (e) {
        if (!(e instanceof UapiParseError)) throw new Error(`unexpected ${String(e)} for ${JSON.stringify(t)}`)
      }
    }
    for (let i = 0; i < 1000; i++) {
      // mutate the real response: flip, delete, duplicate or insert characters
      const chars = [...RESPONSE]
      for (let k = 0, n = 1 + rnd(6); k < n; k++) {
        const at = rnd(chars.length)
        const op = rnd(4)
        if (op === 0) chars[at] = alphabet[rnd(alphabet.length)] ?? ''
        else if (op === 1) chars.splice(at, 1 + rnd(10))
        else if (op === 2) chars.splice(at, 0, ...chars.slice(rnd(chars.length), rnd(chars.length)))
        else chars.splice(at, 0, alphabet[rnd(alphabet.length)] ?? '')
      }
      check(chars.join(''))
      // random lines of known keys with random values
      const lines = Array.from({ length: rnd(12) }, () => `${keys[rnd(keys.length)] ?? ''}=${Array.from({ length: rnd(70) }, () => alphabet[rnd(alphabet.length)]).join('')}`)
      check(lines.join('\n') + (rnd(2) === 0 ? '\nerrno=0\n\n' : '\n\n'))
      check(randomBytes(rnd(200)).toString('latin1'))
    }
  })
})

describe('parseUapiSetResponse', () => {
  it('returns the errno', () => {
    assert.equal(parseUapiSetResponse('errno=0\n\n'), 0)
    assert.equal(parseUapiSetResponse('errno=-98\n\n'), -98)
    assert.throws(() => parseUapiSetResponse('\n'), { name: 'UapiParseError' })
    assert.throws(() => parseUapiSetResponse('errno=0\n'), { name: 'UapiParseError' })
  })
})
