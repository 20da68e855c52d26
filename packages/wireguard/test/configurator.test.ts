import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import type { DesiredPeer, DesiredWireGuard } from '@wgmesh/core'
import type { CommandRunner } from '../src/command-runner.js'
import { createConfigurator } from '../src/configurator.js'
import { FakeWireGuardRunner } from '../src/fake-runner.js'
import { publicKeyFromPrivateKey } from '../src/keys.js'

function key (n: number): string {
  const b = Buffer.alloc(32, 9)
  b.writeUInt16BE(n, 0)
  return b.toString('base64')
}
const A = key(1)
const B = key(2)
const X = key(50)

function peer (pk: string, over: Partial<DesiredPeer> = {}): DesiredPeer {
  return { publicKey: pk, endpoint: '192.0.2.1:51820', allowedIps: ['100.96.0.1/32'], persistentKeepalive: 25, ...over }
}
function desired (over: Partial<DesiredWireGuard> = {}): DesiredWireGuard {
  return { interface: 'wg0', privateKeyFile: '/k', listenPort: 51820, addresses: ['100.96.3.4/16'], mtu: 1380, peers: [peer(A)], ...over }
}

const READS = ['ip -o link show dev wg0', 'wg show wg0 dump', 'ip -o addr show dev wg0']
const CONFIG = [
  'wg set wg0 listen-port 51820 private-key /k',
  `wg set wg0 peer ${A} endpoint 192.0.2.1:51820 persistent-keepalive 25 allowed-ips 100.96.0.1/32`,
  'ip address add 100.96.3.4/16 dev wg0',
  'ip link set dev wg0 mtu 1380 up'
]

describe('WireGuardConfigurator', () => {
  it('kernel path: creates with ip link add, then configures; fake state matches', async () => {
    const runner = new FakeWireGuardRunner()
    const wg = createConfigurator({ interface: 'wg0', runner })
    const r = await wg.apply(desired())
    assert.deepEqual(runner.commands, ['ip -o link show dev wg0', 'ip link add wg0 type wireguard', ...CONFIG])
    assert.deepEqual(r.steps.map(s => s.join(' ')), ['ip link add wg0 type wireguard', ...CONFIG])
    assert.equal(wg.createdWith, 'kernel')
    const iface = runner.interfaces.get('wg0')!
    assert.equal(iface.kind, 'kernel')
    assert.equal(iface.publicKey, publicKeyFromPrivateKey(runner.privateKeyFor('/k')))
    assert.deepEqual({ mtu: iface.mtu, up: iface.up, addresses: iface.addresses, port: iface.listenPort }, { mtu: 1380, up: true, addresses: ['100.96.3.4/16'], port: 51820 })
    assert.deepEqual(iface.peers.get(A)?.allowedIps, ['100.96.0.1/32'])
  })

  it('idempotent: a second apply of the same state issues only the read commands', async () => {
    const runner = new FakeWireGuardRunner()
    const wg = createConfigurator({ interface: 'wg0', runner })
    await wg.apply(desired({ addresses: ['100.96.3.4/16', 'fdab:cdef:1234::5/48'], peers: [peer(A), peer(B, { endpoint: undefined, allowedIps: ['100.96.0.2/32'] })] }))
    runner.takeCommands()
    const r = await wg.apply(desired({ addresses: ['100.96.3.4/16', 'fdab:cdef:1234::5/48'], peers: [peer(B, { endpoint: undefined, allowedIps: ['100.96.0.2/32'] }), peer(A)] }))
    assert.deepEqual(r.steps, [])
    assert.deepEqual(runner.commands, READS)
  })

  it('with expectedPublicKey, repairs a key someone changed behind its back', async () => {
    const runner = new FakeWireGuardRunner({ privateKeys: { '/k': 'yAnz5TF+lXXJte14tji3zlMNq+hd2rYUIgJBgB3fBmk=' } })
    const wg = createConfigurator({ interface: 'wg0', runner, expectedPublicKey: publicKeyFromPrivateKey('yAnz5TF+lXXJte14tji3zlMNq+hd2rYUIgJBgB3fBmk=') })
    await wg.apply(desired())
    runner.interfaces.get('wg0')!.publicKey = 'SOMETHINGELSE'
    runner.takeCommands()
    const r = await wg.apply(desired())
    assert.deepEqual(r.steps.map(s => s.join(' ')), ['wg set wg0 listen-port 51820 private-key /k'])
    assert.deepEqual((await wg.apply(desired())).steps, [])
  })

  it('does not fight roaming, but pushes a changed desired endpoint', async () => {
    const runner = new FakeWireGuardRunner()
    const wg = createConfigurator({ interface: 'wg0', runner })
    await wg.apply(desired())
    runner.interfaces.get('wg0')!.peers.get(A)!.endpoint = '203.0.113.77:40000'
    runner.interfaces.get('wg0')!.peers.get(A)!.latestHandshake = 1_800_000_000 // a working tunnel (else a new endpoint re-creates the peer)
    assert.deepEqual((await wg.apply(desired())).steps, [])
    assert.equal(runner.interfaces.get('wg0')!.peers.get(A)!.endpoint, '203.0.113.77:40000')
    const r = await wg.apply(desired({ peers: [peer(A, { endpoint: '198.51.100.2:51820' })] }))
    assert.deepEqual(r.steps.map(s => s.join(' ')), [`wg set wg0 peer ${A} endpoint 198.51.100.2:51820`])
    assert.equal(runner.interfaces.get('wg0')!.peers.get(A)!.endpoint, '198.51.100.2:51820')
  })

  it('userspace fallback when ip link add fails (no kernel module)', async () => {
    const runner = new FakeWireGuardRunner({ kernelModule: false })
    const wg = createConfigurator({ interface: 'wg0', runner })
    const r = await wg.apply(desired())
    assert.deepEqual(runner.commands, ['ip -o link show dev wg0', 'ip link add wg0 type wireguard', 'wireguard-go wg0', ...CONFIG])
    assert.deepEqual(r.steps[0], ['wireguard-go', 'wg0'])
    assert.equal(wg.createdWith, 'userspace')
    assert.equal(runner.interfaces.get('wg0')?.kind, 'userspace')
  })

  it('userspace fallback honours an explicit userspace binary', async () => {
    const runner = new FakeWireGuardRunner({ kernelModule: false, userspaceBinaries: ['boringtun-cli'] })
    const wg = createConfigurator({ interface: 'wg0', runner, userspaceBinary: 'boringtun-cli' })
    await wg.apply(desired())
    assert.deepEqual(runner.commands.slice(1, 3), ['ip link add wg0 type wireguard', 'boringtun-cli wg0'])
  })

  it("backend 'userspace' never tries the kernel; 'kernel' does not fall back", async () => {
    const us = new FakeWireGuardRunner()
    await createConfigurator({ interface: 'wg0', runner: us, backend: 'userspace' }).apply(desired())
    assert.deepEqual(us.commands.slice(0, 2), ['ip -o link show dev wg0', 'wireguard-go wg0'])
    const k = new FakeWireGuardRunner({ kernelModule: false })
    await assert.rejects(createConfigurator({ interface: 'wg0', runner: k, backend: 'kernel' }).apply(desired()), { name: 'CommandFailedError', message: /Unknown device type/ })
    assert.deepEqual(k.commands, ['ip -o link show dev wg0', 'ip link add wg0 type wireguard'])
    assert.equal(k.interfaces.size, 0)
  })

  it("existing: refuses to create a missing interface, with a clear error", async () => {
    const runner = new FakeWireGuardRunner()
    const wg = createConfigurator({ interface: 'wg0', runner, backend: 'existing' })
    await assert.rejects(wg.apply(desired()), { name: 'InterfaceMissingError', message: /'wg0' does not exist.*'existing'/ })
    assert.deepEqual(runner.commands, ['ip -o link show dev wg0'])
    assert.equal(runner.interfaces.size, 0)
  })

  it('existing: manages peers and addresses only; destroy removes only its own peers and keeps the interface', async () => {
    const runner = new FakeWireGuardRunner()
    const iface = runner.addInterface('wg0')
    iface.peers.set(X, { publicKey: X, allowedIps: ['10.9.0.0/16'], latestHandshake: 0, transferRx: 0, transferTx: 0 })
    const wg = createConfigurator({ interface: 'wg0', runner, backend: 'existing' })
    const d = desired({ peers: [peer(A), peer(B, { allowedIps: ['100.96.0.2/32'] }), peer(X, { endpoint: undefined, persistentKeepalive: 0, allowedIps: ['10.9.0.0/16'] })] })
    const r = await wg.apply(d)
    assert.deepEqual(r.steps.map(s => s.join(' ')), [
      `wg set wg0 peer ${A} endpoint 192.0.2.1:51820 persistent-keepalive 25 allowed-ips 100.96.0.1/32`,
      `wg set wg0 peer ${B} endpoint 192.0.2.1:51820 persistent-keepalive 25 allowed-ips 100.96.0.2/32`,
      'ip address add 100.96.3.4/16 dev wg0'
    ])
    assert.equal(iface.up, false) // not ours to bring up
    runner.takeCommands()
    const del = await wg.destroy()
    assert.deepEqual(del.steps.map(s => s.join(' ')), [`wg set wg0 peer ${A} remove`, `wg set wg0 peer ${B} remove`])
    assert.ok(!runner.commands.some(c => c.startsWith('ip link del')))
    assert.deepEqual([...runner.interfaces.get('wg0')!.peers.keys()], [X])
  })

  it('destroy deletes the interface (kernel or userspace) and is a no-op when it is gone', async () => {
    for (const kernelModule of [true, false]) {
      const runner = new FakeWireGuardRunner({ kernelModule })
      const wg = createConfigurator({ interface: 'wg0', runner })
      await wg.apply(desired())
      runner.takeCommands()
      assert.deepEqual((await wg.destroy()).steps, [['ip', 'link', 'del', 'wg0']])
      assert.equal(runner.interfaces.has('wg0'), false)
      runner.takeCommands()
      assert.deepEqual((await wg.destroy()).steps, [])
      assert.deepEqual(runner.commands, ['ip -o link show dev wg0'])
    }
  })

  it('address change within the mesh subnet survives Linux primary/secondary semantics', async () => {
    const runner = new FakeWireGuardRunner()
    const wg = createConfigurator({ interface: 'wg0', runner })
    await wg.apply(desired({ addresses: ['100.96.3.4/16', '100.96.7.7/16'] }))
    const r = await wg.apply(desired({ addresses: ['100.96.9.9/16', '100.96.7.7/16'] }))
    assert.deepEqual(r.steps.map(s => s.join(' ')), ['ip address del 100.96.3.4/16 dev wg0', 'ip address add 100.96.9.9/16 dev wg0', 'ip address replace 100.96.7.7/16 dev wg0'])
    assert.deepEqual([...runner.interfaces.get('wg0')!.addresses].sort(), ['100.96.7.7/16', '100.96.9.9/16'])
    assert.deepEqual((await wg.apply(desired({ addresses: ['100.96.9.9/16', '100.96.7.7/16'] }))).steps, [])
  })

  it('re-creates and fully configures an interface deleted behind its back', async () => {
    const runner = new FakeWireGuardRunner()
    const wg = createConfigurator({ interface: 'wg0', runner })
    await wg.apply(desired())
    runner.interfaces.delete('wg0')
    runner.takeCommands()
    const r = await wg.apply(desired())
    assert.deepEqual(r.steps.map(s => s.join(' ')), ['ip link add wg0 type wireguard', ...CONFIG])
  })

  it('show() reports endpoint, handshake and transfer, without the private key', async () => {
    const runner = new FakeWireGuardRunner()
    const wg = createConfigurator({ interface: 'wg0', runner })
    await wg.apply(desired())
    Object.assign(runner.interfaces.get('wg0')!.peers.get(A)!, { latestHandshake: 1732233000, transferRx: 100, transferTx: 200 })
    const dump = await wg.show()
    assert.equal(dump.interface.privateKey, undefined)
    assert.equal(dump.interface.publicKey, publicKeyFromPrivateKey(runner.privateKeyFor('/k')))
    assert.deepEqual(dump.peers, [{ publicKey: A, endpoint: '192.0.2.1:51820', allowedIps: ['100.96.0.1/32'], latestHandshake: 1732233000, transferRx: 100, transferTx: 200, persistentKeepalive: 25 }])
  })

  it('rejects a desired state for another interface', async () => {
    const runner = new FakeWireGuardRunner()
    const wg = createConfigurator({ interface: 'wg0', runner })
    await assert.rejects(wg.apply(desired({ interface: 'wg1' })), { name: 'InterfaceMismatchError' })
    assert.deepEqual(runner.commands, [])
  })

  it('a failed step rejects the apply; the next apply finishes the job', async () => {
    const runner = new FakeWireGuardRunner({ failWhen: argv => argv[1] === 'address' ? { code: 2, stderr: 'RTNETLINK answers: Permission denied' } : undefined })
    const wg = createConfigurator({ interface: 'wg0', runner })
    await assert.rejects(wg.apply(desired()), { name: 'CommandFailedError', message: /Permission denied/ })
    runner.failWhen = undefined
    const r = await wg.apply(desired())
    assert.deepEqual(r.steps.map(s => s.join(' ')), ['ip address add 100.96.3.4/16 dev wg0', 'ip link set dev wg0 mtu 1380 up'])
  })

  it('serializes: calls made during an apply wait, then one apply of the latest desired state runs', async () => {
    const fake = new FakeWireGuardRunner()
    let gate: (() => void) | undefined
    const gated = new Promise<void>(resolve => { gate = resolve })
    let running = 0
    let maxRunning = 0
    const runner: CommandRunner = {
      run: async (argv, opts) => {
        running++
        maxRunning = Math.max(maxRunning, running)
        try {
          if (fake.commands.length === 0) await gated // hold the very first command
          return await fake.run(argv, opts)
        } finally {
          running--
        }
      }
    }
    const wg = createConfigurator({ interface: 'wg0', runner })
    const first = wg.apply(desired())
    await new Promise(resolve => setImmediate(resolve))
    const second = wg.apply(desired({ mtu: 1300 }))
    const third = wg.apply(desired({ mtu: 1280 }))
    gate?.()
    const [r1, r2, r3] = await Promise.all([first, second, third])
    assert.equal(maxRunning, 1)
    assert.equal(r2, r3) // the queued calls shared one apply
    assert.deepEqual(r2.steps.map(s => s.join(' ')), ['ip link set dev wg0 mtu 1280'])
    assert.ok(r1.steps.length > 0)
    assert.equal(fake.commands.filter(c => c === 'ip -o link show dev wg0').length, 2)
    assert.equal(fake.interfaces.get('wg0')?.mtu, 1280)
  })
})
