/**
 * The Prometheus endpoint (--metrics-listen) of in-process agents (fake WireGuard): a scrape
 * over HTTP passes `promtool check metrics`; rx/tx totals stay monotonic when a peer's entry is
 * re-created (its WireGuard counters restart at 0); the endpoint keeps serving through abuse
 * (oversized head, wrong path and method, garbage, idle and trickling connections beyond the
 * connection limit, a flood of scrapes); a non-loopback address is refused unless allowed.
 */
import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { connect, type Socket } from 'node:net'
import { Agent } from '@wgmesh/agent'
import { cleanupDirs, startAgent, tempDir, waitFor, type TestAgent } from './harness.js'
import { MonotonicTotals } from '../../packages/agent/src/metrics.js'
import { parseListen } from '../../packages/agent/src/metrics-server.js'

const agents: TestAgent[] = []
let url = ''
let port = 0

before(async () => {
  const a = await startAgent({ label: 'm0', createMesh: true, metricsListen: '127.0.0.1:0', version: '9.9.9-test' })
  agents.push(a)
  agents.push(await startAgent({ label: 'm1', meshKey: a.agent.store.meshKey(), peers: [a.agent.listenAddrs()[0]!] }))
  port = Number(a.agent.metricsAddress!.split(':').pop())
  url = `http://127.0.0.1:${port}/metrics`
  await waitFor('both alive in each other\'s table', () => agents.every(x => x.agent.members.active().filter(m => m.status === 'alive').length === 2), 20_000)
  // WireGuard applied: m1 is a peer of m0's interface
  await waitFor('m1 configured on m0', () => agents[0]!.runner.interfaces.get(agents[0]!.iface)?.peers.has(agents[1]!.agent.record.wgPublicKey) === true, 20_000)
})

after(async () => {
  await Promise.allSettled(agents.map(async a => await a.agent.stop()))
  cleanupDirs()
})

/** The samples of a scrape: "name{labels}" → value. */
function samples (text: string): Map<string, number> {
  const out = new Map<string, number>()
  for (const l of text.split('\n')) {
    if (l === '' || l.startsWith('#')) continue
    const i = l.lastIndexOf(' ')
    out.set(l.slice(0, i), Number(l.slice(i + 1)))
  }
  return out
}

/** One raw HTTP exchange: write `req`, read until the server closes (or `ms`). */
async function raw (req: string | Buffer, ms = 3000): Promise<string> {
  return await new Promise((resolve, reject) => {
    const s = connect(port, '127.0.0.1')
    let buf = ''
    const t = setTimeout(() => { s.destroy(); reject(new Error(`no close within ${ms} ms; got: ${buf.slice(0, 200)}`)) }, ms)
    s.setEncoding('latin1')
    s.on('connect', () => { s.write(req) })
    s.on('data', (d: string) => { buf += d })
    s.on('error', () => {})
    s.on('close', () => { clearTimeout(t); resolve(buf) })
  })
}

/** Established TCP connections on the server side of the endpoint (ss). */
function serverSide (): number {
  const r = spawnSync('ss', ['-Htn', 'state', 'established', `( sport = :${port} )`], { encoding: 'utf8' })
  assert.equal(r.status, 0, r.stderr)
  return r.stdout.split('\n').filter(l => l.trim() !== '').length
}

const statusOf = (res: string): number => Number(/^HTTP\/1\.1 (\d{3}) /.exec(res)?.[1] ?? 0)

test('a scrape over HTTP passes promtool check metrics and has the documented families', async () => {
  const res = await fetch(url)
  assert.equal(res.status, 200)
  assert.match(res.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/)
  assert.equal(res.headers.get('connection'), 'close')
  const text = await res.text()
  const p = spawnSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8' })
  assert.equal(p.error, undefined, 'promtool runs (Debian package prometheus)')
  assert.equal(p.status, 0, `promtool check metrics:\n${p.stdout}${p.stderr}`)
  const s = samples(text)
  assert.equal(s.get('wgmesh_build_info{version="9.9.9-test"}'), 1)
  const m1 = agents[1]!.agent
  const l = `peer="m1",node_id="${m1.nodeId}"`
  for (const k of [`wgmesh_peer_rx_bytes_total{${l}}`, `wgmesh_peer_tx_bytes_total{${l}}`, `wgmesh_peer_path{${l},path="punching"}`,
    'wgmesh_wireguard_apply_failures_total', 'wgmesh_nat_type{type="unknown"}', 'process_cpu_seconds_total', 'process_resident_memory_bytes',
    'process_start_time_seconds', 'nodejs_heap_size_used_bytes', 'wgmesh_peers{status="alive"}']) {
    assert.ok(s.has(k), `${k} in the scrape`)
  }
  // the paths of a peer are a state set: exactly one is 1
  assert.equal(['direct', 'lan', 'relay', 'punching', 'down'].reduce((n, path) => n + (s.get(`wgmesh_peer_path{${l},path="${path}"}`) ?? 0), 0), 1)
  // every TYPE counter ends in _total, no gauge does
  for (const [, name, type] of text.matchAll(/^# TYPE (\S+) (\S+)$/gm)) assert.equal(name!.endsWith('_total'), type === 'counter', `${name} is a ${type}`)
  // the underlay probes give an RTT for the peer within a few heartbeats (ms on 127.0.0.1)
  await waitFor('an RTT sample', async () => (await agents[0]!.agent.info()).peers[0]?.rttMs !== undefined, 10_000)
  const rtt = (await agents[0]!.agent.info()).peers[0]!.rttMs!
  assert.ok(rtt >= 0 && rtt < 200, `rtt ${rtt} ms`)
  await new Promise(resolve => setTimeout(resolve, 1100)) // past the render cache
  assert.ok(samples(await (await fetch(url)).text()).has(`wgmesh_peer_rtt_seconds{${l}}`))
})

test('rx/tx totals only go up when the peer entry is re-created (its counters restart at 0)', async () => {
  const { runner, iface } = agents[0]!
  const pk = agents[1]!.agent.record.wgPublicKey
  const peer = (): { transferRx: number, transferTx: number, latestHandshake: number } => runner.interfaces.get(iface)!.peers.get(pk)! as unknown as { transferRx: number, transferTx: number, latestHandshake: number }
  const l = `peer="m1",node_id="${agents[1]!.agent.nodeId}"`
  const scrape = async (): Promise<Map<string, number>> => { await new Promise(resolve => setTimeout(resolve, 1100)); return samples(await (await fetch(url)).text()) }
  // traffic comes only after a handshake (a peer with none is re-created now and then: first contact)
  peer().latestHandshake = Math.floor(Date.now() / 1000)
  peer().transferRx = 5000; peer().transferTx = 7000
  const s1 = await scrape()
  assert.equal(s1.get(`wgmesh_peer_rx_bytes_total{${l}}`), 5000)
  assert.equal(s1.get(`wgmesh_peer_tx_bytes_total{${l}}`), 7000)
  // re-created: the counters restart; 300/200 bytes since
  peer().transferRx = 300; peer().transferTx = 200
  const s2 = await scrape()
  assert.equal(s2.get(`wgmesh_peer_rx_bytes_total{${l}}`), 5300)
  assert.equal(s2.get(`wgmesh_peer_tx_bytes_total{${l}}`), 7200)
  peer().transferRx = 1000
  const s3 = await scrape()
  assert.equal(s3.get(`wgmesh_peer_rx_bytes_total{${l}}`), 6000)
  for (const [k, v] of s1) if (k.includes('_total')) assert.ok((s3.get(k) ?? -1) >= v, `${k}: ${s3.get(k)} >= ${v}`)
  // info --json carries both: WireGuard's value and the total
  const p = (await agents[0]!.agent.info()).peers[0]!
  assert.equal(p.rxBytes, 1000)
  assert.equal(p.rxTotal, 6000)
  // the tracker itself: a restart carries what was seen
  const t = new MonotonicTotals()
  assert.deepEqual([10, 20, 5, 0, 7, 30].map(v => t.observe('k', v)), [10, 20, 25, 25, 32, 55])
})

test('the endpoint answers abuse with 4xx and closes, and keeps serving scrapes', async () => {
  assert.equal(statusOf(await raw('GET /metrics HTTP/1.1\r\nHost: x\r\nX-Pad: ' + 'a'.repeat(20_000) + '\r\n\r\n')), 431, 'oversized head')
  assert.equal(statusOf(await raw('GET / HTTP/1.1\r\nHost: x\r\n\r\n')), 404, 'wrong path')
  assert.equal(statusOf(await raw('GET /metricsx HTTP/1.1\r\n\r\n')), 404, 'wrong path')
  const post = await raw('POST /metrics HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello')
  assert.equal(statusOf(post), 405, 'wrong method')
  assert.match(post, /\r\nAllow: GET, HEAD\r\n/)
  assert.equal(statusOf(await raw('\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n')), 400, 'garbage (a TLS hello)')
  assert.equal(statusOf(await raw('GET /metrics HTTP/2.0\r\n\r\n')), 505)
  const head = await raw('HEAD /metrics HTTP/1.0\r\n\r\n')
  assert.equal(statusOf(head), 200)
  assert.ok(head.endsWith('\r\n\r\n'), 'HEAD: no body')
  // a second request on the same connection is never read: one answer, then close
  const two = await raw('GET /metrics HTTP/1.1\r\n\r\nGET /metrics HTTP/1.1\r\n\r\n')
  assert.equal(two.match(/HTTP\/1\.1 200/g)?.length, 1)

  // slowloris: 40 idle connections (the limit is 32) and 5 trickling a header byte every 200 ms
  const held: Socket[] = []
  const closedByServer: Socket[] = []
  for (let i = 0; i < 45; i++) {
    const s = connect(port, '127.0.0.1')
    s.on('error', () => {})
    s.on('close', () => { closedByServer.push(s) })
    if (i % 2 === 0) s.resume() // reads (and so sees the server's FIN)
    held.push(s)
  }
  const tricklers = held.slice(40)
  let n = 0
  const trickle = setInterval(() => { for (const s of tricklers) if (!s.destroyed) s.write(n++ === 0 ? 'GET /metrics HTTP/1.1\r\n' : 'X') }, 200)
  await new Promise(resolve => setTimeout(resolve, 300))
  const t0 = Date.now()
  for (let i = 0; i < 5; i++) {
    const r = await fetch(url)
    assert.equal(r.status, 200, 'a scrape gets through while the connections are held')
    await r.text()
  }
  const scrapeMs = Date.now() - t0
  // a scrape flood: 200 concurrent requests are all answered (from shared renders)
  const flood = await Promise.all(Array.from({ length: 200 }, async () => await raw('GET /metrics HTTP/1.1\r\n\r\n', 10_000).catch(() => '')))
  const floodOk = flood.filter(r => statusOf(r) === 200).length
  // the head deadline (5 s) cuts every holder, trickling or not; the even ones read (and see the
  // close), the odd ones never read: the server side must be gone all the same
  await waitFor('every reading holder sees the server close', () => held.every((s, i) => i % 2 === 1 || closedByServer.includes(s)), 8000, 100)
  await waitFor('no connection left open on the server side', () => serverSide() === 0, 3000, 100)
  clearInterval(trickle)
  const r = await fetch(url)
  assert.equal(r.status, 200)
  console.log(`# 45 held connections: 5 scrapes took ${scrapeMs} ms; flood of 200: ${floodOk} answered 200; all holders cut by the 5 s head deadline`)
  assert.ok(floodOk >= 32, `at least the connection limit's worth of the flood answered (${floodOk})`)
})

test('--metrics-listen: loopback by default, a non-loopback address only with metricsAllowRemote', () => {
  assert.deepEqual(parseListen('9586'), { host: '127.0.0.1', port: 9586 })
  assert.deepEqual(parseListen(':9586'), { host: '127.0.0.1', port: 9586 })
  assert.deepEqual(parseListen('[::1]:9586'), { host: '::1', port: 9586 })
  assert.deepEqual(parseListen('localhost:1'), { host: '127.0.0.1', port: 1 })
  for (const bad of ['', 'host:9586', '1.2.3:9586', '127.0.0.1:99999', '::1:9586', '127.0.0.1:']) assert.equal(parseListen(bad), undefined, bad)
  const dir = tempDir('mlisten')
  assert.throws(() => new Agent({ stateDir: dir, metricsListen: '0.0.0.0:9586' }), /not a loopback address.*--metrics-allow-remote/)
  assert.throws(() => new Agent({ stateDir: dir, metricsListen: '[::]:9586' }), /not a loopback address/)
  assert.throws(() => new Agent({ stateDir: dir, metricsListen: 'nonsense' }), /is not \[HOST:\]PORT/)
  assert.doesNotThrow(() => new Agent({ stateDir: dir, metricsListen: '0.0.0.0:9586', metricsAllowRemote: true }))
  assert.doesNotThrow(() => new Agent({ stateDir: dir, metricsListen: '127.0.0.2:9586' }))
})
