/**
 * Runs the shipped systemd unit (packaging/systemd/wgmesh.service) without systemd, inside lab
 * namespaces: its ExecStart / ExecStartPost / EnvironmentFile / CapabilityBoundingSet /
 * NoNewPrivileges / UMask are read from the unit file itself, never restated here.
 *
 * What stands in for systemd: `setpriv --bounding-set` (CapabilityBoundingSet=) and
 * `--no-new-privs` (NoNewPrivileges=) around ExecStart, the umask (UMask=), the environment from
 * the EnvironmentFile= (parsed like systemd: KEY=VALUE, comments, quotes), ExecStartPost= run
 * until it exits (readiness), and a stop that signals only the recorded main PID
 * (KillMode=process). Agents are started and signalled by their recorded PID only (checked
 * against /proc/PID/cmdline and the namespace), never by name; the lab's down() sweeps
 * whatever is left in its namespaces.
 */
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, readdirSync, statSync } from 'node:fs'
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { Lab } from '../lab/lab.js'

export const ROOT = fileURLToPath(new URL('../../', import.meta.url))
export const UNIT_FILE = join(ROOT, 'packaging/systemd/wgmesh.service')
/** Where the shipped unit expects the command (npm's default global prefix). */
export const UNIT_BIN = '/usr/local/bin/wgmesh'

/** section → key → values in file order (a key may repeat; an empty value resets, as in systemd). */
export type Unit = Map<string, Map<string, string[]>>

export function parseUnit (text: string): Unit {
  const unit: Unit = new Map()
  let section: Map<string, string[]> | undefined
  const lines = text.replace(/\\\n/g, ' ').split('\n')
  for (const raw of lines) {
    const line = raw.trim()
    if (line === '' || line.startsWith('#') || line.startsWith(';')) continue
    const sec = /^\[(.+)\]$/.exec(line)
    if (sec !== null) {
      section = new Map()
      unit.set(sec[1]!, section)
      continue
    }
    const eq = line.indexOf('=')
    if (section === undefined || eq < 0) throw new Error(`unit: cannot parse '${line}'`)
    const key = line.slice(0, eq).trim()
    const value = line.slice(eq + 1).trim()
    section.set(key, value === '' ? [] : [...(section.get(key) ?? []), value])
  }
  return unit
}

/** The single value of a key ([Service] by default); throws when missing or repeated. */
export function one (unit: Unit, key: string, section = 'Service'): string {
  const v = unit.get(section)?.get(key) ?? []
  if (v.length !== 1) throw new Error(`unit: expected one ${section}.${key}, found ${v.length}`)
  return v[0]!
}

/**
 * An Exec*= line as argv, the way systemd splits it: whitespace-separated words, '…' and "…"
 * quoting, `$$` → `$`. A `-` prefix (failure ignored) is returned as `ignoreFailure`; other
 * prefixes and unescaped `$VAR` expansions are not used by the unit and are refused here.
 */
export function splitExec (line: string): { argv: string[], ignoreFailure: boolean } {
  let s = line.trim()
  let ignoreFailure = false
  if (s.startsWith('-')) { ignoreFailure = true; s = s.slice(1) }
  if (/^[@+!:|]/.test(s)) throw new Error(`unit: unsupported Exec prefix in '${line}'`)
  const argv: string[] = []
  let i = 0
  while (i < s.length) {
    while (s[i] === ' ' || s[i] === '\t') i++
    if (i >= s.length) break
    let word = ''
    if (s[i] === "'" || s[i] === '"') {
      const q = s[i]!
      const end = s.indexOf(q, i + 1)
      if (end < 0) throw new Error(`unit: unterminated quote in '${line}'`)
      word = s.slice(i + 1, end)
      i = end + 1
    } else {
      while (i < s.length && s[i] !== ' ' && s[i] !== '\t') word += s[i++]
    }
    if (/\$(?!\$)/.test(word.replace(/\$\$/g, ''))) throw new Error(`unit: systemd would expand a variable in '${word}'; not emulated`)
    argv.push(word.replace(/\$\$/g, '$'))
  }
  return { argv, ignoreFailure }
}

/** An EnvironmentFile= as systemd reads it: KEY=VALUE lines, # and ; comments, optional quotes. */
export function parseEnvFile (text: string): Record<string, string> {
  const env: Record<string, string> = {}
  for (const raw of text.split('\n')) {
    const line = raw.trim()
    if (line === '' || line.startsWith('#') || line.startsWith(';')) continue
    const m = /^([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*)$/.exec(line)
    if (m === null) throw new Error(`environment file: cannot parse '${line}'`)
    let v = m[2]!
    if (v.length >= 2 && (v[0] === '"' || v[0] === "'") && v.endsWith(v[0]!)) v = v.slice(1, -1)
    env[m[1]!] = v
  }
  return env
}

/** `node scripts/pack.mjs` then `npm install -g --prefix <new empty dir> <tarball>`, offline. */
export function packAndInstall (): { tarball: string, prefix: string, bin: string, workDir: string } {
  const workDir = mkdtempSync(join(tmpdir(), 'wgmesh-pkg-'))
  const pack = spawnSync(process.execPath, [join(ROOT, 'scripts/pack.mjs'), '--out', workDir], { cwd: ROOT, encoding: 'utf8' })
  if (pack.status !== 0) throw new Error(`scripts/pack.mjs failed (${pack.status}): ${pack.stderr}`)
  const tarball = pack.stdout.trim().split('\n').at(-1)!
  if (!existsSync(tarball)) throw new Error(`pack printed ${tarball}, which does not exist`)
  const prefix = join(workDir, 'prefix')
  mkdirSync(prefix)
  // --offline: nothing may be fetched; the package has no dependencies to fetch
  const inst = spawnSync('npm', ['install', '-g', '--prefix', prefix, '--offline', '--no-audit', '--no-fund', '--no-update-notifier', tarball], { encoding: 'utf8' })
  if (inst.status !== 0) throw new Error(`npm install -g of ${tarball} failed (${inst.status}): ${inst.stderr}`)
  return { tarball, prefix, bin: join(prefix, 'bin/wgmesh'), workDir }
}

/** The environment systemd gives a system service (before EnvironmentFile=), node on PATH. */
export function serviceBaseEnv (): Record<string, string> {
  const path = [...new Set([dirname(process.execPath), '/usr/local/sbin', '/usr/local/bin', '/usr/sbin', '/usr/bin', '/sbin', '/bin'])].join(':')
  return { PATH: path, LANG: 'C.UTF-8' }
}

export interface RunningUnit {
  host: string
  pid: number
  child: ChildProcess
  logFile: string
  env: Record<string, string>
  exited: Promise<{ code: number | null, signal: NodeJS.Signals | null }>
  log: () => string
}

export interface UnitStartOptions {
  /** the EnvironmentFile to read instead of the unit's own path (lab hosts share one filesystem) */
  envFile?: string
  /** replace the unit's command path (/usr/local/bin/wgmesh) with this one */
  bin?: string
  logFile: string
}

/** `CapabilityBoundingSet=CAP_NET_ADMIN CAP_X` → setpriv's `-all,+net_admin,+x`. */
function boundingSet (unit: Unit): string {
  const caps = one(unit, 'CapabilityBoundingSet').split(/\s+/)
  if (caps.some(c => !/^CAP_[A-Z_]+$/.test(c))) throw new Error(`unit: CapabilityBoundingSet '${caps.join(' ')}' is not a plain list`)
  return ['-all', ...caps.map(c => `+${c.slice(4).toLowerCase()}`)].join(',')
}

function mapBin (argv: string[], bin: string | undefined): string[] {
  return bin === undefined ? argv : argv.map(a => a.split(UNIT_BIN).join(bin))
}

/** The environment of the unit's processes: base, Environment=, then EnvironmentFile= (it wins). */
export function unitEnv (unit: Unit, envFile?: string): Record<string, string> {
  const env = serviceBaseEnv()
  for (const e of unit.get('Service')?.get('Environment') ?? []) {
    for (const { argv } of [splitExec(e)]) for (const kv of argv) { const i = kv.indexOf('='); env[kv.slice(0, i)] = kv.slice(i + 1) }
  }
  for (const raw of unit.get('Service')?.get('EnvironmentFile') ?? []) {
    const optional = raw.startsWith('-')
    const path = envFile ?? raw.replace(/^-/, '')
    if (!existsSync(path)) {
      if (optional) continue
      throw new Error(`EnvironmentFile ${path} is missing`)
    }
    Object.assign(env, parseEnvFile(readFileSync(path, 'utf8')))
  }
  return env
}

/** Starts ExecStart= in `host` the way the unit would (see the file comment). Returns at once. */
export function startUnit (lab: Lab, host: string, unit: Unit, opts: UnitStartOptions): RunningUnit {
  const env = unitEnv(unit, opts.envFile)
  const { argv } = splitExec(one(unit, 'ExecStart'))
  const nnp = one(unit, 'NoNewPrivileges') === 'yes' ? ['--no-new-privs'] : []
  const full = ['ip', 'netns', 'exec', lab.ns(host), 'setpriv', '--bounding-set', boundingSet(unit), ...nnp, '--', ...mapBin(argv, opts.bin)]
  mkdirSync(dirname(opts.logFile), { recursive: true })
  const fd = openSync(opts.logFile, 'a')
  const umask = Number.parseInt(one(unit, 'UMask'), 8)
  const old = process.umask(umask)
  let child: ChildProcess
  try {
    child = spawn(full[0]!, full.slice(1), { stdio: ['ignore', fd, fd], env })
  } finally {
    process.umask(old)
    closeSync(fd)
  }
  if (child.pid === undefined) throw new Error(`starting the unit in ${host} failed`)
  const exited = new Promise<{ code: number | null, signal: NodeJS.Signals | null }>(resolve => {
    child.on('exit', (code, signal) => { resolve({ code, signal }) })
  })
  return { host, pid: child.pid, child, logFile: opts.logFile, env, exited, log: () => { try { return readFileSync(opts.logFile, 'utf8') } catch { return '' } } }
}

/** Runs every ExecStartPost= in `host` with the unit's environment; resolves with the first failure or ok. */
export async function execStartPost (lab: Lab, host: string, unit: Unit, env: Record<string, string>, bin: string | undefined, timeoutMs: number): Promise<{ code: number, stderr: string }> {
  for (const line of unit.get('Service')?.get('ExecStartPost') ?? []) {
    const { argv, ignoreFailure } = splitExec(line)
    const r = await lab.exec(host, mapBin(argv, bin), { env, timeoutMs })
    if (r.code !== 0 && !ignoreFailure) return { code: r.code, stderr: r.stderr }
  }
  return { code: 0, stderr: '' }
}

/** Is `pid` still the process we started (cmdline names `marker`, same network namespace)? */
export function isOurs (lab: Lab, pid: number, host: string, marker: string): boolean {
  try {
    const cl = readFileSync(`/proc/${pid}/cmdline`, 'utf8')
    if (!cl.includes(marker)) return false
    return statSync(`/proc/${pid}/ns/net`).ino === statSync(`/run/netns/${lab.ns(host)}`).ino
  } catch { return false }
}

/**
 * KillMode=process: SIGTERM to the main PID only (checked to be ours first), SIGKILL after
 * `graceMs` as systemd does after TimeoutStopSec=. Resolves with how it exited.
 */
export async function stopMainPid (lab: Lab, u: RunningUnit, marker: string, graceMs = 15_000): Promise<{ code: number | null, signal: NodeJS.Signals | null }> {
  if (u.child.exitCode !== null || u.child.signalCode !== null) return await u.exited
  if (!isOurs(lab, u.pid, u.host, marker)) throw new Error(`pid ${u.pid} is no longer the agent we started`)
  process.kill(u.pid, 'SIGTERM')
  const t = setTimeout(() => { if (isOurs(lab, u.pid, u.host, marker)) process.kill(u.pid, 'SIGKILL') }, graceMs)
  const r = await u.exited
  clearTimeout(t)
  return r
}

/** wireguard-go processes in `host` serving interface `iface`. */
export async function wireguardGoPids (lab: Lab, host: string, iface: string): Promise<number[]> {
  return (await lab.processes(host)).filter(p => p.argv.some(a => a.endsWith('wireguard-go')) && p.argv.includes(iface)).map(p => p.pid)
}

/** Fails the test (never skips) when a tool it needs is missing. */
export function requireTools (...tools: string[]): void {
  const path = (process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin').split(':')
  const missing = tools.filter(t => !path.some(d => { try { return statSync(join(d, t)).isFile() } catch { return false } }))
  if (missing.length > 0) throw new Error(`missing tools: ${missing.join(' ')} (bash scripts/setup.sh installs them)`)
}

export function listDir (d: string): string[] {
  try { return readdirSync(d) } catch { return [] }
}
