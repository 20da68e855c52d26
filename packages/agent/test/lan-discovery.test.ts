import { test } from 'node:test'
import assert from 'node:assert/strict'
import dgram from 'node:dgram'
import { randomBytes } from 'node:crypto'
import { createSigner, seal } from '@wgmesh/core'
import { startLanDiscovery } from '../src/lan-discovery.js'
import type { Logger } from '../src/logger.js'

const MESH_KEY = new Uint8Array(32).fill(3)
const silent: Logger = { debug () {}, info () {}, warn () {}, error () {} }

test('a LAN beacon that names a gossip port gives the neighbour\'s gossip address (nodes behind one NAT find each other\'s mesh)', async () => {
  const found: string[] = []
  const gossip: string[] = []
  const rx = await startLanDiscovery({
    port: 0, meshKey: MESH_KEY, signer: createSigner(new Uint8Array(randomBytes(32))), wgPort: 51820, gossipPort: 51821,
    excludeInterfaces: [], intervalMs: 3_600_000, log: silent,
    onFound: (id, ep) => { found.push(`${id} ${ep}`) },
    onGossip: (id, addr) => { gossip.push(`${id} ${addr}`) }
  })
  const tx = dgram.createSocket('udp4')
  await new Promise<void>(resolve => { tx.bind(0, '127.0.0.1', () => { resolve() }) })
  const other = createSigner(new Uint8Array(randomBytes(32)))
  const beacon = (body: object): Uint8Array => seal(MESH_KEY, other, new TextEncoder().encode(JSON.stringify(body)), new Uint8Array(randomBytes(24)))
  try {
    const send = async (b: Uint8Array): Promise<void> => { await new Promise<void>(resolve => { tx.send(b, rx.address().port, '127.0.0.1', () => { resolve() }) }) }
    await send(beacon({ t: 'lan', wgPort: 51820, at: Date.now(), gossipPort: 7000 }))
    await send(beacon({ t: 'lan', wgPort: 51820, at: Date.now(), gossipPort: 70000 })) // out of range: endpoint only
    await send(beacon({ t: 'lan', wgPort: 51820, at: Date.now() })) // older agents: endpoint only
    for (let i = 0; i < 50 && found.length < 3; i++) await new Promise(resolve => setTimeout(resolve, 20))
    assert.equal(found.length, 3)
    assert.deepEqual(gossip, [`${other.nodeId} /ip4/127.0.0.1/tcp/7000`])
  } finally {
    tx.close()
    await rx.close()
  }
})
