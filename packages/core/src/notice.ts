/**
 * Liveness notices gossiped beside records: "I suspect X (at its record seq)" and "X is dead
 * (its suspicion ran out)". Sealed like records (mesh key + the accuser's signature), so only
 * members can accuse, each under its own name. Decoding never throws; it says why.
 */
import { open, seal, type RecordSigner } from './envelope.js'
import { fromBase64Url } from './keys.js'

export interface LivenessNotice {
  v: 1
  k: 'suspect' | 'dead'
  /** The accused member. */
  node: string
  /** The accused member's record seq the accusation is about. */
  seq: number
  /** The accuser (equals the signer). */
  by: string
}

/** Bytes of a sealed notice: far below a record. */
export const MAX_NOTICE_BYTES = 512

export function sealNotice (meshKey: Uint8Array, signer: RecordSigner, n: Omit<LivenessNotice, 'v' | 'by'>, nonce: Uint8Array): Uint8Array {
  const body: LivenessNotice = { v: 1, k: n.k, node: n.node, seq: n.seq, by: signer.nodeId }
  return seal(meshKey, signer, new TextEncoder().encode(JSON.stringify(body)), nonce)
}

export type NoticeResult = { ok: true, notice: LivenessNotice } | { ok: false, reason: string }

export function openNotice (meshKey: Uint8Array, sealed: Uint8Array): NoticeResult {
  const o = open(meshKey, sealed, MAX_NOTICE_BYTES)
  if (!o.ok) return { ok: false, reason: o.reason }
  let x: unknown
  try {
    x = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(o.payload))
  } catch {
    return { ok: false, reason: 'malformed' }
  }
  if (typeof x !== 'object' || x === null || Array.isArray(x)) return { ok: false, reason: 'schema' }
  const n = x as Record<string, unknown>
  if (Object.keys(n).some(k => !['v', 'k', 'node', 'seq', 'by'].includes(k))) return { ok: false, reason: 'schema' }
  if (n.v !== 1 || (n.k !== 'suspect' && n.k !== 'dead')) return { ok: false, reason: 'schema' }
  if (typeof n.node !== 'string' || fromBase64Url(n.node)?.length !== 32) return { ok: false, reason: 'schema' }
  if (!Number.isSafeInteger(n.seq) || (n.seq as number) < 1) return { ok: false, reason: 'schema' }
  if (n.by !== o.signerId) return { ok: false, reason: 'node-id-mismatch' }
  return { ok: true, notice: n as unknown as LivenessNotice }
}
