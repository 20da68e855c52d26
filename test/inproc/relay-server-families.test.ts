/**
 * The relay's copy over both families, on real UDP sockets on loopback (issue 11): one end
 * reaches its port over IPv4 (127.0.0.1, which the dual-stack port sees v4-mapped), the other
 * over IPv6 (::1); WireGuard-shaped datagrams cross both ways, each end sees the other at its
 * own port in its own family; a datagram from another host of the wrong end, or not shaped like
 * WireGuard, is dropped and counted. Without dual-stack ports, IPv4 ends still work.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createSocket, type RemoteInfo, type Socket } from 'node:dgram'
import type { NodeRecord, RelayCtl } from '@wgmesh/core'
import { RelayServer } from '../../packages/agent/src/relay-server.js'
import { silentLogger } from '../../packages/agent/src/logger.js'
import { recordOf, testNode } from '../../packages/core/test/fixtures.js'

const A = recordOf(testNode('end-v4'), { endpoints: ['127.0.0.1:51820'] })
const B = recordOf(testNode('end-v6'), { endpoints: ['[::1]:51820'] })

/** A WireGuard transport datagram (type 4, reserved bytes zero) carrying `tag`. */
function wgData (tag: number): Buffer {
  const b = Buffer.alloc(64)
  b[0] = 4
  b[16] = tag
  return b
}

async function bound (type: 'udp4' | 'udp6', host: string): Promise<{ sock: Socket, got: Array<{ buf: Buffer, from: RemoteInfo }> }> {
  const sock = createSocket({ type, ipv6Only: type === 'udp6' })
  const got: Array<{ buf: Buffer, from: RemoteInfo }> = []
  sock.on('message', (buf, from) => { got.push({ buf, from }) })
  await new Promise<void>((resolve, reject) => { sock.once('error', reject); sock.bind(0, host, () => { sock.off('error', reject); resolve() }) })
  return { sock, got }
}

async function until (what: string, cond: () => boolean, ms = 2000): Promise<void> {
  const t0 = Date.now()
  while (!cond()) {
    if (Date.now() - t0 > ms) throw new Error(`timed out: ${what}`)
    await new Promise(resolve => setTimeout(resolve, 10))
  }
}

/** A relay serving {A, B} (sources: the hosts each end may send from); the ports it gave each end. */
async function relayFor (dualStack: boolean, sources: { a: string, b: string }): Promise<{ relay: RelayServer, port: { a: number, b: number } }> {
  const replies: RelayCtl[] = []
  const members = new Map<string, NodeRecord>([[A.nodeId, A], [B.nodeId, B]])
  const relay = new RelayServer({
    now: () => Date.now(),
    member: (id) => members.get(id),
    fromMatches: () => true,
    sourcesOf: (id) => new Set([id === A.nodeId ? sources.a : sources.b]),
    reply: (_to, msg) => { replies.push(msg) },
    log: silentLogger,
    dualStack: () => dualStack
  })
  relay.onAlloc('100.64.0.1:7000', { t: 'alloc', from: A.nodeId, peer: B.nodeId, id: 1 })
  relay.onAlloc('100.64.0.2:7000', { t: 'alloc', from: B.nodeId, peer: A.nodeId, id: 2 })
  await until('both ports allocated', () => replies.length === 2)
  const portOf = (id: number): number => {
    const r = replies.find(x => x.id === id)
    if (r?.t !== 'ok') throw new Error(`no port: ${JSON.stringify(replies)}`)
    return r.port
  }
  return { relay, port: { a: portOf(1), b: portOf(2) } }
}

test('an IPv4 end and an IPv6 end exchange WireGuard datagrams through one relay pair; strays are dropped and counted', async () => {
  const { relay, port } = await relayFor(true, { a: '127.0.0.1', b: '::1' })
  const a = await bound('udp4', '127.0.0.1')
  const b = await bound('udp6', '::1')
  const stray = await bound('udp6', '::1')
  try {
    assert.notEqual(port.a, port.b)
    // B speaks first: nothing to copy to yet (A's address unknown), but B's address is learnt
    b.sock.send(wgData(1), port.b, '::1')
    await until('B learnt', () => relay.stats.dropped.noPeer === 1)
    a.sock.send(wgData(2), port.a, '127.0.0.1') // arrives v4-mapped on the dual-stack port
    await until('A → B', () => b.got.length === 1)
    assert.equal(b.got[0]!.buf[16], 2)
    assert.deepEqual([b.got[0]!.from.address, b.got[0]!.from.port], ['::1', port.b], 'B sees A at B\'s own port, over IPv6')
    b.sock.send(wgData(3), port.b, '::1')
    await until('B → A', () => a.got.length === 1)
    assert.equal(a.got[0]!.buf[16], 3)
    assert.deepEqual([a.got[0]!.from.address, a.got[0]!.from.port], ['127.0.0.1', port.a], 'A sees B at A\'s own port, over IPv4')
    assert.equal(relay.stats.packets, 2)

    // A's port from B's host (::1 is not one of A's): dropped; a non-WireGuard datagram: dropped
    stray.sock.send(wgData(4), port.a, '::1')
    await until('source drop', () => relay.stats.dropped.source === 1)
    a.sock.send(Buffer.from('not wireguard, not at all, no no no'), port.a, '127.0.0.1')
    await until('shape drop', () => relay.stats.dropped.shape === 1)
    await new Promise(resolve => setTimeout(resolve, 100))
    assert.equal(stray.got.length + a.got.length + b.got.length, 2, 'nothing else crossed')
    assert.equal(relay.stats.packets, 2)
  } finally {
    relay.close()
    for (const s of [a, b, stray]) s.sock.close()
  }
})

test('without dual-stack ports (no IPv6, or net.ipv6.bindv6only=1): IPv4 ends are still relayed, IPv6 cannot reach the ports', async () => {
  const { relay, port } = await relayFor(false, { a: '127.0.0.1', b: '127.0.0.2' })
  const a = await bound('udp4', '127.0.0.1')
  const b = await bound('udp4', '127.0.0.2')
  const v6 = await bound('udp6', '::1')
  try {
    b.sock.send(wgData(5), port.b, '127.0.0.1')
    await until('B learnt', () => relay.stats.dropped.noPeer === 1)
    a.sock.send(wgData(6), port.a, '127.0.0.1')
    await until('A → B', () => b.got.length === 1)
    assert.deepEqual([b.got[0]!.buf[16], b.got[0]!.from.address, b.got[0]!.from.port], [6, '127.0.0.1', port.b])
    v6.sock.send(wgData(7), port.a, '::1')
    await new Promise(resolve => setTimeout(resolve, 200))
    assert.equal(relay.stats.packets + relay.stats.dropped.source, 1, 'the IPv6 datagram reached no relay port')
    assert.equal(a.got.length + b.got.length, 1)
  } finally {
    relay.close()
    for (const s of [a, b, v6]) s.sock.close()
  }
})
