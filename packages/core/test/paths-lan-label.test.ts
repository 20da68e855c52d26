/**
 * What a direct path is called (issue 11): 'lan' names a path over a network behind our NAT;
 * a path to a global IPv6 address — the peer's own public address, at most behind a stateful
 * firewall — is 'direct' even when both ends share the /64 (two walled hosts on one link). The
 * name follows WireGuard's endpoint (it roams), not only the candidate chosen.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { initialPathState, pathKind, pathPolicy, stepPath, type PathState } from '../src/paths.js'

const T = 1_700_000_000_000
const policy = pathPolicy(25)

/** A pair punched on `candidate`, a handshake and traffic since: direct, WireGuard at `wg`. */
function directTo (candidate: string, wg: string): PathState {
  let s = initialPathState(T, undefined)
  s = stepPath(s, { now: T, candidates: [candidate], counters: { latestHandshake: 0, rxBytes: 0 }, relayAvailable: false, hopeless: false, currentEndpoint: candidate }, policy).state
  const d = stepPath(s, { now: T + 1000, candidates: [candidate], counters: { latestHandshake: (T + 900) / 1000, rxBytes: 500 }, relayAvailable: false, hopeless: false, currentEndpoint: wg }, policy)
  assert.equal(d.state.phase, 'direct')
  return d.state
}

test('on a local subnet behind our NAT: an IPv4 or ULA endpoint is lan, a global IPv6 one direct', () => {
  for (const [ep, want] of [['192.0.2.3:51820', 'lan'], ['[fd00:1::3]:51820', 'lan'], ['[2001:db8:1::3]:51820', 'direct']] as const) {
    const s = directTo(ep, ep)
    assert.equal(pathKind(s, true, T + 1000, policy), want, ep)
    assert.equal(pathKind(s, false, T + 1000, policy), 'direct', `${ep}, not on a local subnet`)
  }
})

test('the name follows the endpoint WireGuard uses now (it roamed to the other family)', () => {
  assert.equal(pathKind(directTo('[2001:db8:1::3]:51820', '192.0.2.3:51820'), true, T + 1000, policy), 'lan')
  assert.equal(pathKind(directTo('192.0.2.3:51820', '[2001:db8:1::3]:51820'), true, T + 1000, policy), 'direct')
  // no WireGuard endpoint known: the chosen candidate names it
  const s = { ...directTo('[2001:db8:1::3]:51820', '[2001:db8:1::3]:51820') }
  delete s.wgEndpoint
  assert.equal(pathKind(s, true, T + 1000, policy), 'direct')
})
