/**
 * This node's own record and when it goes out: a new seq only when it says something new
 * (or on the slow refresh, or to refute an accusation), publications at least
 * PUBLISH_MIN_GAP_MS apart (a burst of changes is one record), published again when it first
 * went to nobody (sealed afresh: gossipsub drops bytes it has seen for its seen-cache's 2
 * minutes), and an unchanged refresh every max(refreshMs, 1 min × members) — so what a node
 * receives from all refreshes stays bounded instead of growing with the mesh.
 */
import { randomBytes } from 'node:crypto'
import { encodeRecord, seal, type NodeRecord, type RecordSigner } from '@wgmesh/core'
import { nextSeq, sameContent } from './self-record.js'
import type { GossipNode } from './transport/index.js'
import type { Logger } from './logger.js'

/** Records are published at most this often. */
export const PUBLISH_MIN_GAP_MS = 250
/** A refutation at most this often (a flood of accusations costs one record per window). */
export const REFUTE_MIN_GAP_MS = 500

export interface OwnRecordHost {
  now: () => number
  log: Logger
  meshKey: Uint8Array
  signer: RecordSigner
  /** The record as it would be now (addresses, endpoints, NAT fields), with this seq. */
  build: (seq: number, now: number, leaving: boolean) => NodeRecord
  /** Take the sealed record into the table (as 'self'). */
  accept: (r: NodeRecord, sealed: Uint8Array, now: number) => void
  gossip: () => Pick<GossipNode, 'publish' | 'connectedPeers'> | undefined
  members: () => number
  refreshMs: number
  /** An accusation was refuted (local health: we may be the slow one). */
  refuted: () => { localHealth: number }
}

export class OwnRecord {
  private readonly host: OwnRecordHost
  seq: number
  private current?: NodeRecord
  private sealed?: Uint8Array
  /** The bytes last handed to gossip (the same bytes again would be a duplicate to gossipsub). */
  private published?: Uint8Array
  private lastPublish = 0
  private lastRefute = -Infinity
  /** The last publication reached nobody (false while one is on its way). */
  private unsent = false
  private publishTimer?: NodeJS.Timeout
  private refreshTimer?: NodeJS.Timeout
  private stopped = false

  constructor (host: OwnRecordHost, seqFloor: number) {
    this.host = host
    this.seq = nextSeq(seqFloor, host.now())
  }

  get record (): NodeRecord {
    if (this.current === undefined) throw new Error('own record not built yet')
    return this.current
  }

  /** A new record with a new seq, taken into the table (not published: see update/publish). */
  renew (leaving = false): Uint8Array {
    const now = this.host.now()
    this.seq = nextSeq(this.seq, now)
    this.current = this.host.build(this.seq, now, leaving)
    this.sealed = this.seal(this.current)
    this.host.accept(this.current, this.sealed, now)
    return this.sealed
  }

  /** Our old seq came back from the network (state was lost): move past it. */
  seen (seq: number): void {
    if (seq > this.seq) this.seq = seq
  }

  /** Rebuild; publish only if it says something new, or `force`. */
  update (force: boolean): void {
    if (this.stopped || this.current === undefined) return
    if (!force && sameContent(this.host.build(this.seq, this.host.now(), false), this.current)) return
    this.renew()
    this.schedulePublish()
  }

  /**
   * Every heartbeat: a changed record goes out; one that went to nobody goes out again once this
   * node has a gossip connection, as a new message (same record and seq, a new seal).
   */
  heartbeat (): void {
    this.update(false)
    if (!this.unsent || this.publishTimer !== undefined || this.current === undefined) return
    if ((this.host.gossip()?.connectedPeers().length ?? 0) === 0) return
    this.sealed = this.seal(this.current)
    void this.publish()
  }

  /** Someone holds us suspect or dead: a newer record (higher seq) refutes it everywhere. */
  refute (why: string): void {
    if (this.stopped || this.host.now() - this.lastRefute < REFUTE_MIN_GAP_MS) return
    this.lastRefute = this.host.now()
    const { localHealth } = this.host.refuted()
    this.host.log.info('refuting a suspicion with a newer record', { why, localHealth })
    this.update(true)
  }

  startRefresh (): void {
    if (this.stopped) return
    const base = Math.max(this.host.refreshMs, this.host.members() * 60_000)
    this.refreshTimer = setTimeout(() => { this.update(true); this.startRefresh() }, Math.round(base * (0.75 + 0.5 * Math.random())))
    this.refreshTimer.unref()
  }

  async publish (): Promise<void> {
    const gossip = this.host.gossip()
    if (this.sealed === undefined || gossip === undefined || this.stopped || this.sealed === this.published) return
    this.published = this.sealed
    this.lastPublish = this.host.now()
    this.unsent = false
    try {
      // nobody subscribed yet (still connecting): publish again once somebody has
      this.unsent = (await gossip.publish(this.sealed)) === 0
    } catch (err) {
      this.unsent = true
      this.host.log.debug('publish failed', { error: (err as Error).message })
    }
  }

  private seal (r: NodeRecord): Uint8Array {
    return seal(this.host.meshKey, this.host.signer, encodeRecord(r), new Uint8Array(randomBytes(24)))
  }

  private schedulePublish (): void {
    if (this.publishTimer !== undefined) return
    const wait = Math.max(0, this.lastPublish + PUBLISH_MIN_GAP_MS - this.host.now())
    if (wait === 0) { void this.publish(); return }
    this.publishTimer = setTimeout(() => { this.publishTimer = undefined; void this.publish() }, wait)
    this.publishTimer.unref()
  }

  /** No more publications (leave publishes its departure itself, before this). */
  stop (): void {
    this.stopped = true
    clearTimeout(this.publishTimer)
    clearTimeout(this.refreshTimer)
  }
}
