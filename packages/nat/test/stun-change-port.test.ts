/**
 * Telling an open host from one behind a stateful firewall (issue 11): a Binding request with
 * CHANGE-REQUEST (change port) is answered from the paired server's socket — still one answer
 * per request, no larger than today's (request + 12 bytes on IPv4), rate-limited per source —
 * and the client's change-port probe reads `open`, `filtered` or `unsupported`. Real sockets
 * on 127.0.0.1; the "firewall" is the client socket itself letting in only datagrams from an
 * address:port it sent to (what conntrack's `ct state established` does).
 */
import assert from 'node:assert/strict'
import dgram from 'node:dgram'
import { after, before, describe, it } from 'node:test'
import { startStunServer, type StunServer } from '../src/stun-server.js'
import { probeFiltering, queryStun } from '../src/stun-client.js'
import { bindingRequest, newTransactionId, parseBindingRequest, parseBindingResponse } from '../src/stun-codec.js'
import { classifyNat, recordNatType, underlayNatType, withFiltering } from '../src/nat-type.js'
import { walledSocket as walled } from './walled-socket.js'

async function udp4 (): Promise<dgram.Socket> {
  const s = dgram.createSocket('udp4')
  s.on('error', () => {})
  await new Promise<void>(resolve => { s.bind(0, '127.0.0.1', resolve) })
  return s
}

/** Send `msg` and collect what comes back within `ms`, with the port each came from. */
async function exchange (sock: dgram.Socket, msg: Uint8Array, port: number, ms = 200): Promise<Array<{ bytes: Buffer, from: number }>> {
  const got: Array<{ bytes: Buffer, from: number }> = []
  const on = (m: Buffer, r: dgram.RemoteInfo): void => { got.push({ bytes: m, from: r.port }) }
  sock.on('message', on)
  sock.send(msg, port, '127.0.0.1')
  await new Promise(resolve => setTimeout(resolve, ms))
  sock.off('message', on)
  return got
}

let dropped = 0
/** A stateful firewall on the probe's socket (walled-socket.ts), counting what it keeps out. */
const walledSocket = (type: 'udp4' | 'udp6'): dgram.Socket => walled(type, () => { dropped++ })

describe('CHANGE-REQUEST (change port) in the codec', () => {
  it('a request asks for it in 8 more bytes; the parser reads the flag; change-IP is not honoured', () => {
    const tx = newTransactionId()
    const plain = bindingRequest(tx)
    const change = bindingRequest(tx, { changePort: true })
    assert.equal(change.length, plain.length + 8)
    assert.equal(parseBindingRequest(plain)?.changePort, false)
    assert.equal(parseBindingRequest(change)?.changePort, true)
    // the same request without FINGERPRINT (edited below), then with the change-IP flag too (a
    // server with one address cannot change it): no change-port answer
    const noFp = Buffer.from(change.subarray(0, change.length - 8))
    noFp.writeUInt16BE(noFp.length - 20, 2)
    const at = noFp.indexOf(Buffer.from([0x00, 0x03, 0x00, 0x04]))
    assert.ok(at > 0, 'CHANGE-REQUEST attribute present')
    assert.equal(parseBindingRequest(noFp)?.changePort, true)
    noFp[at + 7] = 0x06
    assert.equal(parseBindingRequest(noFp)?.changePort, false)
    noFp[at + 7] = 0x04
    assert.equal(parseBindingRequest(noFp)?.changePort, false)
  })
})

describe('paired STUN servers on 127.0.0.1', () => {
  let a: StunServer
  let b: StunServer
  let lone: StunServer
  before(async () => {
    a = await startStunServer({ host: '127.0.0.1', port: 0 })
    b = await startStunServer({ host: '127.0.0.1', port: 0 })
    lone = await startStunServer({ host: '127.0.0.1', port: 0 })
    a.pair(b)
  })
  after(async () => { await Promise.all([a.close(), b.close(), lone.close()]) })

  it('answers a change-port request from the other server\'s port (both ways), never larger than request + 12 bytes', async () => {
    const sock = await udp4()
    try {
      for (const [asked, other] of [[a, b], [b, a]] as const) {
        const req = bindingRequest(newTransactionId(), { changePort: true })
        const got = await exchange(sock, req, asked.address().port)
        assert.equal(got.length, 1, 'one answer per request')
        assert.equal(got[0]!.from, other.address().port, 'from the paired port')
        assert.equal(parseBindingResponse(got[0]!.bytes)?.port, sock.address().port, 'it names the port it saw')
        assert.ok(got[0]!.bytes.length <= req.length + 12, `${req.length} → ${got[0]!.bytes.length} bytes`)
      }
      assert.equal(a.stats().changed, 1)
      assert.equal(b.stats().changed, 1)
      // a plain request still gets its answer from the port asked
      const plain = await exchange(sock, bindingRequest(newTransactionId()), a.address().port)
      assert.deepEqual(plain.map(g => g.from), [a.address().port])
    } finally { sock.close() }
  })

  it('an unpaired server answers a change-port request plainly (what an older member does)', async () => {
    const sock = await udp4()
    try {
      const got = await exchange(sock, bindingRequest(newTransactionId(), { changePort: true }), lone.address().port)
      assert.deepEqual(got.map(g => g.from), [lone.address().port])
      assert.equal(lone.stats().changed, 0)
    } finally { sock.close() }
  })

  it('change-port requests pass the same per-source limiter as plain ones: a burst of 12 at 5/s gets 5 answers, the rest are counted', async () => {
    const s = await startStunServer({ host: '127.0.0.1', port: 0, ratePerSecond: 5 })
    const t = await startStunServer({ host: '127.0.0.1', port: 0 })
    s.pair(t)
    const sock = await udp4()
    try {
      const got: number[] = []
      sock.on('message', (_m, r) => { got.push(r.port) })
      for (let i = 0; i < 12; i++) sock.send(bindingRequest(newTransactionId(), { changePort: true }), s.address().port, '127.0.0.1')
      await new Promise(resolve => setTimeout(resolve, 300))
      assert.equal(got.length, 5, `answers: ${got.length}`)
      assert.ok(got.every(p => p === t.address().port))
      assert.equal(s.stats().rateLimited, 7)
      assert.equal(s.stats().changed, 5)
    } finally { sock.close(); await s.close(); await t.close() }
  })

  it('refuses to pair with itself or with a server of the other family', async () => {
    const v6 = await startStunServer({ host: '::1', port: 0 })
    try {
      assert.throws(() => { a.pair(v6) }, /its own family/)
      assert.throws(() => { a.pair(a) }, /its own family/)
    } finally { await v6.close() }
  })

  it('queryStun reports where the answer came from', async () => {
    const sock = await udp4()
    try {
      const r = await queryStun(sock, { host: '127.0.0.1', port: a.address().port }, 1000, 3, { changePort: true })
      assert.deepEqual(r.source, { address: '127.0.0.1', port: b.address().port })
    } finally { sock.close() }
  })

  it('probeFiltering: open host → open; behind a stateful firewall → filtered; unpaired (older) server → unsupported', async () => {
    const servers = [{ host: '127.0.0.1', port: a.address().port }]
    assert.equal(await probeFiltering(servers, { timeoutMs: 500, retries: 2 }), 'open')
    const before = dropped
    const t0 = Date.now()
    assert.equal(await probeFiltering(servers, { timeoutMs: 500, retries: 2, socketFactory: walledSocket }), 'filtered')
    assert.ok(Date.now() - t0 >= 450, 'it waited for the answer')
    assert.equal(dropped - before, 3, 'the three answers (sent at 0, 100, 300 ms) came from the other port and were dropped')
    // the same walled socket does let a plain answer in: the firewall is stateful, not closed
    const plain = walledSocket('udp4')
    await new Promise<void>(resolve => { plain.bind(0, '127.0.0.1', resolve) })
    try {
      const r = await queryStun(plain, { host: '127.0.0.1', port: a.address().port }, 500, 2)
      assert.equal(r.source.port, a.address().port)
    } finally { plain.close() }
    assert.equal(await probeFiltering([{ host: '127.0.0.1', port: lone.address().port }], { timeoutMs: 500, retries: 2, socketFactory: walledSocket }), 'unsupported')
    // two servers on distinct hosts: an open answer from either decides; an older member's plain one says nothing
    const c = await startStunServer({ host: '127.0.0.2', port: 0 })
    const d = await startStunServer({ host: '127.0.0.2', port: 0 })
    c.pair(d)
    try {
      const two = [{ host: '127.0.0.1', port: lone.address().port }, { host: '127.0.0.2', port: c.address().port }]
      assert.equal(await probeFiltering(two, { timeoutMs: 500, retries: 2 }), 'open')
      assert.equal(await probeFiltering(two, { timeoutMs: 500, retries: 2, socketFactory: walledSocket }), 'filtered')
      assert.equal(c.stats().changed, 1 + 3, 'open: answered at once; walled: every retransmission answered (and dropped)')
    } finally { await c.close(); await d.close() }
  })
})

describe('the firewalled classification', () => {
  it('public + filtered → firewalled; open or unsupported keep public; NAT types are not touched', () => {
    assert.equal(withFiltering('public', 'filtered'), 'firewalled')
    assert.equal(withFiltering('public', 'open'), 'public')
    assert.equal(withFiltering('public', 'unsupported'), 'public')
    assert.equal(withFiltering('public', undefined), 'public')
    assert.equal(withFiltering('cone', 'filtered'), 'cone')
    assert.equal(withFiltering('symmetric', 'filtered'), 'symmetric')
    assert.equal(withFiltering('unknown', 'filtered'), 'unknown')
    const own = classifyNat(['2001:db8:1::2'], 40000, [{ server: { host: '2001:db8:1::1', port: 3478 }, address: '2001:db8:1::2', port: 40000 }])
    assert.equal(withFiltering(own, 'filtered'), 'firewalled')
  })

  it('the record says cone for it (older agents refuse a nat they do not know), and underlayNatType passes it through', () => {
    assert.equal(recordNatType('firewalled'), 'cone')
    for (const t of ['public', 'cone', 'symmetric', 'unknown'] as const) assert.equal(recordNatType(t), t)
    assert.equal(underlayNatType('unknown', 'firewalled'), 'firewalled')
    assert.equal(underlayNatType('public', 'firewalled'), 'public')
  })
})
