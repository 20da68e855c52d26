/**
 * `--hosts-file PATH`: keeps the managed block of a hosts file ({@link updateHostsText}) in step
 * with the live members. Writes are atomic (a temp file next to it, created exclusively and
 * never through a link, with the file's mode and owner, then renamed over it) and happen only
 * when the text changes. A hosts file that is a bind mount (containers) cannot be renamed over:
 * it is then rewritten in place, as is a file in a read-only directory. A file that is a symbolic link is not managed (say which
 * file to pass instead). Failures are logged, never fatal: names are a convenience.
 */
import { randomBytes } from 'node:crypto'
import {
  closeSync, constants, fchmodSync, fchownSync, fstatSync, fsyncSync, lstatSync, openSync, readFileSync, renameSync, unlinkSync, writeFileSync, writeSync
} from 'node:fs'
import { dirname, join, basename } from 'node:path'
import { removeHostsBlock, updateHostsText, type HostsDropped, type HostsMember } from './hosts-block.js'
import type { Logger } from './logger.js'

/** Largest hosts file handled (a bigger one is left alone). */
const MAX_HOSTS_BYTES = 4 * 1024 * 1024

export interface HostsFileInit {
  path: string
  iface: string
  domain: string
  log: Logger
}

export class HostsFile {
  private readonly init: HostsFileInit
  private lastKey = ''
  private lastWarned = ''
  /** Names left out so far, by reason (latest computation). */
  dropped: HostsDropped = { invalid: 0, duplicate: 0, reserved: 0, badAddress: 0 }
  writes = 0

  constructor (init: HostsFileInit) {
    this.init = init
  }

  private read (): { text: string, mode: number, uid: number, gid: number } | undefined {
    const p = this.init.path
    let st
    try { st = lstatSync(p) } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { text: '', mode: 0o644, uid: -1, gid: -1 }
      throw err
    }
    if (st.isSymbolicLink()) throw new Error(`${p} is a symbolic link; pass the file it points to as --hosts-file`)
    if (!st.isFile()) throw new Error(`${p} is not a regular file`)
    if (st.size > MAX_HOSTS_BYTES) throw new Error(`${p} is larger than ${MAX_HOSTS_BYTES} bytes`)
    return { text: readFileSync(p, 'utf8'), mode: st.mode & 0o7777, uid: st.uid, gid: st.gid }
  }

  private write (text: string, mode: number, uid: number, gid: number): void {
    const p = this.init.path
    const tmp = join(dirname(p), `.${basename(p)}.wgmesh-${process.pid}-${randomBytes(6).toString('hex')}`)
    let fd: number
    try {
      fd = openSync(tmp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600)
    } catch (err) {
      // a read-only directory around a writable file (systemd ReadWritePaths=/etc/hosts)
      if ((err as NodeJS.ErrnoException).code !== 'EROFS') throw err
      writeFileSync(p, text)
      this.writes++
      return
    }
    try {
      try {
        if (uid >= 0 && (fstatSync(fd).uid !== uid || fstatSync(fd).gid !== gid)) fchownSync(fd, uid, gid)
        fchmodSync(fd, mode)
        writeSync(fd, Buffer.from(text))
        fsyncSync(fd)
      } finally {
        closeSync(fd)
      }
      renameSync(tmp, p)
    } catch (err) {
      try { unlinkSync(tmp) } catch {}
      const code = (err as NodeJS.ErrnoException).code
      if (code !== 'EBUSY' && code !== 'EXDEV') throw err
      writeFileSync(p, text) // a bind-mounted file (containers): rename cannot replace it
    }
    this.writes++
  }

  /** Set the block to these members; writes only when the file's text changes. */
  update (members: HostsMember[]): void {
    const key = JSON.stringify(members.map(m => [m.name, m.ipv4, m.ipv6, m.self === true]).sort())
    if (key === this.lastKey) return
    try {
      const cur = this.read()!
      const r = updateHostsText(cur.text, this.init.iface, this.init.domain, members)
      this.dropped = r.dropped
      if (r.error !== undefined) throw new Error(`${this.init.path}: ${r.error}`)
      const d = r.dropped
      const drops = d.invalid + d.duplicate + d.reserved + d.badAddress
      if (drops > 0) {
        const what = `invalid=${d.invalid} duplicate=${d.duplicate} reserved=${d.reserved} bad-address=${d.badAddress}`
        if (what !== this.lastWarned) this.init.log.warn('hosts file: some member names were left out', { file: this.init.path, ...d })
        this.lastWarned = what
      }
      if (r.changed) {
        this.write(r.text, cur.mode, cur.uid, cur.gid)
        this.init.log.debug('hosts file updated', { file: this.init.path, names: r.names.length })
      }
      this.lastKey = key
    } catch (err) {
      this.init.log.warn('hosts file not updated', { file: this.init.path, error: (err as Error).message })
    }
  }

  /** Take our block out of the file (leave). */
  remove (): void {
    try {
      const cur = this.read()!
      const r = removeHostsBlock(cur.text, this.init.iface)
      if (r.error !== undefined) throw new Error(`${this.init.path}: ${r.error}`)
      if (r.changed) this.write(r.text, cur.mode, cur.uid, cur.gid)
      this.lastKey = ''
    } catch (err) {
      this.init.log.warn('hosts file: removing the block failed', { file: this.init.path, error: (err as Error).message })
    }
  }
}

/** This node and every live member (not dead, not left, not in an address conflict), for the block. */
export function hostsMembers (self: { name: string, ipv4: string, ipv6: string, nodeId: string }, table: { all: () => Iterable<{ record: { nodeId: string, name: string, ipv4: string, ipv6: string }, status: string, conflict?: unknown }> }): HostsMember[] {
  const out: HostsMember[] = [{ name: self.name, ipv4: self.ipv4, ipv6: self.ipv6, self: true }]
  for (const m of table.all()) {
    if (m.record.nodeId === self.nodeId || m.status !== 'alive' || m.conflict !== undefined) continue
    out.push({ name: m.record.name, ipv4: m.record.ipv4, ipv6: m.record.ipv6 })
  }
  return out
}
