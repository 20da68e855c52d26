/**
 * The one gate every record from the network passes: open (size, mesh key, signature), decode
 * (JSON, schema), bind (the signer is the nodeId the record names), then the table's checks
 * (seq, clock skew, mesh ranges, address/key contests). Never throws; returns a reason.
 */
import { open } from './envelope.js'
import { decodeRecord } from './record.js'
import { revocationOfMessage } from './revocation.js'
import type { Membership, TableIgnoreReason, TableRejectReason } from './membership.js'
import type { NodeRecord } from './types.js'

export type RejectReason =
  | 'oversize' | 'decrypt' | 'malformed' | 'signature' | 'schema' | 'node-id-mismatch'
  | TableRejectReason
  /** Certificate mode: a sealed revocation that is not this CA's, forged or malformed. */
  | 'revocation-invalid'

/** Every reason, for metrics that should show zeroes too. */
export const REJECT_REASONS: readonly RejectReason[] = [
  'oversize', 'decrypt', 'malformed', 'signature', 'schema', 'node-id-mismatch',
  'replay', 'clock-skew', 'ip-outside-mesh', 'ip-conflict', 'wg-key-conflict',
  'table-full', 'departures-full', 'new-member-rate',
  'revoked', 'cert-missing', 'cert-invalid', 'cert-expired', 'cert-mismatch', 'revocation-invalid'
]

export type ValidationResult =
  | { verdict: 'accept', record: NodeRecord }
  | { verdict: 'ignore', reason: TableIgnoreReason, record: NodeRecord }
  | { verdict: 'reject', reason: RejectReason, detail?: string }

/** A sealed message on the records channel: a record, or (certificate mode) a revocation a member passes on. */
export type MessageResult = ValidationResult | { verdict: 'revocation', token: string }

export function validateSealed (meshKey: Uint8Array, sealed: Uint8Array, table: Membership, now: number): ValidationResult {
  const v = validateMessage(meshKey, sealed, table, now)
  return v.verdict === 'revocation' ? { verdict: 'reject', reason: 'schema', detail: 'a revocation, not a record' } : v
}

/**
 * Like `validateSealed`, but a sealed revocation (`{"revocation": token}`) comes out as such,
 * unverified: the caller checks it against its CA (revocation.ts).
 */
export function validateMessage (meshKey: Uint8Array, sealed: Uint8Array, table: Membership, now: number): MessageResult {
  const opened = open(meshKey, sealed)
  if (!opened.ok) return { verdict: 'reject', reason: opened.reason }
  const token = revocationOfMessage(opened.payload)
  if (token !== undefined) return { verdict: 'revocation', token }
  const decoded = decodeRecord(opened.payload)
  if (!decoded.ok) return { verdict: 'reject', reason: decoded.reason, detail: decoded.detail }
  const record = decoded.record
  if (record.nodeId !== opened.signerId) return { verdict: 'reject', reason: 'node-id-mismatch' }
  const why = table.check(record, now)
  if (why === 'duplicate' || why === 'self') return { verdict: 'ignore', reason: why, record }
  if (why !== undefined) return { verdict: 'reject', reason: why }
  return { verdict: 'accept', record }
}
