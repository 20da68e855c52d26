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
 * Holdings (holdings.ts): an overlay address or WireGuard key belongs to the first member this
 * table accepted with it, until that member leaves, expires or moves off it. A record claiming a
 * value held by another member is refused (`ip-conflict`, `wg-key-conflict`), whatever its
 * `ipSince` or nodeId say. The one exception: while this node's own address is provisional
 * (claimed in this run, and within `claimSettleMs` of its first contact with the mesh), an
 * older claim by a holder it had never heard of takes it, and this node moves (`conflict-lost`
 * for itself).
 * Certificate mode (`certs`, cert-trust.ts): a record must carry a valid certificate of the
 * mesh's CA naming its name and (where the certificate names them) its addresses, and its node
 * must not be revoked; an address a certificate names goes to that member, from a holder whose
 * certificate does not name it; a member is removed when its certificate expires or its node is
 * revoked (`revoke`), and a revoked node's records are refused from then on (`revoked`).
 * Bounds: at most `maxMembers` members that have not left, `maxDeparted` tombstones, and
 * never-seen nodeIds at `newMembersPerMinute` after a burst; what does not fit is refused
 * (`table-full`, `departures-full`, `new-member-rate`), or, for the tombstone of a member that
 * leaves while the tombstones are full, the shortest-lived tombstone is forgotten.
 */
import { NewMemberRate } from './admission.js'
import { Holdings, type Contest } from './holdings.js'
import { certGrants, type CertRejectReason, type CertTrust } from './cert-trust.js'
import { issuedAfter } from './cert.js'
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
export type TableRejectReason = 'replay' | 'clock-skew' | 'ip-outside-mesh' | 'ip-conflict' | 'wg-key-conflict' |
'table-full' | 'departures-full' | 'new-member-rate' | CertRejectReason
/** Why the table forgot a record before its time (counted in `drops()`). */
export type TableDropReason = 'departure-evicted'
/** Why a record is dropped without blame. */
export type TableIgnoreReason = 'duplicate' | 'self'

export type MemberChange =
  | { kind: 'joined' | 'updated' | 'alive' | 'dead' | 'left' | 'expired' | 'suspect' | 'revoked', nodeId: string }
  | { kind: 'conflict-lost', nodeId: string, what: 'ip' | 'wg-key', winner: string }

export type Via = 'gossip' | 'sync' | 'self'

/** An own address counts as claimed in this run if its `ipSince` is at most this much before the run's first own record. */
const FRESH_CLAIM_SLACK_MS = 60_000
/** A provisional own address gives way at most this many times per run (a chase ends here). */
export const MAX_OWN_MOVES = 3

export interface MembershipInit {
  selfId: string
  settings: MeshSettings
  ula: Cidr
  /** Certificate mode: the CA's trust (certificates, revocations). Absent: shared-key mode. */
  certs?: CertTrust
}

export class Membership {
  readonly selfId: string
  private readonly settings: MeshSettings
  private readonly ula: Cidr
  private readonly members = new Map<string, Member>()
  /** Members tick() must look at: suspects, the dead and the left (an alive member needs no timer). */
  private readonly pending = new Set<string>()
  /** Who holds which address and key, in this table's order of events. */
  private readonly holdings = new Holdings()
  private readonly newMembers: NewMemberRate
  /** Members with status 'left' (tombstones). */
  private leftCount = 0
  /** Our clock when the own record first entered (this run). */
  private startedAt: number | undefined
  /** Our clock when another member's record first entered. */
  private firstContact: number | undefined
  /** Times this node gave its own address up to an earlier holder (this run). */
  private yields = 0
  private readonly dropCounts = new Map<TableDropReason, number>()
  private readonly certs: CertTrust | undefined
  /** Certificate mode: the earliest notAfter among members' certificates (tick removes the expired). */
  private nextCertExpiry = Infinity

  constructor (init: MembershipInit) {
    this.selfId = init.selfId
    this.settings = init.settings
    this.ula = init.ula
    this.certs = init.certs
    this.newMembers = new NewMemberRate(init.settings.newMembersPerMinute, init.settings.newMembersBurst)
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

  /** Records the table forgot before their time, by reason. */
  drops (): Record<string, number> { return Object.fromEntries(this.dropCounts) }

  /** The IPv4 holder (who keeps it against any newer claim). */
  ipv4Holder (ipv4: string): string | undefined { return this.holdings.ipv4Holder(ipv4) }

  /**
   * Would this record be taken? Returns a reason when not. `via: 'self'` skips the self guard.
   * Old records are fine (records go out only when they change); records from the future are not.
   */
  check (r: NodeRecord, now: number, via: Via = 'gossip'): TableRejectReason | TableIgnoreReason | undefined {
    if (r.nodeId === this.selfId && via !== 'self') return 'self'
    if (this.certs?.revoked(r.nodeId) === true) return 'revoked'
    const held = this.members.get(r.nodeId)
    if (held !== undefined) {
      if (r.seq === held.record.seq) return 'duplicate'
      if (r.seq < held.record.seq) return 'replay'
    }
    const cert = this.certs?.check(r, now, this.settings.maxClockSkewMs)
    if (cert !== undefined) return cert
    if (r.issuedAt - now > this.settings.maxClockSkewMs) return 'clock-skew'
    const bound = this.admission(r, held, now)
    if (bound !== undefined) return bound
    if (r.leaving === true) return undefined // a departure needs no address checks
    const v4 = parseIPv4(r.ipv4)
    const c = this.settings.cidr4
    const last = c.base + (1n << BigInt(32 - c.prefix)) - 1n
    if (v4 === undefined || !cidrContainsText(c, r.ipv4) || v4 === c.base || v4 === last) return 'ip-outside-mesh'
    if (!cidrContainsText(this.ula, r.ipv6)) return 'ip-outside-mesh'
    for (const k of this.holdings.contests(r)) {
      if (this.certWins(r, k)) continue
      if (k.what === 'ip' && k.holder === this.selfId && held === undefined && this.ownAddressGivesWay(r, k, now)) continue
      return k.what === 'ip' ? 'ip-conflict' : 'wg-key-conflict'
    }
    return undefined
  }

  /** The bounds on what a member can make us store (none for our own record). */
  private admission (r: NodeRecord, held: Member | undefined, now: number): TableRejectReason | undefined {
    if (r.nodeId === this.selfId) return undefined
    const leaving = r.leaving === true
    if (held === undefined && leaving && this.leftCount >= this.settings.maxDeparted) return 'departures-full'
    const entering = held === undefined || held.status === 'left'
    if (entering && !leaving && this.members.size - this.leftCount >= this.settings.maxMembers) return 'table-full'
    if (held === undefined && !this.newMembers.available(now)) return 'new-member-rate'
    return undefined
  }

  /**
   * Our own address gives way to a holder `r` we had not heard of only while it is provisional:
   * claimed in this run (not restored from an earlier one), within `claimSettleMs` of our first
   * contact with the mesh, at most `MAX_OWN_MOVES` times, and only to an older claim (`ipSince`,
   * then the lower nodeId: between two provisional claims one moves, not both; a claimant can
   * choose these values, but only ever against a node in this window). A joiner that finds its
   * address held when it learns the table moves; a member already holding its address never does.
   */
  private ownAddressGivesWay (r: NodeRecord, k: Contest, now: number): boolean {
    const self = this.members.get(this.selfId)
    if (self === undefined || this.startedAt === undefined || this.yields >= MAX_OWN_MOVES) return false
    const own = self.record
    if (certGrants(this.certs?.certOf(own), k.key)) return false // the CA gave it to us
    if (own.ipSince < this.startedAt - FRESH_CLAIM_SLACK_MS) return false
    if (r.ipSince > own.ipSince || (r.ipSince === own.ipSince && r.nodeId > own.nodeId)) return false
    return this.firstContact === undefined || now - this.firstContact <= this.settings.claimSettleMs
  }

  /**
   * Certificate mode: `r`'s certificate names the address another member holds, and the
   * holder's does not (or names it in an older certificate): the CA's word beats a claim.
   */
  private certWins (r: NodeRecord, k: Contest): boolean {
    if (this.certs === undefined || k.what !== 'ip') return false
    const mine = this.certs.certOf(r)
    if (!certGrants(mine, k.key)) return false
    const holder = this.members.get(k.holder)
    const theirs = holder === undefined ? undefined : this.certs.certOf(holder.record)
    return !certGrants(theirs, k.key) || issuedAfter(mine!, theirs!)
  }

  /**
   * Take a record already opened, decoded and passed by `check`. Returns what changed.
   */
  accept (r: NodeRecord, sealed: Uint8Array, now: number, via: Via): MemberChange[] {
    const changes: MemberChange[] = []
    const held = this.members.get(r.nodeId)
    if (held !== undefined) this.holdings.release(held.record)
    const self = r.nodeId === this.selfId
    if (self) this.startedAt ??= now
    else {
      this.firstContact ??= now
      if (held === undefined) this.newMembers.take(now)
    }
    const deadSeq = held?.deadSeq
    const heldDead = deadSeq !== undefined && r.seq <= deadSeq
    const status: MemberStatus = r.leaving === true ? 'left' : (heldDead ? 'dead' : 'alive')
    // a record received through gossip was just published: proof of life now; one from a sync
    // may be old, so it only counts for its first appearance (so that it can expire)
    const lastHeard = via === 'sync' ? (held?.lastHeard ?? now) : now
    const m: Member = { record: r, sealed, lastHeard, status, firstSeen: held?.firstSeen ?? now }
    if (deadSeq !== undefined) m.deadSeq = deadSeq
    this.members.set(r.nodeId, m)
    this.leftCount += (status === 'left' ? 1 : 0) - (held?.status === 'left' ? 1 : 0)
    if (status === 'alive') this.pending.delete(r.nodeId)
    else this.pending.add(r.nodeId)
    if (held === undefined) changes.push({ kind: status === 'left' ? 'left' : status === 'dead' ? 'dead' : 'joined', nodeId: r.nodeId })
    else if (status === 'left' && held.status !== 'left') changes.push({ kind: 'left', nodeId: r.nodeId })
    else if (status === 'alive' && held.status !== 'alive') changes.push({ kind: 'alive', nodeId: r.nodeId })
    else if (status === 'dead' && held.status !== 'dead') changes.push({ kind: 'dead', nodeId: r.nodeId })
    else changes.push({ kind: 'updated', nodeId: r.nodeId })
    if (status !== 'left') this.claim(m, changes)
    else if (this.leftCount > this.settings.maxDeparted) this.evictDeparted(r.nodeId, changes)
    if (!self) this.nextCertExpiry = Math.min(this.nextCertExpiry, this.certs?.certOf(r)?.notAfter ?? Infinity)
    return changes
  }

  /**
   * Certificate mode: the CA revoked `nodeId` (the caller keeps the revocation in the trust's
   * set, so its records are refused from now on). Forget it at once: no tombstone is needed.
   */
  revoke (nodeId: string): MemberChange[] {
    if (nodeId === this.selfId || !this.members.has(nodeId)) return []
    this.remove(nodeId)
    return [{ kind: 'revoked', nodeId }]
  }

  private remove (id: string): void {
    const m = this.members.get(id)
    if (m === undefined) return
    this.holdings.release(m.record)
    if (m.status === 'left') this.leftCount--
    this.members.delete(id)
    this.pending.delete(id)
  }

  /** Certificate mode: members whose certificate expired (beyond the skew tolerance) are forgotten. */
  private expireCerts (now: number, changes: MemberChange[]): void {
    if (this.certs === undefined || now <= this.nextCertExpiry + this.settings.maxClockSkewMs) return
    let next = Infinity
    for (const m of [...this.members.values()]) {
      if (m.record.nodeId === this.selfId) continue
      const notAfter = this.certs.certOf(m.record)?.notAfter
      if (notAfter === undefined) continue
      if (now > notAfter + this.settings.maxClockSkewMs) {
        this.remove(m.record.nodeId)
        changes.push({ kind: 'expired', nodeId: m.record.nodeId })
      } else next = Math.min(next, notAfter)
    }
    this.nextCertExpiry = next
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
        this.remove(id)
        changes.push({ kind: 'expired', nodeId: id })
      } else if (m.status === 'alive' && m.suspect !== undefined && now - m.suspect.since >= this.suspicionTimeout(m.suspect.accusers.size)) {
        changes.push(...this.declareDead(id, m.record.seq))
      }
    }
    this.expireCerts(now, changes)
    return changes
  }

  /** (nodeId, seq, dead) of every member, sorted by nodeId: what a sync exchanges first. */
  digest (): DigestEntry[] {
    const out: DigestEntry[] = []
    for (const m of this.members.values()) out.push({ nodeId: m.record.nodeId, seq: m.record.seq, dead: m.status === 'dead' })
    return out.sort((a, b) => (a.nodeId < b.nodeId ? -1 : a.nodeId > b.nodeId ? 1 : 0))
  }

  /**
   * The sealed records of `ids` in the order a sync sends them: our own first, then live members
   * (the longest known first), then the dead, then tombstones. A sync message carries at most
   * 4096 records, so a flood of junk (tombstones or new identities) cannot crowd out a live
   * member, however many records there are.
   */
  sealedInSyncOrder (ids: Iterable<string>): Uint8Array[] {
    const rank = (m: Member): number => m.record.nodeId === this.selfId ? 0 : m.status === 'left' ? 4 : m.conflict !== undefined ? 3 : m.status === 'dead' ? 2 : 1
    const ms: Member[] = []
    for (const id of ids) { const m = this.members.get(id); if (m !== undefined) ms.push(m) }
    return ms.sort((a, b) => rank(a) - rank(b) || a.firstSeen - b.firstSeen).map(m => m.sealed)
  }

  /** Sealed records to hand a peer in sync (tombstones included, so departures spread), in sync order. */
  sealedRecords (): Uint8Array[] {
    return this.sealedInSyncOrder(this.members.keys())
  }

  /**
   * Take the values of `m`'s record that are free. A value held by this node itself goes to the
   * newcomer only when `check` let it (our provisional address gave way): we release our
   * addresses and are told to move (`conflict-lost`). A value held by another member stays its
   * own; a record that does not hold all it claims (only when accepted without `check`) is
   * marked in conflict and left out of the plan.
   */
  private claim (m: Member, changes: MemberChange[]): void {
    const r = m.record
    if (r.nodeId !== this.selfId) {
      for (const k of this.holdings.contests(r)) {
        const byCert = this.certWins(r, k)
        if (k.what !== 'ip' || (k.holder !== this.selfId && !byCert)) continue
        const loser = this.members.get(k.holder)
        if (loser === undefined || loser.conflict !== undefined) continue
        this.holdings.releaseAddresses(loser.record)
        loser.conflict = 'ip'
        if (k.holder === this.selfId && !byCert) this.yields++
        changes.push({ kind: 'conflict-lost', nodeId: k.holder, what: 'ip', winner: r.nodeId })
      }
    }
    this.holdings.take(r)
    if (r.nodeId !== this.selfId && !this.holdings.holdsAll(r)) {
      const k = this.holdings.contests(r)[0]!
      this.holdings.release(r)
      m.conflict = k.what
      changes.push({ kind: 'conflict-lost', nodeId: r.nodeId, what: k.what, winner: k.holder })
    }
  }

  /**
   * Too many tombstones: forget the shortest-lived one (the least time between joining and
   * leaving; a junk identity that never lived goes first), never `keep` (just arrived).
   */
  private evictDeparted (keep: string, changes: MemberChange[]): void {
    let victim: Member | undefined
    for (const m of this.members.values()) {
      if (m.status !== 'left' || m.record.nodeId === keep) continue
      if (victim === undefined) { victim = m; continue }
      const d = (m.lastHeard - m.firstSeen) - (victim.lastHeard - victim.firstSeen)
      if (d < 0 || (d === 0 && m.lastHeard < victim.lastHeard)) victim = m
    }
    if (victim === undefined) return
    const id = victim.record.nodeId
    this.members.delete(id)
    this.pending.delete(id)
    this.leftCount--
    this.dropCounts.set('departure-evicted', (this.dropCounts.get('departure-evicted') ?? 0) + 1)
    changes.push({ kind: 'expired', nodeId: id })
  }
}
