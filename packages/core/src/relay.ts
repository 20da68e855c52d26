/**
 * Which relay carries the traffic of a pair that cannot reach each other directly.
 * Both ends must pick the same one (each must accept the other's addresses from it), so the
 * choice depends only on the shared membership view: among alive, relay-willing, public
 * members other than the two, the lowest hash of (pair, relay). The hash spreads pairs
 * over relays instead of piling every pair onto one.
 */
import { createHash } from 'node:crypto'
import type { NodeRecord } from './types.js'

export function relayEligible (r: NodeRecord): boolean {
  return r.relay === true && r.nat === 'public' && r.leaving !== true
}

export function chooseRelay (a: string, b: string, candidates: Iterable<NodeRecord>): NodeRecord | undefined {
  const [x, y] = a < b ? [a, b] : [b, a]
  let best: NodeRecord | undefined
  let bestKey = ''
  for (const r of candidates) {
    if (r.nodeId === a || r.nodeId === b || !relayEligible(r)) continue
    const key = createHash('sha256').update(`${x}\0${y}\0${r.nodeId}`).digest('hex')
    if (best === undefined || key < bestKey) { best = r; bestKey = key }
  }
  return best
}
