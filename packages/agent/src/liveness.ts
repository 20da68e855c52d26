/**
 * The agent's failure detection: core's FailureDetector over a ProbeSocket, suspicion and death
 * notices over gossip, refutation of accusations against this node. Probes go to each member's
 * overlay IPv4 (inside its WireGuard tunnel), or — in-process tests without WireGuard — to the
 * host of its gossip address ('underlay').
 */
import { randomBytes } from 'node:crypto'
import {
  FailureDetector, openNotice, probeKey, sealNotice,
  type DetectorEffect, type DetectorSettings, type Membership, type MemberChange, type NodeRecord, type ProbeMessage, type ProbeTarget, type RecordSigner
} from '@wgmesh/core'
import { ProbeSocket } from './probe-socket.js'
import { RttTracker, type RttEstimate } from './rtt.js'
import type { Logger } from './logger.js'

export type ProbeVia = 'overlay' | 'underlay'

export interface LivenessInit {
  selfId: string
  detector: DetectorSettings
  meshKey: Uint8Array
  signer: RecordSigner
  /** UDP port of the probe socket; 0 = any. */
  port: number
  via: ProbeVia
  log: Logger
  /** At most one extra RTT ping this often (see rtt.ts). @default 10000 */
  rttEveryMs?: number
}

export interface LivenessHost {
  now: () => number
  table: () => Membership
  /** Changes from suspicions and deaths, for the agent to act on (plan, log, persist). */
  changed: (changes: MemberChange[]) => void
  /** Publish a sealed notice on the notice topic. */
  publishNotice: (sealed: Uint8Array) => void
  /** Someone holds this node suspect or dead: publish a newer record. */
  refute: (why: string) => void
  /** A member held dead answered a probe: dial its gossip again at once. */
  deadAnswered: (nodeId: string) => void
}

/** Where a member's probe socket is, or undefined (it runs none, or has no usable address). */
export function probeAddr (r: NodeRecord, via: ProbeVia): string | undefined {
  if (r.probePort === undefined) return undefined
  if (via === 'overlay') return `${r.ipv4}:${r.probePort}`
  for (const a of r.gossipAddrs) {
    const m = /^\/ip4\/([0-9.]+)\//.exec(a)
    if (m !== null) return `${m[1]}:${r.probePort}`
  }
  return undefined
}

export class Liveness {
  private readonly init: LivenessInit
  private readonly host: LivenessHost
  private readonly fd: FailureDetector
  private readonly sock: ProbeSocket
  private byAddr = new Map<string, string>()
  private memberIps = new Set<string>()
  /** Alive members with a probe address: candidates for an active RTT ping. */
  private rttTargets: Array<{ nodeId: string, addr: string }> = []
  private readonly rtt: RttTracker
  port = 0
  /** Suspicions this node raised, for the 'dead' notice when they run out. */
  private readonly accused = new Set<string>()

  constructor (init: LivenessInit, host: LivenessHost) {
    this.init = init
    this.host = host
    this.rtt = new RttTracker({ everyMs: init.rttEveryMs })
    this.fd = new FailureDetector(init.selfId, init.detector, Math.random, () => randomBytes(8).toString('hex'))
    this.sock = new ProbeSocket({
      port: init.port,
      key: probeKey(init.meshKey),
      log: init.log,
      onMessage: (from, msg) => {
        // in the overlay, a probe must come from a member's overlay address (the tunnel vouches for it)
        if (this.init.via === 'overlay' && !this.memberIps.has(from.slice(0, from.lastIndexOf(':')))) return
        if (msg.type === 'ack') this.rtt.acked(msg.nonce, from, this.byAddr.get(from))
        this.apply(this.fd.receive(this.host.now(), from, msg, (a) => this.byAddr.has(a)))
      }
    })
  }

  get watching (): string[] { return this.fd.watching() }
  get socket (): ProbeSocket { return this.sock }

  async start (): Promise<number> {
    this.port = await this.sock.start()
    return this.port
  }

  /** The membership changed: recompute who is watched and where they listen. */
  membersChanged (): void {
    const table = this.host.table()
    const targets: ProbeTarget[] = []
    this.byAddr = new Map()
    this.memberIps = new Set()
    this.rttTargets = []
    for (const m of table.all()) {
      if (m.status === 'left' || m.record.nodeId === this.init.selfId || m.conflict !== undefined) continue
      const addr = probeAddr(m.record, this.init.via)
      if (addr === undefined) continue
      this.byAddr.set(addr, m.record.nodeId)
      this.memberIps.add(m.record.ipv4)
      if (m.status === 'alive') this.rttTargets.push({ nodeId: m.record.nodeId, addr })
      targets.push({ nodeId: m.record.nodeId, addr, firstSeen: m.firstSeen, state: m.status === 'dead' ? 'dead' : m.suspect !== undefined ? 'suspect' : 'alive' })
    }
    this.fd.setMembers(targets)
    this.rtt.retain(id => table.get(id) !== undefined)
  }

  tick (): void {
    this.apply(this.fd.tick(this.host.now()))
    const t = this.rtt.due(this.rttTargets)
    if (t !== undefined) this.send(t.addr, { type: 'ping', nonce: randomBytes(8).toString('hex') })
  }

  /** Members whose direct probes have gone unanswered (twice or more in a row), with since when. */
  unanswered (): Map<string, number> {
    return this.fd.unanswered()
  }

  /** The round-trip time to a member through its tunnel (median of its last 5 samples), if measured. */
  rttOf (nodeId: string): RttEstimate | undefined {
    return this.rtt.get(nodeId)
  }

  private send (to: string, msg: ProbeMessage): void {
    if (msg.type === 'ping') this.rtt.sent(msg.nonce, to)
    this.sock.send(to, msg)
  }

  private apply (effects: DetectorEffect[]): void {
    const table = this.host.table()
    for (const e of effects) {
      switch (e.kind) {
        case 'send': this.send(e.to, e.msg); break
        case 'alive': {
          const m = table.get(e.nodeId)
          if (m?.status === 'dead') this.host.deadAnswered(e.nodeId)
          table.proofOfLife(e.nodeId, this.host.now())
          break
        }
        case 'refute': this.host.refute(`a member's probe says it holds us suspect or dead (${e.from})`); break
        case 'suspect': {
          const m = table.get(e.nodeId)
          if (m === undefined) break
          this.init.log.debug('probes unanswered: suspecting', { peer: m.record.name, nodeId: e.nodeId })
          this.accused.add(e.nodeId)
          this.host.changed(table.suspect(e.nodeId, m.record.seq, this.init.selfId, this.host.now()))
          this.notice('suspect', e.nodeId, m.record.seq)
          break
        }
      }
    }
  }

  /** Our suspicion of `nodeId` ran out (table.tick said 'dead'): tell the others. */
  died (nodeId: string): void {
    if (!this.accused.delete(nodeId)) return
    const m = this.host.table().get(nodeId)
    if (m !== undefined) this.notice('dead', nodeId, m.record.seq)
  }

  private notice (k: 'suspect' | 'dead', node: string, seq: number): void {
    this.host.publishNotice(sealNotice(this.init.meshKey, this.init.signer, { k, node, seq }, new Uint8Array(randomBytes(24))))
  }

  /** Gossip validator of the notice topic. */
  onNotice (data: Uint8Array): 'accept' | 'reject' | 'ignore' {
    const r = openNotice(this.init.meshKey, data)
    if (!r.ok) return 'reject'
    const n = r.notice
    const table = this.host.table()
    if (table.get(n.by) === undefined) return 'ignore' // accusers must be members we know
    if (n.node === this.init.selfId) {
      // local health (Lifeguard): refute only while members' probes reach us; otherwise our
      // tunnels are the broken part, and a probe with `refute` will get through when they heal
      if (this.fd.reachable(this.host.now())) this.host.refute(`${n.k} notice from ${table.get(n.by)?.record.name ?? n.by}`)
      else this.init.log.warn('held suspect, but no member\'s probe has reached this node lately: not refuting until one does', { by: n.by })
      return 'accept'
    }
    const changes = n.k === 'suspect' ? table.suspect(n.node, n.seq, n.by, this.host.now()) : table.declareDead(n.node, n.seq)
    this.host.changed(changes)
    return 'accept'
  }

  /** We refuted an accusation: our own view may be the slow one (local health). */
  refuted (): void { this.fd.refuted() }

  /** Local health score of the detector (0 = healthy). */
  get localHealth (): number { return this.fd.localHealth }

  /** A newer record arrived: any pending probe verdict about it is moot. */
  recordArrived (nodeId: string): void {
    this.fd.forget(nodeId)
    this.accused.delete(nodeId)
  }

  async stop (): Promise<void> {
    await this.sock.close()
  }
}
