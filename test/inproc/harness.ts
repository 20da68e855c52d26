/** In-process agents on 127.0.0.1 with the fake WireGuard host. */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Agent, StateStore, silentLogger, type AgentInit } from '@wgmesh/agent'
import { FakeWireGuardRunner } from '@wgmesh/wireguard'

export interface TestAgent { agent: Agent, runner: FakeWireGuardRunner, dir: string, iface: string }

const dirs: string[] = []
export function tempDir (label: string): string {
  const d = mkdtempSync(join(tmpdir(), `wgmesh-${label}-`))
  dirs.push(d)
  return d
}
export function cleanupDirs (): void {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true })
}

let counter = 0
export async function startAgent (opts: Partial<AgentInit> & { label: string }): Promise<TestAgent> {
  const dir = opts.stateDir ?? tempDir(opts.label)
  const store = new StateStore(dir)
  store.ensureDir()
  const iface = opts.interface ?? `wgmi${process.pid % 1000}x${counter++}`
  const runner = new FakeWireGuardRunner({ privateKeys: { [store.wgKeyPath()]: store.wgPrivateKey() } })
  const agent = new Agent({
    gossipHost: '127.0.0.1',
    gossipPort: 0,
    probePort: 0,
    probeVia: 'underlay',
    // the fake WireGuard host never completes a handshake, so with relays on, every pair would
    // go to a relay after the punching timeout; relays are tested in netns with real WireGuard
    relay: 'off',
    heartbeatMs: 200,
    deadAfterMs: 1000,
    logger: silentLogger,
    ...opts,
    name: opts.name ?? opts.label,
    stateDir: dir,
    interface: iface,
    wgRunner: runner
  })
  await agent.start()
  return { agent, runner, dir, iface }
}

export async function waitFor (what: string, cond: () => boolean | Promise<boolean>, timeoutMs = 15_000, stepMs = 25): Promise<number> {
  const t0 = Date.now()
  for (;;) {
    if (await cond()) return Date.now() - t0
    if (Date.now() - t0 > timeoutMs) throw new Error(`timed out after ${timeoutMs} ms waiting for: ${what}`)
    await new Promise(resolve => setTimeout(resolve, stepMs))
  }
}

/** A comparable text of an agent's view: every active member's id, addresses and key. */
export function viewOf (a: Agent): string {
  return a.members.active()
    .filter(m => m.conflict === undefined)
    .map(m => `${m.record.nodeId} ${m.record.ipv4} ${m.record.ipv6} ${m.record.wgPublicKey} ${m.status}`)
    .sort().join('\n')
}
