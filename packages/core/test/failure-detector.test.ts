import { test } from 'node:test'
import assert from 'node:assert/strict'
import { FailureDetector, detectorTimings, type ProbeTarget } from '../src/failure-detector.js'
import { SimMesh } from './sim-mesh.js'

const t = detectorTimings(1000, 3000)
const member = (id: string, over: Partial<ProbeTarget> = {}): ProbeTarget => ({ nodeId: id, addr: `10.0.0.${id.charCodeAt(0)}:51823`, firstSeen: 0, state: 'alive', ...over })

function detector (self = 'm'): FailureDetector {
  let n = 0
  return new FailureDetector(self, t.detector, () => 0, () => (++n).toString(16).padStart(16, '0'))
}

test('each node pings its ring successors once per interval, whatever the size of the mesh', () => {
  for (const size of [3, 10, 200]) {
    const fd = detector('m')
    const ids = Array.from({ length: size }, (_, i) => `n${String(i).padStart(4, '0')}`)
    fd.setMembers(ids.map(id => member(id)))
    const sends = [0, 250, 500, 750, 1000, 1250, 1500, 1750].flatMap(now => fd.tick(20_000 + now)).filter(e => e.kind === 'send' && e.msg.type === 'ping')
    assert.ok(sends.length <= 2 * t.detector.observers, `at ${size} members: ${sends.length} pings in 2 intervals`)
  }
  const fd = detector('m')
  fd.setMembers(['a', 'k', 'p', 'z'].map(id => member(id)))
  assert.deepEqual(fd.watching(), ['p', 'z'], 'the successors after self, wrapping around')
})

test('no ack: ping-req through others, then suspect; an ack (direct or relayed) is proof of life', () => {
  const fd = detector('a')
  fd.setMembers([member('b'), member('c'), member('d')])
  const first = fd.tick(20_000)
  const pingB = first.find(e => e.kind === 'send' && e.msg.type === 'ping' && e.to === member('b').addr)
  assert.ok(pingB !== undefined && pingB.kind === 'send')
  const req = fd.tick(20_000 + t.detector.probeTimeoutMs).filter(e => e.kind === 'send' && e.msg.type === 'ping-req')
  assert.ok(req.length >= 1, 'indirect probes after the probe timeout')
  const verdict = fd.tick(20_000 + 2 * t.detector.probeTimeoutMs)
  assert.ok(verdict.some(e => e.kind === 'suspect'), 'suspected after the indirect timeout')

  // the same again, but a helper relays an ack in time
  const fd2 = detector('a')
  fd2.setMembers([member('b'), member('c'), member('d')])
  const pings = fd2.tick(20_000).filter(e => e.kind === 'send' && e.msg.type === 'ping')
  assert.equal(pings.length, 2)
  fd2.tick(20_000 + t.detector.probeTimeoutMs)
  const byAddr = new Map([member('b'), member('c'), member('d')].map(m => [m.addr, m.nodeId]))
  for (const p of pings) {
    assert.ok(p.kind === 'send')
    // the ack comes back late, relayed by a helper: still proof of life of the probed member
    assert.deepEqual(fd2.receive(20_000 + t.detector.probeTimeoutMs + 10, member('d').addr, { type: 'ack', nonce: p.msg.nonce }, () => true),
      [{ kind: 'alive', nodeId: byAddr.get(p.to) }])
  }
  assert.ok(!fd2.tick(20_000 + 3 * t.detector.probeTimeoutMs).some(e => e.kind === 'suspect'))
})

test('a member within its join grace is not suspected until it has answered once', () => {
  const fd = detector('a')
  fd.setMembers([member('b', { firstSeen: 19_000 })])
  fd.tick(20_000)
  fd.tick(20_000 + t.detector.probeTimeoutMs)
  assert.ok(!fd.tick(20_000 + 2 * t.detector.probeTimeoutMs).some(e => e.kind === 'suspect'), 'never answered: its tunnel may be forming')
  // ticks every 100 ms from here (the agent's pace; longer gaps count as stalls)
  const ticks = (from: number, to: number): ReturnType<FailureDetector['tick']> => { const out = []; for (let x = from; x <= to; x += 100) out.push(...fd.tick(x)); return out }
  const p = ticks(20_700, 21_000).find(e => e.kind === 'send' && e.msg.type === 'ping')
  assert.ok(p !== undefined && p.kind === 'send')
  fd.receive(21_010, p.to, { type: 'ack', nonce: p.msg.nonce }, () => true)
  assert.ok(ticks(21_100, 22_000 + 2 * t.detector.probeTimeoutMs).some(e => e.kind === 'suspect'), 'answered once, then silent: suspected, grace or not')
})

test('ping-req only for members: a probe socket is no reflector for arbitrary addresses', () => {
  const fd = detector('a')
  assert.deepEqual(fd.receive(0, '10.0.0.9:1', { type: 'ping-req', nonce: '00', target: '192.0.2.1:53' }, () => false), [])
  const out = fd.receive(0, '10.0.0.9:1', { type: 'ping-req', nonce: 'aa'.repeat(8), target: '10.0.0.5:51823' }, () => true)
  assert.equal(out.length, 1)
  const ping = out[0]!
  assert.ok(ping.kind === 'send' && ping.msg.type === 'ping' && ping.to === '10.0.0.5:51823')
  // the target's ack goes back to the requester under the requester's nonce
  assert.deepEqual(fd.receive(1, '10.0.0.5:51823', { type: 'ack', nonce: ping.msg.nonce }, () => true),
    [{ kind: 'send', to: '10.0.0.9:1', msg: { type: 'ack', nonce: 'aa'.repeat(8) } }])
})

test('a ping carrying refute asks us to publish a newer record', () => {
  const fd = detector('a')
  const out = fd.receive(0, '10.0.0.9:1', { type: 'ping', nonce: '11'.repeat(8), refute: true }, () => true)
  assert.deepEqual(out.map(e => e.kind), ['send', 'refute'])
})

for (const n of [5, 12, 40]) {
  test(`fake clock, ${n} members: a killed member is dead on every other within dead-after; nobody else is`, () => {
    const sim = new SimMesh({ n, seed: 7 + n })
    sim.run(5000)
    assert.equal(sim.deadAt.size, 0, 'no false deaths in a healthy mesh')
    const victim = sim.nodes[3]!.id
    const killedAt = sim.now
    sim.kill(3)
    sim.run(sim.settings.deadAfterMs + 500)
    assert.equal(sim.holders(victim, 'dead'), n - 1, 'every live member holds it dead')
    const worst = Math.max(...sim.deadAt.get(victim)!.values()) - killedAt
    assert.ok(worst <= sim.settings.deadAfterMs, `dead everywhere after ${worst} ms (bound ${sim.settings.deadAfterMs})`)
    assert.deepEqual([...sim.deadAt.keys()], [victim], 'only the victim died')
  })
}

test('fake clock: a false accusation (a member that hears no acks) is refuted; only the broken member dies', () => {
  const sim = new SimMesh({ n: 8, seed: 3 })
  sim.run(3000)
  // member 2 can send but receives nothing: it accuses the members it watches, they refute
  // (members' pings reach them); it is accused in turn and, hearing no pings, does not refute
  sim.cut(2, 'deaf')
  sim.run(6000)
  const deaf = sim.nodes[2]!.id
  assert.deepEqual([...sim.deadAt.keys()], [deaf], 'only the member with the broken tunnel is dead')
  assert.equal(sim.holders(deaf, 'dead'), 7)
  for (const [i, n] of sim.nodes.entries()) if (i !== 2) assert.equal(sim.holders(n.id, 'alive'), 7, `${i} alive everywhere`)
  assert.ok(sim.nodes.some((n, i) => i !== 2 && n.seq > 1), 'the falsely accused refuted with a newer record')
  sim.cut(2, undefined)
  sim.run(10_000)
  assert.equal(sim.holders(deaf, 'alive'), 7, 'once pings reach it, it refutes and is alive again')
})

test('fake clock: a partition heals — members held dead refute when pinged and are alive again', () => {
  const sim = new SimMesh({ n: 6, seed: 11 })
  sim.run(2000)
  sim.cut(0, 'tunnel')
  sim.run(sim.settings.deadAfterMs + 1000)
  assert.equal(sim.holders(sim.nodes[0]!.id, 'dead'), 5)
  sim.cut(0, undefined)
  sim.run(10_000)
  assert.equal(sim.holders(sim.nodes[0]!.id, 'alive'), 5)
})

test('liveness notices: sealed and signed by the accuser; forged or malformed ones are refused with a reason', async () => {
  const { sealNotice, openNotice } = await import('../src/notice.js')
  const { testNode, MESH_KEY, OTHER_MESH_KEY, nonce } = await import('./fixtures.js')
  const { seal } = await import('../src/envelope.js')
  const a = testNode('a')
  const b = testNode('b')
  const ok = openNotice(MESH_KEY, sealNotice(MESH_KEY, a.signer, { k: 'suspect', node: b.signer.nodeId, seq: 5 }, nonce()))
  assert.deepEqual(ok, { ok: true, notice: { v: 1, k: 'suspect', node: b.signer.nodeId, seq: 5, by: a.signer.nodeId } })
  assert.equal(openNotice(OTHER_MESH_KEY, sealNotice(MESH_KEY, a.signer, { k: 'dead', node: b.signer.nodeId, seq: 5 }, nonce())).ok, false)
  const forged = seal(MESH_KEY, a.signer, new TextEncoder().encode(JSON.stringify({ v: 1, k: 'dead', node: b.signer.nodeId, seq: 5, by: b.signer.nodeId })), nonce())
  assert.deepEqual(openNotice(MESH_KEY, forged), { ok: false, reason: 'node-id-mismatch' })
  for (const body of ['{', '[]', '{"v":1,"k":"kill","node":"x","seq":1,"by":"y"}', `{"v":1,"k":"dead","node":"${b.signer.nodeId}","seq":0,"by":"${a.signer.nodeId}"}`,
    `{"v":1,"k":"dead","node":"${b.signer.nodeId}","seq":1,"by":"${a.signer.nodeId}","x":1}`]) {
    const r = openNotice(MESH_KEY, seal(MESH_KEY, a.signer, new TextEncoder().encode(body), nonce()))
    assert.equal(r.ok, false, body)
  }
})

test('local health: a stalled detector voids its pending verdicts and stretches its timeouts; answers heal it', () => {
  const fd = detector('a')
  fd.setMembers([member('b'), member('c'), member('d')])
  fd.tick(20_000)
  // the event loop stalls for 2 s: the acks may be sitting unread, so no suspicion comes of it
  const after = fd.tick(22_000)
  assert.ok(!after.some(e => e.kind === 'suspect' || (e.kind === 'send' && e.msg.type === 'ping-req')))
  assert.equal(fd.localHealth, 1)
  // with health 1 the probe timeout is doubled: still no ping-req one plain timeout later
  assert.ok(!fd.tick(22_000 + t.detector.probeTimeoutMs).some(e => e.kind === 'send' && e.msg.type === 'ping-req'))
  const req = fd.tick(22_000 + 2 * t.detector.probeTimeoutMs)
  assert.ok(req.some(e => e.kind === 'send' && e.msg.type === 'ping-req'))
  fd.refuted()
  assert.equal(fd.localHealth, 2)
  for (let i = 0; i < 20; i++) fd.refuted()
  assert.equal(fd.localHealth, 8, 'capped')
})

test('fake clock: members whose detectors stall now and then (an overloaded host) cause no deaths', () => {
  const sim = new SimMesh({ n: 10, seed: 5 })
  sim.run(3000)
  // every node's tick comes late by 1.2 s every 5 s (a CPU-starved machine), for 30 s
  for (let k = 0; k < 6; k++) { sim.run(3800, 50); sim.run(1200, 1200) }
  assert.deepEqual([...sim.deadAt.keys()], [], 'no false deaths')
})

test('unanswered: a member whose direct pings go unanswered twice in a row is named (relayed acks do not end it, a direct one does)', () => {
  const fd = detector('a')
  const b = member('b')
  fd.setMembers([b, member('c'), member('d')])
  let now = 20_000
  // tick every 50 ms (a late tick is a stall, which stretches the detector's timings); c and d
  // answer at once (their unanswered pings would make the detector slow down)
  const until = (end: number): Array<ReturnType<FailureDetector['tick']>[number]> => {
    const out = []
    for (; now <= end; now += 50) {
      for (const e of fd.tick(now)) {
        out.push(e)
        if (e.kind === 'send' && e.msg.type === 'ping' && e.to !== b.addr) fd.receive(now, e.to, { type: 'ack', nonce: e.msg.nonce }, () => true)
      }
    }
    now = end
    return out
  }
  const pingTo = (effects: ReturnType<typeof until>, to: string): string[] =>
    effects.flatMap(x => x.kind === 'send' && x.msg.type === 'ping' && x.to === to ? [x.msg.nonce] : [])
  const I = t.detector.intervalMs
  const T = t.detector.probeTimeoutMs
  const [n1] = pingTo(until(20_000), b.addr)
  assert.ok(n1 !== undefined)
  until(20_000 + T + 10) // direct timeout: ping-req through c and d
  assert.deepEqual([...fd.unanswered()], [], 'one miss says nothing yet')
  // a helper relays b's ack: b lives, but our tunnel to it did not answer
  assert.deepEqual(fd.receive(now, member('c').addr, { type: 'ack', nonce: n1 }, () => true), [{ kind: 'alive', nodeId: 'b' }])
  const [n2] = pingTo(until(20_000 + I + T + 10), b.addr)
  assert.ok(n2 !== undefined)
  assert.deepEqual([...fd.unanswered()], [['b', 20_000]], 'two direct misses in a row: named, since the first was sent')
  fd.receive(now, member('d').addr, { type: 'ack', nonce: n2 }, () => true)
  assert.deepEqual([...fd.unanswered()], [['b', 20_000]], 'a relayed ack does not end it')
  const [n3] = pingTo(until(20_000 + 2 * I + 10), b.addr)
  assert.ok(n3 !== undefined)
  fd.receive(now, b.addr, { type: 'ack', nonce: n3 }, () => true)
  assert.deepEqual([...fd.unanswered()], [], 'b answered directly: over')
  fd.setMembers([member('c'), member('d')])
  assert.deepEqual([...fd.unanswered()], [])
})

test('unanswered: the quiet pings to a dead member count too', () => {
  const fd = detector('a')
  const b = member('b', { state: 'dead' })
  fd.setMembers([b])
  let pings = 0
  for (let now = 20_000; now <= 20_000 + t.detector.deadProbeEveryMs + 500; now += 50) {
    pings += fd.tick(now).filter(x => x.kind === 'send' && x.to === b.addr && x.msg.type === 'ping' && x.msg.refute === true).length
  }
  assert.equal(pings, 2, 'two refute pings to the dead member')
  assert.deepEqual([...fd.unanswered()], [['b', 20_000]])
})
