// Gateway failover on a fake clock: gateways decide with claimDecision, observers elect with
// electGateways, records and deaths reach each node in its own order. Wherever the views have
// converged, every observer must name the same active gateway.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { claimDecision, electGateways, type ClaimPolicy, type GatewayMember } from '../src/gateway.js'

const GROUP = 'office'
const PREEMPT_MS = 5000

function permutations<T> (xs: T[]): T[][] {
  if (xs.length <= 1) return [xs]
  return xs.flatMap((x, i) => permutations([...xs.slice(0, i), ...xs.slice(i + 1)]).map(p => [x, ...p]))
}

interface Rec { seq: number, m: GatewayMember }
interface Active { active: string, since: number | undefined }

/** One node's knowledge: the newest record of each member, and whom it holds dead. */
class View {
  readonly recs = new Map<string, Rec>()
  readonly dead = new Set<string>()
  receive (r: Rec): void {
    const cur = this.recs.get(r.m.nodeId)
    if (cur !== undefined && cur.seq >= r.seq) return
    this.recs.set(r.m.nodeId, r)
    this.dead.delete(r.m.nodeId) // a newer record is proof of life
  }
  live (): GatewayMember[] {
    return [...this.recs.values()].filter(r => !this.dead.has(r.m.nodeId)).map(r => r.m)
  }
  active (): Active | undefined {
    const s = electGateways(this.live()).get(GROUP)
    return s === undefined ? undefined : { active: s.active, since: s.activeSince }
  }
}

class Gateway {
  view = new View()
  since: number | undefined
  private seq = 0
  constructor (readonly id: string, readonly priority: number, private upSince = 0) {}
  record (): Rec {
    const m: GatewayMember = { nodeId: this.id, name: this.id.toLowerCase(), group: GROUP, priority: this.priority, routes: ['10.1.0.0/16'] }
    if (this.since !== undefined) m.since = this.since
    return { seq: this.seq, m }
  }
  publish (): Rec { this.seq++; return this.record() }
  /** Back after a crash: no claim, an empty view, up since `now`. */
  restart (now: number): Rec {
    this.since = undefined
    this.view = new View()
    this.upSince = now
    return this.publish()
  }
  /** Run the claim decision; a change of claim is published (returned). */
  step (now: number, policy: ClaimPolicy): { decision: string, rec?: Rec } {
    const decision = claimDecision({
      self: this.record().m, selfClaiming: this.since !== undefined, policy, live: this.view.live(), now,
      aliveForMs: now - this.upSince, preemptDelayMs: PREEMPT_MS
    })
    if (decision === 'keep') return { decision }
    this.since = decision === 'claim' ? now : undefined
    return { decision, rec: this.publish() }
  }
}

function world (gateways: Gateway[], observerCount = 6) {
  const observers = Array.from({ length: observerCount }, () => new View())
  /** Every observer gets `recs` in its own order (`check` after each); gateways get the others'. */
  const broadcast = (recs: Rec[], check?: (o: View, i: number) => void): void => {
    const orders = permutations(recs)
    observers.forEach((o, i) => {
      for (const r of orders[i % orders.length]!) { o.receive(r); check?.(o, i) }
    })
    gateways.forEach((g, i) => {
      for (const r of orders[(i + 1) % orders.length]!) if (r.m.nodeId !== g.id) g.view.receive(r)
    })
  }
  const allSee = (want: Active, why: string): void => {
    observers.forEach((o, i) => assert.deepEqual(o.active(), want, `observer ${i}: ${why}`))
  }
  return { observers, broadcast, allSee }
}

/** A(200) B(150) C(100) boot, A claims, A dies, every node fails over to B, B claims. */
function failover (policy: ClaimPolicy) {
  const A = new Gateway('A', 200)
  const B = new Gateway('B', 150)
  const C = new Gateway('C', 100)
  const w = world([A, B, C])
  const boot = [A.publish(), B.publish(), C.publish()]
  // while records trickle in, each observer elects the best it has heard of
  w.broadcast(boot, (o, i) => {
    const heard = [...o.recs.keys()]
    const first = permutations(boot)[i % 6]![0]!.m.nodeId
    if (heard.length === 1) assert.deepEqual(o.active(), { active: first, since: undefined })
  })
  w.allSee({ active: 'A', since: undefined }, 'all records in, nobody claims yet: the best by priority')
  assert.equal(B.step(1000, policy).decision, 'keep')
  assert.equal(C.step(1000, policy).decision, 'keep')
  const claimA = A.step(1000, policy)
  assert.equal(claimA.decision, 'claim')
  w.broadcast([claimA.rec!])
  w.allSee({ active: 'A', since: 1000 }, 'A claimed')
  for (const g of [B, C]) assert.equal(g.step(2000, policy).decision, 'keep')

  // A dies; each node notices at its own time (observer i at 10 000 + 100·i)
  for (const i of [0, 1, 2]) {
    w.observers[i]!.dead.add('A')
    assert.deepEqual(w.observers[i]!.active(), { active: 'B', since: undefined }, 'B at once, before any claim')
  }
  for (const i of [3, 4, 5]) assert.deepEqual(w.observers[i]!.active(), { active: 'A', since: 1000 }, 'A not yet seen dead')
  B.view.dead.add('A')
  const claimB = B.step(10_250, policy)
  assert.equal(claimB.decision, 'claim')
  C.view.dead.add('A')
  assert.equal(C.step(10_260, policy).decision, 'keep', 'C defers to B even before B\'s claim arrives')
  w.broadcast([claimB.rec!])
  for (const i of [3, 4, 5]) {
    assert.deepEqual(w.observers[i]!.active(), { active: 'A', since: 1000 }, 'A still alive here: its claim at 200 beats B\'s')
    w.observers[i]!.dead.add('A')
  }
  w.allSee({ active: 'B', since: 10_250 }, 'A dead everywhere, B claimed')
  assert.equal(C.step(11_000, policy).decision, 'keep')
  assert.equal(B.step(11_000, policy).decision, 'keep')
  return { A, B, C, w }
}

test('sim sticky: A dies → everyone picks B, B claims; A returns and B stays active', () => {
  const { A, B, C, w } = failover('sticky')
  const back = A.restart(20_000)
  w.broadcast([back])
  for (const g of [B, C]) A.view.receive(g.record())
  w.allSee({ active: 'B', since: 10_250 }, 'A is back without a claim')
  for (const now of [20_000, 25_000, 60_000, 1_000_000]) {
    assert.equal(A.step(now, 'sticky').decision, 'keep', `t=${now}`)
    assert.equal(B.step(now, 'sticky').decision, 'keep', `t=${now}`)
    assert.equal(C.step(now, 'sticky').decision, 'keep', `t=${now}`)
  }
  w.allSee({ active: 'B', since: 10_250 }, 'sticky: B stays')
})

test('sim preferred: A returns, takes over after the hold-down, B releases, no flapping', () => {
  const { A, B, C, w } = failover('preferred')
  const back = A.restart(20_000)
  w.broadcast([back])
  for (const g of [B, C]) A.view.receive(g.record())
  w.allSee({ active: 'B', since: 10_250 }, 'A is back but has not claimed')
  assert.equal(A.step(20_000, 'preferred').decision, 'keep')
  assert.equal(A.step(20_000 + PREEMPT_MS - 1, 'preferred').decision, 'keep', 'hold-down')
  const claimA = A.step(20_000 + PREEMPT_MS, 'preferred')
  assert.equal(claimA.decision, 'claim')
  B.view.receive(claimA.rec!)
  const releaseB = B.step(25_100, 'preferred')
  assert.equal(releaseB.decision, 'release')
  assert.equal(C.step(25_100, 'preferred').decision, 'keep')
  // A's claim and B's release in either order: A from the first record on, everywhere
  w.broadcast([claimA.rec!, releaseB.rec!], (o, i) => assert.equal(o.active()?.active, 'A', `observer ${i}`))
  w.allSee({ active: 'A', since: 25_000 }, 'A took over')
  for (const g of [A, B, C]) assert.equal(g.step(30_000, 'preferred').decision, 'keep', g.id)
})

test('sim merge: two claimers at equal priority, the earlier claim wins and the other releases', () => {
  for (const policy of ['sticky', 'preferred'] as const) {
    const X = new Gateway('X', 100)
    const Y = new Gateway('Y', 100)
    const half1 = world([X], 3)
    const half2 = world([Y], 3)
    half1.broadcast([X.publish()])
    half2.broadcast([Y.publish()])
    const cx = X.step(1000, policy)
    const cy = Y.step(3000, policy)
    assert.equal(cx.decision, 'claim')
    assert.equal(cy.decision, 'claim')
    half1.broadcast([cx.rec!])
    half2.broadcast([cy.rec!])
    half1.allSee({ active: 'X', since: 1000 }, 'half 1')
    half2.allSee({ active: 'Y', since: 3000 }, 'half 2')
    // the partition heals: each side learns the other's claim
    const all = [...half1.observers, ...half2.observers]
    all.forEach((o, i) => {
      for (const r of i % 2 === 0 ? [cx.rec!, cy.rec!] : [cy.rec!, cx.rec!]) o.receive(r)
      assert.deepEqual(o.active(), { active: 'X', since: 1000 }, `${policy}: observer ${i} after the merge`)
    })
    X.view.receive(cy.rec!)
    Y.view.receive(cx.rec!)
    assert.equal(X.step(50_000, policy).decision, 'keep')
    const release = Y.step(50_000, policy)
    assert.equal(release.decision, 'release')
    for (const o of all) o.receive(release.rec!)
    for (const o of all) assert.deepEqual(o.active(), { active: 'X', since: 1000 }, `${policy}: after Y released`)
    assert.equal(Y.step(60_000, policy).decision, 'keep', 'Y does not reclaim while X claims')
  }
})
