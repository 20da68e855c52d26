import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { createInterface, detectBackend, userspaceBinary } from '../src/backend.js'
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

  it("createInterface with 'existing' throws InterfaceMissingError and runs nothing", async () => {
    const runner = new FakeWireGuardRunner()
    await assert.rejects(createInterface(runner, 'wg0', 'existing'), { name: 'InterfaceMissingError' })
    assert.deepEqual(runner.commands, [])
  })
})
