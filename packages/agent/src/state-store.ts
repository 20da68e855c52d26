/**
 * The agent's state directory (default /var/lib/wgmesh, mode 0700):
 *   node.key   Ed25519 seed (base64), the node's identity and libp2p PeerId      0600
 *   wg.key     WireGuard private key (base64, `wg` format)                         0600
 *   mesh.key   the mesh key (base64, 32 bytes): membership + encryption           0600
 *   state.json addresses, seq floor, known members' gossip addresses              0600
 * Writes are atomic (temp file + fsync + rename). A corrupt file is a clear error naming the
 * file and what to do; it is never silently replaced (that would change the node's identity).
 */
import { generateKeyPairSync, randomBytes } from 'node:crypto'
import { chmodSync, closeSync, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, statSync, writeSync } from 'node:fs'
import { join } from 'node:path'
import { decodeBase64Exact } from '@wgmesh/core'
import { MeshKeyError, StateError } from './errors.js'
import type { Logger } from './logger.js'

export interface KnownMember {
  nodeId: string
  name: string
  gossipAddrs: string[]
}

export interface PersistedState {
  version: 1
  /** Seq floor: the next record's seq is above this. */
  seq: number
  ipv4?: string
  ipv6?: string
  ipSalt?: number
  ipSince?: number
  /** The mesh CIDR the addresses were taken from (a different CIDR means re-address). */
  cidr4?: string
  known: KnownMember[]
  /** Set by `leave`; cleared by the next `up`/`join`. */
  left?: boolean
}

const EMPTY: PersistedState = { version: 1, seq: 0, known: [] }

export function writeFileAtomic (path: string, data: string | Uint8Array, mode = 0o600): void {
  const tmp = `${path}.tmp-${process.pid}`
  const fd = openSync(tmp, 'w', mode)
  try {
    writeSync(fd, typeof data === 'string' ? Buffer.from(data) : data)
    fsyncSync(fd)
  } finally {
    closeSync(fd)
  }
  chmodSync(tmp, mode)
  renameSync(tmp, path)
}

function readIfExists (path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8')
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined
    throw new StateError(`cannot read ${path}: ${(err as Error).message}`)
  }
}

export function generateWireGuardPrivateKey (): string {
  const { privateKey } = generateKeyPairSync('x25519')
  const der = privateKey.export({ format: 'der', type: 'pkcs8' })
  return Buffer.from(der.subarray(der.length - 32)).toString('base64')
}

export function parseMeshKey (text: string, source: string): Uint8Array {
  const key = decodeBase64Exact(text.trim(), 32)
  if (key === undefined) throw new StateError(`${source}: a mesh key is 32 bytes of base64 (44 characters, as 'wgmesh up' writes it)`)
  return key
}

export class StateStore {
  readonly dir: string

  constructor (dir: string) {
    this.dir = dir
  }

  path (name: string): string { return join(this.dir, name) }

  /** Create the directory 0700 (or tighten it), refusing one that others can write. */
  ensureDir (): void {
    try {
      mkdirSync(this.dir, { recursive: true, mode: 0o700 })
      chmodSync(this.dir, 0o700)
    } catch (err) {
      throw new StateError(`cannot create state directory ${this.dir}: ${(err as Error).message} (run as root or pass --state-dir)`)
    }
  }

  exists (): boolean {
    try { return statSync(this.path('node.key')).isFile() } catch { return false }
  }

  /** Load a 32-byte secret, generating it when missing. */
  private secret (name: string, make: () => string, check: (s: string) => boolean): string {
    const p = this.path(name)
    const text = readIfExists(p)
    if (text === undefined) {
      const v = make()
      writeFileAtomic(p, v + '\n')
      return v
    }
    const v = text.trim()
    if (!check(v)) throw new StateError(`${p} is corrupt (not 32 bytes of base64). Restore it from a backup, or delete the state directory to start as a new node.`)
    const mode = statSync(p).mode & 0o777
    if ((mode & 0o077) !== 0) chmodSync(p, 0o600)
    return v
  }

  nodeSeed (): Uint8Array {
    const s = this.secret('node.key', () => randomBytes(32).toString('base64'), v => decodeBase64Exact(v, 32) !== undefined)
    return decodeBase64Exact(s, 32)!
  }

  wgPrivateKey (): string {
    return this.secret('wg.key', generateWireGuardPrivateKey, v => decodeBase64Exact(v, 32) !== undefined)
  }

  wgKeyPath (): string { return this.path('wg.key') }

  /** The stored mesh key, or undefined if this node never joined one. */
  meshKey (): Uint8Array | undefined {
    const text = readIfExists(this.path('mesh.key'))
    return text === undefined ? undefined : parseMeshKey(text, this.path('mesh.key'))
  }

  saveMeshKey (key: Uint8Array): void {
    writeFileAtomic(this.path('mesh.key'), Buffer.from(key).toString('base64') + '\n')
  }

  load (): PersistedState {
    const p = this.path('state.json')
    const text = readIfExists(p)
    if (text === undefined) return { ...EMPTY, known: [] }
    let x: unknown
    try {
      x = JSON.parse(text)
    } catch {
      throw new StateError(`${p} is not valid JSON. Fix or delete it (keys are kept in *.key; the node keeps its identity).`)
    }
    const s = x as Partial<PersistedState>
    if (typeof s !== 'object' || s === null || s.version !== 1 || !Number.isSafeInteger(s.seq) || !Array.isArray(s.known)) {
      throw new StateError(`${p} has an unknown layout. Fix or delete it (keys are kept in *.key; the node keeps its identity).`)
    }
    const known = s.known.filter((k): k is KnownMember =>
      typeof k?.nodeId === 'string' && typeof k.name === 'string' && Array.isArray(k.gossipAddrs) && k.gossipAddrs.every(a => typeof a === 'string'))
    return { ...s, known } as PersistedState
  }

  save (s: PersistedState): void {
    writeFileAtomic(this.path('state.json'), JSON.stringify(s, null, 2) + '\n')
  }
}

/**
 * The mesh key to run with: the one given (join) must match a stored one; else the stored one
 * (restart); else a new one when creating a mesh (up). Saved 0600 in the state directory.
 */
export function resolveMeshKey (store: StateStore, given: Uint8Array | undefined, create: boolean, log: Logger): Uint8Array {
  const stored = store.meshKey()
  if (given !== undefined) {
    if (stored !== undefined && Buffer.compare(Buffer.from(stored), Buffer.from(given)) !== 0) {
      throw new MeshKeyError(`the state directory ${store.dir} belongs to another mesh (its mesh.key differs from the one given). Use another --state-dir, or delete it to leave that mesh for good.`)
    }
    if (stored === undefined) store.saveMeshKey(given)
    return given
  }
  if (stored !== undefined) return stored
  if (create) {
    const key = new Uint8Array(randomBytes(32))
    store.saveMeshKey(key)
    log.info('created a new mesh', { file: store.path('mesh.key') })
    return key
  }
  throw new MeshKeyError('no mesh key: pass --mesh-key-file FILE or set WGMESH_MESH_KEY (copy mesh.key from a member\'s state directory), or run \'wgmesh up\' to create a new mesh')
}
