/**
 * Fuzzing what anyone on the LAN can send to the beacon port, over real UDP on 127.0.0.1:
 *  - startLanBeacon (this package): random datagrams of 0..1500 bytes, and a handler that throws:
 *    never a crash, exactly the 1..MAX_BEACON_BYTES datagrams are delivered, intact;
 *  - the agent's beacon decoder (startLanDiscovery, packages/agent/src/lan-discovery.ts):
 *    validly sealed beacons around random or mutated JSON, plus wrongly keyed and raw bytes:
 *    a peer is reported exactly for the beacons an independent check of the beacon schema
 *    accepts ({ t: 'lan', wgPort: integer 1..65535, at: within 30 s of now, n: 22-char
 *    base64url nonce not seen before, addrs: 1..16 IPv4 addresses including the sender's },
 *    sealed with the mesh key by someone else), as signer + sender address:wgPort — never
 *    anything else. Some accepted beacons are sent again: a replay is never reported.
 * Rate limits are lifted here (they are tested in lan-discovery.test.ts / lan-beacon.test.ts).
 * Datagrams go in batches followed by a marker the receiver must see, so the comparison is exact.
 * Seeded PRNG: the seed is printed; reproduce with FUZZ_SEED=<seed> node scripts/run-tests.mjs unit fuzz-lan-beacon
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import dgram from 'node:dgram'
import { createHash } from 'node:crypto'
import { createSigner, seal, type RecordSigner } from '@wgmesh/core'
import { MAX_BEACON_BYTES, startLanBeacon } from '../src/lan-beacon.js'
import { startLanDiscovery } from '../../agent/src/lan-discovery.js'

const SEED = process.env.FUZZ_SEED !== undefined ? Number(process.env.FUZZ_SEED) >>> 0 : (Date.now() ^ (process.pid << 16)) >>> 0
console.log(`# fuzz-lan-beacon seed ${SEED} (reproduce: FUZZ_SEED=${SEED} node scripts/run-tests.mjs unit fuzz-lan-beacon)`)
const ITERATIONS = Number(process.env.FUZZ_ITERATIONS ?? 1500)
const BATCH = 20

function prng (seed: number): () => number { // mulberry32
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}
class Gen {
  readonly r: () => number
  constructor (seed: number) { this.r = prng(seed) }
  int (n: number): number { return Math.floor(this.r() * n) }
  pick<T> (xs: readonly T[]): T { return xs[this.int(xs.length)]! }
  chance (p: number): boolean { return this.r() < p }
  bytes (n: number): Uint8Array { return Uint8Array.from({ length: n }, () => this.int(256)) }
}

const seedOf = (label: string): Uint8Array => new Uint8Array(createHash('sha256').update('beacon-fuzz:' + label).digest())
const MESH_KEY = seedOf('mesh')
const WRONG_KEY = seedOf('other mesh')
const receiver = createSigner(seedOf('receiver'))
const sender = createSigner(seedOf('sender'))
const marker = createSigner(seedOf('marker'))

async function sendAll (sock: dgram.Socket, port: number, datagrams: Uint8Array[]): Promise<void> {
  for (const d of datagrams) {
    await new Promise<void>((resolve, reject) => { sock.send(d, port, '127.0.0.1', (err) => { if (err != null) reject(err); else resolve() }) })
  }
}

async function until (what: string, cond: () => boolean, timeoutMs = 10_000): Promise<void> {
  const end = Date.now() + timeoutMs
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`)
    await new Promise(resolve => setTimeout(resolve, 2))
  }
}

test(`startLanBeacon: random datagrams and a throwing handler never crash it; exactly the 1..${MAX_BEACON_BYTES}-byte ones arrive, intact (seed ${SEED})`, async () => {
  const g = new Gen(SEED)
  const got: string[] = []
  const errors: Error[] = []
  const MARK = 'marker-'
  const b = await startLanBeacon({
    port: 0, bindAddress: '127.0.0.1', targets: () => [], intervalMs: 3_600_000, payload: () => new Uint8Array(0),
    ratePerSecond: 1e9, globalRatePerSecond: 1e9,
    onBeacon: (data) => {
      got.push(Buffer.from(data).toString('hex'))
      if (data.length % 7 === 3) throw new Error('handler failure') // must be contained
    },
    onError: (err) => { errors.push(err) }
  })
  const tx = dgram.createSocket('udp4')
  await new Promise<void>(resolve => { tx.bind(0, '127.0.0.1', () => { resolve() }) })
  try {
    let thrown = 0
    for (let i = 0; i < ITERATIONS; i += BATCH) {
      const batch = Array.from({ length: BATCH }, () => g.bytes(g.pick([0, 1, 2, g.int(100), g.int(1500), MAX_BEACON_BYTES, MAX_BEACON_BYTES + 1, 1472])))
      const mark = new TextEncoder().encode(`${MARK}${i}`)
      const before = got.length
      await sendAll(tx, b.address().port, [...batch, mark])
      await until(`marker ${i}`, () => got.includes(Buffer.from(mark).toString('hex')))
      const want = batch.filter(d => d.length >= 1 && d.length <= MAX_BEACON_BYTES).map(d => Buffer.from(d).toString('hex'))
      assert.deepEqual(got.slice(before, -1), want, `seed ${SEED} batch ${i}: delivered exactly the datagrams of 1..${MAX_BEACON_BYTES} bytes, in order`)
      thrown += want.filter(h => (h.length / 2) % 7 === 3).length + (mark.length % 7 === 3 ? 1 : 0)
    }
    assert.equal(errors.filter(e => e.message === 'handler failure').length, thrown, 'every handler failure reported through onError')
  } finally {
    tx.close()
    await b.close()
  }
})

// ---------------------------------------------------------------------------------------------

interface Found { nodeId: string, endpoint: string }

const seenNonces = new Set<string>()
const IPV4 = /^(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])(\.(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])){3}$/

/** The beacon schema, independently: what the receiver must report for this payload (or undefined). */
function expected (payload: Uint8Array, signer: RecordSigner, key: Uint8Array, sealedLen: number, now: number): Found | undefined {
  if (key !== MESH_KEY || signer.nodeId === receiver.nodeId || sealedLen > MAX_BEACON_BYTES) return undefined
  let b: unknown
  try { b = JSON.parse(new TextDecoder('utf-8').decode(payload)) } catch { return undefined }
  if (typeof b !== 'object' || b === null || Array.isArray(b)) return undefined
  const o = b as Record<string, unknown>
  if (o.t !== 'lan' || typeof o.wgPort !== 'number' || !Number.isInteger(o.wgPort) || o.wgPort < 1 || o.wgPort > 65535) return undefined
  if (typeof o.n !== 'string' || !/^[A-Za-z0-9_-]{22}$/.test(o.n)) return undefined
  if (!Array.isArray(o.addrs) || o.addrs.length < 1 || o.addrs.length > 16 || !o.addrs.every(a => typeof a === 'string' && IPV4.test(a))) return undefined
  if (typeof o.at !== 'number' || !Number.isFinite(o.at) || Math.abs(now - o.at) > 30_000) return undefined
  if (!o.addrs.includes('127.0.0.1')) return undefined
  if (seenNonces.has(`${signer.nodeId} ${o.n}`)) return undefined
  seenNonces.add(`${signer.nodeId} ${o.n}`)
  return { nodeId: signer.nodeId, endpoint: `127.0.0.1:${o.wgPort}` }
}

const INTERESTING: unknown[] = ['lan', 'LAN', 'lan ', '', 'wan', 0, 1, 65535, 65536, -1, 1.5, 51820, '51820', 1e21, true, false, null, [], {}, [51820], { t: 'lan' },
  ['127.0.0.1'], ['192.0.2.1'], ['127.0.0.01'], ['127.0.0.1', '::1'], '127.0.0.1', 'AAAAAAAAAAAAAAAAAAAAAA', 'AAAA', 'AAAAAAAAAAAAAAAAAAAAA=']

function randomJson (g: Gen, depth = 0): unknown {
  const k = g.int(depth > 2 ? 4 : 6)
  if (k === 0) return g.pick(INTERESTING)
  if (k === 1) return (g.r() - 0.5) * 10 ** g.int(16)
  if (k === 2) return Array.from({ length: g.int(8) }, () => String.fromCharCode(32 + g.int(95))).join('')
  if (k === 3) return g.pick([true, false, null])
  if (k === 4) return Array.from({ length: g.int(4) }, () => randomJson(g, depth + 1))
  const o: Record<string, unknown> = {}
  for (let i = g.int(4); i > 0; i--) o[g.pick(['t', 'wgPort', 'at', 'n', 'addrs', 'x', '__proto__'])] = randomJson(g, depth + 1)
  return o
}

const freshNonce = (g: Gen): string => Buffer.from(g.bytes(16)).toString('base64url')

/** A good beacon's fields, then mutations; `at` kept clear of the ±30 s edge (the clocks of the two checks differ by ms). */
function mutatedBeacon (g: Gen, now: number): string {
  const o: Record<string, unknown> = {
    t: 'lan', wgPort: 1 + g.int(65535), at: now + g.pick([0, -1000, 1000, -20_000, 20_000]), n: freshNonce(g),
    addrs: g.pick([['127.0.0.1'], ['192.0.2.7', '127.0.0.1'], ['192.0.2.7']])
  }
  for (let n = g.chance(0.5) ? 0 : 1 + g.int(2); n > 0; n--) {
    const f = g.pick(['t', 'wgPort', 'at', 'n', 'addrs', 'extra'])
    const op = g.int(4)
    if (op === 0) Reflect.deleteProperty(o, f)
    else if (op === 1) o[f] = g.pick(INTERESTING)
    else if (op === 2) o[f] = randomJson(g)
    else if (f === 'at') o.at = now + g.pick([-40_000, 40_000, -1e12, 1e12])
    else o[f] = g.pick(INTERESTING)
  }
  let text = JSON.stringify(o)
  if (g.chance(0.2)) { // byte-level damage
    const i = g.int(text.length + 1)
    text = text.slice(0, i) + g.pick([...'{}[],:"0123456789-.e ']) + text.slice(i + (g.chance(0.5) ? 1 : 0))
  }
  return text
}

test(`the agent's LAN beacon decoder: validly sealed random/mutated beacons never throw; a peer is reported exactly when the beacon fits the schema (seed ${SEED})`, async () => {
  const g = new Gen(SEED ^ 0xbeac)
  const found: Found[] = []
  const log = { debug () {}, info () {}, warn () {}, error () {} }
  const rx = await startLanDiscovery({
    port: 0, meshKey: MESH_KEY, signer: receiver, wgPort: 51820, excludeInterfaces: [], intervalMs: 3_600_000, log,
    limits: { ratePerSecond: 1e9, globalRatePerSecond: 1e9 },
    onFound: (nodeId, endpoint) => { found.push({ nodeId, endpoint }) }
  })
  const tx = dgram.createSocket('udp4')
  await new Promise<void>(resolve => { tx.bind(0, '127.0.0.1', () => { resolve() }) })
  const nonce = (): Uint8Array => g.bytes(24)
  let reported = 0
  try {
    for (let i = 0; i < ITERATIONS; i += BATCH) {
      const now = Date.now()
      const batch: Array<{ bytes: Uint8Array, want: Found | undefined, what: string }> = []
      const accepted: Uint8Array[] = []
      for (let j = 0; j < BATCH; j++) {
        if (accepted.length > 0 && g.chance(0.1)) { batch.push({ bytes: g.pick(accepted), want: undefined, what: 'replay' }); continue }
        const text = g.chance(0.3) ? JSON.stringify(randomJson(g)) : mutatedBeacon(g, now)
        const payload = new TextEncoder().encode(g.chance(0.03) ? text + '\uFFFD'.repeat(g.int(400)) : text)
        const kind = g.int(20)
        if (kind === 0) { batch.push({ bytes: g.bytes(1 + g.int(300)), want: undefined, what: 'raw bytes' }); continue }
        const signer = kind === 1 ? receiver : sender // its own beacons are ignored
        const key = kind === 2 ? WRONG_KEY : MESH_KEY
        const bytes = seal(key, signer, payload, nonce())
        const want = expected(payload, signer, key, bytes.length, now)
        if (want !== undefined) accepted.push(bytes)
        batch.push({ bytes, want, what: `${kind === 1 ? 'own ' : kind === 2 ? 'wrong-key ' : ''}${text}` })
      }
      const markPort = 1 + (i / BATCH) % 65535
      const mark = seal(MESH_KEY, marker, new TextEncoder().encode(JSON.stringify({ t: 'lan', wgPort: markPort, at: Date.now(), n: freshNonce(g), addrs: ['127.0.0.1'] })), nonce())
      const before = found.length
      await sendAll(tx, rx.address().port, [...batch.map(x => x.bytes), mark])
      await until(`marker of batch ${i}`, () => found.slice(before).some(f => f.nodeId === marker.nodeId && f.endpoint === `127.0.0.1:${markPort}`))
      const got = found.slice(before).filter(f => f.nodeId !== marker.nodeId)
      const want = batch.filter(x => x.want !== undefined).map(x => x.want!)
      assert.deepEqual(got, want, `seed ${SEED} batch ${i}: reported peers differ from the schema's verdict; batch: ${batch.map(x => `${x.want !== undefined ? 'OK ' : 'no '}${x.what}`).join(' | ')}`)
      reported += got.length
    }
  } finally {
    tx.close()
    await rx.close()
  }
  console.log(`# beacon decoder: ${ITERATIONS} beacons, ${reported} reported (all within the schema)`)
  assert.ok(reported > 0, 'the fuzzer reaches acceptance sometimes')
})
