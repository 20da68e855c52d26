/**
 * The agent's own reachability behind a stateful firewall, and probes that got no answer
 * (issue 11): a host that sees its own address but no answer from a member server's other
 * port is `firewalled` (the record says `cone`); one whose probe reached only silent servers
 * (walled members) asks other members' servers within seconds instead of staying `unknown`,
 * and keeps what it knew meanwhile. Real STUN servers and sockets on 127.0.0.0/8; the
 * firewall is the probe socket letting in only datagrams from an address:port it sent to
 * (conntrack's `ct state established`).
 */
import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import dgram from 'node:dgram'
import { startStunServer, type StunServer } from '@wgmesh/nat'
import { walledSocket } from '../../nat/test/walled-socket.js'
import { NatService, PROBE_RETRY_MS } from '../src/nat-service.js'
import type { Logger } from '../src/logger.js'

const LOCAL = ['127.0.0.1']
const sleep = async (ms: number): Promise<void> => { await new Promise(resolve => setTimeout(resolve, ms)) }

/** A logger that keeps the info lines. */
function recorder (): { log: Logger, lines: Array<{ msg: string, fields?: Record<string, unknown> }> } {
  const lines: Array<{ msg: string, fields?: Record<string, unknown> }> = []
  const keep = (msg: string, fields?: Record<string, unknown>): void => { lines.push({ msg, ...(fields === undefined ? {} : { fields }) }) }
  return { log: { debug: keep, info: keep, warn: keep, error: keep }, lines }
}

// a member's two paired servers, and four hosts whose servers never answer (walled members)
let a: StunServer
let b: StunServer
const quiet: dgram.Socket[] = []
before(async () => {
  a = await startStunServer({ host: '127.0.0.1', port: 0 })
  b = await startStunServer({ host: '127.0.0.1', port: 0 })
  a.pair(b)
  for (const host of ['127.0.0.2', '127.0.0.3', '127.0.0.4', '127.0.0.5']) {
    const s = dgram.createSocket('udp4')
    await new Promise<void>(resolve => { s.bind(0, host, resolve) })
    quiet.push(s)
  }
})
after(async () => {
  await Promise.all([a.close(), b.close()])
  for (const s of quiet) s.close()
})
const member = (): Array<{ host: string, port: number }> => [{ host: '127.0.0.1', port: a.address().port }, { host: '127.0.0.1', port: b.address().port }]
const walled = (): Array<{ host: string, port: number }> => quiet.map(s => ({ host: s.address().address, port: s.address().port }))

test('own address, no answer from the other port: firewalled (the record says cone); open: public', async () => {
  const { log, lines } = recorder()
  const fw = new NatService({ stunPort: 0, wgPort: 51820, extraStunServers: [], upnp: false, log, socketFactory: walledSocket, onChange: () => {} })
  await fw.probe(member(), LOCAL)
  assert.equal(fw.natTypeOf(4), 'firewalled')
  assert.equal(fw.natType, 'cone', 'older agents know no other value')
  assert.equal(fw.publicAddress, '127.0.0.1')
  assert.deepEqual(lines.find(l => l.msg === 'NAT probed')?.fields, { family: 4, nat: 'firewalled', publicAddress: '127.0.0.1', answers: 2, filtering: 'filtered' })
  await fw.stop()

  const open = new NatService({ stunPort: 0, wgPort: 51820, extraStunServers: [], upnp: false, log, onChange: () => {} })
  await open.probe(member(), LOCAL)
  assert.equal(open.natTypeOf(4), 'public')
  assert.equal(open.natType, 'public')
  await open.stop()
})

test('three datagrams lost once are not a firewall: a change-port probe that heard nothing is asked again', async () => {
  const { log } = recorder()
  // sockets in the order a probe opens them: the plain probe's, the change-port probe's, its re-check's
  let n = 0
  let walled = new Set<number>()
  const services: NatService[] = []
  // a service of its own per case: a verdict is reused while the public address stays (below)
  const fresh = (): NatService => {
    const s = new NatService({
      stunPort: 0, wgPort: 51820, extraStunServers: [], upnp: false, log, onChange: () => {},
      socketFactory: (t) => walled.has(++n) ? walledSocket(t) : dgram.createSocket(t)
    })
    services.push(s)
    return s
  }
  try {
    walled = new Set([2]) // the first change-port probe's answers are lost, the re-check's arrive
    let nat = fresh()
    await nat.probe(member(), LOCAL)
    assert.equal(n, 3, 'asked again')
    assert.equal(nat.natTypeOf(4), 'public')
    // the next probe (16 s later in the agent), same public address: the verdict is reused
    n = 0
    await nat.probe(member(), LOCAL)
    assert.equal(n, 1, 'no change-port probe while the verdict is fresh')
    assert.equal(nat.natTypeOf(4), 'public')
    n = 0
    walled = new Set([2, 3]) // a firewall: both lost
    nat = fresh()
    await nat.probe(member(), LOCAL)
    assert.equal(n, 3)
    assert.equal(nat.natTypeOf(4), 'firewalled')
    n = 0
    walled = new Set()
    nat = fresh()
    await nat.probe(member(), LOCAL)
    assert.equal(n, 2, 'an open answer at once: no re-check')
    assert.equal(nat.natTypeOf(4), 'public')
  } finally { await Promise.all(services.map(async s => { await s.stop() })) }
})

test('a configured (third-party) server is never asked to change port: its silence would read as a firewall', async () => {
  const { log } = recorder()
  const extra = { host: '127.0.0.1', port: a.address().port }
  const fw = new NatService({ stunPort: 0, wgPort: 51820, extraStunServers: [extra], upnp: false, log, socketFactory: walledSocket, onChange: () => {} })
  const before = a.stats().changed
  await fw.probe([], LOCAL)
  assert.equal(fw.natTypeOf(4), 'public')
  assert.equal(a.stats().changed, before)
  await fw.stop()
})

test('a probe that reached only silent (walled) servers asks another member within seconds, not unknown for long', async () => {
  const { log, lines } = recorder()
  let changes = 0
  const nat = new NatService({ stunPort: 0, wgPort: 51820, extraStunServers: [], upnp: false, log, onChange: () => { changes++ } })
  try {
    // the caller names 4 walled members first (a probe asks 4 hosts) and an open one last
    const t0 = Date.now()
    await nat.probe([...walled(), member()[0]!], LOCAL)
    assert.equal(nat.natTypeOf(4), 'unknown', 'the first probe asked only the silent ones')
    const parsed = a.stats().parsed
    while (nat.natTypeOf(4) === 'unknown' && Date.now() - t0 < 5000) await sleep(50)
    const took = Date.now() - t0
    assert.equal(nat.natTypeOf(4), 'public', 'classified by the retry')
    assert.ok(a.stats().parsed > parsed, 'the open member was asked by the retry')
    assert.ok(took < 800 + PROBE_RETRY_MS[0] + 1500, `classified ${took} ms after the first probe`)
    assert.ok(lines.some(l => l.msg === 'NAT probe retried (no answer from the servers asked)'))
    assert.equal(changes, 1)
    console.log(`# walled-only probe → classified by the retry ${took} ms after it started`)

    // later the caller names only walled members (say one claims public): the retry asks the
    // open member seen before, and the classification stays meanwhile (no flap to unknown)
    const before = a.stats().parsed
    await nat.probe(walled(), LOCAL)
    assert.equal(nat.natTypeOf(4), 'public', 'kept while other servers are still to be tried')
    for (let i = 0; i < 60 && a.stats().parsed === before; i++) await sleep(50)
    assert.ok(a.stats().parsed > before, 'the retry asked a member seen in an earlier probe')
    await sleep(900)
    assert.equal(nat.natTypeOf(4), 'public')
    assert.equal(changes, 1, 'no change reported')
  } finally { await nat.stop() }
})

test('retries back off (1, 2, 4, 8, 8 s, then the caller\'s schedule) and a pending one ends with stop()', async () => {
  assert.deepEqual([...PROBE_RETRY_MS], [1000, 2000, 4000, 8000, 8000])
  const { log, lines } = recorder()
  const nat = new NatService({ stunPort: 0, wgPort: 51820, extraStunServers: [], upnp: false, log, onChange: () => {} })
  await nat.probe(walled(), LOCAL)
  await nat.stop()
  let heard = 0
  for (const s of quiet) s.on('message', () => { heard++ })
  await sleep(PROBE_RETRY_MS[0] + 300)
  assert.equal(heard, 0, 'no retry after stop')
  assert.equal(lines.filter(l => l.msg === 'NAT probe retried (no answer from the servers asked)').length, 0)
})
