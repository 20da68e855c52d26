/**
 * The CA directory of certificate mode (`--ca-dir`, on the operator's machine, never on the
 * hosts unless the operator wants it there):
 *   ca.key        the CA's Ed25519 seed (`wgmck1.…`)                           0600
 *   ca.pub        the CA's public key (`wgmca1.…`): copy it to every host       0644
 *   issued.json   the certificates signed (serial, nodeId, name, IPs, validity) 0600
 *   revoked.json  the nodeIds revoked, so they are never signed again          0600
 * The directory is 0700. Nothing here is read by agents.
 */
import { randomBytes } from 'node:crypto'
import { chmodSync, closeSync, constants, existsSync, mkdirSync, openSync, readFileSync, statSync, writeSync, fsyncSync } from 'node:fs'
import { join } from 'node:path'
import { writeFileAtomic } from '@wgmesh/agent'
import { caPublicFromSeed, decodeCaPublic, decodeCaSeed, encodeCaPublic, encodeCaSeed, type CaPublic, type NodeCert } from '@wgmesh/core'
import { ExitError } from './errors.js'

export interface IssuedEntry { serial: string, nodeId: string, name: string, ipv4?: string, ipv6?: string, roles: string[], notBefore: number, notAfter: number }
export interface RevokedEntry { nodeId: string, issuedAt: number, until: number }

const MAX_LOG_BYTES = 64 * 1024 * 1024

export class CaDir {
  constructor (readonly dir: string) {}

  path (name: string): string { return join(this.dir, name) }

  /** Create the CA: refuses when one is there already. Returns its public half. */
  create (): CaPublic {
    if (existsSync(this.path('ca.key')) || existsSync(this.path('ca.pub'))) {
      const fp = this.tryPublic()?.fingerprint
      throw new ExitError(`${this.dir} already holds a CA${fp === undefined ? '' : ` (fingerprint SHA256:${fp})`}; refusing to overwrite it. Use another --ca-dir for a new CA`, 1)
    }
    try {
      mkdirSync(this.dir, { recursive: true, mode: 0o700 })
      chmodSync(this.dir, 0o700)
    } catch (err) {
      throw new ExitError(`cannot create the CA directory ${this.dir}: ${(err as Error).message}`, 1)
    }
    const seed = new Uint8Array(randomBytes(32))
    // exclusively: two runs at once never overwrite each other's key
    let fd: number
    try {
      fd = openSync(this.path('ca.key'), constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600)
    } catch (err) {
      throw new ExitError(`cannot create ${this.path('ca.key')}: ${(err as Error).message}`, 1)
    }
    try {
      writeSync(fd, encodeCaSeed(seed) + '\n')
      fsyncSync(fd)
    } finally {
      closeSync(fd)
    }
    const ca = caPublicFromSeed(seed)
    writeFileAtomic(this.path('ca.pub'), encodeCaPublic(ca) + '\n', 0o644)
    return ca
  }

  private tryPublic (): CaPublic | undefined {
    try { const d = decodeCaPublic(readFileSync(this.path('ca.pub'), 'utf8')); return d.ok ? d.ca : undefined } catch { return undefined }
  }

  /** The CA seed; refuses a key readable by others and one that does not match ca.pub. */
  seed (): Uint8Array {
    const p = this.path('ca.key')
    let text: string
    try {
      const st = statSync(p)
      if ((st.mode & 0o077) !== 0) throw new ExitError(`${p} is readable by others (mode ${(st.mode & 0o777).toString(8)}): whoever read it can sign certificates. Run chmod 600 ${p}, and consider a new CA if others had access`, 1)
      text = readFileSync(p, 'utf8')
    } catch (err) {
      if (err instanceof ExitError) throw err
      throw new ExitError(`cannot read the CA key ${p}: ${(err as Error).message} (create a CA with 'wgmesh ca init --ca-dir ${this.dir}')`, 1)
    }
    const seed = decodeCaSeed(text)
    if (seed === undefined) throw new ExitError(`${p} is not a wgmesh CA key (it holds one line starting with 'wgmck1.')`, 1)
    const pub = this.tryPublic()
    if (pub !== undefined && pub.fingerprint !== caPublicFromSeed(seed).fingerprint) throw new ExitError(`${this.path('ca.pub')} does not belong to ${p}; restore the ca.pub that 'wgmesh ca init' wrote`, 1)
    return seed
  }

  private readLog<T> (name: string, field: string): T[] {
    const p = this.path(name)
    if (!existsSync(p)) return []
    try {
      if (statSync(p).size > MAX_LOG_BYTES) throw new Error('too large')
      const x = JSON.parse(readFileSync(p, 'utf8')) as Record<string, unknown>
      const list = x[field]
      if (x.version !== 1 || !Array.isArray(list)) throw new Error(`not {version: 1, ${field}: [...]}`)
      return list as T[]
    } catch (err) {
      throw new ExitError(`${p} is unreadable (${(err as Error).message}); fix or move it away`, 1)
    }
  }

  issued (): IssuedEntry[] { return this.readLog<IssuedEntry>('issued.json', 'certs') }
  revoked (): RevokedEntry[] { return this.readLog<RevokedEntry>('revoked.json', 'revoked') }

  recordIssued (c: NodeCert): void {
    const e: IssuedEntry = { serial: c.serial, nodeId: c.nodeId, name: c.name, roles: c.roles, notBefore: c.notBefore, notAfter: c.notAfter }
    if (c.ipv4 !== undefined) e.ipv4 = c.ipv4
    if (c.ipv6 !== undefined) e.ipv6 = c.ipv6
    writeFileAtomic(this.path('issued.json'), JSON.stringify({ version: 1, certs: [...this.issued(), e] }, null, 1) + '\n')
  }

  recordRevoked (r: RevokedEntry): void {
    const list = this.revoked().filter(x => x.nodeId !== r.nodeId)
    writeFileAtomic(this.path('revoked.json'), JSON.stringify({ version: 1, revoked: [...list, r] }, null, 1) + '\n')
  }
}
