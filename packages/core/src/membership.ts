/**
 * The membership table: every member's latest record and its liveness, merged by seq.
 *
 * Pure: the clock comes in as `now` on every call, and changes come out as a list for the
 * caller to act on. Liveness rules:
 * - a newer record heard through gossip proves life now; one learned through sync (a table
 *   copied from another member) only proves life recently, so it counts as half-way to dead;
 * - silent for `deadAfterMs` → dead (still configured: its tunnels keep working, since the
 *   agent is not in the data path); silent for `expireAfterMs` → forgotten;
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
}

/** Why a record is refused by the table (after it was opened and decoded). */
export type TableRejectReason = 'replay' | 'clock-skew' | 'ip-outside-mesh' | 'ip-conflict' | 'wg-key-conflict'
/** Why a record is dropped without blame. */
export type TableIgnoreReason = 'duplicate' | 'self'

export type MemberChange =
  | { kind: 'joined' | 'updated' | 'alive' | 'dead' | 'left' | 'expired', nodeId: string }
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
   */
  check (r: NodeRecord, now: number, via: Via = 'gossip'): TableRejectReason | TableIgnoreReason | undefined {
    if (r.nodeId === this.selfId && via !== 'self') return 'self'
    const held = this.members.get(r.nodeId)
    if (held !== undefined) {
      if (r.seq === held.record.seq) return 'duplicate'
      if (r.seq < held.record.seq) return 'replay'
    }
    if (Math.abs(r.issuedAt - now) > this.settings.maxClockSkewMs) return 'clock-skew'
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
    const heard = via === 'sync' ? now - Math.floor(this.settings.deadAfterMs / 2) : now
    const lastHeard = Math.max(held?.lastHeard ?? -Infinity, heard)
    const status: MemberStatus = r.leaving === true ? 'left' : (now - lastHeard > this.settings.deadAfterMs ? 'dead' : 'alive')
    const m: Member = { record: r, sealed, lastHeard, status }
    this.members.set(r.nodeId, m)
    if (held === undefined) changes.push({ kind: status === 'left' ? 'left' : 'joined', nodeId: r.nodeId })
    else if (status === 'left' && held.status !== 'left') changes.push({ kind: 'left', nodeId: r.nodeId })
    else if (status === 'alive' && held.status !== 'alive') changes.push({ kind: 'alive', nodeId: r.nodeId })
    else changes.push({ kind: 'updated', nodeId: r.nodeId })
    if (status !== 'left') this.claim(m, changes)
    return changes
  }

  /** Advance the clock: mark the silent dead, forget the long gone. */
  tick (now: number): MemberChange[] {
    const changes: MemberChange[] = []
    for (const [id, m] of this.members) {
      if (id === this.selfId) continue
      const silent = now - m.lastHeard
      if (silent > this.settings.expireAfterMs) {
        this.release(m)
        this.members.delete(id)
        changes.push({ kind: 'expired', nodeId: id })
      } else if (m.status === 'alive' && silent > this.settings.deadAfterMs) {
        m.status = 'dead'
        changes.push({ kind: 'dead', nodeId: id })
      }
    }
    return changes
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
