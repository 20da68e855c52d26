import { test } from 'node:test'
import assert from 'node:assert/strict'
import { initialPathState, pathKind, pathPolicy, stepPath, type PathState, type PeerCounters } from '../src/paths.js'

// faster rotation than the default (5 s, WireGuard's handshake retry) keeps the tables short
const policy = pathPolicy(5, { punchStepMs: 1000, probeStepMs: 2000 })
const C = ['192.0.2.2:51820', '198.18.2.1:51820', '198.18.2.1:40000']
const T = 1_800_000_000_000

function run (start: PathState, steps: Array<{ dt: number, c?: PeerCounters, relay?: boolean, hopeless?: boolean }>): Array<ReturnType<typeof stepPath>> {
  let s = start
  let now = T
  const out = []
  for (const st of steps) {
    now += st.dt
    const d = stepPath(s, { now, candidates: C, counters: st.c, relayAvailable: st.relay ?? true, hopeless: st.hopeless ?? false }, policy)
    out.push(d)
    s = d.state
  }
  return out
}

test('punching cycles candidates every second with a 1 s keepalive, then relays after 3 s', () => {
  const d = run(initialPathState(T, undefined), [{ dt: 0 }, { dt: 500 }, { dt: 500 }, { dt: 1000 }, { dt: 1000 }, { dt: 1000 }])
  assert.deepEqual(d.map(x => x.endpoint), [C[0], C[0], C[1], C[2], C[2], C[0]], 'relayed: background punching steps every 2 s')
  assert.deepEqual(d.map(x => x.keepaliveS), [1, 1, 1, 1, 1, 1])
  assert.deepEqual(d.map(x => x.relayed), [false, false, false, false, true, true])
})

test('a handshake with fresh traffic makes the path direct and relaxes the keepalive', () => {
  const hs = (T + 1500) / 1000
  const d = run(initialPathState(T, undefined), [{ dt: 0 }, { dt: 1200 }, { dt: 500, c: { latestHandshake: hs, rxBytes: 92 } }, { dt: 1000, c: { latestHandshake: hs, rxBytes: 92 } }])
  assert.equal(d[2]!.state.phase, 'direct')
  assert.equal(d[2]!.keepaliveS, 5)
  assert.equal(d[3]!.endpoint, C[1], 'the working endpoint is kept, not cycled')
})

test('no relay available: keep punching and report down after the relay timeout', () => {
  const d = run(initialPathState(T, undefined), [{ dt: 0, relay: false }, { dt: 3500, relay: false }])
  assert.equal(d[1]!.state.phase, 'punching')
  assert.equal(pathKind(d[1]!.state, false, T + 3500, policy), 'down')
  assert.equal(pathKind(d[0]!.state, false, T, policy), 'punching')
})

test('both ends symmetric: relay at once', () => {
  const d = run(initialPathState(T, undefined), [{ dt: 0, hopeless: true }])
  assert.equal(d[0]!.relayed, true)
})

test('a direct path that goes silent falls back to relay, then upgrades again when traffic returns', () => {
  const c0 = { latestHandshake: T / 1000, rxBytes: 1000 }
  let s = initialPathState(T, c0)
  assert.equal(s.phase, 'direct', 'restart under a live tunnel keeps it direct')
  let now = T
  const step = (dt: number, c: PeerCounters): ReturnType<typeof stepPath> => { now += dt; const d = stepPath(s, { now, candidates: C, counters: c, relayAvailable: true, hopeless: false }, policy); s = d.state; return d }
  assert.equal(step(policy.pathDeadMs - 1, c0).relayed, false)
  assert.equal(step(2, c0).relayed, true, 'silence past pathDeadMs → relay')
  const back = step(2000, { latestHandshake: now / 1000, rxBytes: 1200 })
  assert.equal(back.state.phase, 'direct', 'background punching found a path again')
  assert.equal(pathKind(back.state, true, now, policy), 'lan')
})

test('defaults follow WireGuard: one candidate per handshake retry (5 s); dead after 2.5 keepalives + 1 s', () => {
  const p = pathPolicy(2)
  assert.equal(p.punchStepMs, 5000)
  assert.equal(p.probeStepMs, 5000)
  assert.equal(p.pathDeadMs, 6000)
})

test('a new best candidate (the peer learnt its public address) is tried at once', () => {
  let s = initialPathState(T, undefined)
  const d1 = stepPath(s, { now: T, candidates: ['192.0.2.2:51820'], counters: undefined, relayAvailable: true, hopeless: false }, policy)
  s = d1.state
  const d2 = stepPath(s, { now: T + 200, candidates: ['198.18.2.1:51820', '192.0.2.2:51820'], counters: undefined, relayAvailable: true, hopeless: false }, policy)
  assert.equal(d2.endpoint, '198.18.2.1:51820')
})

test('keepalive only where a NAT mapping is held; between public ends an idle direct path stays direct', () => {
  const hs = (T + 500) / 1000
  const start = initialPathState(T, undefined)
  const step = (s: PathState, now: number, c: PeerCounters, holdsMapping: boolean, peerSendsKeepalive: boolean): ReturnType<typeof stepPath> =>
    stepPath(s, { now, candidates: C, counters: c, relayAvailable: false, hopeless: false, holdsMapping, peerSendsKeepalive }, policy)
  const c = { latestHandshake: hs, rxBytes: 92 }
  // public ↔ public: direct with no keepalive, and silence (even past the handshake's freshness) keeps it direct
  let d = step(start, T + 600, c, false, false)
  assert.equal(d.state.phase, 'direct')
  assert.equal(d.keepaliveS, 0)
  d = step(d.state, T + 600_000, c, false, false)
  assert.equal(d.state.phase, 'direct', 'idle is not dead between public ends')
  // NAT'd end: sends the steady keepalive; a peer that sends keepalives and goes silent is dead
  let n = step(start, T + 600, c, true, true)
  assert.equal(n.keepaliveS, 5)
  n = step(n.state, T + 600 + policy.pathDeadMs + 1, c, true, true)
  assert.notEqual(n.state.phase, 'direct')
})
