/**
 * Certificate mode in the agent (`--ca`, `--cert`): this node's own certificate (checked at
 * start: a clear error instead of a node nobody accepts), its pinned name and addresses, the
 * relay role, expiry warnings, and the CA's revocations — taken from the control socket or
 * from members (gossip, sync), verified, kept in `<state-dir>/revocations.json`, acted on (the
 * revoked node leaves the table at once) and passed on. The rules themselves are core's
 * (cert.ts, revocation.ts, cert-trust.ts, Membership).
 */
import { readFileSync, statSync } from 'node:fs'
import {
  CertTrust, InvalidConfigError, certGrantsRoute, MAX_REVOCATION_CHARS, MAX_REVOCATIONS, cidrContainsText, decodeCaPublic, formatCidr,
  revocationMessage, verifyCert, verifyRevocation,
  type CaPublic, type Cidr, type DigestEntry, type MemberChange, type Membership, type NodeCert, type NodeRecord, type Revocation
} from '@wgmesh/core'
import type { CertInfo } from './info.js'
import type { Logger } from './logger.js'
import type { SelfAddressing } from './self-record.js'
import type { StateStore } from './state-store.js'

/** Warn this long before the own certificate expires. */
export const CERT_EXPIRY_WARN_MS = 7 * 86_400_000
/** How often expiry is looked at (and spent revocations dropped). */
const CHECK_EVERY_MS = 3_600_000
const REVOCATIONS_FILE = 'revocations.json'
const MAX_FILE_BYTES = 16 * 1024

export interface CertModeInit {
  caFile: string
  certFile: string
  nodeId: string
  /** `--name`, if given: must be the certificate's. */
  name?: string
  stateDir: string
  skewMs: number
  now: number
}

export interface CertModeHost {
  now: () => number
  log: Logger
  store: StateStore
  table: () => Membership
  changed: (changes: MemberChange[]) => void
  /** Seal a payload as a member (mesh key + node key). */
  seal: (payload: Uint8Array) => Uint8Array
  /** Spread a sealed message on gossip. */
  publish: (sealed: Uint8Array) => void
  /** Sync with every connected peer now (a revocation reaches them without waiting). */
  pushToPeers: () => void
  /** The CA revoked this node. */
  revokedSelf: (r: Revocation) => void
}

export type Via = 'gossip' | 'sync' | 'self' | 'control'
export type Intake = { verdict: 'accept' | 'ignore', revocation: Revocation, fresh: boolean } | { verdict: 'reject' | 'ignore', reason: string, detail: string }

function readSmall (file: string, what: string, fix: string): string {
  try {
    const st = statSync(file)
    if (!st.isFile() || st.size > MAX_FILE_BYTES) throw new Error(`not a file of at most ${MAX_FILE_BYTES} bytes`)
    return readFileSync(file, 'utf8')
  } catch (err) {
    throw new InvalidConfigError(`cannot read the ${what} ${file}: ${(err as Error).message}; ${fix}`)
  }
}

/** The CA of `--ca FILE`. */
export function readCaFile (file: string): CaPublic {
  const text = readSmall(file, 'CA file', '--ca takes the ca.pub that \'wgmesh ca init\' wrote (copy it to every host)')
  const d = decodeCaPublic(text)
  if (!d.ok) throw new InvalidConfigError(`${file}: ${d.why}; --ca takes the ca.pub that 'wgmesh ca init' wrote`)
  return d.ca
}

/**
 * This node's certificate from `--cert FILE`, checked as every other member will check it;
 * otherwise an error that says what to do.
 */
export function readOwnCert (init: CertModeInit, ca: CaPublic): { token: string, cert: NodeCert } {
  const sign = `on the CA host run 'wgmesh ca sign --ca-dir DIR --node-id ${init.nodeId} --name NAME --out FILE', copy FILE here and pass it with --cert`
  const token = readSmall(init.certFile, 'certificate', sign).trim()
  const v = verifyCert(token, ca, init.nodeId, init.now, init.skewMs)
  if (!v.ok) {
    const why = {
      oversize: 'it is too large to be a wgmesh certificate',
      malformed: `it is not a wgmesh certificate (${v.detail})`,
      signature: 'its CA signature does not verify against --ca (altered, or signed by another key)',
      'wrong-ca': `it was signed by another CA than --ca ${init.caFile}`,
      'node-id': `it was issued to another node (${v.detail}); this node's id, from the state directory ${init.stateDir}, is ${init.nodeId} ('wgmesh id' prints it)`,
      expired: `it ${v.detail}`,
      'not-yet-valid': `it is ${v.detail} (check this host's clock)`
    }[v.reason]
    throw new InvalidConfigError(`certificate ${init.certFile} cannot be used: ${why}. To get a valid one, ${sign}`)
  }
  if (init.name !== undefined && init.name !== v.cert.name) {
    throw new InvalidConfigError(`--name ${init.name} differs from the name certificate ${init.certFile} grants (${v.cert.name}): drop --name, or have the CA sign a certificate for ${init.name}`)
  }
  return { token, cert: v.cert }
}

export class CertMode {
  readonly trust: CertTrust
  readonly token: string
  readonly cert: NodeCert
  private readonly init: CertModeInit
  private host?: CertModeHost
  private readonly sealed = new Map<string, Uint8Array>()
  private timer?: NodeJS.Timeout
  private lastWarned = -Infinity

  /** Reads and checks --ca and --cert (throws what to do). */
  constructor (init: CertModeInit) {
    this.init = init
    const ca = readCaFile(init.caFile)
    const own = readOwnCert(init, ca)
    this.token = own.token
    this.cert = own.cert
    this.trust = new CertTrust(ca)
  }

  get grantsRelay (): boolean { return this.cert.roles.includes('relay') }

  /** Whether record `r`'s (verified) certificate lets it advertise `cidr`; our own record: our certificate. */
  grantsRoute (r: NodeRecord, cidr: string): boolean {
    const c = r.nodeId === this.cert.nodeId ? this.cert : this.trust.certOf(r)
    return c !== undefined && certGrantsRoute(c, cidr)
  }

  /** Our advertised routes must be granted by our certificate: a clear error at start otherwise. */
  checkOwnRoutes (routes: string[]): void {
    const refused = routes.filter(c => !certGrantsRoute(this.cert, c))
    if (refused.length === 0) return
    const granted = this.cert.roles.includes('gateway') ? (this.cert.routes ?? []).join(', ') || 'none' : 'none (no gateway role)'
    throw new InvalidConfigError(`--advertise-route ${refused.join(', ')}: not granted by this node's certificate ${this.init.certFile} (it grants: ${granted}); have the CA sign one with --route ${refused[0]!}`)
  }

  /** The addresses to use: the certificate's where it names them (they must be in the mesh ranges). */
  pin (a: SelfAddressing, cidr4: Cidr, ula: Cidr): SelfAddressing {
    const { ipv4, ipv6 } = this.cert
    if (ipv4 !== undefined && !cidrContainsText(cidr4, ipv4)) {
      throw new InvalidConfigError(`certificate ${this.init.certFile} grants IPv4 ${ipv4}, outside the mesh range ${formatCidr(cidr4)}: run with the mesh's --cidr, or have the CA sign one with an --ipv4 inside it`)
    }
    if (ipv6 !== undefined && !cidrContainsText(ula, ipv6)) {
      throw new InvalidConfigError(`certificate ${this.init.certFile} grants IPv6 ${ipv6}, outside this mesh's prefix ${formatCidr(ula)} (derived from the mesh key): have the CA sign one with an --ipv6 inside it, or none`)
    }
    return { ...a, ...(ipv4 === undefined ? {} : { ipv4 }), ...(ipv6 === undefined ? {} : { ipv6 }) }
  }

  /** Whether the certificate fixes an address (this node never re-addresses then). */
  get pinsAddress (): boolean { return this.cert.ipv4 !== undefined || this.cert.ipv6 !== undefined }

  /** Load the kept revocations (checked again); refuse to start when this node is revoked. */
  start (host: CertModeHost): void {
    this.host = host
    const now = host.now()
    let tokens: unknown[] = []
    try {
      const text = host.store.readText(REVOCATIONS_FILE, MAX_REVOCATIONS * (MAX_REVOCATION_CHARS + 8) + 64)
      if (text !== undefined) {
        const x = JSON.parse(text) as { version?: unknown, revocations?: unknown }
        if (x.version !== 1 || !Array.isArray(x.revocations)) throw new Error('not {version: 1, revocations: [...]}')
        tokens = x.revocations
      }
    } catch (err) {
      host.log.warn('revocations file unusable; starting without it (members hand the revocations on again)', { file: host.store.path(REVOCATIONS_FILE), error: (err as Error).message })
    }
    let dropped = 0
    for (const t of tokens) {
      const r = typeof t === 'string' ? this.trust.revocations.add(t, now, this.init.skewMs) : undefined
      if (r?.ok !== true) dropped++
    }
    if (dropped > 0) this.persist()
    const self = this.trust.revocations.get(this.init.nodeId)
    if (self !== undefined) {
      throw new InvalidConfigError(`this node (${this.init.nodeId}) was revoked by the mesh CA on ${new Date(self.revocation.issuedAt).toISOString()}: the members refuse it for good. To bring this host back as a new node, move the state directory ${this.init.stateDir} away, run 'wgmesh id --state-dir DIR' for the new node's id and have the CA sign a certificate for it`)
    }
    this.checkExpiry()
    this.timer = setInterval(() => { this.checkExpiry(); this.prune() }, CHECK_EVERY_MS)
    this.timer.unref()
  }

  stop (): void { clearInterval(this.timer) }

  /** Warn ahead of the own certificate's expiry, and after it. */
  checkExpiry (): void {
    const host = this.host
    if (host === undefined) return
    const now = host.now()
    const left = this.cert.notAfter - now
    if (left > CERT_EXPIRY_WARN_MS || now - this.lastWarned < 86_400_000) return
    this.lastWarned = now
    const expires = new Date(this.cert.notAfter).toISOString()
    const fix = `get a new one ('wgmesh ca sign --ca-dir DIR --node-id ${this.init.nodeId} --name ${this.cert.name} … --out FILE' on the CA host) and restart with --cert FILE`
    if (left <= 0) host.log.error(`this node's certificate expired at ${expires}: members refuse its records; ${fix}`, { certFile: this.init.certFile })
    else host.log.warn(`this node's certificate expires at ${expires} (in ${Math.floor(left / 86_400_000)} days, ${Math.round(left / 1000)} s): ${fix}`, { certFile: this.init.certFile })
  }

  /** A revocation from the control socket or a member: verify, keep, act, pass on. */
  receive (token: string, via: Via): Intake {
    const host = this.host
    if (host === undefined) return { verdict: 'ignore', reason: 'not started', detail: '' }
    const r = this.trust.revocations.add(token, host.now(), this.init.skewMs)
    if (!r.ok) {
      host.log.debug('revocation refused', { reason: r.reason, detail: r.detail, via })
      return { verdict: r.reason === 'expired' ? 'ignore' : 'reject', reason: r.reason, detail: r.detail }
    }
    if (!r.fresh) return { verdict: 'ignore', revocation: r.revocation, fresh: false }
    this.persist()
    const id = r.revocation.nodeId
    if (id === this.init.nodeId) {
      host.log.error('the mesh CA revoked this node: the members refuse it for good; stopping (start this host as a new node to come back: see \'wgmesh id\')', { via })
      host.revokedSelf(r.revocation)
      return { verdict: 'accept', revocation: r.revocation, fresh: true }
    }
    const name = host.table().get(id)?.record.name
    host.log.warn('node revoked by the mesh CA: removed, and refused from now on', { peer: name ?? id, nodeId: id, via })
    host.changed(host.table().revoke(id))
    // gossip forwards what it accepted itself; what came another way is published here
    if (via !== 'gossip') host.publish(this.sealedOf(id)!)
    if (via === 'control') host.pushToPeers()
    return { verdict: 'accept', revocation: r.revocation, fresh: true }
  }

  /** `wgmesh revoke`: the answer for the command, or an error saying why it was refused. */
  fromControl (token: string): { nodeId: string, name?: string, fresh: boolean } {
    const pre = verifyRevocation(token) // (unverified: only to name the node while it is still in the table)
    const name = pre.ok ? this.host?.table().get(pre.revocation.nodeId)?.record.name : undefined
    const r = this.receive(token, 'control')
    if (!('revocation' in r)) {
      const hint = r.reason === 'signature' || r.reason === 'wrong-ca' ? '; it must come from this mesh\'s CA (\'wgmesh ca revoke\' in the CA directory whose ca.pub is --ca)' : ''
      throw new InvalidConfigError(`revocation refused (${r.reason}): ${r.detail}${hint}`)
    }
    return { nodeId: r.revocation.nodeId, fresh: r.fresh, ...(name === undefined ? {} : { name }) }
  }

  /** The sealed message carrying the revocation of `nodeId` (sealed once). */
  sealedOf (nodeId: string): Uint8Array | undefined {
    const held = this.trust.revocations.get(nodeId)
    if (held === undefined || this.host === undefined) return undefined
    let s = this.sealed.get(nodeId)
    if (s === undefined) this.sealed.set(nodeId, s = this.host.seal(revocationMessage(held.token)))
    return s
  }

  /**
   * The revocations as sync digest entries: the revoked nodeId at the highest seq, so a member
   * that still holds the node (at any seq) is sent the revocation, and one that holds the
   * revocation sends nothing back.
   */
  digestEntries (): DigestEntry[] {
    return this.trust.revocations.all().map(h => ({ nodeId: h.revocation.nodeId, seq: Number.MAX_SAFE_INTEGER, dead: false }))
  }

  /** For `wgmesh info`. */
  get info (): CertInfo {
    return { ca: this.trust.ca.fingerprint, serial: this.cert.serial, notAfter: this.cert.notAfter, roles: [...this.cert.roles], revocations: this.trust.revocations.size }
  }

  private prune (): void {
    const host = this.host
    if (host === undefined) return
    const gone = this.trust.revocations.prune(host.now(), this.init.skewMs)
    for (const id of gone) this.sealed.delete(id)
    if (gone.length > 0) this.persist()
  }

  private persist (): void {
    const host = this.host
    if (host === undefined) return
    const body = { version: 1, revocations: this.trust.revocations.all().map(h => h.token) }
    try {
      host.store.writeText(REVOCATIONS_FILE, JSON.stringify(body, null, 1) + '\n')
    } catch (err) {
      host.log.error('saving revocations failed', { error: (err as Error).message })
    }
  }
}

/** A revocation token from a file (for `wgmesh revoke`): trimmed and shaped, not yet verified. */
export function readRevocationToken (text: string): string | undefined {
  const t = text.trim()
  return verifyRevocation(t).ok ? t : undefined
}
