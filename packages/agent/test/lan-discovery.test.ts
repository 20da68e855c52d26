import { test } from 'node:test'
import assert from 'node:assert/strict'
import dgram from 'node:dgram'
import { randomBytes } from 'node:crypto'
import { createSigner, seal } from '@wgmesh/core'
import { BEACON_MAX_AGE_MS, startLanDiscovery, type LanDiscovery } from '../src/lan-discovery.js'
import type { Logger } from '../src/logger.js'

const MESH_KEY = new Uint8Array(32).fill(3)
const silent: Logger = { debug () {}, info () {}, warn () {}, error () {} }
const nonce = (): string => randomBytes(16).toString('base64url')
const sleep = async (ms: number): Promise<void> => { await new Promise(resolve => setTimeout(resolve, ms)) }

async function udp (host = '127.0.0.1'): Promise<dgram.Socket> {
  const s = dgram.createSocket('udp4')
  s.on('error', () => {})
  await new Promise<void>(resolve => { s.bind(0, host, () => { resolve() }) })
  return s
}
async function send (from: dgram.Socket, b: Uint8Array, port: number): Promise<void> {
  await new Promise<void>(resolve => { from.send(b, port, '127.0.0.1', () => { resolve() }) })
}

test('a LAN beacon that names a gossip port gives the neighbour\'s gossip address (nodes behind one NAT find each other\'s mesh)', async () => {
  const found: string[] = []
  const gossip: string[] = []
  const rx = await startLanDiscovery({
    port: 0, meshKey: MESH_KEY, signer: createSigner(new Uint8Array(randomBytes(32))), wgPort: 51820, gossipPort: 51821,
    excludeInterfaces: [], intervalMs: 3_600_000, log: silent,
    onFound: (id, ep) => { found.push(`${id} ${ep}`) },
    onGossip: (id, addr) => { gossip.push(`${id} ${addr}`) }
  })
  const tx = await udp()
  const other = createSigner(new Uint8Array(randomBytes(32)))
  const beacon = (body: object): Uint8Array => seal(MESH_KEY, other, new TextEncoder().encode(JSON.stringify(body)), new Uint8Array(randomBytes(24)))
  const base = (): object => ({ t: 'lan', wgPort: 51820, at: Date.now(), n: nonce(), addrs: ['192.0.2.7', '127.0.0.1'] })
  try {
    await send(tx, beacon({ ...base(), gossipPort: 7000 }), rx.address().port)
    await send(tx, beacon({ ...base(), gossipPort: 70000 }), rx.address().port) // out of range: endpoint only
    await send(tx, beacon(base()), rx.address().port)
    await send(tx, beacon({ t: 'lan', wgPort: 51820, at: Date.now() }), rx.address().port) // older agents (no nonce, no addresses): dropped
    for (let i = 0; i < 50 && found.length < 3; i++) await sleep(20)
    await sleep(50)
    assert.equal(found.length, 3)
    assert.deepEqual(gossip, [`${other.nodeId} /ip4/127.0.0.1/tcp/7000`])
    assert.equal(rx.discoveryStats().dropped.schema, 1)
  } finally {
    tx.close()
    await rx.close()
  }
})

/**
 * O2 — the attacks on LAN beacons, with real sockets on 127.0.0.1 (127.0.0.2 is another host):
 * a real agent's beacon is captured, then replayed from another address, replayed from the
 * sender's own address, and replayed after it expired; none gives a candidate. Then the
 * sender stops and its candidate is lost within 3 beacon intervals.
 */
test('O2: a captured beacon replayed from another address, replayed again, or after expiry gives no candidate; a silent neighbour is lost', async () => {
  const interval = 100
  let clock = Date.now()
  const found: string[] = []
  const gossip: string[] = []
  const lost: string[] = []
  const rx: LanDiscovery = await startLanDiscovery({
    port: 0, bindAddress: '127.0.0.1', meshKey: MESH_KEY, signer: createSigner(new Uint8Array(randomBytes(32))), wgPort: 51820,
    excludeInterfaces: [], intervalMs: interval, log: silent, targets: () => [], now: () => clock,
    onFound: (id, ep) => { found.push(`${id} ${ep}`) },
    onGossip: (id, addr) => { gossip.push(`${id} ${addr}`) },
    onLost: (id) => { lost.push(id) }
  })
  // the eavesdropper: captures what the honest sender broadcasts
  const tap = await udp()
  const captured: Buffer[] = []
  tap.on('message', (m: Buffer) => { captured.push(m) })
  const honest = createSigner(new Uint8Array(randomBytes(32)))
  const tx = await startLanDiscovery({
    port: 0, bindAddress: '127.0.0.1', meshKey: MESH_KEY, signer: honest, wgPort: 51999, gossipPort: 7001,
    excludeInterfaces: [], intervalMs: 3_600_000, log: silent, addresses: () => ['127.0.0.1'],
    targets: () => [{ address: '127.0.0.1', port: tap.address().port }],
    onFound: () => {}
  })
  const attacker = await udp('127.0.0.2')
  const legit = await udp('127.0.0.1') // the sender's own address (a spoofing attacker on the LAN)
  try {
    for (let i = 0; i < 100 && captured.length === 0; i++) await sleep(10)
    const beacon = captured[0]
    assert.ok(beacon !== undefined, 'captured a beacon')
    await tx.close()

    // 1. replayed from another address: dropped, no candidate
    await send(attacker, beacon, rx.address().port)
    await sleep(100)
    assert.deepEqual(found, [], 'a replay from 127.0.0.2 became a candidate')
    assert.deepEqual(gossip, [])
    assert.equal(rx.discoveryStats().dropped.source, 1)

    // 2. the same bytes from the sender's own address: heard once (as if it came first-hand) ...
    await send(legit, beacon, rx.address().port)
    for (let i = 0; i < 50 && found.length === 0; i++) await sleep(10)
    assert.deepEqual(found, [`${honest.nodeId} 127.0.0.1:51999`])
    assert.deepEqual(gossip, [`${honest.nodeId} /ip4/127.0.0.1/tcp/7001`])
    // ... but never again: a replay of a seen nonce is dropped
    await send(legit, beacon, rx.address().port)
    await sleep(100)
    assert.equal(found.length, 1, 'a replayed nonce was heard twice')
    assert.equal(rx.discoveryStats().dropped.replay, 1)

    // 3. the neighbour falls silent: lost after 3 intervals (its LAN candidate goes away)
    for (let i = 0; i < 100 && lost.length === 0; i++) { clock += 20; await sleep(10) }
    assert.deepEqual(lost, [honest.nodeId])
    assert.equal(rx.discoveryStats().neighbours, 0)

    // 4. after expiry (our clock past the beacon's time + max age): a replay of a fresh capture is dropped
    const tx2 = await startLanDiscovery({
      port: 0, bindAddress: '127.0.0.1', meshKey: MESH_KEY, signer: honest, wgPort: 51999,
      excludeInterfaces: [], intervalMs: 3_600_000, log: silent, addresses: () => ['127.0.0.1'],
      targets: () => [{ address: '127.0.0.1', port: tap.address().port }], now: () => clock,
      onFound: () => {}
    })
    for (let i = 0; i < 100 && captured.length < 2; i++) await sleep(10)
    await tx2.close()
    clock += BEACON_MAX_AGE_MS + 1000
    await send(legit, captured[1]!, rx.address().port)
    await sleep(100)
    assert.equal(found.length, 1, 'an expired beacon was heard')
    assert.equal(rx.discoveryStats().dropped.age, 1)
  } finally {
    attacker.close(); legit.close(); tap.close()
    await tx.close()
    await rx.close()
  }
})

test('O4 (beacon socket): a flood from one source reaches the signature check at most `burst` times', async () => {
  const found: string[] = []
  const rx = await startLanDiscovery({
    port: 0, bindAddress: '127.0.0.1', meshKey: MESH_KEY, signer: createSigner(new Uint8Array(randomBytes(32))), wgPort: 51820,
    excludeInterfaces: [], intervalMs: 3_600_000, log: silent, targets: () => [],
    onFound: (id, ep) => { found.push(`${id} ${ep}`) }
  })
  const flooder = await udp()
  try {
    const junk = new Uint8Array(randomBytes(1000))
    for (let i = 0; i < 200; i++) flooder.send(junk, rx.address().port, '127.0.0.1')
    let last = -1
    for (let i = 0; i < 100; i++) {
      await sleep(50)
      const s = rx.stats()
      if (s.delivered + s.rateLimited === last) break
      last = s.delivered + s.rateLimited
    }
    const s = rx.stats()
    console.log(`  beacon flood of 200: ${s.delivered + s.rateLimited} received, ${s.delivered} opened, ${s.rateLimited} dropped before opening`)
    assert.ok(s.delivered <= 4, `${s.delivered} junk beacons reached the signature check`)
    assert.equal(rx.discoveryStats().dropped.unsealed, s.delivered)
  } finally {
    flooder.close()
    await rx.close()
  }
})

test('beacons: fast rounds first, then slow ones; a newcomer is answered at once, and a neighbour is lost only after 3 slow intervals', async () => {
  // A beacons to B and B to A (unicast on 127.0.0.1): 100 ms for 6 rounds, then 1.5 s
  const mk = async (label: string, peerPort: () => number, onFound: (id: string) => void, onLost?: (id: string) => void): Promise<LanDiscovery> => await startLanDiscovery({
    port: 0, bindAddress: '127.0.0.1', meshKey: MESH_KEY, signer: createSigner(new Uint8Array(randomBytes(32))), wgPort: 51820,
    excludeInterfaces: [], intervalMs: 100, slowIntervalMs: 1500, log: silent, addresses: () => ['127.0.0.1'],
    targets: () => peerPort() === 0 ? [] : [{ address: '127.0.0.1', port: peerPort() }],
    onFound: (id) => { onFound(id) }, ...(onLost === undefined ? {} : { onLost })
  })
  const heardByA: number[] = []
  const heardByB: number[] = []
  let portA = 0
  let portB = 0
  const lost: string[] = []
  const a = await mk('a', () => portB, () => { heardByA.push(Date.now()) }, (id) => { lost.push(id) })
  portA = a.address().port
  try {
    await sleep(1200) // A alone: its fast rounds are over
    const rx = await udp()
    const got: number[] = []
    rx.on('message', () => { got.push(Date.now()) })
    portB = rx.address().port
    await sleep(1000)
    // A is slow now: at most one round in 1 s (its 6 fast rounds ended ~600 ms after its start)
    assert.ok(got.length <= 1, `A sent ${got.length} beacons in 1 s after its fast rounds`)
    rx.close()
    // B starts: its first beacon reaches A at once, and A answers at once instead of in ≤ 1.5 s
    const t0 = Date.now()
    const b = await mk('b', () => portA, () => { heardByB.push(Date.now()) })
    portB = b.address().port
    for (let i = 0; i < 100 && heardByB.length === 0; i++) await sleep(10)
    assert.ok(heardByB.length > 0 && heardByB[0]! - t0 < 500, `B heard A after ${heardByB.length === 0 ? 'never' : `${heardByB[0]! - t0} ms`}`)
    assert.ok(heardByA.length > 0)
    // B stops: A keeps it for 3 slow intervals (4.5 s), not 3 fast ones (300 ms)
    await b.close()
    await sleep(1000)
    assert.deepEqual(lost, [], 'not lost after 1 s of silence')
  } finally {
    await a.close()
  }
})
