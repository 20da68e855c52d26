/**
 * The membership table: every member's latest record and its liveness, merged by seq.
 *
 * Pure: the clock comes in as `now` on every call, and changes come out as a list for the
 * caller to act on. Records go out when they change, not as heartbeats, so silence means
 * nothing here: liveness comes from the failure detector (failure-detector.ts) as SWIM has it:
 * - `suspect(id, seq, accuser)`: a member's probes went unanswered. It stays alive (and in the
 *   plan) for a suspicion timeout that shrinks from `suspicionMaxMs` towards `suspicionMinMs`
 *   as independent accusers confirm it (Lifeguard); then it is dead;
 * - `declareDead(id, seq)`: another member's suspicion ran out. A dead mark covers the
 *   member's records up to that seq, travels in sync digests, and only a newer record (the
 *   member refuting) makes it alive again;
 * - dead members stay configured (their tunnels keep working: the agent is not in the data
 *   path) and are forgotten `expireAfterMs` after their last proof of life;
 * - a record with `leaving` → left at once (removed from the plan), kept as a tombstone until
 *   expiry so an older copy cannot resurrect it.
 * Address contests: an incoming record that loses a contest (see `claimWins`) is rejected; one
 * that wins marks the current holder `conflict`, excluded from the plan until it re-addresses.
 */
import { claimWins } from './addressing.js'
import { cidrContainsText, parseIPv4, type Cidr } from './ip.js'
import type { MeshSettings } from './settings.js'
import type { NodeRecord } from './types.js'

export type MemberStatus = 'alive' | 'dead' | 'left'

export interface Member {
  record: NodeRecord
  /** The record exactly as received (sealed), handed on in sync. */
  sealed: Uint8Array
  /** Our clock when we last had proof of life. */
  lastHeard: number
  status: MemberStatus
  /** Set when this member lost an address or key contest; cleared by its next record. */
  conflict?: 'ip' | 'wg-key'
  /** Our clock when this member first entered the table. */
  firstSeen: number
  /** Its probes went unanswered: dead at `since + timeout` unless it refutes. */
  suspect?: { since: number, accusers: Set<string> }
  /** Records with a seq up to this one are held dead (a dead mark, spread by sync). */
  deadSeq?: number
}

/** One member's entry in a sync digest: its record's seq and whether we hold that record dead. */
export interface DigestEntry { nodeId: string, seq: number, dead: boolean }

/** Why a record is refused by the table (after it was opened and decoded). */
export type TableRejectReason = 'replay' | 'clock-skew' | 'ip-outside-mesh' | 'ip-conflict' | 'wg-key-conflict'
/** Why a record is dropped without blame. */
export type TableIgnoreReason = 'duplicate' | 'self'

export type MemberChange =
  | { kind: 'joined' | 'updated' | 'alive' | 'dead' | 'left' | 'expired' | 'suspect', nodeId: string }
  | { kind: 'conflict-lost', nodeId: string, what: 'ip' | 'wg-key', winner: string }

export type Via = 'gossip' | 'sync' | 'self'

export interface MembershipInit {
  selfId: string
  settings: MeshSettings
  ula: Cidr
}

export class Membership {
  readonly selfId: string
  private readonly settings: MeshSettings
  private readonly ula: Cidr
  private readonly members = new Map<string, Member>()
  /** Members tick() must look at: suspects, the dead and the left (an alive member needs no timer). */
  private readonly pending = new Set<string>()
  /** Address and key owners among members that are not left and not in conflict. */
  private readonly owners = new Map<string, string>()

  constructor (init: MembershipInit) {
    this.selfId = init.selfId
    this.settings = init.settings
    this.ula = init.ula
  }

  get size (): number { return this.members.size }
  get (nodeId: string): Member | undefined { return this.members.get(nodeId) }
  all (): Member[] { return [...this.members.values()] }
  /** Members that count for the plan: not left, not expired. */
  active (): Member[] { return this.all().filter(m => m.status !== 'left') }

  /** Addresses currently owned by someone other than `except`. */
  takenIPv4 (except?: string): Set<string> {
    const out = new Set<string>()
    for (const m of this.members.values()) {
      if (m.status !== 'left' && m.conflict === undefined && m.record.nodeId !== except) out.add(m.record.ipv4)
    }
    return out
  }

  private ownerKey (kind: 'v4' | 'v6' | 'wg', v: string): string { return `${kind}:${v}` }

  /**
   * Would this record be taken? Returns a reason when not. `via: 'self'` skips the self guard.
   * Old records are fine (records go out only when they change); records from the future are not.
   */
  check (r: NodeRecord, now: number, via: Via = 'gossip'): TableRejectReason | TableIgnoreReason | undefined {
    if (r.nodeId === this.selfId && via !== 'self') return 'self'
    const held = this.members.get(r.nodeId)
    if (held !== undefined) {
      if (r.seq === held.record.seq) return 'duplicate'
      if (r.seq < held.record.seq) return 'replay'
    }
    if (r.issuedAt - now > this.settings.maxClockSkewMs) return 'clock-skew'
    if (r.leaving === true) return undefined // a departure needs no address checks
    const v4 = parseIPv4(r.ipv4)
    const c = this.settings.cidr4
    const last = c.base + (1n << BigInt(32 - c.prefix)) - 1n
    if (v4 === undefined || !cidrContainsText(c, r.ipv4) || v4 === c.base || v4 === last) return 'ip-outside-mesh'
    if (!cidrContainsText(this.ula, r.ipv6)) return 'ip-outside-mesh'
    for (const v of [this.ownerKey('v4', r.ipv4), this.ownerKey('v6', r.ipv6)]) {
      const owner = this.owners.get(v)
      if (owner !== undefined && owner !== r.nodeId) {
        const o = this.members.get(owner)!.record
        if (!claimWins(r, o)) return 'ip-conflict'
      }
    }
    const keyOwner = this.owners.get(this.ownerKey('wg', r.wgPublicKey))
    if (keyOwner !== undefined && keyOwner !== r.nodeId && keyOwner < r.nodeId) return 'wg-key-conflict'
    return undefined
  }

  /**
   * Take a record already opened, decoded and passed by `check`. Returns what changed.
   */
  accept (r: NodeRecord, sealed: Uint8Array, now: number, via: Via): MemberChange[] {
    const changes: MemberChange[] = []
    const held = this.members.get(r.nodeId)
    if (held !== undefined) this.release(held)
    const deadSeq = held?.deadSeq
    const heldDead = deadSeq !== undefined && r.seq <= deadSeq
    const status: MemberStatus = r.leaving === true ? 'left' : (heldDead ? 'dead' : 'alive')
    // a record received through gossip was just published: proof of life now; one from a sync
    // may be old, so it only counts for its first appearance (so that it can expire)
    const lastHeard = via === 'sync' ? (held?.lastHeard ?? now) : now
    const m: Member = { record: r, sealed, lastHeard, status, firstSeen: held?.firstSeen ?? now }
    if (deadSeq !== undefined) m.deadSeq = deadSeq
    this.members.set(r.nodeId, m)
    if (status === 'alive') this.pending.delete(r.nodeId)
    else this.pending.add(r.nodeId)
    if (held === undefined) changes.push({ kind: status === 'left' ? 'left' : status === 'dead' ? 'dead' : 'joined', nodeId: r.nodeId })
    else if (status === 'left' && held.status !== 'left') changes.push({ kind: 'left', nodeId: r.nodeId })
    else if (status === 'alive' && held.status !== 'alive') changes.push({ kind: 'alive', nodeId: r.nodeId })
    else if (status === 'dead' && held.status !== 'dead') changes.push({ kind: 'dead', nodeId: r.nodeId })
    else changes.push({ kind: 'updated', nodeId: r.nodeId })
    if (status !== 'left') this.claim(m, changes)
    return changes
  }

  /** An ack from the member's probe socket: its tunnel carries packets now. */
  proofOfLife (nodeId: string, now: number): void {
    const m = this.members.get(nodeId)
    if (m !== undefined && m.status === 'alive') m.lastHeard = now
  }

  /**
   * `accuser` found `nodeId` (at record `seq`) unreachable. Returns 'suspect' when it is newly
   * suspected. Stale accusations (an older seq: it already refuted) are ignored.
   */
  suspect (nodeId: string, seq: number, accuser: string, now: number): MemberChange[] {
    const m = this.members.get(nodeId)
    if (m === undefined || nodeId === this.selfId || m.status !== 'alive' || seq < m.record.seq) return []
    if (m.suspect === undefined) {
      m.suspect = { since: now, accusers: new Set([accuser]) }
      this.pending.add(nodeId)
      return [{ kind: 'suspect', nodeId }]
    }
    if (m.suspect.accusers.size < 64) m.suspect.accusers.add(accuser)
    return []
  }

  /** Another member's suspicion of `nodeId` (at `seq`) ran out, or a sync digest says so. */
  declareDead (nodeId: string, seq: number): MemberChange[] {
    const m = this.members.get(nodeId)
    if (m === undefined || nodeId === this.selfId || seq < m.record.seq) return []
    m.deadSeq = Math.max(m.deadSeq ?? 0, seq)
    delete m.suspect
    if (m.status !== 'alive') return []
    m.status = 'dead'
    this.pending.add(nodeId)
    return [{ kind: 'dead', nodeId }]
  }

  /** Lifeguard: each independent confirmation shortens the suspicion, down to the minimum. */
  suspicionTimeout (accusers: number): number {
    const { suspicionMaxMs: max, suspicionMinMs: min, observers } = this.settings
    const c = Math.max(0, accusers - 1)
    const frac = Math.log(c + 1) / Math.log(Math.max(2, observers) + 1)
    return Math.max(min, Math.round(max - (max - min) * Math.min(1, frac)))
  }

  /** Advance the clock: suspicions that ran out become dead; the long gone are forgotten. */
  tick (now: number): MemberChange[] {
    const changes: MemberChange[] = []
    for (const id of this.pending) {
      const m = this.members.get(id)
      if (m === undefined || id === this.selfId || (m.status === 'alive' && m.suspect === undefined)) { this.pending.delete(id); continue }
      if (m.status !== 'alive' && now - m.lastHeard > this.settings.expireAfterMs) {
        this.release(m)
        this.members.delete(id)
        this.pending.delete(id)
        changes.push({ kind: 'expired', nodeId: id })
      } else if (m.status === 'alive' && m.suspect !== undefined && now - m.suspect.since >= this.suspicionTimeout(m.suspect.accusers.size)) {
        changes.push(...this.declareDead(id, m.record.seq))
      }
    }
    return changes
  }

  /** (nodeId, seq, dead) of every member, sorted by nodeId: what a sync exchanges first. */
  digest (): DigestEntry[] {
    const out: DigestEntry[] = []
    for (const m of this.members.values()) out.push({ nodeId: m.record.nodeId, seq: m.record.seq, dead: m.status === 'dead' })
    return out.sort((a, b) => (a.nodeId < b.nodeId ? -1 : a.nodeId > b.nodeId ? 1 : 0))
  }

  /** Sealed records to hand a peer in sync (tombstones included, so departures spread). */
  sealedRecords (): Uint8Array[] {
    return this.all().map(m => m.sealed)
  }

  private release (m: Member): void {
    const r = m.record
    for (const k of [this.ownerKey('v4', r.ipv4), this.ownerKey('v6', r.ipv6), this.ownerKey('wg', r.wgPublicKey)]) {
      if (this.owners.get(k) === r.nodeId) this.owners.delete(k)
    }
  }

  private claim (m: Member, changes: MemberChange[]): void {
    const r = m.record
    const keys: Array<['ip' | 'wg-key', string]> = [
      ['ip', this.ownerKey('v4', r.ipv4)], ['ip', this.ownerKey('v6', r.ipv6)], ['wg-key', this.ownerKey('wg', r.wgPublicKey)]
    ]
    for (const [what, k] of keys) {
      const prev = this.owners.get(k)
      if (prev !== undefined && prev !== r.nodeId) {
        const loser = this.members.get(prev)
        if (loser !== undefined) {
          this.release(loser)
          loser.conflict = what
          changes.push({ kind: 'conflict-lost', nodeId: prev, what, winner: r.nodeId })
        }
      }
      this.owners.set(k, r.nodeId)
    }
  }
}
