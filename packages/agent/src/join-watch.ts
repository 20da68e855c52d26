/**
 * Says, within seconds, when a node with seeds (or known members) has reached nobody: which
 * seed failed how (unreachable, or it answered but the connection failed its handshake, which
 * is what a different mesh key looks like), as a warning in the log and a line in `info`.
 * Also holds back a mesh key given on the command line until a member that holds it was
 * heard (a record of another member decrypted and accepted), so that a wrong key is never
 * saved and a retry with the right one works.
 */
import { createConnection } from 'node:net'
import type { Logger } from './logger.js'

export interface JoinWatchInit {
  now: () => number
  log: Logger
  /** Whether a start with these seeds/known members expects to reach someone. */
  expectsPeers: boolean
  /** Save the mesh key given on the command line (undefined: nothing to save). */
  saveKey?: () => void
  /** First warning this long after the start. @default 5000 */
  graceMs?: number
  /** Then again this often while nobody is reached. @default 60000 */
  repeatMs?: number
  /** Whether host:port accepts a TCP connection (asked after a dial timed out). @default {@link tcpAnswers} */
  tcpAnswers?: (host: string, port: number) => Promise<boolean>
}

/** Whether host:port accepts a TCP connection within `timeoutMs`; nothing is sent, it is closed at once. */
export async function tcpAnswers (host: string, port: number, timeoutMs = 2000): Promise<boolean> {
  return await new Promise(resolve => {
    const s = createConnection({ host, port })
    s.unref() // never holds up a stopping agent
    const done = (ok: boolean): void => { s.destroy(); resolve(ok) }
    s.setTimeout(timeoutMs, () => { done(false) })
    s.once('connect', () => { done(true) })
    s.once('error', () => { done(false) })
  })
}

export interface JoinStatus {
  /** A member was heard (its record accepted). */
  reached: boolean
  /** ms since epoch: since when nobody was reached (the start), while not reached. */
  since?: number
  /** Per address dialed: the latest failure while nobody is reached. */
  failures: Array<{ addr: string, kind: 'unreachable' | 'handshake-failed', error: string }>
  /** One line for `info`, set while nobody is reached. */
  line?: string
}

const HANDSHAKE = /EncryptionFailed|handshake|protocol selection|multistream|ECONNRESET|pnet/i

export class JoinWatch {
  private readonly init: JoinWatchInit
  private readonly startedAt: number
  private reached = false
  private lastWarn = 0
  private readonly failures = new Map<string, { kind: 'unreachable' | 'handshake-failed', error: string }>()

  constructor (init: JoinWatchInit) {
    this.init = init
    this.startedAt = init.now()
  }

  /** A logger that passes everything on and notes the gossip dial failures it sees. */
  tap (log: Logger): Logger {
    return {
      ...log,
      debug: (msg, meta) => {
        if (msg === 'dial failed' && typeof meta?.addr === 'string' && !this.reached) this.dialFailed(meta.addr, String(meta.error))
        log.debug(msg, meta)
      }
    }
  }

  dialFailed (addr: string, error: string): void {
    const key = addr.replace(/\/p2p\/.*$/, '')
    const timedOut = /ETIMEDOUT|timed? ?out|abort/i.test(error)
    let kind: 'unreachable' | 'handshake-failed' = HANDSHAKE.test(error) && !timedOut && !/ECONNREFUSED|EHOSTUNREACH|ENETUNREACH/i.test(error) ? 'handshake-failed' : 'unreachable'
    // a timeout says nothing new about an address that answered and failed a handshake before
    if (timedOut && this.failures.get(key)?.kind === 'handshake-failed') kind = 'handshake-failed'
    const entry = { kind, error }
    this.failures.set(key, entry)
    // A dial that timed out is either unreachable or a TCP connection whose encrypted handshake
    // never finished (with a different mesh key the two sides read each other's bytes as noise
    // and may both wait): ask TCP alone which one it was.
    const target = /^\/(?:ip4|ip6|dns4|dns6|dns)\/([^/]+)\/tcp\/([0-9]+)/.exec(key)
    if (!timedOut || kind !== 'unreachable' || target === null) return
    void (this.init.tcpAnswers ?? tcpAnswers)(target[1]!, Number(target[2])).then(answers => {
      if (answers && !this.reached && this.failures.get(key) === entry) this.failures.set(key, { kind: 'handshake-failed', error: `${error}; its TCP port answers` })
    }, () => {})
  }

  /** Another member's record was accepted: someone who holds this mesh key was reached. */
  memberHeard (): void {
    if (this.reached) return
    this.reached = true
    this.failures.clear()
    if (this.init.saveKey !== undefined) {
      this.init.saveKey()
      this.init.log.info('a member holding the mesh key was reached; the key is saved in the state directory')
    }
    if (this.lastWarn > 0) this.init.log.info('reached the mesh')
  }

  status (): JoinStatus {
    if (this.reached || !this.init.expectsPeers) return { reached: this.reached, failures: [] }
    const failures = [...this.failures].map(([addr, f]) => ({ addr, ...f }))
    return { reached: false, since: this.startedAt, failures, line: this.line(failures) }
  }

  private line (failures: JoinStatus['failures']): string {
    const since = new Date(this.startedAt).toISOString()
    const hs = failures.filter(f => f.kind === 'handshake-failed').map(f => f.addr)
    const un = failures.filter(f => f.kind === 'unreachable').map(f => f.addr)
    const parts: string[] = []
    if (hs.length > 0) parts.push(`${hs.join(' ')} answered but refused the connection: a different mesh key? (check --mesh-key-file; the key is saved only after a member is reached)`)
    if (un.length > 0) parts.push(`${un.join(' ')} unreachable (check the address, and that TCP to its gossip port is open)`)
    return `no member reached since ${since}${parts.length > 0 ? ': ' + parts.join('; ') : ''}`
  }

  /** Called every second or so: warns once after the grace time, then now and then. */
  tick (): void {
    if (this.reached || !this.init.expectsPeers) return
    const now = this.init.now()
    if (now - this.startedAt < (this.init.graceMs ?? 5000)) return
    if (this.lastWarn > 0 && now - this.lastWarn < (this.init.repeatMs ?? 60_000)) return
    this.lastWarn = now
    const s = this.status()
    this.init.log.warn(s.line ?? 'no member reached yet', { failures: s.failures.length })
  }
}
