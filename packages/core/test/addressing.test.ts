import { test } from 'node:test'
import assert from 'node:assert/strict'
import { allocate, overlayIPv4, overlayIPv6, ulaPrefix } from '../src/addressing.js'
import { cidrContainsText, parseCidr } from '../src/ip.js'
import { Membership } from '../src/membership.js'
import { meshSettings } from '../src/settings.js'
import { validateSealed } from '../src/validate.js'
import type { NodeRecord } from '../src/types.js'
import { MESH_KEY, T0, recordOf, sealRecord, testNode, ula, wgKeyOf, type TestNode } from './fixtures.js'

test('addresses are stable, inside the ranges, never network or broadcast', () => {
  const c = parseCidr('100.96.0.0/29')
  for (let i = 0; i < 200; i++) {
    const k = wgKeyOf(`k${i}`)
    const v4 = overlayIPv4(c, k, 0)
    assert.equal(v4, overlayIPv4(c, k, 0))
    assert.ok(cidrContainsText(c, v4) && v4 !== '100.96.0.0' && v4 !== '100.96.0.7', v4)
    assert.ok(cidrContainsText(ula, overlayIPv6(ula, k, 0)))
  }
  assert.match(overlayIPv6(ula, wgKeyOf('x'), 0), /^fd[0-9a-f]{2}:/)
  assert.notDeepEqual(ulaPrefix(new Uint8Array(32)), ulaPrefix(MESH_KEY), 'each mesh gets its own ULA')
})

test('allocate skips taken addresses', () => {
  const c = parseCidr('100.96.0.0/24')
  const k = wgKeyOf('k')
  const first = allocate(c, ula, k, new Set())
  const second = allocate(c, ula, k, new Set([first.ipv4]))
  assert.notEqual(second.ipv4, first.ipv4)
  assert.ok(second.salt > first.salt)
})

/**
 * A collision between two joiners, played out between simulated nodes that each see messages in
 * a different order (gossip) and repair what they missed (sync): every node must end with the
 * same, duplicate-free address map, nobody left out.
 */
test('a forced collision between joiners is resolved on every node', () => {
  const small = meshSettings({ cidr4: '100.96.0.0/24', heartbeatMs: 1000, deadAfterMs: 3000, expireAfterMs: 60_000 })
  // find two keys that hash to the same IPv4 at salt 0
  const seen = new Map<string, string>()
  let pair: [string, string] | undefined
  for (let i = 0; pair === undefined; i++) {
    const label = `n${i}`
    const ip = overlayIPv4(small.cidr4, wgKeyOf(label), 0)
    const other = seen.get(ip)
    if (other !== undefined) pair = [other, label]
    seen.set(ip, label)
  }
  const labels = [pair[0], pair[1], 'x1', 'x2', 'x3']
  interface Sim { node: TestNode, table: Membership, record: NodeRecord }
  const sims: Sim[] = labels.map(l => {
    const node = testNode(l)
    const r = recordOf(node, { ipv4: overlayIPv4(small.cidr4, node.wgPublicKey, 0), ipSince: T0 })
    const table = new Membership({ selfId: node.signer.nodeId, settings: small, ula })
    table.accept(r, sealRecord(node, r), T0, 'self')
    return { node, table, record: r }
  })
  assert.equal(sims[0]!.record.ipv4, sims[1]!.record.ipv4, 'the collision is real')

  // message queue: each node broadcasts; every receiver processes its inbox in its own order
  const inbox = new Map<Sim, Uint8Array[]>(sims.map(s => [s, []]))
  const broadcast = (from: Sim): void => {
    const sealed = sealRecord(from.node, from.record)
    for (const s of sims) if (s !== from) inbox.get(s)!.push(sealed)
  }
  sims.forEach(broadcast)
  let now = T0 + 10
  let rounds = 0
  const run = (): void => {
    while ([...inbox.values()].some(q => q.length > 0)) {
      assert.ok(++rounds < 100, 'settles')
      for (const [i, s] of sims.entries()) {
        const q = inbox.get(s)!
        // different order per node
        const batch = i % 2 === 0 ? q.splice(0) : q.splice(0).reverse()
        for (const sealed of batch) {
          const v = validateSealed(MESH_KEY, sealed, s.table, now)
          if (v.verdict !== 'accept') continue
          const changes = s.table.accept(v.record, sealed, now, 'gossip')
          if (changes.some(c => c.kind === 'conflict-lost' && c.nodeId === s.node.signer.nodeId)) {
            const next = allocate(small.cidr4, ula, s.node.wgPublicKey, s.table.takenIPv4(s.node.signer.nodeId), s.record.ipSalt + 1)
            s.record = { ...s.record, seq: s.record.seq + 1, issuedAt: now, ipv4: next.ipv4, ipv6: next.ipv6, ipSalt: next.salt, ipSince: now }
            s.table.accept(s.record, sealRecord(s.node, s.record), now, 'self')
            broadcast(s)
          }
        }
        now++
      }
    }
  }
  run()
  // anti-entropy: every node hands every other its records (a record refused earlier is
  // offered again, as sync does while tables differ)
  for (const from of sims) for (const m of from.table.all()) for (const s of sims) if (s !== from) inbox.get(s)!.push(m.sealed)
  run()
  const views = sims.map(s => s.table.active().filter(m => m.conflict === undefined)
    .map(m => `${m.record.name}=${m.record.ipv4},${m.record.ipv6}`).sort().join(' '))
  for (const v of views) assert.equal(v, views[0], 'every node has the same view')
  const ips = sims.map(s => s.record.ipv4)
  assert.equal(new Set(ips).size, ips.length, `0 duplicates: ${ips.join(' ')}`)
  assert.equal(views[0]!.split(' ').length, labels.length, 'nobody is left out')
})
