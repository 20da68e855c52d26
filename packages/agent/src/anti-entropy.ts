/**
 * Anti-entropy beside gossip: the digest sync's view of the table (see @wgmesh/core
 * sync-digest.ts and transport/sync-protocol.ts) and when to run it — with a random gossip
 * peer soon after anything changed (a forming mesh or a joiner converges in a few rounds),
 * backing off to every 30 s while the tables agree (then a round costs two 32-byte hashes).
 */
import { decodeDigest, diffDigest, encodeDigest, tableHash, type DigestEntry, type Membership, type MemberChange } from '@wgmesh/core'
import { SyncProtocolError, type DigestSyncHandler, type DigestSyncResult } from './transport/index.js'

/**
 * This soon after a change; doubling to the maximum while tables agree. 1 s, not less: while a
 * fleet starts every table changes all the time, gossip already carries each record, and every
 * joiner's rounds go to its one connection, the seed (at 500 ms the seed answered ~14 syncs a
 * second; 8 agents on 2 cores reached a full mesh ~10 % sooner at 1 s, `run.sh 1 timeline`).
 */
export const SYNC_MIN_MS = 1000
/** Records of one exchange taken per event-loop turn (see {@link AntiEntropy.result}). */
export const TAKE_PER_TURN = 256
export const SYNC_MAX_MS = 30_000

export interface AntiEntropyHost {
  table: () => Membership
  selfId: () => string
  /** Our record's seq (a table that holds it dead at this seq or later is refuted). */
  selfSeq: () => number
  /** Validate and take a sealed record; 'accept' when it entered the table. */
  take: (sealed: Uint8Array) => 'accept' | 'reject' | 'ignore'
  changed: (changes: MemberChange[]) => void
  refute: (why: string) => void
  /** Spread a sealed record on gossip. */
  publish: (sealed: Uint8Array) => void
  /** One exchange with a random connected peer. */
  syncRandomPeer: () => Promise<void>
  /**
   * Certificate mode: revocations as digest entries (a revoked nodeId at the highest seq), so
   * tables that differ only by a revocation differ in hash too, and the sealed message of one.
   */
  extraDigest?: () => DigestEntry[]
  extraSealed?: (nodeId: string) => Uint8Array | undefined
}

export class AntiEntropy {
  private readonly host: AntiEntropyHost
  private timer?: NodeJS.Timeout
  private delay = SYNC_MIN_MS
  private lastRounds = 0
  private version = 0
  private stopped = false

  constructor (host: AntiEntropyHost) {
    this.host = host
  }

  /** What the transport asks during an exchange. */
  readonly handler: DigestSyncHandler = {
    hash: () => tableHash(this.digest()),
    digest: () => encodeDigest(this.digest()),
    recordsFor: (blobs) => {
      const theirs = decodeDigest(blobs)
      if (theirs === undefined) throw new SyncProtocolError('malformed digest')
      const table = this.host.table()
      const send = diffDigest(this.digest(), theirs).send
      // revocations first (few, and they remove members), then our own record and live
      // members: a message carries at most 4096 records, and a flood of junk (tombstones, dead
      // identities) must not crowd a live member out of it
      const extra = this.host.extraSealed === undefined ? [] : send.map(id => this.host.extraSealed!(id)).filter((s): s is Uint8Array => s !== undefined)
      return [...extra, ...table.sealedInSyncOrder(send)]
    }
  }

  /** The table's digest, with the revocations (certificate mode) merged in nodeId order. */
  private digest (): DigestEntry[] {
    const entries = this.host.table().digest()
    const extra = this.host.extraDigest?.() ?? []
    if (extra.length === 0) return entries
    const ids = new Set(extra.map(e => e.nodeId))
    return [...entries.filter(e => !ids.has(e.nodeId)), ...extra].sort((a, b) => (a.nodeId < b.nodeId ? -1 : a.nodeId > b.nodeId ? 1 : 0))
  }

  start (): void { this.schedule(SYNC_MIN_MS) }

  stop (): void {
    this.stopped = true
    clearTimeout(this.timer)
  }

  /** The table changed: the next round comes soon (moot rounds cost two hashes). */
  tableChanged (): void {
    this.version++
    if (this.delay > SYNC_MIN_MS && this.timer !== undefined) { this.delay = SYNC_MIN_MS; this.schedule(SYNC_MIN_MS) }
  }

  /**
   * A finished exchange (either end): take the records, then the other's dead marks. At most
   * {@link TAKE_PER_TURN} records per event-loop turn: one exchange may carry thousands (a
   * joiner's first sync in a large mesh, or a hostile member's flood), and taking them at once
   * held the loop for seconds (probes unanswered, streams not opened, timers late).
   */
  result (r: DigestSyncResult, from: string): void {
    this.lastRounds = r.rounds
    void this.take(r, from)
  }

  private async take (r: DigestSyncResult, from: string): Promise<void> {
    for (let i = 0; i < r.received.length; i++) {
      if (i > 0 && i % TAKE_PER_TURN === 0) {
        await new Promise(resolve => setImmediate(resolve))
        if (this.stopped) return
      }
      const rec = r.received[i]!
      // the remote's own record, new to us (a joiner that just synced with us, its seed): spread
      // it on gossip at once, instead of waiting for its own publish to find a gossip mesh.
      // Only the sync partner does this, so a join costs one extra broadcast, not one per member.
      if (this.host.take(rec) === 'accept' && this.host.table().all().some(m => m.sealed === rec && m.record.gossipAddrs.some(a => a.endsWith(`/p2p/${from}`)))) {
        this.host.publish(rec)
      }
    }
    if (r.remoteDigest.length === 0) return
    const table = this.host.table()
    for (const e of decodeDigest(r.remoteDigest) ?? []) {
      if (!e.dead) continue
      if (e.nodeId === this.host.selfId()) {
        if (e.seq >= this.host.selfSeq()) this.host.refute('a member\'s table holds this node dead')
        continue
      }
      this.host.changed(table.declareDead(e.nodeId, e.seq))
    }
  }

  private schedule (delayMs: number): void {
    if (this.stopped) return
    clearTimeout(this.timer)
    this.timer = setTimeout(() => {
      const version = this.version
      void this.host.syncRandomPeer().finally(() => {
        const busy = this.version !== version || this.lastRounds > 1
        this.delay = busy ? SYNC_MIN_MS : Math.min(SYNC_MAX_MS, this.delay * 2)
        this.schedule(this.delay)
      })
    }, delayMs)
    this.timer.unref()
  }
}
