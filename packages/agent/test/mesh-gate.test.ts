// The connection gate (transport/mesh-gate.ts, gate-key.ts): its keys, the cipher it relies on,
// and a real gossip node's listener spoken to over a raw TCP socket — by a client holding the
// mesh key (it gets libp2p's protocol negotiation through), by one that does not, and by hostile
// ones (a reflected nonce, random bytes). Real sockets on 127.0.0.1.
import { test, describe, after } from 'node:test'
import assert from 'node:assert/strict'
import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto'
import { connect, type Socket } from 'node:net'
import { createGossipNode, gateKeyFromMeshKey, gateStreamKeys, GATE_NONCE_LENGTH } from '../src/transport/index.js'
import type { GossipNode } from '../src/transport/index.js'

const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex')

describe('gate keys', () => {
  test('derived from the mesh key, deterministic, and not the mesh key', () => {
    const mk = new Uint8Array(32).fill(7)
    const k = gateKeyFromMeshKey(mk)
    assert.equal(k.byteLength, 32)
    assert.equal(hex(k), hex(gateKeyFromMeshKey(mk)))
    assert.notEqual(hex(k), hex(mk))
    assert.notEqual(hex(k), hex(gateKeyFromMeshKey(new Uint8Array(32).fill(8))))
    assert.throws(() => gateKeyFromMeshKey(new Uint8Array(31)), RangeError)
  })

  test('one end sends with the key the other receives with; the two directions differ; both nonces count', () => {
    const gk = gateKeyFromMeshKey(randomBytes(32))
    const ni = randomBytes(GATE_NONCE_LENGTH)
    const nr = randomBytes(GATE_NONCE_LENGTH)
    const dialer = gateStreamKeys(gk, ni, nr, 'outbound')
    const listener = gateStreamKeys(gk, nr, ni, 'inbound')
    assert.equal(hex(dialer.send), hex(listener.receive))
    assert.equal(hex(dialer.receive), hex(listener.send))
    assert.notEqual(hex(dialer.send), hex(dialer.receive))
    // a nonce reflected back still gives two different keys
    const same = gateStreamKeys(gk, ni, ni, 'outbound')
    assert.notEqual(hex(same.send), hex(same.receive))
    // each nonce changes both keys
    assert.notEqual(hex(gateStreamKeys(gk, ni, randomBytes(GATE_NONCE_LENGTH), 'outbound').send), hex(dialer.send))
    assert.notEqual(hex(gateStreamKeys(gk, randomBytes(GATE_NONCE_LENGTH), nr, 'outbound').send), hex(dialer.send))
    assert.throws(() => gateStreamKeys(gk, ni.subarray(1), nr, 'outbound'), RangeError)
    assert.throws(() => gateStreamKeys(gk.subarray(1), ni, nr, 'outbound'), RangeError)
  })

  test("OpenSSL's ChaCha20 IV is counter ‖ nonce (RFC 8439 §2.4.2) and the counter carries into the nonce", () => {
    const key = Buffer.from([...Array(32).keys()])
    const iv = Buffer.from('01000000' + '000000000000004a00000000', 'hex')
    const plain = Buffer.from("Ladies and Gentlemen of the class of '99: If I could offer you only one tip for the future, sunscreen would be it.")
    const c = createCipheriv('chacha20', key, iv).update(plain)
    assert.equal(c.subarray(0, 32).toString('hex'), '6e2e359a2568f98041ba0728dd0d6981e97e7aec1d4360c20a27afccfd9fae0b')
    assert.equal(c.subarray(-16).toString('hex'), 'ccf806818ce91ab77937365af90bbf74a35be6b40b8eedf2785e42874d'.slice(-32))
    const stream = (ivHex: string, n: number): Buffer => createCipheriv('chacha20', key, Buffer.from(ivHex, 'hex')).update(Buffer.alloc(n))
    // block 2^32 - 1, then the next: counter 0 with the nonce's first word 1 (no wrap to block 0)
    const after = stream('ffffffff' + '00'.repeat(12), 128).subarray(64)
    assert.equal(after.toString('hex'), stream('00000000' + '01' + '00'.repeat(11), 64).toString('hex'))
    assert.notEqual(after.toString('hex'), stream('00'.repeat(16), 64).toString('hex'))
  })
})

// --- a real listener, raw clients ---

const live: GossipNode[] = []
const sockets: Socket[] = []
after(async () => {
  for (const s of sockets) s.destroy()
  await Promise.all(live.map(async n => { await n.stop() }))
})

async function listener (meshKey: Uint8Array): Promise<{ node: GossipNode, port: number, connects: string[] }> {
  const connects: string[] = []
  const node = await createGossipNode({
    identitySeed: randomBytes(32),
    meshKey,
    listen: ['/ip4/127.0.0.1/tcp/0'],
    topic: 'wgmesh/test/v1',
    validate: () => 'accept',
    onMessage: () => {},
    sync: { hash: () => createHash('sha256').digest(), digest: () => [], recordsFor: () => [] },
    onSyncResult: () => {},
    onPeerConnect: (p) => { connects.push(p) },
    dialTimeoutMs: 1500
  })
  live.push(node)
  const port = Number(/\/tcp\/(\d+)/.exec(node.listenAddrs()[0] ?? '')?.[1])
  return { node, port, connects }
}

/** A raw TCP client: everything it receives, and whether the other end closed. */
async function rawClient (port: number): Promise<{ sock: Socket, received: () => Buffer, closed: Promise<void> }> {
  const sock = connect(port, '127.0.0.1')
  sockets.push(sock)
  const chunks: Buffer[] = []
  sock.on('data', (d: Buffer) => { chunks.push(d) })
  sock.on('error', () => { /* a reset by the listener is one of the outcomes asserted */ })
  const closed = new Promise<void>(resolve => { sock.once('close', () => { resolve() }) })
  await new Promise<void>((resolve, reject) => { sock.once('connect', resolve); sock.once('error', reject) })
  return { sock, received: () => Buffer.concat(chunks), closed }
}

async function waitFor (pred: () => boolean, ms: number, what: string): Promise<void> {
  const t0 = Date.now()
  while (!pred()) {
    if (Date.now() - t0 > ms) throw new Error(`timed out waiting for ${what}`)
    await new Promise(resolve => setTimeout(resolve, 10))
  }
}

// multistream-select: a varint length, then the line
const line = (s: string): Buffer => { const b = Buffer.from(s + '\n'); return Buffer.concat([Buffer.from([b.length]), b]) }

describe('gate on a real listener', () => {
  test('a client with the mesh key gets through: its encrypted multistream header is answered in kind', async () => {
    const meshKey = randomBytes(32)
    const { port } = await listener(meshKey)
    const c = await rawClient(port)
    const nonce = randomBytes(GATE_NONCE_LENGTH)
    c.sock.write(nonce)
    await waitFor(() => c.received().length >= GATE_NONCE_LENGTH, 2000, "the listener's nonce")
    const keys = gateStreamKeys(gateKeyFromMeshKey(meshKey), nonce, c.received().subarray(0, GATE_NONCE_LENGTH), 'outbound')
    const send = createCipheriv('chacha20', keys.send, new Uint8Array(16))
    const header = Buffer.concat([line('/multistream/1.0.0'), line('/noise')])
    c.sock.write(send.update(header))
    await waitFor(() => c.received().length >= GATE_NONCE_LENGTH + header.length, 2000, 'the answer')
    const wire = c.received().subarray(GATE_NONCE_LENGTH)
    assert.equal(wire.includes('/multistream/1.0.0'), false, 'nothing after the nonce is in the clear')
    const plain = createDecipheriv('chacha20', keys.receive, new Uint8Array(16)).update(wire)
    assert.equal(plain.subarray(0, header.length).toString('hex'), header.toString('hex'), 'the listener agreed to /noise')
  })

  test('without the mesh key, a reflected nonce, or random bytes: the listener hangs up, connects no one, and serves on', async () => {
    const meshKey = randomBytes(32)
    const l = await listener(meshKey)
    // wrong key: the multistream header decrypts to garbage at the listener
    const wrong = await rawClient(l.port)
    const nonce = randomBytes(GATE_NONCE_LENGTH)
    wrong.sock.write(nonce)
    await waitFor(() => wrong.received().length >= GATE_NONCE_LENGTH, 2000, "the listener's nonce")
    const keys = gateStreamKeys(gateKeyFromMeshKey(randomBytes(32)), nonce, wrong.received().subarray(0, GATE_NONCE_LENGTH), 'outbound')
    wrong.sock.write(createCipheriv('chacha20', keys.send, new Uint8Array(16)).update(Buffer.concat([line('/multistream/1.0.0'), line('/noise')])))
    // reflected: the listener's own nonce sent back
    const mirror = await rawClient(l.port)
    await waitFor(() => mirror.received().length >= GATE_NONCE_LENGTH, 2000, "the listener's nonce")
    mirror.sock.write(mirror.received().subarray(0, GATE_NONCE_LENGTH))
    // random bytes
    const noise = await rawClient(l.port)
    noise.sock.write(randomBytes(4096))
    await Promise.all([wrong.closed, mirror.closed, noise.closed])
    // nothing past the nonce was ever sent to any of them
    for (const c of [wrong, mirror, noise]) assert.equal(c.received().length, GATE_NONCE_LENGTH)
    assert.deepEqual(l.connects, [])
    // and a member still connects
    const member = await listener(meshKey)
    await member.node.dial(l.node.listenAddrs()[0] ?? '')
    await waitFor(() => l.connects.length === 1, 3000, 'the member connected')
  })
})
