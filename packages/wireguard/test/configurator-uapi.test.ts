import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import type { DesiredPeer, DesiredWireGuard } from '@wgmesh/core'
import { createConfigurator } from '../src/configurator.js'
import { FakeWireGuardRunner } from '../src/fake-runner.js'
import { FakeLinkReader, FakeUapi } from '../src/fake-uapi.js'
import { publicKeyFromPrivateKey } from '../src/keys.js'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

function key (n: number): string {
  const b = Buffer.alloc(32, 9)
  b.writeUInt16BE(n, 0)
  return b.toString('base64')
}
const A = key(1)
const B = key(2)
const PRIV = 'yAnz5TF+lXXJte14tji3zlMNq+hd2rYUIgJBgB3fBmk='
const dir = mkdtempSync(join(tmpdir(), 'wgmesh-uapi-'))
const KEYFILE = join(dir, 'wg.key')
writeFileSync(KEYFILE, PRIV + '\n', { mode: 0o600 })

function peer (pk: string, over: Partial<DesiredPeer> = {}): DesiredPeer {
  return { publicKey: pk, endpoint: '192.0.2.1:51820', allowedIps: ['100.96.0.1/32'], persistentKeepalive: 25, ...over }
}
function desired (over: Partial<DesiredWireGuard> = {}): DesiredWireGuard {
  return { interface: 'wg0', privateKeyFile: KEYFILE, listenPort: 51820, addresses: ['100.96.3.4/16'], mtu: 1380, peers: [peer(A)], ...over }
}

function setup (kernelModule = false): { runner: FakeWireGuardRunner, uapi: FakeUapi, links: FakeLinkReader, wg: ReturnType<typeof createConfigurator> } {
  const runner = new FakeWireGuardRunner({ kernelModule, privateKeys: { [KEYFILE]: PRIV } })
  const uapi = new FakeUapi(runner)
  const links = new FakeLinkReader(runner)
  const wg = createConfigurator({ interface: 'wg0', runner, uapi, linkReader: links, expectedPublicKey: publicKeyFromPrivateKey(PRIV) })
  return { runner, uapi, links, wg }
}

describe('WireGuardConfigurator over UAPI (userspace backend)', () => {
  it('creates with wireguard-go, then sends key, port and peers over UAPI; ip commands stay commands', async () => {
    const { runner, uapi, wg } = setup()
    const r = await wg.apply(desired())
    assert.deepEqual(runner.commands, [
      'ip link add wg0 type wireguard', 'wireguard-go wg0',
      'ip address add 100.96.3.4/16 dev wg0', 'ip link set dev wg0 mtu 1380 up'
    ])
    // key, port and peer in one request (step-batch.ts)
    assert.deepEqual(uapi.requests, [
      `set=1 private_key=(redacted) listen_port=51820 public_key=${Buffer.from(A, 'base64').toString('hex')} endpoint=192.0.2.1:51820 persistent_keepalive_interval=25 replace_allowed_ips=true allowed_ip=100.96.0.1/32`
    ])
    // the result still lists the planned steps, as argv
    assert.deepEqual(r.steps.map(s => s.join(' ')), ['wireguard-go wg0', `wg set wg0 listen-port 51820 private-key ${KEYFILE}`,
      `wg set wg0 peer ${A} endpoint 192.0.2.1:51820 persistent-keepalive 25 allowed-ips 100.96.0.1/32`,
      'ip address add 100.96.3.4/16 dev wg0', 'ip link set dev wg0 mtu 1380 up'])
    const iface = runner.interfaces.get('wg0')!
    assert.equal(iface.privateKey, PRIV)
    assert.equal(iface.listenPort, 51820)
    assert.deepEqual(iface.peers.get(A), { publicKey: A, endpoint: '192.0.2.1:51820', allowedIps: ['100.96.0.1/32'], persistentKeepalive: 25, latestHandshake: 0, transferRx: 0, transferTx: 0 })
  })

  it('steady state spawns nothing: apply() of an unchanged state and show() run zero commands', async () => {
    const { runner, uapi, wg } = setup()
    const state = desired({ addresses: ['100.96.3.4/16', 'fdab:cdef:1234::5/48'], peers: [peer(A), peer(B, { endpoint: undefined, allowedIps: ['100.96.0.2/32'] })] })
    await wg.apply(state)
    runner.takeCommands()
    uapi.takeRequests()
    for (let i = 0; i < 3; i++) {
      assert.deepEqual((await wg.apply(state)).steps, [])
      const dump = await wg.show()
      assert.equal(dump.peers.length, 2)
      assert.equal(dump.interface.privateKey, undefined)
      assert.equal(dump.interface.publicKey, publicKeyFromPrivateKey(PRIV))
    }
    assert.deepEqual(runner.commands, [], 'no process spawned in steady state')
    assert.deepEqual(uapi.requests, Array(6).fill('get=1'))
  })

  it('a peer update and a removal go over UAPI, add before remove', async () => {
    const { runner, uapi, wg } = setup()
    await wg.apply(desired({ peers: [peer(A), peer(B, { allowedIps: ['100.96.0.2/32'] })] }))
    runner.takeCommands()
    uapi.takeRequests()
    const r = await wg.apply(desired({ peers: [peer(A, { allowedIps: ['100.96.0.1/32', '100.96.7.0/24'], persistentKeepalive: undefined })] }))
    assert.deepEqual(r.steps.map(s => s.join(' ')), [`wg set wg0 peer ${A} persistent-keepalive off allowed-ips 100.96.0.1/32,100.96.7.0/24`, `wg set wg0 peer ${B} remove`])
    assert.deepEqual(runner.commands, [])
    // one get, then the update and the removal in one set
    assert.deepEqual(uapi.requests, ['get=1', `set=1 public_key=${Buffer.from(A, 'base64').toString('hex')} persistent_keepalive_interval=0 replace_allowed_ips=true allowed_ip=100.96.0.1/32 allowed_ip=100.96.7.0/24 public_key=${Buffer.from(B, 'base64').toString('hex')} remove=true`])
    const iface = runner.interfaces.get('wg0')!
    assert.deepEqual([...iface.peers.keys()], [A])
    assert.deepEqual(iface.peers.get(A)?.allowedIps, ['100.96.0.1/32', '100.96.7.0/24'])
    assert.equal(iface.peers.get(A)?.persistentKeepalive, undefined)
    assert.deepEqual((await wg.apply(desired({ peers: [peer(A, { allowedIps: ['100.96.7.0/24', '100.96.0.1/32'], persistentKeepalive: undefined })] }))).steps, [])
  })

  it('a refused set rejects with UapiError carrying the errno; the next apply converges', async () => {
    const { runner, uapi, wg } = setup()
    await wg.apply(desired())
    uapi.failWhen = (_i, body) => body.includes('remove=true') ? -5 : undefined
    await assert.rejects(wg.apply(desired({ peers: [] })), (e: Error & { errno?: number }) => e.name === 'UapiError' && e.errno === -5)
    uapi.failWhen = undefined
    assert.equal((await wg.apply(desired({ peers: [] }))).steps.length, 1)
    assert.equal(runner.interfaces.get('wg0')!.peers.size, 0)
  })

  it('a peer re-created for a new endpoint (never handshaken) is removed and added in one request, in that order', async () => {
    const { runner, uapi, wg } = setup()
    await wg.apply(desired({ peers: [peer(A), peer(B, { allowedIps: ['100.96.0.2/32'] })] }))
    uapi.takeRequests()
    const r = await wg.apply(desired({ peers: [peer(A, { endpoint: '198.51.100.7:51820' }), peer(B, { allowedIps: ['100.96.0.2/32'] })] }))
    assert.deepEqual(r.steps.map(s => s.slice(3, 6).join(' ')), [`peer ${A} remove`, `peer ${A} endpoint`])
    assert.equal(uapi.requests.length, 2)
    assert.match(uapi.requests[1] ?? '', /remove=true public_key=\S+ endpoint=198\.51\.100\.7:51820/)
    assert.equal(runner.interfaces.get('wg0')?.peers.get(A)?.endpoint, '198.51.100.7:51820')
    assert.equal(runner.interfaces.get('wg0')?.peers.size, 2)
  })

  it('with a runner that batches ip, the addresses, MTU and up are one ip -batch; a failing line names its step', async () => {
    const runner = new FakeWireGuardRunner({ kernelModule: false, privateKeys: { [KEYFILE]: PRIV }, ipBatch: true })
    const uapi = new FakeUapi(runner)
    const wg = createConfigurator({ interface: 'wg0', runner, uapi, linkReader: new FakeLinkReader(runner), expectedPublicKey: publicKeyFromPrivateKey(PRIV) })
    const state = desired({ addresses: ['100.96.3.4/16', 'fdab:cdef:1234::5/48'] })
    await wg.apply(state)
    assert.deepEqual(runner.commands, ['ip link add wg0 type wireguard', 'wireguard-go wg0',
      'ip -batch - <<< address add 100.96.3.4/16 dev wg0; address add fdab:cdef:1234::5/48 dev wg0; link set dev wg0 mtu 1380 up'])
    assert.deepEqual(runner.interfaces.get('wg0')?.addresses, ['100.96.3.4/16', 'fdab:cdef:1234::5/48'])
    runner.takeCommands()
    runner.failWhen = argv => argv.includes('fdab:cdef:1234::6/48') ? { code: 2, stderr: 'RTNETLINK answers: Permission denied' } : undefined
    await assert.rejects(wg.apply(desired({ addresses: ['100.96.3.5/16', 'fdab:cdef:1234::6/48'] })),
      (e: Error & { argv?: string[] }) => e.name === 'CommandFailedError' && e.argv?.join(' ') === 'ip address add fdab:cdef:1234::6/48 dev wg0')
  })

  it('kernel interface: no UAPI socket, so the wg commands are used (fallback)', async () => {
    const { runner, uapi, wg } = setup(true)
    await wg.apply(desired())
    runner.takeCommands()
    assert.deepEqual((await wg.apply(desired())).steps, [])
    await wg.show()
    assert.deepEqual(runner.commands, ['wg show wg0 dump', 'wg show wg0 dump'])
    assert.deepEqual(uapi.requests, [])
  })

  it('a host-name endpoint cannot go over UAPI and falls back to the wg command', async () => {
    const { runner, wg } = setup()
    await wg.apply(desired())
    runner.interfaces.get('wg0')!.peers.get(A)!.latestHandshake = 1_800_000_000
    runner.takeCommands()
    await wg.apply(desired({ peers: [peer(A, { endpoint: 'peer.example:51820' })] }))
    assert.deepEqual(runner.commands, [`wg set wg0 peer ${A} endpoint peer.example:51820`])
  })

  it('a link that is down has its addresses read with ip (like the native reader)', async () => {
    const { runner, wg } = setup()
    await wg.apply(desired())
    runner.interfaces.get('wg0')!.up = false
    runner.takeCommands()
    assert.deepEqual((await wg.apply(desired())).steps.map(s => s.join(' ')), ['ip link set dev wg0 up'])
    assert.deepEqual(runner.commands, ['ip -o addr show dev wg0', 'ip link set dev wg0 up'])
  })

  it('destroy deletes the interface with ip link del; backend existing removes its peers over UAPI', async () => {
    const { runner, wg } = setup()
    await wg.apply(desired())
    runner.takeCommands()
    assert.deepEqual((await wg.destroy()).steps, [['ip', 'link', 'del', 'wg0']])
    assert.equal(runner.interfaces.size, 0)
    const host = new FakeWireGuardRunner()
    host.addInterface('wg1', 'userspace').up = true
    const uapi = new FakeUapi(host)
    const ex = createConfigurator({ interface: 'wg1', backend: 'existing', runner: host, uapi, linkReader: new FakeLinkReader(host) })
    await ex.apply({ ...desired(), interface: 'wg1' })
    host.takeCommands()
    await ex.destroy()
    assert.deepEqual(host.commands, [])
    assert.equal(host.interfaces.get('wg1')!.peers.size, 0)
  })
})
