/**
 * The agent's own reachability per family (issue 11): STUN probes go out per family, each
 * from its own socket, only for a family this host has an address of; the record's one NAT
 * type is IPv4's where IPv4 was classified, else IPv6's. Real STUN servers on loopback.
 */
import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import { startStunServer, underlayNatType, type StunServer } from '@wgmesh/nat'
import { NatService } from '../src/nat-service.js'
import { silentLogger } from '../src/logger.js'

const servers: StunServer[] = []
let v4: Array<{ host: string, port: number }> = []
let v6: Array<{ host: string, port: number }> = []
before(async () => {
  for (const host of ['127.0.0.1', '127.0.0.1', '::1', '::1']) servers.push(await startStunServer({ host, port: 0 }))
  v4 = servers.slice(0, 2).map(s => ({ host: '127.0.0.1', port: s.address().port }))
  v6 = servers.slice(2).map(s => ({ host: '::1', port: s.address().port }))
})
after(async () => { await Promise.all(servers.map(async s => await s.close())) })

function service (): { nat: NatService, changes: () => number } {
  let n = 0
  const nat = new NatService({ stunPort: 0, wgPort: 51820, extraStunServers: [], upnp: false, log: silentLogger, onChange: () => { n++ } })
  return { nat, changes: () => n }
}

test('a dual-stack host probes both families; the record\'s NAT type is IPv4\'s', async () => {
  const { nat, changes } = service()
  await nat.probe([...v4, ...v6], ['127.0.0.1', '::1'])
  assert.equal(nat.natTypeOf(4), 'public')
  assert.equal(nat.natTypeOf(6), 'public')
  assert.equal(nat.natType, 'public')
  assert.equal(nat.publicAddress, '127.0.0.1')
  assert.equal(nat.publicAddress6, '::1')
  assert.equal(changes(), 1, 'one change for one probe round')
  await nat.probe([...v4, ...v6], ['127.0.0.1', '::1'])
  assert.equal(changes(), 1, 'nothing new: no change')
  assert.equal(nat.stunPort, undefined, 'no STUN server of its own (port 0)')
})

test('an IPv6-only host probes over IPv6 only (no IPv4 address: no IPv4 probe) and is classified by it', async () => {
  const { nat } = service()
  const before = servers.slice(0, 2).map(s => s.stats().parsed)
  await nat.probe([...v4, ...v6], ['::1'])
  assert.deepEqual(servers.slice(0, 2).map(s => s.stats().parsed), before, 'the IPv4 servers were not asked')
  assert.equal(nat.natTypeOf(4), 'unknown')
  assert.equal(nat.natTypeOf(6), 'public')
  assert.equal(nat.natType, 'public')
  assert.equal(nat.publicAddress, undefined)
  assert.equal(nat.publicAddress6, '::1')
})

test('an IPv4-only host never probes IPv6 servers', async () => {
  const { nat } = service()
  const before = servers.slice(2).map(s => s.stats().parsed)
  await nat.probe([...v6, ...v4], ['127.0.0.1'])
  assert.deepEqual(servers.slice(2).map(s => s.stats().parsed), before)
  assert.equal(nat.natType, 'public')
  assert.equal(nat.publicAddress6, undefined)
})

test('one NAT type from two: IPv4 where classified, else IPv6', () => {
  assert.equal(underlayNatType('cone', 'public'), 'cone')
  assert.equal(underlayNatType('unknown', 'public'), 'public')
  assert.equal(underlayNatType('unknown', 'unknown'), 'unknown')
  assert.equal(underlayNatType('symmetric', 'unknown'), 'symmetric')
})

test('the seed guess: a NAT is classified at once (mapped address not ours); a public host is left to the members\' probes; unanswered, nothing is left behind', async () => {
  const { nat, changes } = service()
  // our address 10.0.0.1, the servers see 127.0.0.1 on both ports: behind a cone NAT
  await nat.probeSeeds(v4, ['10.0.0.1'])
  assert.equal(nat.natType, 'cone')
  assert.equal(nat.publicAddress, '127.0.0.1')
  assert.equal(changes(), 1)
  await nat.probeSeeds(v4, ['10.0.0.1'])
  assert.equal(changes(), 1, 'classified: no more guesses')
  // our own address seen: public, but not from a guess (no filtering verdict from a half-started seed)
  const open = service()
  await open.nat.probeSeeds(v4, ['127.0.0.1'])
  assert.equal(open.nat.natType, 'unknown')
  assert.equal(open.changes(), 0)
  await open.nat.probe(v4, ['127.0.0.1'])
  assert.equal(open.nat.natType, 'public', 'the members\' probe classifies it')
  // a port nobody answers on: unknown stays, no change is reported
  const quiet = service()
  const dead = [{ host: '127.0.0.1', port: 9 }, { host: '127.0.0.1', port: 10 }]
  const t = Date.now()
  await quiet.nat.probeSeeds(dead, ['127.0.0.1'])
  assert.ok(Date.now() - t < 1500, 'short timeouts')
  assert.equal(quiet.nat.natType, 'unknown')
  assert.equal(quiet.changes(), 0)
  await quiet.nat.probe(v4, ['127.0.0.1'])
  assert.equal(quiet.nat.natType, 'public', 'the real probe right after still classifies')
})

test('a probe asked for while another runs runs after it instead of being dropped', async () => {
  const { nat } = service()
  const guess = nat.probeSeeds([{ host: '127.0.0.1', port: 9 }, { host: '127.0.0.1', port: 10 }], ['127.0.0.1'])
  await nat.probe(v4, ['127.0.0.1']) // returns at once: queued behind the guess
  assert.equal(nat.natType, 'unknown')
  await guess
  const until = Date.now() + 3000
  while (nat.natType === 'unknown' && Date.now() < until) await new Promise(resolve => setTimeout(resolve, 20))
  assert.equal(nat.natType, 'public')
})
