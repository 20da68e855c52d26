import assert from 'node:assert/strict'
import dgram from 'node:dgram'
import { after, before, describe, it } from 'node:test'
import { startStunServer } from '../src/stun-server.js'
import type { StunServer } from '../src/stun-server.js'
import { pickProbeServers, probeNat, queryStun } from '../src/stun-client.js'
import { classifyNat, portPreserved } from '../src/nat-type.js'
import { bindingRequest, newTransactionId, parseBindingResponse } from '../src/stun-codec.js'
import { RateLimiter } from '../src/rate-limit.js'

async function udp4 (): Promise<dgram.Socket> {
  const s = dgram.createSocket('udp4')
  s.on('error', () => {})
  await new Promise<void>(resolve => { s.bind(0, '127.0.0.1', resolve) })
  return s
}

describe('STUN server + client on 127.0.0.1', () => {
  let s1: StunServer
  let s2: StunServer
  before(async () => {
    s1 = await startStunServer({ host: '127.0.0.1', port: 0 })
    s2 = await startStunServer({ host: '127.0.0.1', port: 0 })
  })
  after(async () => { await s1.close(); await s2.close() })

  it('answers a binding request with the source address and port', async () => {
    const sock = await udp4()
    try {
      const r = await queryStun(sock, { host: '127.0.0.1', port: s1.address().port }, 1000, 3)
      assert.deepEqual(r, { address: '127.0.0.1', port: sock.address().port, family: 4, source: { address: '127.0.0.1', port: s1.address().port } })
    } finally { sock.close() }
  })

  it('ignores non-STUN datagrams', async () => {
    const sock = await udp4()
    try {
      const before = s1.stats().ignored
      sock.send(Buffer.from('hello'), s1.address().port, '127.0.0.1')
      await queryStun(sock, { host: '127.0.0.1', port: s1.address().port }, 1000, 3) // ordering barrier
      assert.equal(s1.stats().ignored, before + 1)
    } finally { sock.close() }
  })

  it('queryStun times out with StunTimeoutError after retransmitting', async () => {
    const silent = await udp4() // a bound socket that never answers
    let received = 0
    silent.on('message', () => { received++ })
    const sock = await udp4()
    try {
      const t0 = Date.now()
      await assert.rejects(queryStun(sock, { host: '127.0.0.1', port: silent.address().port }, 500, 3), { name: 'StunTimeoutError' })
      assert.ok(Date.now() - t0 >= 450)
      assert.equal(received, 3) // sent at 0, 100, 300 ms; the 700 ms one is past the deadline
    } finally { sock.close(); silent.close() }
  })

  it('probeNat queries both servers from one socket; both on 127.0.0.1 ⇒ public', async () => {
    const probe = await probeNat([
      { host: '127.0.0.1', port: s1.address().port },
      { host: '127.0.0.1', port: s2.address().port },
      { host: '127.0.0.1', port: s1.address().port } // duplicate dropped
    ], { bindHost: '127.0.0.1', timeoutMs: 1000 })
    assert.equal(probe.errors.length, 0)
    assert.equal(probe.mappings.length, 2)
    assert.equal(probe.publicAddress, '127.0.0.1')
    assert.ok(probe.mappings.every(m => m.address === '127.0.0.1' && m.port === probe.localPort))
    assert.deepEqual(probe.mappings.map(m => m.server.port).sort(), [s1.address().port, s2.address().port].sort())
    assert.equal(portPreserved(probe.localPort, probe.mappings), true)
    assert.equal(classifyNat(['127.0.0.1'], probe.localPort, probe.mappings), 'public')
    // Seen from a host whose own addresses do not include 127.0.0.1, the same answers are a cone.
    assert.equal(classifyNat(['192.0.2.7'], 51820, probe.mappings), 'cone')
  })

  it('probeNat reports unreachable servers in errors', async () => {
    const silent = await udp4()
    try {
      const probe = await probeNat([
        { host: '127.0.0.1', port: s1.address().port },
        { host: '127.0.0.1', port: silent.address().port }
      ], { bindHost: '127.0.0.1', timeoutMs: 300 })
      assert.equal(probe.mappings.length, 1)
      assert.equal(probe.errors.length, 1)
      assert.equal(probe.errors[0]?.error.name, 'StunTimeoutError')
      assert.equal(classifyNat(['192.0.2.7'], 51820, probe.mappings), 'unknown')
    } finally { silent.close() }
  })
})

describe('pickProbeServers', () => {
  it('puts one server per distinct IP first and drops exact duplicates', () => {
    const got = pickProbeServers([
      { host: '198.51.100.1', port: 3478 }, { host: '198.51.100.1', port: 3479 }, { host: '198.51.100.1', port: 3478 },
      { host: '[2001:db8::1]', port: 3478 }, { host: '203.0.113.1', port: 3478 }
    ], 3)
    assert.deepEqual(got, [{ host: '198.51.100.1', port: 3478 }, { host: '2001:db8::1', port: 3478 }, { host: '203.0.113.1', port: 3478 }])
  })
})

describe('rate limiting', () => {
  it('RateLimiter: burst, then refill at the configured rate, per key', () => {
    let t = 0
    const rl = new RateLimiter({ ratePerSecond: 50, now: () => t })
    let ok = 0
    for (let i = 0; i < 100; i++) if (rl.take('a')) ok++
    assert.equal(ok, 50)
    assert.equal(rl.take('b'), true) // other sources unaffected
    t += 100 // 100 ms → 5 tokens
    ok = 0
    for (let i = 0; i < 10; i++) if (rl.take('a')) ok++
    assert.equal(ok, 5)
  })

  it('RateLimiter keeps its table bounded', () => {
    const rl = new RateLimiter({ ratePerSecond: 1, maxKeys: 100, now: () => 0 })
    for (let i = 0; i < 1000; i++) rl.take(`k${i}`)
    assert.ok(rl.size <= 100)
  })

  it('the server answers at most `burst` requests from one source in a flood', async () => {
    let t = 0
    const srv = await startStunServer({ host: '127.0.0.1', port: 0, ratePerSecond: 50, now: () => t })
    const sock = await udp4()
    let answers = 0
    sock.on('message', (m) => { if (parseBindingResponse(m) !== undefined) answers++ })
    try {
      for (let i = 0; i < 200; i++) sock.send(bindingRequest(newTransactionId()), srv.address().port, '127.0.0.1')
      const deadline = Date.now() + 2000
      while (srv.stats().answered + srv.stats().rateLimited < 200 && Date.now() < deadline) await new Promise(resolve => setTimeout(resolve, 10))
      await new Promise(resolve => setTimeout(resolve, 50))
      assert.equal(srv.stats().answered, 50)
      assert.ok(srv.stats().rateLimited >= 100) // 150 unless loopback dropped some
      assert.equal(answers, 50)
      t += 1000 // a second later the bucket is full again
      const r = await queryStun(sock, { host: '127.0.0.1', port: srv.address().port }, 1000, 3)
      assert.equal(r.port, sock.address().port)
    } finally {
      sock.close()
      await srv.close()
    }
  })
})

describe('STUN over IPv6 (issue 11): one server per family on one port', () => {
  it('an IPv6-only server beside an IPv4 one on the same port; each answers its own family', async () => {
    const v4 = await startStunServer({ host: '0.0.0.0', port: 0 })
    const port = v4.address().port
    const v6 = await startStunServer({ host: '::', port, ipv6Only: true })
    try {
      assert.equal(v6.address().port, port)
      const p6 = await probeNat([{ host: '::1', port }, { host: '[::1]', port }], { timeoutMs: 1000, retries: 2 })
      assert.equal(p6.mappings.length, 1, 'duplicates dropped, one answer')
      assert.equal(p6.publicAddress, '::1')
      assert.equal(classifyNat(['::1'], p6.localPort, p6.mappings), 'public')
      const p4 = await probeNat([{ host: '127.0.0.1', port }], { timeoutMs: 1000, retries: 2 })
      assert.equal(p4.publicAddress, '127.0.0.1')
      assert.equal(v6.stats().answered, 1)
      assert.equal(v4.stats().answered, 1)
    } finally {
      await v6.close()
      await v4.close()
    }
  })

  it('without ipv6Only an IPv6 wildcard server takes the IPv4 port too (the default stays as it was)', async () => {
    const v6 = await startStunServer({ host: '::', port: 0 })
    try {
      await assert.rejects(startStunServer({ host: '0.0.0.0', port: v6.address().port }), /EADDRINUSE/)
    } finally { await v6.close() }
  })
})
