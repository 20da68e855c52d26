/**
 * O4 — the STUN server under attack, with real sockets on 127.0.0.1: an oversized datagram
 * gets no answer and is never parsed, a flood is rate-limited before parsing, and no answer is
 * larger than its request by more than the XOR-MAPPED-ADDRESS (12 bytes for IPv4).
 */
import assert from 'node:assert/strict'
import dgram from 'node:dgram'
import { after, before, describe, it } from 'node:test'
import { startStunServer, type StunServer } from '../src/stun-server.js'
import { bindingRequest, newTransactionId, parseBindingResponse } from '../src/stun-codec.js'

const COOKIE = 0x2112a442

/** A Binding request without FINGERPRINT, padded with a SOFTWARE attribute to `size` bytes (size ≥ 24, multiple of 4). */
function request (size: number, txId = newTransactionId()): Buffer {
  const b = Buffer.alloc(size)
  b.writeUInt16BE(0x0001, 0)
  b.writeUInt16BE(size - 20, 2)
  b.writeUInt32BE(COOKIE, 4)
  Buffer.from(txId).copy(b, 8)
  if (size > 20) {
    b.writeUInt16BE(0x8022, 20) // SOFTWARE
    b.writeUInt16BE(size - 24, 22)
    b.fill(0x61, 24)
  }
  return b
}

async function udp (type: 'udp4' | 'udp6' = 'udp4', host = '127.0.0.1'): Promise<dgram.Socket> {
  const s = dgram.createSocket(type)
  s.on('error', () => {})
  await new Promise<void>(resolve => { s.bind(0, host, resolve) })
  return s
}

/** Send `msg` and collect what comes back within `ms`. */
async function exchange (sock: dgram.Socket, msg: Uint8Array, port: number, host: string, ms = 300): Promise<Buffer[]> {
  const got: Buffer[] = []
  const on = (m: Buffer): void => { got.push(m) }
  sock.on('message', on)
  sock.send(msg, port, host)
  await new Promise(resolve => setTimeout(resolve, ms))
  sock.off('message', on)
  return got
}

describe('O4: STUN server attacks (127.0.0.1)', () => {
  let server: StunServer
  before(async () => { server = await startStunServer({ host: '127.0.0.1', port: 0, ratePerSecond: 50 }) })
  after(async () => { await server.close() })

  it('an oversized (but well-formed) Binding request gets no answer and costs no parse', async () => {
    const sock = await udp()
    try {
      const big = request(600)
      const s0 = server.stats()
      const got = await exchange(sock, big, server.address().port, '127.0.0.1')
      assert.equal(got.length, 0, `answered a ${big.length}-byte request`)
      const s1 = server.stats()
      assert.equal(s1.oversized - s0.oversized, 1)
      assert.equal(s1.parsed - s0.parsed, 0, 'it was parsed')
      assert.equal(s1.ignored - s0.ignored, 0)
      // the largest accepted request still gets its answer
      assert.equal((await exchange(sock, request(548), server.address().port, '127.0.0.1')).length, 1)
    } finally { sock.close() }
  })

  it('no amplification: an answer is at most 12 bytes (the IPv4 XOR-MAPPED-ADDRESS) larger than its request', async () => {
    const sock = await udp()
    try {
      const sizes: string[] = []
      for (const req of [request(20), request(24), Buffer.from(bindingRequest(newTransactionId()))]) {
        const [ans] = await exchange(sock, req, server.address().port, '127.0.0.1', 150)
        assert.ok(ans !== undefined, `no answer to a ${req.length}-byte request`)
        assert.equal(parseBindingResponse(ans)?.port, sock.address().port)
        sizes.push(`${req.length}→${ans.length}`)
        assert.ok(ans.length <= req.length + 12, `a ${req.length}-byte request got ${ans.length} bytes`)
      }
      console.log(`  STUN request→answer bytes (IPv4): ${sizes.join(', ')}`)
    } finally { sock.close() }
  })

  it('a flood from one source is rate-limited before it is parsed', async () => {
    const flooder = await udp()
    const fresh = await startStunServer({ host: '127.0.0.1', port: 0, ratePerSecond: 50 })
    try {
      // bad FINGERPRINT-less junk of the largest accepted size: every one parsed would cost a full walk
      const junk = request(548)
      junk.writeUInt32BE(0xdeadbeef, 4) // not the magic cookie: never answered
      const n = 200
      for (let i = 0; i < n; i++) flooder.send(junk, fresh.address().port, '127.0.0.1')
      // wait until the counts stop moving (loopback may drop some of the burst)
      let last = -1
      for (let i = 0; i < 100; i++) {
        await new Promise(resolve => setTimeout(resolve, 50))
        const st = fresh.stats()
        const seen = st.ignored + st.rateLimited
        if (seen === last || seen >= n) break
        last = seen
      }
      const st = fresh.stats()
      console.log(`  flood of ${n} junk datagrams: ${st.ignored + st.rateLimited} received, ${st.ignored} parsed, ${st.rateLimited} dropped before parsing`)
      assert.ok(st.ignored <= 55, `${st.ignored} junk datagrams were parsed (burst is 50)`)
      assert.ok(st.rateLimited > 0)
    } finally { flooder.close(); await fresh.close() }
  })
})
