import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createInterface, detectBackend, kernelLacksWireGuard, userspaceBinary } from '../src/backend.js'
import { CommandFailedError } from '../src/errors.js'
import { FakeWireGuardRunner } from '../src/fake-runner.js'

describe('backend', () => {
  it('userspace binary: option beats $WG_QUICK_USERSPACE_IMPLEMENTATION beats wireguard-go', () => {
    assert.equal(userspaceBinary({ env: {} }), 'wireguard-go')
    assert.equal(userspaceBinary({ env: { WG_QUICK_USERSPACE_IMPLEMENTATION: 'boringtun-cli' } }), 'boringtun-cli')
    assert.equal(userspaceBinary({ env: { WG_QUICK_USERSPACE_IMPLEMENTATION: 'boringtun-cli' }, userspaceBinary: '/opt/wg-go' }), '/opt/wg-go')
    assert.equal(userspaceBinary({ env: { WG_QUICK_USERSPACE_IMPLEMENTATION: '' } }), 'wireguard-go')
  })

  it('detectBackend prefers the kernel', async () => {
    const runner = new FakeWireGuardRunner()
    assert.deepEqual(await detectBackend(runner, 'wg0', { env: {} }), { kind: 'kernel', step: ['ip', 'link', 'add', 'wg0', 'type', 'wireguard'] })
    assert.deepEqual(runner.commands, ['ip link add wg0 type wireguard'])
  })

  it('detectBackend falls back to the userspace binary named in the environment', async () => {
    const runner = new FakeWireGuardRunner({ kernelModule: false, userspaceBinaries: ['boringtun-cli'] })
    const created = await detectBackend(runner, 'wg0', { env: { WG_QUICK_USERSPACE_IMPLEMENTATION: 'boringtun-cli' } })
    assert.deepEqual(created, { kind: 'userspace', step: ['boringtun-cli', 'wg0'] })
    assert.deepEqual(runner.commands, ['ip link add wg0 type wireguard', 'boringtun-cli wg0'])
    assert.equal(runner.interfaces.get('wg0')?.kind, 'userspace')
  })

  it('detectBackend throws when userspace fails too', async () => {
    const runner = new FakeWireGuardRunner({ kernelModule: false, userspaceBinaries: [] })
    await assert.rejects(detectBackend(runner, 'wg0', { env: {} }), (e: unknown) => {
      assert.ok(e instanceof CommandFailedError)
      assert.deepEqual(e.argv, ['wireguard-go', 'wg0'])
      assert.match(e.stderr, /command not found[\s\S]*tried first: ip link add wg0 type wireguard: Error: Unknown device type/)
      return true
    })
  })

  it('a kernel surely without WireGuard: userspace first, the kernel still tried if userspace fails', async () => {
    const runner = new FakeWireGuardRunner({ kernelModule: false })
    assert.deepEqual(await detectBackend(runner, 'wg0', { env: {}, kernelLacksWireGuard: () => true }), { kind: 'userspace', step: ['wireguard-go', 'wg0'] })
    assert.deepEqual(runner.commands, ['wireguard-go wg0'])
    const noGo = new FakeWireGuardRunner({ kernelModule: true, userspaceBinaries: [] })
    assert.equal((await detectBackend(noGo, 'wg0', { env: {}, kernelLacksWireGuard: () => true })).kind, 'kernel')
    assert.deepEqual(noGo.commands, ['wireguard-go wg0', 'ip link add wg0 type wireguard'])
  })

  it('kernelLacksWireGuard reads /sys/module and /lib/modules/<release>, and doubts towards trying the kernel', () => {
    const root = mkdtempSync(join(tmpdir(), 'wgmesh-kmod-'))
    const mods = join(root, 'lib/modules/6.1.0-test')
    assert.equal(kernelLacksWireGuard('6.1.0-test', root), true, 'no module loaded, no modules directory')
    mkdirSync(mods, { recursive: true })
    writeFileSync(join(mods, 'modules.dep'), 'kernel/net/ipv4/udp_tunnel.ko:\n')
    writeFileSync(join(mods, 'modules.builtin'), 'kernel/net/ipv4/tcp.ko\n')
    assert.equal(kernelLacksWireGuard('6.1.0-test', root), true, 'neither loadable nor built in')
    writeFileSync(join(mods, 'modules.dep'), 'kernel/drivers/net/wireguard/wireguard.ko.xz: kernel/net/ipv4/udp_tunnel.ko.xz\n')
    assert.equal(kernelLacksWireGuard('6.1.0-test', root), false, 'loadable')
    writeFileSync(join(mods, 'modules.dep'), '')
    writeFileSync(join(mods, 'modules.builtin'), 'kernel/drivers/net/wireguard/wireguard.ko\n')
    assert.equal(kernelLacksWireGuard('6.1.0-test', root), false, 'built in')
    mkdirSync(join(root, 'lib/modules/6.2.0-test/modules.dep'), { recursive: true }) // unreadable as a file
    assert.equal(kernelLacksWireGuard('6.2.0-test', root), false, 'in doubt')
    mkdirSync(join(root, 'sys/module/wireguard'), { recursive: true })
    assert.equal(kernelLacksWireGuard('6.9.9-none', root), false, 'loaded')
  })

  it("createInterface with 'existing' throws InterfaceMissingError and runs nothing", async () => {
    const runner = new FakeWireGuardRunner()
    await assert.rejects(createInterface(runner, 'wg0', 'existing'), { name: 'InterfaceMissingError' })
    assert.deepEqual(runner.commands, [])
  })
})
