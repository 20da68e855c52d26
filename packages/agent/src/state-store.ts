/**
 * The agent's state directory (default /var/lib/wgmesh, mode 0700, owned by the user running
 * the agent, root):
 *   node.key   Ed25519 seed (base64), the node's identity and libp2p PeerId      0600
 *   wg.key     WireGuard private key (base64, `wg` format)                         0600
 *   mesh.key   the mesh key (base64, 32 bytes): membership + encryption           0600
 *   state.json addresses, seq floor, known members' gossip addresses              0600
 *   revocations.json  certificate mode: the CA's revocations this node holds      0600
 *   forwarding.json   a gateway: the forwarding sysctls it switched on, old values 0600
 *   exit-routing      an exit-node client: present while its policy routing may be set up
 * A directory owned by someone else, or writable by group or others, is refused (whoever can
 * write it can replace the keys). Files are opened without following symbolic links, and
 * writes are atomic: a temp file created exclusively (O_EXCL | O_NOFOLLOW, 0600), fsync, then
 * rename over the target (rename replaces a planted link, never follows it).
 * A corrupt key file is a clear error naming the file and what to do; it is never silently
 * replaced (that would change the node's identity). A bad state.json (not JSON, a wrong type,
 * an address outside the mesh ranges…) is set aside as state.json.bad-<time> and the node
 * starts from an empty state with its keys.
 */
import { randomBytes } from 'node:crypto'
import {
  closeSync, constants, fchmodSync, fstatSync, fsyncSync, mkdirSync, openSync, readSync, renameSync, statSync, unlinkSync, writeSync
} from 'node:fs'
import { userInfo } from 'node:os'
import { dirname, join } from 'node:path'
import { decodeBase64Exact } from '@wgmesh/core'
import { MeshKeyError, StateError } from './errors.js'
import type { Logger } from './logger.js'
import { MAX_STATE_BYTES, parsePersisted } from './persisted.js'

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

/** Largest key file read (a key is 45 bytes of text). */
const MAX_KEY_FILE_BYTES = 4096

/**
 * Write `data` to `path` atomically: a new temp file next to it, created exclusively and never
 * through a symbolic link (O_CREAT | O_EXCL | O_NOFOLLOW, `mode`), fsync'ed, then renamed over
 * `path` (a link planted at `path` is replaced, not followed), then the directory fsync'ed.
 */
export function writeFileAtomic (path: string, data: string | Uint8Array, mode = 0o600): void {
  const tmp = `${path}.tmp-${process.pid}-${randomBytes(6).toString('hex')}`
  const fd = openSync(tmp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, mode)
  try {
    try {
      fchmodSync(fd, mode) // the umask may have narrowed it; never wider than asked
      writeSync(fd, typeof data === 'string' ? Buffer.from(data) : data)
      fsyncSync(fd)
    } finally {
      closeSync(fd)
    }
    renameSync(tmp, path)
  } catch (err) {
    try { unlinkSync(tmp) } catch {}
    throw err
  }
  try {
    const dfd = openSync(dirname(path), constants.O_RDONLY | constants.O_DIRECTORY)
    try { fsyncSync(dfd) } finally { closeSync(dfd) }
  } catch { /* durability only */ }
}

class TooLargeError extends StateError {}

/**
 * Read a regular file without following a symbolic link (O_NOFOLLOW; O_NONBLOCK so a planted
 * FIFO cannot hang us), at most `maxBytes`. Undefined when it does not exist; a link, a
 * non-file or a bigger file is a {@link StateError}. `tighten`: chmod 0600 through the open
 * descriptor when group or others have access.
 */
function readIfExists (path: string, maxBytes: number, tighten = false): string | undefined {
  let fd: number
  try {
    fd = openSync(path, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK)
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    if (code === 'ENOENT') return undefined
    if (code === 'ELOOP') throw new StateError(`${path} is a symbolic link; refusing to follow it. Replace it with the file itself.`)
    throw new StateError(`cannot read ${path}: ${(err as Error).message}`)
  }
  try {
    const st = fstatSync(fd)
    if (!st.isFile()) throw new StateError(`${path} is not a regular file. Replace it with the file itself.`)
    if (st.size > maxBytes) throw new TooLargeError(`${path} is ${st.size} bytes, more than ${maxBytes}`)
    if (tighten && (st.mode & 0o077) !== 0) fchmodSync(fd, 0o600)
    const buf = Buffer.alloc(st.size)
    let n = 0
    while (n < buf.length) {
      const r = readSync(fd, buf, n, buf.length - n, n)
      if (r === 0) break
      n += r
    }
    return buf.subarray(0, n).toString('utf8')
  } finally {
    closeSync(fd)
  }
}

/**
 * A new WireGuard private key, as `wg genkey` makes one: 32 random bytes, clamped (RFC 7748).
 * Not through generateKeyPairSync + export: on Node 20 that can deadlock (see
 * transport/noise-crypto.ts).
 */
export function generateWireGuardPrivateKey (): string {
  const k = randomBytes(32)
  k[0] = k[0]! & 248
  k[31] = (k[31]! & 127) | 64
  return k.toString('base64')
}

export function parseMeshKey (text: string, source: string): Uint8Array {
  const key = decodeBase64Exact(text.trim(), 32)
  if (key === undefined) throw new StateError(`${source}: a mesh key is 32 bytes of base64 (44 characters, as 'wgmesh up' writes it)`)
  return key
}

function userName (uid: number): string {
  try { return userInfo().uid === uid ? userInfo().username : String(uid) } catch { return String(uid) }
}

export class StateStore {
  readonly dir: string
  private readonly log: Logger | undefined

  /** `log`: where a set-aside state file is reported (default: a process warning). */
  constructor (dir: string, log?: Logger) {
    this.dir = dir
    this.log = log
  }

  path (name: string): string { return join(this.dir, name) }

  /**
   * Create the directory 0700, or check an existing one: it must be owned by the user running
   * the agent and not writable by group or others (refused, saying what to run); read access
   * for group and others is taken away (chmod 0700).
   */
  ensureDir (): void {
    try {
      mkdirSync(this.dir, { recursive: true, mode: 0o700 })
    } catch (err) {
      throw new StateError(`cannot create state directory ${this.dir}: ${(err as Error).message} (run as root or pass --state-dir)`)
    }
    // one descriptor for the check and the chmod: they apply to the same directory
    let fd: number
    try {
      fd = openSync(this.dir, constants.O_RDONLY | constants.O_DIRECTORY)
    } catch (err) {
      throw new StateError(`state directory ${this.dir} cannot be opened as a directory: ${(err as Error).message}`)
    }
    try {
      const st = fstatSync(fd)
      const uid = process.getuid?.()
      const fix = `chown ${uid === 0 ? 'root' : (uid ?? 'USER')}: ${this.dir} && chmod 700 ${this.dir}`
      if (uid !== undefined && st.uid !== uid) {
        throw new StateError(`state directory ${this.dir} is owned by uid ${st.uid}, not by ${userName(uid)} (uid ${uid}) who runs the agent: its owner could replace the node's keys. If the directory and its files are yours, run: ${fix}`)
      }
      if ((st.mode & 0o022) !== 0) {
        throw new StateError(`state directory ${this.dir} is writable by ${(st.mode & 0o002) !== 0 ? 'others' : 'its group'} (mode ${(st.mode & 0o777).toString(8)}): they could have replaced the node's keys. Check its files, then run: ${fix}`)
      }
      if ((st.mode & 0o777) !== 0o700) fchmodSync(fd, 0o700)
    } finally {
      closeSync(fd)
    }
  }

  exists (): boolean {
    try { return statSync(this.path('node.key')).isFile() } catch { return false }
  }

  /** Load a 32-byte secret, generating it when missing. */
  private secret (name: string, make: () => string, check: (s: string) => boolean): string {
    const p = this.path(name)
    const text = readIfExists(p, MAX_KEY_FILE_BYTES, true)
    if (text === undefined) {
      const v = make()
      writeFileAtomic(p, v + '\n')
      return v
    }
    const v = text.trim()
    if (!check(v)) throw new StateError(`${p} is corrupt (not 32 bytes of base64). Restore it from a backup, or delete the state directory to start as a new node.`)
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
    const text = readIfExists(this.path('mesh.key'), MAX_KEY_FILE_BYTES, true)
    return text === undefined ? undefined : parseMeshKey(text, this.path('mesh.key'))
  }

  saveMeshKey (key: Uint8Array): void {
    writeFileAtomic(this.path('mesh.key'), Buffer.from(key).toString('base64') + '\n')
  }

  /**
   * The saved state, checked strictly ({@link parsePersisted}). A file that is not JSON, too
   * big, or fails the check is set aside (renamed state.json.bad-<time>, listed in
   * {@link setAside} and logged) and the node starts from an empty state: its keys are in the
   * *.key files, so it keeps its identity, and its seq floor is recovered from its own record
   * when it sees it again. A state file of another version is an error (a newer wgmesh's state
   * is not destroyed).
   */
  load (): PersistedState {
    const p = this.path('state.json')
    let text: string | undefined
    try {
      text = readIfExists(p, MAX_STATE_BYTES)
    } catch (err) {
      if (!(err instanceof TooLargeError)) throw err
      return this.putAside(p, err.message)
    }
    if (text === undefined) return { ...EMPTY, known: [] }
    let x: unknown
    try {
      x = JSON.parse(text)
    } catch {
      return this.putAside(p, 'not valid JSON')
    }
    const v = (x as { version?: unknown } | null)?.version
    if (typeof v === 'number' && v !== 1) {
      throw new StateError(`${p} has an unknown layout (version ${v}, from another wgmesh version). Move it away to start from an empty state (keys are kept in *.key; the node keeps its identity).`)
    }
    const r = parsePersisted(x)
    if (!r.ok) return this.putAside(p, r.why)
    return r.state
  }

  /** state.json files set aside by {@link load}: where they went and why. */
  readonly setAside: Array<{ file: string, why: string }> = []

  private putAside (p: string, why: string): PersistedState {
    const file = `${p}.bad-${new Date().toISOString().replace(/[:.]/g, '-')}`
    try {
      renameSync(p, file)
    } catch (err) {
      throw new StateError(`${p} is unusable (${why}) and cannot be moved aside: ${(err as Error).message}. Move it away by hand (keys are kept in *.key).`)
    }
    this.setAside.push({ file, why })
    const msg = `${p} is unusable (${why}): moved to ${file}; starting from an empty state (the keys, and so the node's identity, are kept)`
    if (this.log !== undefined) this.log.warn(msg, { file, why })
    else process.emitWarning(msg, 'StateWarning')
    return { ...EMPTY, known: [] }
  }

  /** Another file of the state directory (read without following links), or undefined when missing. */
  readText (name: string, maxBytes: number): string | undefined {
    return readIfExists(this.path(name), maxBytes, true)
  }

  /** Write another file of the state directory, atomically, 0600. */
  writeText (name: string, text: string): void {
    writeFileAtomic(this.path(name), text)
  }

  save (s: PersistedState): void {
    writeFileAtomic(this.path('state.json'), JSON.stringify(s, null, 2) + '\n')
  }
}

/**
 * The mesh key to run with: the one given (join) must match a stored one; else the stored one
 * (restart); else a new one when creating a mesh (up). Saved 0600 in the state directory
 * (a given one only with `saveGiven`: a joiner saves it once a member that holds it answered).
 */
export function resolveMeshKey (store: StateStore, given: Uint8Array | undefined, create: boolean, log: Logger, saveGiven = true): Uint8Array {
  const stored = store.meshKey()
  if (given !== undefined) {
    if (stored !== undefined && Buffer.compare(Buffer.from(stored), Buffer.from(given)) !== 0) {
      throw new MeshKeyError(`the state directory ${store.dir} belongs to another mesh (its mesh.key differs from the one given). Use another --state-dir, or delete it to leave that mesh for good.`)
    }
    // saveGiven false (joining through seeds): saved once a member holding it was reached
    if (stored === undefined && saveGiven) store.saveMeshKey(given)
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
