import { test } from 'node:test'
import assert from 'node:assert/strict'
import { initialPathState, pathKind, pathPolicy, stepPath, type PathState, type PeerCounters } from '../src/paths.js'

// faster rotation than the default (5 s, WireGuard's handshake retry) keeps the tables short
const policy = pathPolicy(5, { punchStepMs: 1000 })
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
  assert.deepEqual(d.map(x => x.endpoint), [C[0], C[0], C[1], C[2], C[2], C[2]], 'relayed: no more rotation (the entry points at the relay)')
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

test('a direct path that goes silent falls back to relay; traffic through the relay never counts as direct', () => {
  const c0 = { latestHandshake: T / 1000, rxBytes: 1000 }
  let s = initialPathState(T, c0)
  assert.equal(s.phase, 'direct', 'restart under a live tunnel keeps it direct')
  let now = T
  const step = (dt: number, c: PeerCounters, more: { natKey?: string, endpointIsRelay?: boolean, hopeless?: boolean } = {}): ReturnType<typeof stepPath> => {
    now += dt
    const d = stepPath(s, { now, candidates: C, counters: c, relayAvailable: true, hopeless: more.hopeless ?? false, natKey: more.natKey ?? 'cone/symmetric', endpointIsRelay: more.endpointIsRelay }, policy)
    s = d.state
    return d
  }
  assert.equal(step(policy.pathDeadMs - 1, c0).relayed, false)
  const relayed = step(2, c0)
  assert.equal(relayed.relayed, true, 'silence past pathDeadMs → relay')
  assert.equal(relayed.keepaliveS, 1, '1 s keepalives until the relayed session carries packets')
  assert.equal(pathKind(relayed.state, false, now, policy), 'punching', 'shown relayed only once the relayed session carries packets')
  assert.equal(pathKind(relayed.state, false, now + 10_000, policy), 'down', 'a relay that carries nothing for 10 s is no path')
  const up = step(2000, { latestHandshake: now / 1000, rxBytes: 1200 }, { endpointIsRelay: true })
  assert.equal(pathKind(up.state, false, now, policy), 'relay')
  assert.equal(up.state.phase, 'relay', 'packets through the relay keep the pair relayed')
  assert.equal(up.keepaliveS, 5, 'a working relayed session gets the steady keepalive')
  // the NAT types change (e.g. the symmetric end is now cone): try direct again
  const retry = step(1000, { latestHandshake: now / 1000, rxBytes: 1300 }, { natKey: 'cone/cone', endpointIsRelay: true })
  assert.equal(retry.state.phase, 'punching')
  assert.equal(retry.endpoint, C[0])
  const still = step(500, { latestHandshake: now / 1000, rxBytes: 1400 }, { natKey: 'cone/cone', endpointIsRelay: true })
  assert.equal(still.state.phase, 'punching', 'packets still arriving through the relay are not a direct path')
  // our candidate is set again (pinned) and a packet counted since the last step: it may still
  // have come through the relay (WireGuard roamed there and back between two steps): not yet
  const repinned = step(500, { latestHandshake: now / 1000, rxBytes: 1500 }, { natKey: 'cone/cone', endpointIsRelay: false })
  assert.equal(repinned.state.phase, 'punching', 'traffic counted while the endpoint was on the relay is no evidence')
  // traffic between two steps that both found the endpoint off the relay: direct
  const direct = step(500, { latestHandshake: now / 1000, rxBytes: 1600 }, { natKey: 'cone/cone', endpointIsRelay: false })
  assert.equal(direct.state.phase, 'direct')
  assert.equal(pathKind(direct.state, true, now, policy), 'lan')
})

test('a relayed pair of two symmetric ends stays relayed whatever changes; a direct path that roamed to the relay follows the peer there', () => {
  let s = initialPathState(T, undefined)
  let now = T
  const step = (dt: number, more: { natKey: string, cands?: string[], endpointIsRelay?: boolean, hopeless: boolean, c?: PeerCounters }): ReturnType<typeof stepPath> => {
    now += dt
    const d = stepPath(s, { now, candidates: more.cands ?? C, counters: more.c, relayAvailable: true, hopeless: more.hopeless, natKey: more.natKey, endpointIsRelay: more.endpointIsRelay }, policy)
    s = d.state
    return d
  }
  assert.equal(step(0, { natKey: 'symmetric/symmetric', hopeless: true }).relayed, true)
  assert.equal(step(1000, { natKey: 'symmetric/symmetric', hopeless: true, cands: ['203.0.113.9:51820', ...C] }).relayed, true, 'a new best candidate does not end a hopeless relay')
  // a pair that went direct, then the peer's traffic arrives through the relay (it relays now)
  const c = { latestHandshake: T / 1000, rxBytes: 10 }
  s = initialPathState(T, c)
  now = T
  assert.equal(step(100, { natKey: 'cone/cone', hopeless: false, c, endpointIsRelay: true }).relayed, true)
})

test('defaults follow WireGuard: one candidate per handshake retry (5 s); dead after 2.5 keepalives + 1 s', () => {
  const p = pathPolicy(2)
  assert.equal(p.punchStepMs, 5000)
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

test('a candidate that keeps changing (a flapping seen claim) cannot hold the rotation on its slot', () => {
  let s = initialPathState(T, undefined)
  let now = T
  const tried: string[] = []
  for (let i = 0; i < 12; i++) {
    // the last candidate changes every 500 ms
    const d = stepPath(s, { now, candidates: ['192.0.2.2:51820', `198.18.2.1:${40000 + i}`], counters: undefined, relayAvailable: false, hopeless: false }, policy)
    s = d.state
    tried.push(d.endpoint!)
    now += 500
  }
  assert.ok(tried.filter(e => e === '192.0.2.2:51820').length >= 4, `the steady candidate keeps getting its turn: ${tried.join(' ')}`)
})

test('family fallback: a direct path whose probes go unanswered and that receives nothing moves to the other family, once per episode', () => {
  const dual = ['198.18.1.2:51820', '[2001:db8:1::2]:51820']
  const pub = { relayAvailable: false, hopeless: false, holdsMapping: false, peerSendsKeepalive: false }
  const hs = Math.floor(T / 1000)
  let s = initialPathState(T, { latestHandshake: hs, rxBytes: 1000 })
  assert.equal(s.phase, 'direct')
  const step = (now: number, rx: number, unansweredSince?: number, current = '198.18.1.2:51820'): ReturnType<typeof stepPath> => {
    const d = stepPath(s, { now, candidates: dual, counters: { latestHandshake: hs, rxBytes: rx }, ...pub, unansweredSince, currentEndpoint: current }, policy)
    s = d.state
    return d
  }
  assert.equal(step(T + 500, 1200).endpoint, dual[0], 'answered: stays on IPv4')
  // the IPv4 path dies at T + 1000: pings unanswered from then on, rx stands still
  assert.equal(step(T + 2000, 1300, T + 1000).endpoint, dual[0], 'first step of the episode: watching')
  const d = step(T + 2500, 1300, T + 1000)
  assert.equal(d.endpoint, dual[1], 'nothing arrived for 500 ms while probes fail: the IPv6 candidate')
  assert.equal(d.state.phase, 'direct', 'still direct: the session stays, the peer roams')
  assert.equal(d.keepaliveS, 0, 'between public ends: no keepalive, as before')
  assert.equal(step(T + 3000, 1300, T + 1000, dual[1]).endpoint, dual[1], 'once per episode: no flapping back')
  assert.equal(step(T + 3500, 1500, undefined, dual[1]).endpoint, dual[1], 'answered over IPv6: it stays there')
  // later the IPv6 path dies too, IPv4 is back: a new episode falls back again
  step(T + 10_000, 1600, T + 9000, dual[1])
  assert.equal(step(T + 10_500, 1600, T + 9000, dual[1]).endpoint, dual[0])
})

test('family fallback: not while the peer still sends, and never without a candidate of the other family', () => {
  const pub = { relayAvailable: false, hopeless: false, holdsMapping: false, peerSendsKeepalive: false }
  const hs = Math.floor(T / 1000)
  for (const [candidates, rxs] of [[['198.18.1.2:51820', '[2001:db8:1::2]:51820'], [1000, 1100, 1200, 1300]], [['198.18.1.2:51820', '198.18.9.9:51820'], [1000, 1000, 1000, 1000]]] as const) {
    let s = initialPathState(T, { latestHandshake: hs, rxBytes: 1000 })
    for (const [i, rx] of rxs.entries()) {
      const d = stepPath(s, { now: T + 1000 + i * 500, candidates: [...candidates], counters: { latestHandshake: hs, rxBytes: rx }, ...pub, unansweredSince: T + 500, currentEndpoint: candidates[0] }, policy)
      s = d.state
      assert.equal(d.endpoint, candidates[0], `${candidates.join(' ')} rx ${rx}`)
    }
  }
})
