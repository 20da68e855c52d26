/**
 * What a table in certificate mode believes of a record (used by `Membership.check`): the node
 * is not revoked, the record carries a certificate of this mesh's CA issued to the record's
 * signer, valid now (± the records' clock-skew tolerance), and the record's name and overlay
 * addresses are the ones the certificate names (addresses only where it names them). Pure:
 * time comes in as `now`. Verified tokens are cached (the same certificate rides on every
 * record of its node), so a record costs one signature check per certificate, not per record.
 */
import { certTimeFailure, verifyCertSignature, type CertFailure, type NodeCert } from './cert.js'
import { RevocationSet } from './revocation.js'
import type { CaPublic } from './ca.js'
import type { NodeRecord } from './types.js'

/** Why a table in certificate mode refuses a record. */
export type CertRejectReason = 'revoked' | 'cert-missing' | 'cert-invalid' | 'cert-expired' | 'cert-mismatch'

const CACHE_MAX = 8192

export class CertTrust {
  readonly ca: CaPublic
  readonly revocations: RevocationSet
  private readonly cache = new Map<string, { cert: NodeCert } | { reason: CertFailure, detail: string }>()
  /** Why the last refused record was refused (for a debug log line). */
  lastDetail = ''

  constructor (ca: CaPublic, maxRevocations?: number) {
    this.ca = ca
    this.revocations = new RevocationSet(ca, maxRevocations)
  }

  /** The certificate of a token, verified (shape, CA, signature), cached; time is not checked. */
  private verified (token: string): { cert: NodeCert } | { reason: CertFailure, detail: string } {
    let v = this.cache.get(token)
    if (v === undefined) {
      const r = verifyCertSignature(token, this.ca)
      v = r.ok ? { cert: r.cert } : { reason: r.reason, detail: r.detail }
      if (this.cache.size >= CACHE_MAX) this.cache.clear()
      this.cache.set(token, v)
    }
    return v
  }

  revoked (nodeId: string): boolean { return this.revocations.has(nodeId) }

  /** Whether `r` may enter a table at `now` in certificate mode; the reason when not. */
  check (r: NodeRecord, now: number, skewMs: number): CertRejectReason | undefined {
    if (this.revocations.has(r.nodeId)) return this.refuse('revoked', 'the CA revoked this node')
    if (r.cert === undefined) return this.refuse('cert-missing', 'no certificate in the record')
    const v = this.verified(r.cert)
    if ('reason' in v) return this.refuse('cert-invalid', `${v.reason}: ${v.detail}`)
    const c = v.cert
    if (c.nodeId !== r.nodeId) return this.refuse('cert-invalid', `certificate of ${c.nodeId}, record of ${r.nodeId}`)
    const t = certTimeFailure(c, now, skewMs)
    if (t !== undefined) return this.refuse('cert-expired', t.detail)
    if (c.name !== r.name) return this.refuse('cert-mismatch', `name '${r.name}', certificate says '${c.name}'`)
    if (r.leaving === true) return undefined
    if (c.ipv4 !== undefined && c.ipv4 !== r.ipv4) return this.refuse('cert-mismatch', `ipv4 ${r.ipv4}, certificate says ${c.ipv4}`)
    if (c.ipv6 !== undefined && c.ipv6 !== r.ipv6) return this.refuse('cert-mismatch', `ipv6 ${r.ipv6}, certificate says ${c.ipv6}`)
    return undefined
  }

  /** The verified certificate `r` carries, if any (after `check` passed it). */
  certOf (r: NodeRecord): NodeCert | undefined {
    if (r.cert === undefined) return undefined
    const v = this.verified(r.cert)
    return 'cert' in v && v.cert.nodeId === r.nodeId ? v.cert : undefined
  }

  private refuse (reason: CertRejectReason, detail: string): CertRejectReason {
    this.lastDetail = detail
    return reason
  }
}

/** Whether `cert` names the overlay address behind holding key `key` ("v4:…", "v6:…"). */
export function certGrants (cert: NodeCert | undefined, key: string): boolean {
  if (cert === undefined) return false
  return (cert.ipv4 !== undefined && key === `v4:${cert.ipv4}`) || (cert.ipv6 !== undefined && key === `v6:${cert.ipv6}`)
}
