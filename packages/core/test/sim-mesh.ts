/**
 * A deterministic simulation of N members running the real core (Membership, FailureDetector,
 * probe wire format) over an in-memory network with a fake clock. Used by the unit tests and
 * by scripts/bench/scale.ts (100 / 1000 members).
 *
 * What is modelled: probe datagrams (encoded for real, counted with their WireGuard + UDP/IP
 * overhead), suspicion/dead notices and record changes spread by gossip (each member receives
 * each notice from `gossipCopies` neighbours, as in gossipsub's mesh), all with `latencyMs`.
 */
import { FailureDetector, detectorTimings, type DetectorEffect, type ProbeTarget } from '../src/failure-detector.js'
import { Membership } from '../src/membership.js'
import { encodeProbe, decodeProbe, probeKey, type ProbeMessage } from '../src/probe-wire.js'
import { meshSettings } from '../src/settings.js'
import { recordOf, sealRecord, testNode, ula, MESH_KEY, T0, type TestNode } from './fixtures.js'

/** Bytes a probe of `payload` bytes costs on the underlay: IP/UDP inside, WireGuard data header + tag, IP/UDP outside. */
export const wireBytes = (payload: number): number => 28 + 32 + Math.ceil((payload + 28) / 16) * 16 + 28

export interface SimOptions {
  n: number
  heartbeatMs?: number
  deadAfterMs?: number
  latencyMs?: number
  gossipCopies?: number
  seed?: number
  /** Sealed record size used for gossip byte counts. */
  recordBytes?: number
}

interface SimNode {
  id: string
  tn: TestNode
  addr: string
  table: Membership
  fd: FailureDetector
  up: boolean
  seq: number
  /** 'tunnel': datagrams to and from it are lost (gossip still flows); 'deaf': only those to it. */
  cut?: 'tunnel' | 'deaf'
}

interface Event { at: number, run: () => void }

export class SimMesh {
  now = T0
  readonly nodes: SimNode[] = []
  readonly bytesSent = new Map<string, number>()
  private events: Event[] = []
  private readonly latency: number
  private readonly copies: number
  private readonly recordBytes: number
  private rng: number
  private readonly key = probeKey(MESH_KEY)
  readonly settings: ReturnType<typeof meshSettings>
  /** nodeId → time each observer marked it dead. */
  readonly deadAt = new Map<string, Map<string, number>>()

  constructor (o: SimOptions) {
    this.latency = o.latencyMs ?? 2
    this.copies = o.gossipCopies ?? 3
    this.recordBytes = o.recordBytes ?? 900
    this.rng = o.seed ?? 1
    this.settings = meshSettings({ heartbeatMs: o.heartbeatMs ?? 1000, deadAfterMs: o.deadAfterMs ?? 3000, expireAfterMs: 3_600_000 })
    const t = detectorTimings(this.settings.heartbeatMs, this.settings.deadAfterMs)
    const all: Array<{ tn: TestNode, rec: ReturnType<typeof recordOf> }> = []
    for (let i = 0; i < o.n; i++) {
      const tn = testNode(`sim${i}`)
      all.push({ tn, rec: recordOf(tn, { name: `sim${i}`, issuedAt: this.now }) })
    }
    for (let i = 0; i < o.n; i++) {
      const tn = all[i]!.tn
      const table = new Membership({ selfId: tn.signer.nodeId, settings: this.settings, ula })
      // every member starts knowing every record (a formed mesh; joining is the agent's job)
      for (const { tn: other, rec } of all) table.accept(rec, sealRecord(other, rec), this.now, other === tn ? 'self' : 'gossip')
      let c = 0
      const fd = new FailureDetector(tn.signer.nodeId, t.detector, () => this.random(), () => `${(i + 1).toString(16).padStart(6, '0')}${(++c).toString(16).padStart(10, '0')}`)
      this.nodes.push({ id: tn.signer.nodeId, tn, addr: `10.0.${i >> 8}.${i & 255}:51823`, table, fd, up: true, seq: 1 })
    }
    for (const n of this.nodes) { this.addrIndex.set(n.addr, n); this.idIndex.set(n.id, n) }
    // joined long ago: past the join grace
    this.now += t.detector.joinGraceMs
    for (const n of this.nodes) this.refreshTargets(n)
  }

  random (): number {
    // xorshift32: reproducible
    let x = this.rng
    x ^= x << 13; x ^= x >>> 17; x ^= x << 5
    this.rng = x >>> 0
    return this.rng / 0x1_0000_0000
  }

  private readonly addrIndex = new Map<string, SimNode>()
  private readonly idIndex = new Map<string, SimNode>()

  private byAddr (addr: string): SimNode | undefined {
    return this.addrIndex.get(addr)
  }

  private refreshTargets (n: SimNode): void {
    const targets: ProbeTarget[] = n.table.all().filter(m => m.status !== 'left').map(m => ({
      nodeId: m.record.nodeId,
      addr: this.idIndex.get(m.record.nodeId)!.addr,
      firstSeen: m.firstSeen,
      state: m.status === 'dead' ? 'dead' : m.suspect !== undefined ? 'suspect' : 'alive'
    }))
    n.fd.setMembers(targets)
  }

  private at (delay: number, run: () => void): void {
    this.events.push({ at: this.now + delay, run })
  }

  private count (id: string, bytes: number): void {
    this.bytesSent.set(id, (this.bytesSent.get(id) ?? 0) + bytes)
  }

  private send (from: SimNode, to: string, msg: ProbeMessage): void {
    const bytes = encodeProbe(this.key, msg)
    this.count(from.id, wireBytes(bytes.length))
    const dst = this.byAddr(to)
    if (dst === undefined || from.cut === 'tunnel') return
    this.at(this.latency, () => {
      if (!dst.up || dst.cut !== undefined) return
      const m = decodeProbe(this.key, bytes)
      if (m === undefined) throw new Error('sim: probe did not decode')
      this.apply(dst, dst.fd.receive(this.now, from.addr, m, a => this.byAddr(a) !== undefined))
    })
  }

  /** Gossip a notice (suspect / dead / record change) from `from` to every live member. */
  private gossip (from: SimNode, bytes: number, deliver: (n: SimNode) => void): void {
    // each member forwards once to `copies` mesh neighbours: that is what every member sends
    for (const n of this.nodes) if (n.up) this.count(n.id, bytes * this.copies)
    for (const n of this.nodes) {
      if (n === from || !n.up) continue
      this.at(this.latency * 2, () => { if (n.up) deliver(n) })
    }
  }

  private apply (n: SimNode, effects: DetectorEffect[]): void {
    for (const e of effects) {
      if (e.kind === 'send') this.send(n, e.to, e.msg)
      else if (e.kind === 'alive') n.table.proofOfLife(e.nodeId, this.now)
      else if (e.kind === 'refute') this.refute(n)
      else if (e.kind === 'suspect') {
        const seq = n.table.get(e.nodeId)?.record.seq ?? 0
        this.onChanges(n, n.table.suspect(e.nodeId, seq, n.id, this.now))
        this.gossip(n, 200, x => {
          // local health: refute through gossip only while members' pings reach us
          if (x.id === e.nodeId) { if (x.fd.reachable(this.now)) this.refute(x); return }
          this.onChanges(x, x.table.suspect(e.nodeId, seq, n.id, this.now))
        })
      }
    }
  }

  private refute (n: SimNode): void {
    n.seq++
    const rec = recordOf(n.tn, { name: n.tn.label, seq: n.seq, issuedAt: this.now })
    const sealed = sealRecord(n.tn, rec)
    n.table.accept(rec, sealed, this.now, 'self')
    this.gossip(n, this.recordBytes, x => { this.onChanges(x, x.table.accept(rec, sealed, this.now, 'gossip')) })
  }

  /** A member's record changes (e.g. a new endpoint): returns when every live member has it. */
  change (i: number): void { this.refute(this.nodes[i]!) }

  private onChanges (n: SimNode, changes: ReturnType<Membership['tick']>): void {
    if (changes.length === 0) return
    for (const c of changes) {
      if (c.kind === 'dead') {
        let m = this.deadAt.get(c.nodeId)
        if (m === undefined) this.deadAt.set(c.nodeId, m = new Map())
        if (!m.has(n.id)) m.set(n.id, this.now)
      }
    }
    this.refreshTargets(n)
  }

  kill (i: number): void { this.nodes[i]!.up = false }
  cut (i: number, how: 'tunnel' | 'deaf' | undefined): void {
    const n = this.nodes[i]!
    if (how === undefined) delete n.cut
    else n.cut = how
  }

  /** Run the clock forward in `stepMs` ticks (every node ticks its detector and table). */
  run (ms: number, stepMs = 50): void {
    const end = this.now + ms
    while (this.now < end) {
      this.now += stepMs
      // events that come due run in time order; those they schedule wait for the next step
      const due = this.events.filter(e => e.at <= this.now).sort((a, b) => a.at - b.at)
      this.events = this.events.filter(e => e.at > this.now)
      for (const e of due) e.run()
      for (const n of this.nodes) {
        if (!n.up) continue
        this.apply(n, n.fd.tick(this.now))
        this.onChanges(n, n.table.tick(this.now))
      }
    }
  }

  /** How many live members hold `nodeId` with `status`. */
  holders (nodeId: string, status: 'alive' | 'dead'): number {
    return this.nodes.filter(n => n.up && n.id !== nodeId && n.table.get(nodeId)?.status === status).length
  }

  resetBytes (): void { this.bytesSent.clear() }
  bytesPerNodePerSecond (windowMs: number): number {
    const up = this.nodes.filter(n => n.up)
    const total = up.reduce((s, n) => s + (this.bytesSent.get(n.id) ?? 0), 0)
    return total / up.length / (windowMs / 1000)
  }
}
