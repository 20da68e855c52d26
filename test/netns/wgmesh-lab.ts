/**
 * Runs real wgmesh agents (the bundled CLI) inside lab hosts. One state dir and one uniquely
 * named WireGuard interface per host (wireguard-go's sockets are machine-wide).
 */
import assert from 'node:assert/strict'
import { existsSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { Lab, LabProcess } from '../lab/lab.js'

export const BUNDLE = fileURLToPath(new URL('../../packages/cli/dist/wgmesh.mjs', import.meta.url))

export interface PeerInfoJson { name: string, nodeId: string, ipv4: string, ipv6: string, status: string, endpoint?: string, latestHandshake?: number, path: string, via?: string, nat?: string, family?: 4 | 6 }
export interface InfoJson { name: string, nodeId: string, interface: string, ipv4: string, ipv6: string, wgPublicKey: string, endpoints: string[], nat: string, relay: boolean, peers: PeerInfoJson[], rejected: Record<string, number>, gossipAddrs: string[] }

/** One JSON log line of an agent. */
export interface LogEvent { message: string, [k: string]: unknown }

/** The JSON log lines of a process's output (other lines skipped); a line that is no JSON object fails. */
export function logEvents (log: string): LogEvent[] {
  return log.split('\n').filter(l => l.startsWith('{')).map((l) => {
    const o: unknown = JSON.parse(l)
    if (typeof o !== 'object' || o === null || typeof (o as { message?: unknown }).message !== 'string') throw new Error(`not a log event: ${l}`)
    return o as LogEvent
  })
}

export interface MeshNode { host: string, stateDir: string, iface: string, proc?: LabProcess }

export class WgmeshLab {
  readonly lab: Lab
  readonly root: string
  readonly nodes = new Map<string, MeshNode>()
  private readonly tag: string

  constructor (lab: Lab) {
    if (!existsSync(BUNDLE)) throw new Error(`${BUNDLE} is missing: run 'npm run build' first`)
    this.lab = lab
    this.root = mkdtempSync(join(tmpdir(), 'wgmesh-netns-'))
    this.tag = lab.prefix.replace(/[^a-z0-9]/g, '').slice(-4)
  }

  node (host: string): MeshNode {
    let n = this.nodes.get(host)
    if (n === undefined) {
      const iface = `wm${this.tag}${host.replace(/[^a-z0-9]/g, '')}`.slice(0, 15)
      n = { host, stateDir: join(this.root, host), iface }
      this.lab.registerWgInterface(iface)
      this.nodes.set(host, n)
    }
    return n
  }

  /** Start `wgmesh <cmd>` in `host` with test-friendly timers; resolves when its control socket answers. */
  async start (host: string, cmd: 'up' | 'join', args: string[] = [], env: Record<string, string> = {}): Promise<MeshNode> {
    const n = this.launch(host, cmd, args, env)
    await this.waitFor(`${host} serving`, async () => (await this.tryInfo(host)) !== undefined, 15_000)
    return n
  }

  /** Spawn `wgmesh <cmd>` in `host` and return at once (hosts started at the same moment). */
  launch (host: string, cmd: 'up' | 'join', args: string[] = [], env: Record<string, string> = {}): MeshNode {
    const n = this.node(host)
    const argv = [process.execPath, BUNDLE, cmd, '--state-dir', n.stateDir, '--interface', n.iface, '--name', host,
      '--heartbeat', '500ms', '--dead-after', '2s', '--log-level', 'debug', '--log-format', 'json', ...args]
    n.proc = this.lab.spawn(`wgmesh-${host}`, host, argv, { env: { ...env } })
    return n
  }

  async tryInfo (host: string): Promise<InfoJson | undefined> {
    const n = this.node(host)
    const r = await this.lab.exec(host, [process.execPath, BUNDLE, 'info', '--json', '--state-dir', n.stateDir], { timeoutMs: 5000 })
    if (r.code !== 0) return undefined
    return JSON.parse(r.stdout) as InfoJson
  }

  async info (host: string): Promise<InfoJson> {
    const i = await this.tryInfo(host)
    if (i === undefined) throw new Error(`wgmesh info failed on ${host}\n${this.node(host).proc?.log() ?? ''}`)
    return i
  }

  async wgDump (host: string): Promise<string> {
    return await this.lab.run(host, ['wg', 'show', this.node(host).iface, 'dump'])
  }

  async waitFor (what: string, cond: () => Promise<boolean> | boolean, timeoutMs: number, stepMs = 100): Promise<number> {
    const t0 = Date.now()
    for (;;) {
      if (await cond()) return Date.now() - t0
      if (Date.now() - t0 > timeoutMs) throw new Error(`timed out after ${timeoutMs} ms: ${what}`)
      await new Promise(resolve => setTimeout(resolve, stepMs))
    }
  }

  cleanup (): void {
    rmSync(this.root, { recursive: true, force: true })
  }
}

/**
 * Every host's `info --json` lists every other host (by name), alive, and no one else that is
 * alive. Polls with a generous limit; on timeout the error says who sees whom how.
 */
export async function waitAllAlive (mesh: WgmeshLab, hosts: string[], timeoutMs = 60_000): Promise<Map<string, InfoJson>> {
  const infos = new Map<string, InfoJson>()
  let last = ''
  try {
    await mesh.waitFor(`every one of ${hosts.join(' ')} sees all others alive`, async () => {
      const views: string[] = []
      let ok = true
      for (const h of hosts) {
        const i = await mesh.tryInfo(h)
        if (i === undefined) { views.push(`${h}: no info`); ok = false; continue }
        infos.set(h, i)
        const alive = i.peers.filter(p => p.status === 'alive').map(p => p.name).sort()
        const want = hosts.filter(x => x !== h).sort()
        if (alive.join(' ') !== want.join(' ')) ok = false
        views.push(`${h}: ${i.peers.map(p => `${p.name}=${p.status}`).join(' ')}`)
      }
      last = views.join('; ')
      return ok
    }, timeoutMs, 250)
  } catch (err) {
    throw new Error(`${(err as Error).message}\n  last views: ${last}`)
  }
  return infos
}

/** The ordered pairs (src→dst, family) whose single overlay ping fails. Throws if a host's info is missing. */
export async function failedPings (mesh: WgmeshLab, hosts: string[], infos: Map<string, InfoJson>, families: Array<'ipv4' | 'ipv6'> = ['ipv4', 'ipv6']): Promise<string[]> {
  const failures: string[] = []
  await Promise.all(hosts.map(async src => {
    for (const family of families) {
      for (const dst of hosts) {
        if (dst === src) continue
        const info = infos.get(dst)
        if (info === undefined) throw new Error(`no info for ${dst}`)
        const r = await mesh.lab.ping(src, info[family], { count: 1, timeoutMs: 2000 })
        if (!r.ok) failures.push(`${src}→${dst} (${family})`)
      }
    }
  }))
  return failures.sort()
}

/** Waits until every ordered pair pings over the overlay; on timeout throws listing the pairs that still fail. */
export async function waitAllPairsPing (mesh: WgmeshLab, hosts: string[], infos: Map<string, InfoJson>, timeoutMs = 60_000, families: Array<'ipv4' | 'ipv6'> = ['ipv4', 'ipv6']): Promise<number> {
  let failures: string[] = []
  try {
    return await mesh.waitFor('every ordered pair pings over the overlay', async () => {
      failures = await failedPings(mesh, hosts, infos, families)
      return failures.length === 0
    }, timeoutMs, 250)
  } catch (err) {
    throw new Error(`${(err as Error).message}; still failing: ${failures.join(', ')}`)
  }
}

/**
 * An IPv6-only lab (`underlay: 'ipv6'`): on each host's eth0 no IPv4 address, no IPv4 route and
 * no IPv4 default route; its global address (/64) and a link-local one.
 */
export async function assertIpv6OnlyEth0 (lab: Lab, hosts: string[]): Promise<void> {
  for (const h of hosts) {
    assert.equal((await lab.run(h, ['ip', '-4', '-o', 'addr', 'show', 'dev', 'eth0'])).trim(), '', `${h}: no IPv4 on eth0`)
    assert.equal((await lab.run(h, ['ip', '-4', 'route', 'show', 'dev', 'eth0'])).trim(), '', `${h}: no IPv4 route on eth0`)
    assert.equal((await lab.run(h, ['ip', '-4', 'route', 'show', 'default'])).trim(), '', `${h}: no IPv4 default route`)
    const v6 = await lab.run(h, ['ip', '-6', '-o', 'addr', 'show', 'dev', 'eth0'])
    assert.ok(v6.includes(`${lab.host(h).ip}/64`) && / fe80::/.test(v6), `${h}: ${v6}`)
  }
}
