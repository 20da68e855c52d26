// Transport adapter tests: real libp2p nodes on 127.0.0.1 (port 0).
import { test, describe, after } from 'node:test'
import assert from 'node:assert/strict'
import { createHash, randomBytes } from 'node:crypto'
import { createServer } from 'node:net'
import { spawn } from 'node:child_process'
import { fileURLToPath, pathToFileURL } from 'node:url'
import {
  createGossipNode,
  DialError,
  MessageTooLargeError,
  MAX_MESSAGE_BYTES,
  SyncMessageDecoder,
  SyncProtocolError,
  encodeSyncMessage,
  exchangeDigest,
  DEFAULT_SYNC_LIMITS
} from '../src/transport/index.js'
import type { GossipNode, GossipNodeInit, SyncStream } from '../src/transport/index.js'

const enc = (s: string): Uint8Array => new TextEncoder().encode(s)
const dec = (b: Uint8Array): string => new TextDecoder().decode(b)
const sleep = async (ms: number): Promise<void> => { await new Promise(resolve => setTimeout(resolve, ms)) }

async function waitFor (pred: () => boolean, timeoutMs = 5000, what = 'condition'): Promise<void> {
  const t0 = Date.now()
  while (!pred()) {
    if (Date.now() - t0 > timeoutMs) throw new Error(`timed out waiting for ${what}`)
    await sleep(10)
  }
}

interface TestNode {
  node: GossipNode
  messages: Array<{ data: string, from: string }>
  validated: Array<{ data: string, from: string }>
  syncs: Array<{ records: string[], from: string, rounds?: number }>
  connects: string[]
  disconnects: string[]
  table: Uint8Array[]
}

const live: GossipNode[] = []
after(async () => { await Promise.all(live.map(async n => { await n.stop() })) })

async function mkNode (meshKey: Uint8Array, table: string[] = [], extra: Partial<GossipNodeInit> = {}): Promise<TestNode> {
  const t: Omit<TestNode, 'node'> = { messages: [], validated: [], syncs: [], connects: [], disconnects: [], table: table.map(enc) }
  const node = await createGossipNode({
    identitySeed: randomBytes(32),
    meshKey,
    listen: ['/ip4/127.0.0.1/tcp/0'],
    topic: 'wgmesh/test/v1',
    // messages starting with "bad" are rejected everywhere
    validate: (data, from) => { t.validated.push({ data: dec(data), from }); return dec(data).startsWith('bad') ? 'reject' : 'accept' },
    onMessage: (data, from) => { t.messages.push({ data: dec(data), from }) },
    // a toy digest: the table's items themselves; records sent = ours the other lacks
    sync: {
      hash: () => createHash('sha256').update([...t.table.map(dec)].sort().join('\0')).digest(),
      digest: () => t.table,
      recordsFor: (remote) => { const have = new Set(remote.map(dec)); return t.table.filter(r => !have.has(dec(r))) }
    },
    onSyncResult: (r, from) => { t.syncs.push({ records: r.received.map(dec), from, rounds: r.rounds }) },
    onPeerConnect: (p) => { t.connects.push(p) },
    onPeerDisconnect: (p) => { t.disconnects.push(p) },
    dialTimeoutMs: 1500,
    ...extra
  })
  live.push(node)
  return { node, ...t }
}

describe('sync framing', () => {
  test('round trip, split at every byte boundary', () => {
    const recs = [enc('a'), randomBytes(200), randomBytes(16 * 1024), enc('zz')]
    const { chunks, sent, dropped } = encodeSyncMessage(recs)
    assert.equal(sent, 4); assert.equal(dropped, 0)
    const wire = Buffer.concat(chunks)
    for (const step of [1, 2, 3, 7, 129, wire.byteLength]) {
      const d = new SyncMessageDecoder()
      for (let i = 0; i < wire.byteLength; i += step) d.push(wire.subarray(i, i + step))
      assert.ok(d.done)
      assert.deepEqual(d.records.map(r => Buffer.from(r)), recs.map(r => Buffer.from(r)))
    }
    const empty = new SyncMessageDecoder()
    empty.push(Buffer.concat(encodeSyncMessage([]).chunks))
    assert.ok(empty.done); assert.equal(empty.records.length, 0)
  })

  test('sender leaves out what the limits forbid', () => {
    const limits = { maxRecords: 3, maxRecordBytes: 10, maxTotalBytes: 15 }
    const r = encodeSyncMessage([enc(''), enc('x'.repeat(11)), enc('a'.repeat(8)), enc('b'.repeat(8)), enc('c'.repeat(7)), enc('d')], limits)
    assert.equal(r.sent, 2) // 'aaaaaaaa' + 'ccccccc' = 15 bytes
    assert.equal(r.dropped, 4)
  })

  test('malformed input throws SyncProtocolError', () => {
    const bad: Array<[string, number[]]> = [
      ['too many records', [0x81, 0x40]], // 8193 > 4096
      ['zero-length record', [1, 0]],
      ['oversized record', [1, 0x81, 0x80, 0x01]], // 16385
      ['varint too long', [1, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]],
      ['trailing bytes', [1, 1, 0x41, 0x42]]
    ]
    for (const [name, bytes] of bad) {
      const d = new SyncMessageDecoder()
      assert.throws(() => { d.push(Uint8Array.from(bytes)) }, SyncProtocolError, name)
    }
    const d = new SyncMessageDecoder({ ...DEFAULT_SYNC_LIMITS, maxTotalBytes: 4 })
    assert.throws(() => { d.push(Uint8Array.from([2, 3, 1, 2, 3, 3, 1, 2, 3])) }, SyncProtocolError, 'total limit')
  })

  test('exchangeDigest: malformed or truncated input aborts the stream; equal hashes end after one round; otherwise three', async () => {
    const fake = (incoming: Uint8Array[]): SyncStream & { aborted?: Error, sent: Uint8Array[] } => {
      const s: SyncStream & { aborted?: Error, sent: Uint8Array[] } = {
        sent: [],
        send (d) { s.sent.push(d); return true },
        async onDrain () {},
        async close () {},
        abort (err) { s.aborted = err },
        async * [Symbol.asyncIterator] () { for (const c of incoming) yield c }
      }
      return s
    }
    const msg = (blobs: Uint8Array[]): Uint8Array => Buffer.concat(encodeSyncMessage(blobs).chunks)
    const hash = new Uint8Array(32).fill(5)
    const h = (records: Uint8Array[] = []): { hash: () => Uint8Array, digest: () => Uint8Array[], recordsFor: () => Uint8Array[] } =>
      ({ hash: () => hash, digest: () => [enc('my digest')], recordsFor: () => records })
    const s1 = fake([Uint8Array.from([1, 0])])
    await assert.rejects(exchangeDigest(s1, h()), SyncProtocolError)
    assert.ok(s1.aborted instanceof SyncProtocolError)
    const s2 = fake([Uint8Array.from([2, 1, 0x41])]) // announces 2 blobs, delivers 1, then EOF
    await assert.rejects(exchangeDigest(s2, h()), /truncated/)
    assert.ok(s2.aborted)
    const same = await exchangeDigest(fake([msg([hash])]), h())
    assert.deepEqual({ rounds: same.rounds, received: same.received }, { rounds: 1, received: [] })
    const whole = Buffer.concat([msg([new Uint8Array(32)]), msg([enc('their digest')]), msg([enc('A'), enc('B')])])
    const s3 = fake([whole])
    const ok = await exchangeDigest(s3, h([enc('mine')]))
    assert.deepEqual({ rounds: ok.rounds, received: ok.received.map(dec), digest: ok.remoteDigest.map(dec), sent: ok.sent }, { rounds: 3, received: ['A', 'B'], digest: ['their digest'], sent: 1 })
    assert.equal(s3.aborted, undefined)
    await assert.rejects(exchangeDigest(fake([whole, Uint8Array.from([9])]), h()), /trailing/, 'nothing may follow the last round')
  })

  test('exchangeDigest under random chunking and random bytes (fuzz, seeded): same result, or a SyncProtocolError', async () => {
    let seed = Number(process.env.FUZZ_SEED ?? (Date.now() >>> 0))
    console.log(`# sync stream fuzz seed ${seed} (reproduce: FUZZ_SEED=${seed})`)
    const rnd = (): number => { seed = (seed * 1103515245 + 12345) >>> 0; return seed / 0x1_0000_0000 }
    const fake = (incoming: Uint8Array[]): SyncStream => ({
      send: () => true, async onDrain () {}, async close () {}, abort () {},
      async * [Symbol.asyncIterator] () { for (const c of incoming) yield c }
    })
    const msg = (blobs: Uint8Array[]): Uint8Array => Buffer.concat(encodeSyncMessage(blobs).chunks)
    const h = { hash: () => new Uint8Array(32).fill(1), digest: () => [], recordsFor: () => [] }
    for (let i = 0; i < 300; i++) {
      const records = Array.from({ length: Math.floor(rnd() * 6) }, (_, k) => enc(`rec-${i}-${k}-${'x'.repeat(Math.floor(rnd() * 200))}`))
      const whole = Buffer.concat([msg([new Uint8Array(32)]), msg([enc('d')]), msg(records)])
      const chunks: Uint8Array[] = []
      for (let at = 0; at < whole.length;) { const n = 1 + Math.floor(rnd() * 40); chunks.push(whole.subarray(at, at + n)); at += n }
      const r = await exchangeDigest(fake(chunks), h)
      assert.deepEqual(r.received.map(dec), records.map(dec))
      const junk = Uint8Array.from({ length: Math.floor(rnd() * 64) }, () => Math.floor(rnd() * 256))
      try { await exchangeDigest(fake([junk]), h) } catch (err) { assert.ok(err instanceof SyncProtocolError, String(err)) }
    }
  })
})

describe('gossip node', () => {
  const meshKey = randomBytes(32)

  test('gossip A -> B -> C; validator reject stops delivery', async () => {
    const a = await mkNode(meshKey)
    const b = await mkNode(meshKey)
    const c = await mkNode(meshKey)
    assert.match(a.node.listenAddrs()[0] ?? '', /^\/ip4\/127\.0\.0\.1\/tcp\/\d+\/p2p\/12D3KooW/)
    // dial without /p2p works too
    assert.equal(await b.node.dial(a.node.listenAddrs()[0]!.replace(/\/p2p\/.*$/, '')), a.node.peerId)
    const tDial = performance.now()
    assert.equal(await c.node.dial(b.node.listenAddrs()[0]!), b.node.peerId)
    assert.deepEqual(c.node.connectedPeers(), [b.node.peerId])
    assert.ok(!c.node.connectedPeers().includes(a.node.peerId), 'C is not directly connected to A')

    // probe until the mesh carries A's messages to C
    let i = 0
    while (!c.messages.some(m => m.data.startsWith('probe'))) {
      if (performance.now() - tDial > 5000) assert.fail('no gossip delivery A -> C within 5 s')
      await a.node.publish(enc(`probe ${i++}`))
      await sleep(50)
    }
    const firstDeliveryMs = performance.now() - tDial
    console.log(`# dial -> first gossip delivery A->B->C: ${firstDeliveryMs.toFixed(0)} ms (${i} probes)`)
    assert.equal(c.messages[0]?.from, '', 'messages carry no libp2p signature or author (StrictNoSign): the sealed payload names and proves its signer')

    await a.node.publish(enc('bad message'))
    await a.node.publish(enc('good message'))
    await waitFor(() => c.messages.some(m => m.data === 'good message'), 3000, 'good message at C')
    await waitFor(() => b.validated.some(m => m.data === 'bad message'), 1000, 'validator at B')
    await sleep(100)
    assert.ok(!b.messages.some(m => m.data === 'bad message'), 'rejected message not delivered at B')
    assert.ok(!c.messages.some(m => m.data === 'bad message'), 'rejected message not forwarded to C')
    assert.ok(!c.validated.some(m => m.data === 'bad message'), 'B does not forward rejected messages')
    assert.equal(a.messages.length, 0, 'no emitSelf')

    // publish never throws for "no peers"; oversize is refused
    const lonely = await mkNode(randomBytes(32))
    await lonely.node.publish(enc('nobody listens'))
    await assert.rejects(a.node.publish(new Uint8Array(MAX_MESSAGE_BYTES + 1)), MessageTooLargeError)
  })

  test('push-pull sync on connect, and explicit sync()', async () => {
    const a = await mkNode(meshKey, ['x', 'y'])
    const c = await mkNode(meshKey, ['z'])
    await c.node.dial(a.node.listenAddrs()[0]!)
    await waitFor(() => a.syncs.length > 0 && c.syncs.length > 0, 3000, 'sync on connect')
    assert.deepEqual(c.syncs, [{ records: ['x', 'y'], from: a.node.peerId, rounds: 3 }])
    assert.deepEqual(a.syncs, [{ records: ['z'], from: c.node.peerId, rounds: 3 }], 'only the initiator side starts a sync')

    a.table.push(enc('w'))
    await c.node.sync(a.node.peerId)
    assert.deepEqual(c.syncs[1], { records: ['x', 'y', 'w'], from: a.node.peerId, rounds: 3 })
    await waitFor(() => a.syncs.length === 2, 1000, 'responder side of explicit sync')
    assert.deepEqual(a.syncs[1], { records: ['z'], from: c.node.peerId, rounds: 3 })

    // oversized records are left out by the sender, the rest still goes through
    a.table.push(new Uint8Array(DEFAULT_SYNC_LIMITS.maxRecordBytes + 1))
    await c.node.sync(a.node.peerId)
    assert.deepEqual(c.syncs[2]?.records, ['x', 'y', 'w'])

    // equal tables: one round of two hashes, nothing else
    c.table.splice(0, c.table.length, ...a.table)
    await c.node.sync(a.node.peerId)
    assert.deepEqual(c.syncs[3], { records: [], from: a.node.peerId, rounds: 1 })
  })

  // no identify (peer-protocols.ts): gossipsub learns of a peer when the connection opens, and
  // forgets it when the last connection closes, so a reconnect is a new start, not a stale peer
  test('gossip flows both ways at once after a dial, stops at a hang-up, and flows again after a redial', async () => {
    const a = await mkNode(meshKey)
    const b = await mkNode(meshKey)
    const round = async (tag: string): Promise<void> => {
      await b.node.dial(a.node.listenAddrs()[0]!)
      for (const [from, to] of [[a, b], [b, a]] as const) {
        let i = 0
        while (!to.messages.some(m => m.data.startsWith(`${tag} `))) {
          if (i > 100) assert.fail(`${tag}: no gossip delivery within ~5 s`)
          await from.node.publish(enc(`${tag} ${i++}`))
          await sleep(50)
        }
      }
    }
    await round('first')
    await b.node.hangUp(a.node.peerId)
    await waitFor(() => a.disconnects.includes(b.node.peerId) && b.disconnects.includes(a.node.peerId), 2000, 'disconnect at both ends')
    const before = b.messages.length
    await a.node.publish(enc('while apart'))
    await sleep(200)
    assert.equal(b.messages.length, before, 'nothing reaches a hung-up peer')
    await round('again')
    assert.ok(!b.messages.some(m => m.data === 'while apart'), 'gossip is not a store: what went out while apart is for the sync')
  })

  test('a node with a different mesh key cannot connect', async () => {
    const a = await mkNode(meshKey)
    const x = await mkNode(randomBytes(32))
    const t0 = performance.now()
    await assert.rejects(x.node.dial(a.node.listenAddrs()[0]!), (err: unknown) => {
      assert.ok(err instanceof DialError)
      return true
    })
    const ms = performance.now() - t0
    assert.ok(ms < 1500 + 500, `dial must fail within the timeout (took ${ms.toFixed(0)} ms)`)
    await sleep(200)
    assert.deepEqual(a.connects, [])
    assert.deepEqual(x.connects, [])
    assert.deepEqual(a.node.connectedPeers(), [])
    assert.deepEqual(x.node.connectedPeers(), [])
    assert.deepEqual([a.syncs, x.syncs, a.messages, x.messages], [[], [], [], []])
  })

  test('stop() releases the port and fires disconnect on the peer', async () => {
    const a = await mkNode(meshKey)
    const b = await mkNode(meshKey)
    await b.node.dial(a.node.listenAddrs()[0]!)
    await waitFor(() => a.connects.length === 1, 2000, 'connect at A')
    const port = Number(/\/tcp\/(\d+)/.exec(a.node.listenAddrs()[0]!)?.[1])
    await a.node.stop()
    await a.node.stop() // idempotent
    await waitFor(() => b.disconnects.includes(a.node.peerId), 2000, 'disconnect at B')
    await new Promise<void>((resolve, reject) => {
      const srv = createServer()
      srv.once('error', reject)
      srv.listen(port, '127.0.0.1', () => { srv.close(() => { resolve() }) })
    })
    await assert.rejects(a.node.dial(b.node.listenAddrs()[0]!), DialError)
  })

  test('no timers keep the process alive after stop() (child process exits)', async () => {
    const indexUrl = pathToFileURL(fileURLToPath(new URL('../src/transport/index.ts', import.meta.url))).href
    const polyfills = fileURLToPath(new URL('../../../scripts/polyfills.mjs', import.meta.url))
    const script = `
      const t0 = performance.now()
      const rss0 = process.memoryUsage().rss
      const { createGossipNode } = await import(${JSON.stringify(indexUrl)})
      const tImport = performance.now() - t0
      const { randomBytes } = await import('node:crypto')
      const meshKey = randomBytes(32)
      const mk = () => createGossipNode({ identitySeed: randomBytes(32), meshKey, listen: ['/ip4/127.0.0.1/tcp/0'], topic: 't',
        validate: () => 'accept', onMessage: () => {}, sync: { hash: () => randomBytes(32), digest: () => [], recordsFor: () => [new Uint8Array(100)] }, onSyncResult: () => {} })
      const t1 = performance.now()
      const a = await mk()
      const tStart = performance.now() - t1
      const rss1 = process.memoryUsage().rss
      const b = await mk()
      await b.dial(a.listenAddrs()[0])
      await b.sync(a.peerId)
      await a.publish(new Uint8Array(10))
      await new Promise(r => setTimeout(r, 300))
      await Promise.all([a.stop(), b.stop()])
      const tStopped = performance.now()
      process.on('exit', () => console.log(JSON.stringify({ tImport, tStart, rssBefore: rss0, rssOneNode: rss1, exitAfterStopMs: performance.now() - tStopped })))
    `
    const child = spawn(process.execPath, ['--conditions=wgmesh-src', '--import', 'tsx', '--import', polyfills, '--input-type=module', '-e', script],
      { stdio: ['ignore', 'pipe', 'pipe'] })
    let out = ''; let err = ''
    child.stdout.on('data', (d: Buffer) => { out += d.toString() })
    child.stderr.on('data', (d: Buffer) => { err += d.toString() })
    const code = await new Promise<number | null>((resolve) => {
      const kill = setTimeout(() => { child.kill('SIGKILL') }, 8000)
      child.on('exit', (c) => { clearTimeout(kill); resolve(c) })
    })
    assert.equal(code, 0, `child did not exit cleanly: ${err}`)
    const m = JSON.parse(out.trim().split('\n').pop() ?? '{}') as Record<string, number>
    console.log(`# child: import ${m.tImport?.toFixed(0)} ms, start ${m.tStart?.toFixed(0)} ms, rss before import ${((m.rssBefore ?? 0) / 2 ** 20).toFixed(0)} MiB, rss with one node ${((m.rssOneNode ?? 0) / 2 ** 20).toFixed(0)} MiB, exit ${m.exitAfterStopMs?.toFixed(0)} ms after stop`)
    assert.ok((m.exitAfterStopMs ?? Infinity) < 500, 'process exits promptly after stop()')
  })
})
