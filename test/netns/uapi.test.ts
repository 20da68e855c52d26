// The configurator against a real wireguard-go in a lab namespace: show() over the UAPI socket must
// equal `wg show <if> dump`, peer changes sent over UAPI must be what `wg show` then reports, and a
// steady-state apply()/show() must not run `wg` at all. Needs root; FAILS (never skips) without the lab.
import { after, before, describe, it } from 'node:test'
import assert from 'node:assert/strict'
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { randomBytes } from 'node:crypto'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { DesiredPeer, DesiredWireGuard } from '@wgmesh/core'
import {
  CommandFailedError, kernelLacksWireGuard, createConfigurator, parseDump, publicKeyFromPrivateKey, unixUapi,
  type CommandRunner, type Dump, type WireGuardConfigurator
} from '@wgmesh/wireguard'
import { Lab } from '../lab/lab.js'

const HOST = 'pub1'
const key = (): string => randomBytes(32).toString('base64')
const A = key()
const B = key()
const C = key()

function sorted (d: Dump): Dump {
  return { interface: d.interface, peers: [...d.peers].sort((x, y) => x.publicKey < y.publicKey ? -1 : 1) }
}

async function waitFor (what: string, cond: () => boolean | Promise<boolean>, timeoutMs = 3000): Promise<void> {
  const end = Date.now() + timeoutMs
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`)
    await new Promise(resolve => setTimeout(resolve, 25))
  }
}

describe('configurator over UAPI with a real wireguard-go', () => {
  let lab: Lab
  let wg: WireGuardConfigurator
  const uapi = unixUapi()
  const ifname = Lab.wgIfname()
  const dir = mkdtempSync(join(tmpdir(), 'wgmesh-uapi-netns-'))
  const keyFile = join(dir, 'wg.key')
  /** every argv the configurator ran in the namespace */
  const ran: string[] = []

  before(async () => {
    Lab.requireRoot()
    lab = await Lab.up({ public: 1, natted: 0 })
    lab.registerWgInterface(ifname)
    const priv = (await lab.run(HOST, ['wg', 'genkey'])).trim()
    writeFileSync(keyFile, `${priv}\n`, { mode: 0o600 })
    // commands run inside the lab namespace; LOG_LEVEL=silent: the daemonized wireguard-go holds no pipe of ours
    const runner: CommandRunner = {
      run: async (argv, opts = {}) => {
        ran.push(argv.join(' '))
        const r = await lab.exec(HOST, argv, { timeoutMs: 20_000, env: { LOG_LEVEL: 'silent' }, ...(opts.stdin === undefined ? {} : { input: opts.stdin }) })
        if (r.code !== 0 && opts.allowFail !== true) throw new CommandFailedError(argv, r.code, r.stderr, r.stdout)
        return { stdout: r.stdout, stderr: r.stderr, code: r.code }
      }
    }
    wg = createConfigurator({ interface: ifname, backend: 'auto', runner, uapi, expectedPublicKey: publicKeyFromPrivateKey(priv) })
  })
  after(async () => {
    uapi.close()
    try { await wg?.destroy() } catch {}
    await lab?.down()
    rmSync(dir, { recursive: true, force: true })
  })

  const peerA = (over: Partial<DesiredPeer> = {}): DesiredPeer =>
    ({ publicKey: A, endpoint: '198.18.1.200:51820', allowedIps: ['100.64.0.2/32', 'fd00:1::2/128'], persistentKeepalive: 25, ...over })
  const desired = (peers: DesiredPeer[]): DesiredWireGuard =>
    ({ interface: ifname, privateKeyFile: keyFile, listenPort: 51820, addresses: ['100.64.0.1/10', 'fd00:1::1/48'], mtu: 1420, peers })
  const wgDump = async (): Promise<Dump> => {
    const d = parseDump(await lab.run(HOST, ['wg', 'show', ifname, 'dump']))
    delete d.interface.privateKey
    return sorted(d)
  }
  /** show() and `wg show dump` back to back; counters may move in between (handshake retries), so retry */
  async function assertShowEqualsWg (): Promise<Dump> {
    let last: [Dump, Dump] | undefined
    for (let i = 0; i < 20; i++) {
      const mine = sorted(await wg.show())
      const theirs = await wgDump()
      if (JSON.stringify(mine) === JSON.stringify(theirs)) return mine
      last = [mine, theirs]
      await new Promise(resolve => setTimeout(resolve, 50))
    }
    assert.deepEqual(last?.[0], last?.[1])
    throw new Error('unreachable')
  }

  it('creates a wireguard-go interface (no kernel module) and configures it over UAPI', async () => {
    const r = await wg.apply(desired([peerA(), { publicKey: B, endpoint: '[2001:db8::7]:51820', allowedIps: ['100.64.9.9/16'] }]))
    assert.equal(wg.createdWith, 'userspace')
    assert.ok(existsSync(`/var/run/wireguard/${ifname}.sock`))
    assert.deepEqual(ran.filter(c => c.startsWith('wg ')), [], 'no wg command: key, port and peers went over UAPI')
    assert.ok(r.steps.some(s => s[0] === 'wg' && s[1] === 'set'), 'the planned wg set steps are reported')
    const d = await assertShowEqualsWg()
    assert.equal(d.interface.listenPort, 51820)
    assert.equal(d.interface.publicKey, publicKeyFromPrivateKey(readFileSync(keyFile, 'utf8')))
    const a = d.peers.find(p => p.publicKey === A)
    assert.deepEqual({ ep: a?.endpoint, ips: a?.allowedIps, ka: a?.persistentKeepalive }, { ep: '198.18.1.200:51820', ips: ['100.64.0.2/32', 'fd00:1::2/128'], ka: 25 })
    const b = d.peers.find(p => p.publicKey === B)
    assert.deepEqual({ ep: b?.endpoint, ips: b?.allowedIps, ka: b?.persistentKeepalive }, { ep: '[2001:db8::7]:51820', ips: ['100.64.0.0/16'], ka: undefined })
    assert.match(await lab.run(HOST, ['ip', '-o', 'addr', 'show', 'dev', ifname]), /100\.64\.0\.1\/10/)
  })

  it('steady state: apply() of the same state and show() run no wg command', async () => {
    ran.length = 0
    const state = desired([peerA(), { publicKey: B, endpoint: '[2001:db8::7]:51820', allowedIps: ['100.64.9.9/16'] }])
    assert.deepEqual((await wg.apply(state)).steps, [])
    await wg.show()
    // with a runner of its own (here: ip netns exec) the configurator still reads link and addresses with ip;
    // the agent's default runner reads them from sysfs/getifaddrs instead (0 processes)
    assert.deepEqual(ran, [`ip -o link show dev ${ifname}`, `ip -o addr show dev ${ifname}`])
  })

  it('a peer update, an add and a removal over UAPI are what wg show reports', async () => {
    ran.length = 0
    const r = await wg.apply(desired([peerA({ endpoint: '198.18.1.201:4000', allowedIps: ['100.64.0.2/32', '100.64.5.0/24'], persistentKeepalive: undefined }),
      { publicKey: C, allowedIps: ['fd00:1::3/128'], persistentKeepalive: 5 }]))
    // A never completed a handshake (no such peer answers here), so its new endpoint re-creates it
    // (remove + add: WireGuard then initiates at once); C is added; B removed last
    const keys = [...[A, C].sort(), B]
    const expected = keys.flatMap(k => k === A ? [A, A] : [k])
    assert.deepEqual(r.steps.map(s => s[4]), expected, 'adds and updates by key (A re-created), then the removal')
    assert.deepEqual(r.steps.filter(s => s[4] === A).map(s => s[5]), ['remove', 'endpoint'])
    assert.deepEqual(ran.filter(c => c.startsWith('wg ')), [])
    const theirs = await wgDump()
    assert.deepEqual(theirs.peers.map(p => p.publicKey).sort(), [A, C].sort())
    const a = theirs.peers.find(p => p.publicKey === A)
    assert.deepEqual({ ep: a?.endpoint, ips: a?.allowedIps, ka: a?.persistentKeepalive }, { ep: '198.18.1.201:4000', ips: ['100.64.0.2/32', '100.64.5.0/24'], ka: undefined })
    assert.equal(theirs.peers.find(p => p.publicKey === C)?.persistentKeepalive, 5)
    await assertShowEqualsWg()
    assert.deepEqual((await wg.apply(desired([peerA({ endpoint: '198.18.1.201:4000', allowedIps: ['100.64.5.0/24', '100.64.0.2/32'], persistentKeepalive: undefined }),
      { publicKey: C, allowedIps: ['fd00:1::3/128'], persistentKeepalive: 5 }]))).steps, [])
  })

  it('destroy: ip link del, wireguard-go exits and its socket goes away', async () => {
    assert.deepEqual((await wg.destroy()).steps, [['ip', 'link', 'del', ifname]])
    await waitFor('the UAPI socket to go away', () => !existsSync(`/var/run/wireguard/${ifname}.sock`))
    assert.equal(await uapi.available(ifname), false)
    assert.notEqual((await lab.exec(HOST, ['ip', 'link', 'show', 'dev', ifname])).code, 0)
  })

  it('with its default runner (the agent\'s), a steady-state apply() and show() spawn no process at all', async () => {
    // runs inside the namespace, where sysfs and getifaddrs describe that namespace (ip netns exec remounts /sys);
    // every child_process.spawn is counted
    const ifname2 = Lab.wgIfname()
    lab.registerWgInterface(ifname2)
    const code = `
      import cp from 'node:child_process'
      import { syncBuiltinESMExports } from 'node:module'
      const calls = []
      const orig = cp.spawn
      cp.spawn = (file, args, opts) => { calls.push([file, ...(args ?? [])].join(' ')); return orig(file, args, opts) }
      syncBuiltinESMExports()
      const { createConfigurator, publicKeyFromPrivateKey } = await import('@wgmesh/wireguard')
      const { readFileSync } = await import('node:fs')
      const [ifname, keyFile, peer] = process.argv.slice(1)
      const wg = createConfigurator({ interface: ifname, expectedPublicKey: publicKeyFromPrivateKey(readFileSync(keyFile, 'utf8')) })
      const desired = { interface: ifname, privateKeyFile: keyFile, listenPort: 51821, addresses: ['100.64.0.1/10', 'fd00:1::1/48'], mtu: 1420,
        peers: [{ publicKey: peer, endpoint: '198.18.1.200:51820', allowedIps: ['100.64.0.2/32'], persistentKeepalive: 25 }] }
      await wg.apply(desired)
      const create = calls.splice(0)
      const { networkInterfaces } = await import('node:os')
      const made = { mtu: readFileSync('/sys/class/net/' + ifname + '/mtu', 'utf8').trim(), addrs: (networkInterfaces()[ifname] ?? []).filter(a => a.scopeid === undefined || a.scopeid === 0).map(a => a.cidr).sort() }
      let steps = 0
      for (let i = 0; i < 5; i++) { steps += (await wg.apply(desired)).steps.length; await wg.show() }
      const steady = calls.splice(0)
      await wg.apply({ ...desired, peers: [] })
      const removal = calls.splice(0)
      const peersAfter = (await wg.show()).peers.length
      await wg.destroy()
      console.log(JSON.stringify({ created: wg.createdWith ?? 'destroyed', create, made, steady, steps, removal, peersAfter }))
      process.exit(0)
    `
    const r = await lab.exec(HOST, [process.execPath, '--conditions=wgmesh-src', '--import', 'tsx', '--input-type=module', '-e', code, ifname2, keyFile, A],
      { timeoutMs: 60_000, env: { LOG_LEVEL: 'silent' } })
    assert.equal(r.code, 0, r.stderr)
    const out = JSON.parse(r.stdout.trim().split('\n').pop() ?? '{}') as { create: string[], made: { mtu: string, addrs: string[] }, steady: string[], steps: number, removal: string[], peersAfter: number }
    // the kernel is asked first only where it may have WireGuard; the addresses, MTU and up are one
    // `ip -batch` process (step-batch.ts), and they are all there
    assert.deepEqual(out.create, [...(kernelLacksWireGuard() ? [] : ['ip link add ' + ifname2 + ' type wireguard']), 'wireguard-go ' + ifname2, 'ip -batch -'])
    assert.deepEqual(out.made, { mtu: '1420', addrs: ['100.64.0.1/10', 'fd00:1::1/48'] })
    assert.deepEqual({ steady: out.steady, steps: out.steps }, { steady: [], steps: 0 }, '0 processes per steady-state apply()+show()')
    assert.deepEqual({ removal: out.removal, peersAfter: out.peersAfter }, { removal: [], peersAfter: 0 }, 'the peer removal went over UAPI')
    await waitFor('the second UAPI socket to go away', () => !existsSync(`/var/run/wireguard/${ifname2}.sock`))
  })
})
