/** Run the agent in the foreground until `leave`, SIGTERM or SIGINT (SIGHUP is logged and ignored). Shared by `up` and `join`. */
import { createSocket } from 'node:dgram'
import { existsSync, mkdirSync, readFileSync, unlinkSync } from 'node:fs'
import { createConnection, createServer } from 'node:net'
import { join } from 'node:path'
import { Agent, createLogger, writeFileAtomic, type AgentInit } from '@wgmesh/agent'
import { gossipListenAddrs } from '@wgmesh/core'
import { agentInit, readMeshKey, type AgentFlags } from '../options.js'
import { ExitError } from '../errors.js'

/** Errors whose message tells the user what to do: printed as they are, exit 1. */
const USER_ERRORS = new Set(['MeshKeyError', 'StateError', 'ControlError', 'InvalidConfigError', 'InterfaceMissingError', 'CommandFailedError', 'InterfaceMismatchError'])

function asExitError (err: unknown): unknown {
  const e = err as Error & { code?: string }
  if (USER_ERRORS.has(e.name)) return new ExitError(e.message, 1)
  if (e.code === 'EADDRINUSE' || /EADDRINUSE/.test(e.message)) {
    return new ExitError(`the gossip port is in use (${e.message}); is another agent running? Use --gossip-port`, 1)
  }
  return err
}

/**
 * Options merged over every agent this process runs. Empty in the CLI; a measurement entry
 * that wraps the CLI (scripts/bench/memory.ts) sets a fake WireGuard host here before the
 * CLI parses its argv, so the same bundled code runs without root or a network namespace.
 */
export const agentOverrides: Partial<AgentInit> = {}

/** CAP_NET_ADMIN in the effective set (root has it): creating and configuring the interface needs it. */
function hasNetAdmin (): boolean {
  try {
    const m = /^CapEff:\s*([0-9a-f]+)$/m.exec(readFileSync('/proc/self/status', 'utf8'))
    return m === null ? process.getuid?.() === 0 : (BigInt('0x' + m[1]!) & (1n << 12n)) !== 0n
  } catch {
    return process.getuid?.() === 0
  }
}

async function answers (path: string): Promise<boolean> {
  return await new Promise(resolve => {
    const s = createConnection(path)
    s.once('connect', () => { s.destroy(); resolve(true) })
    s.once('error', () => { resolve(false) })
  })
}

async function portInUse (kind: 'udp4' | 'udp6' | 'tcp', host: string, port: number): Promise<boolean> {
  return (await bindError(kind, host, port)) === 'EADDRINUSE'
}

/** The error code of binding `host:port` once (undefined: it bound); IPv6 sockets are IPv6-only. */
async function bindError (kind: 'udp4' | 'udp6' | 'tcp', host: string, port: number): Promise<string | undefined> {
  return await new Promise(resolve => {
    const done = (err?: NodeJS.ErrnoException): void => { resolve(err === undefined ? undefined : err.code ?? err.message) }
    if (kind === 'tcp') {
      const srv = createServer()
      srv.once('error', done)
      srv.listen({ host, port, exclusive: true, ipv6Only: host.includes(':') }, () => { srv.close(() => { done() }) })
      return
    }
    const sock = createSocket({ type: kind, ipv6Only: kind === 'udp6' })
    sock.once('error', done)
    sock.bind({ address: host, port, exclusive: true }, () => { sock.close(() => { done() }) })
  })
}

/** Where a running agent notes which interface it manages (beside wireguard-go's sockets; writable under the shipped unit). */
const RUNTIME_DIR = '/run/wireguard'

interface Claim { pid: number, stateDir: string, socket: string }

/**
 * Checks that need the host but change nothing, before the agent writes or starts anything:
 * privileges, another agent on this state directory or this interface, ports in use. Then
 * notes this agent as the interface's owner; the returned function takes the note back.
 */
async function preflight (flags: AgentFlags, socket: string): Promise<() => void> {
  const iface = flags.interface
  if (!hasNetAdmin()) {
    throw new ExitError(`'wgmesh up/join' must run as root (CAP_NET_ADMIN) to create and configure the WireGuard interface ${iface}: run it with sudo, or as the systemd service`, 1)
  }
  const claimPath = join(RUNTIME_DIR, `${iface}.wgmesh`)
  let other: Claim | undefined
  try { other = JSON.parse(readFileSync(claimPath, 'utf8')) as Claim } catch { other = undefined }
  const exists = existsSync(`/sys/class/net/${iface}`)
  const probePort = flags.probePort ?? (flags.gossipPort === 0 ? 0 : flags.gossipPort + 2)
  // the checks at once (each waits for a few event-loop turns, and hosts starting together are
  // busy), their verdicts in this order; each binds a different port or family
  const [running, otherRunning, wgPortTaken, gossipBind, probePortTaken] = await Promise.all([
    answers(socket),
    other !== undefined && typeof other.socket === 'string' && other.socket !== socket ? answers(other.socket) : false,
    !exists && flags.backend !== 'existing' ? Promise.all([portInUse('udp4', '0.0.0.0', flags.listenPort), portInUse('udp6', '::', flags.listenPort)]).then(([a, b]) => a || b) : false,
    checkGossipListen(flags).then(() => undefined, (err: unknown) => err),
    probePort !== 0 ? portInUse('udp4', '0.0.0.0', probePort) : false
  ])
  if (running) {
    throw new ExitError(`a wgmesh agent is already running with --state-dir ${flags.stateDir} (its control socket ${socket} answers): stop it first ('wgmesh leave' or SIGTERM), or pass another --state-dir`, 1)
  }
  if (otherRunning && other !== undefined) {
    throw new ExitError(`--interface ${iface} is managed by another running wgmesh agent (state dir ${String(other.stateDir)}, pid ${String(other.pid)}): stop it ('wgmesh leave --state-dir ${String(other.stateDir)}'), or pass another --interface`, 1)
  }
  if (wgPortTaken) {
    throw new ExitError(`--listen-port ${flags.listenPort}: UDP port ${flags.listenPort} is already in use on this host (another WireGuard interface or agent?): pick a free one with --listen-port`, 1)
  }
  if (gossipBind !== undefined) throw gossipBind
  if (probePortTaken) {
    throw new ExitError(`--probe-port ${probePort}: UDP port ${probePort} is already in use on this host: pick another with --probe-port (default: gossip port + 2)`, 1)
  }
  const mine = JSON.stringify({ pid: process.pid, stateDir: flags.stateDir, socket } satisfies Claim) + '\n'
  try {
    mkdirSync(RUNTIME_DIR, { recursive: true, mode: 0o755 })
    writeFileAtomic(claimPath, mine, 0o644)
  } catch { /* best effort: the control socket check above still holds for one state dir */ }
  return () => {
    try { if (readFileSync(claimPath, 'utf8') === mine) unlinkSync(claimPath) } catch {}
  }
}

/**
 * The gossip listener's sockets can be bound: each address of `gossipListenAddrs` (both families
 * by default). A port in use anywhere is refused; an IPv6 wildcard on a host without IPv6 is
 * fine (the agent then listens on IPv4 only); a --gossip-host that is not this host's is refused.
 */
async function checkGossipListen (flags: AgentFlags): Promise<void> {
  const given = flags.gossipHost.trim()
  for (const ma of gossipListenAddrs(given, flags.gossipPort)) {
    const [, proto = '', host = ''] = ma.split('/')
    const err = await bindError('tcp', host, flags.gossipPort)
    if (err === undefined) continue
    if (err === 'EADDRINUSE') {
      throw new ExitError(`--gossip-port ${flags.gossipPort}: TCP port ${flags.gossipPort} is already in use on ${proto === 'ip6' ? `[${host}]` : host} (is another agent running?): pick another with --gossip-port`, 1)
    }
    const wildcard6 = proto === 'ip6' && host === '::'
    if (wildcard6 && (err === 'EAFNOSUPPORT' || err === 'EADDRNOTAVAIL' || err === 'EPROTONOSUPPORT')) continue // no IPv6 on this host
    if (err === 'EADDRNOTAVAIL') throw new ExitError(`--gossip-host ${given} is not an address of this host: give one of its addresses, or :: for all`, 1)
    throw new ExitError(`--gossip-host ${given}: cannot bind TCP port ${flags.gossipPort} on ${host} (${err})`, 1)
  }
}

export async function runAgent (flags: AgentFlags, extra: Partial<AgentInit>, onServing?: (agent: Agent) => void): Promise<void> {
  const logger = createLogger({ level: flags.logLevel, json: flags.logFormat === 'auto' ? undefined : flags.logFormat === 'json' })
  let agent: Agent
  try {
    agent = new Agent({ ...agentInit(flags), meshKey: readMeshKey(flags), ...extra, ...agentOverrides, logger })
  } catch (err) {
    throw asExitError(err)
  }
  // (a measurement entry with a fake WireGuard host needs neither root nor the host's ports)
  const release = agentOverrides.wgRunner === undefined ? await preflight(flags, agent.controlPath) : () => {}
  let signalled = false
  const onSignal = (sig: string): void => {
    if (signalled) return
    signalled = true
    logger.info(`received ${sig}, stopping (the WireGuard interface stays up; 'wgmesh leave' removes it)`)
    void agent.stop()
  }
  process.on('SIGTERM', () => { onSignal('SIGTERM') })
  process.on('SIGINT', () => { onSignal('SIGINT') })
  // a closed terminal or a `systemctl reload` must not kill the agent silently: nothing here
  // can be reloaded in place, so say so and keep serving
  process.on('SIGHUP', () => { logger.warn('received SIGHUP: nothing to reload (flags and files are read at start); still serving — SIGTERM stops, \'wgmesh leave\' leaves') })
  try {
    await agent.start()
  } catch (err) {
    await agent.stop().catch(() => {})
    release()
    throw asExitError(err)
  }
  onServing?.(agent)
  await agent.stoppedPromise()
  release()
  if (agent.stopReason !== undefined) throw new ExitError(agent.stopReason, 1)
}
