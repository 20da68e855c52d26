/**
 * The one entry for sealed messages from the network (the gossip validator and sync): a
 * record is validated against the table and taken in, a revocation goes to certificate mode,
 * and every refusal is counted by reason. Returns gossipsub's verdict.
 */
import { validateMessage, type MemberChange, type Membership, type Via } from '@wgmesh/core'
import type { AgentMetrics } from './metrics.js'
import type { CertMode } from './cert-mode.js'
import type { Logger } from './logger.js'

export interface RecordIntakeHost {
  now: () => number
  stopped: () => boolean
  meshKey: () => Uint8Array
  table: () => Membership
  certs: () => CertMode | undefined
  metrics: AgentMetrics
  log: Logger
  /** Our own old record came back (state was lost): move past its seq. */
  ownSeqSeen: (seq: number) => void
  /** A member's record arrived (proof of life for the failure detector). */
  arrived: (nodeId: string) => void
  changed: (changes: MemberChange[]) => void
}

export function takeMessage (host: RecordIntakeHost, sealed: Uint8Array, via: Via): 'accept' | 'reject' | 'ignore' {
  if (host.stopped()) return 'ignore'
  const now = host.now()
  const table = host.table()
  const v = validateMessage(host.meshKey(), sealed, table, now)
  if (v.verdict === 'revocation') {
    const certs = host.certs()
    if (certs === undefined) { host.metrics.reject('schema'); return 'reject' }
    const r = certs.receive(v.token, via)
    if (r.verdict === 'reject') host.metrics.reject('revocation-invalid')
    return r.verdict
  }
  if (v.verdict === 'reject') {
    if (via === 'sync' && v.reason === 'replay') {
      host.metrics.ignored.inc({ reason: 'stale' })
      return 'ignore'
    }
    host.metrics.reject(v.reason)
    host.log.debug('record rejected', { reason: v.reason, detail: v.detail, via })
    return v.reason === 'replay' ? 'ignore' : 'reject'
  }
  if (v.verdict === 'ignore') {
    host.metrics.ignored.inc({ reason: v.reason })
    if (v.reason === 'self') host.ownSeqSeen(v.record.seq)
    return 'ignore'
  }
  host.metrics.accepted.inc({ via })
  host.arrived(v.record.nodeId)
  host.changed(table.accept(v.record, sealed, now, via))
  return 'accept'
}
