import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { parseAddrShow, parseLinkShow } from '../src/addr.js'
import { parseDump } from '../src/dump.js'
import { FakeWireGuardRunner } from '../src/fake-runner.js'
import { publicKeyFromPrivateKey } from '../src/keys.js'

const A = Buffer.alloc(32, 1).toString('base64')
const B = Buffer.alloc(32, 2).toString('base64')

describe('FakeWireGuardRunner', () => {
  it('produces output the real parsers accept', async () => {
    const f = new FakeWireGuardRunner()
    await f.run(['ip', 'link', 'add', 'wg0', 'type', 'wireguard'])
    await f.run(['wg', 'set', 'wg0', 'listen-port', '51820', 'private-key', '/k', 'peer', A, 'endpoint', '[2001:db8::1]:51820', 'persistent-keepalive', '25', 'allowed-ips', '100.96.0.7/24,fd00::1/128'])
    await f.run(['ip', 'address', 'add', '100.96.3.4/16', 'dev', 'wg0'])
    await f.run(['ip', 'address', 'add', 'fd00:0::5/48', 'dev', 'wg0'])
    await f.run(['ip', 'link', 'set', 'dev', 'wg0', 'mtu', '1380'])
    await f.run(['ip', 'link', 'set', 'dev', 'wg0', 'up'])
    const dump = parseDump((await f.run(['wg', 'show', 'wg0', 'dump'])).stdout)
    assert.equal(dump.interface.publicKey, publicKeyFromPrivateKey(f.privateKeyFor('/k')))
    assert.deepEqual(dump.peers[0], { publicKey: A, endpoint: '[2001:db8::1]:51820', allowedIps: ['100.96.0.0/24', 'fd00::1/128'], latestHandshake: 0, transferRx: 0, transferTx: 0, persistentKeepalive: 25 })
    assert.deepEqual(parseAddrShow((await f.run(['ip', '-o', 'addr', 'show', 'dev', 'wg0'])).stdout), ['100.96.3.4/16', 'fd00::5/48'])
    const link = parseLinkShow((await f.run(['ip', '-o', 'link', 'show', 'dev', 'wg0'])).stdout)
    assert.deepEqual({ mtu: link.mtu, up: link.up }, { mtu: 1380, up: true })
  })

  it('moves an allowed-ip to the peer that was last given it, like the kernel', async () => {
    const f = new FakeWireGuardRunner()
    f.addInterface('wg0')
    await f.run(['wg', 'set', 'wg0', 'peer', A, 'allowed-ips', '10.0.0.1/32,10.0.0.2/32'])
    await f.run(['wg', 'set', 'wg0', 'peer', B, 'allowed-ips', '10.0.0.2/32'])
    const iface = f.interfaces.get('wg0')!
    assert.deepEqual(iface.peers.get(A)?.allowedIps, ['10.0.0.1/32'])
    assert.deepEqual(iface.peers.get(B)?.allowedIps, ['10.0.0.2/32'])
    await f.run(['wg', 'set', 'wg0', 'peer', A, 'remove'])
    assert.deepEqual([...iface.peers.keys()], [B])
  })

  it('fails like the real tools, throwing unless allowFail, and records every command', async () => {
    const f = new FakeWireGuardRunner()
    assert.equal((await f.run(['ip', '-o', 'link', 'show', 'dev', 'wg0'], { allowFail: true })).stderr, 'Device "wg0" does not exist.')
    await assert.rejects(f.run(['wg', 'show', 'wg0', 'dump']), { name: 'CommandFailedError', message: /No such device/ })
    f.addInterface('wg0')
    await assert.rejects(f.run(['wg', 'set', 'wg0', 'peer', 'short', 'remove']), { name: 'CommandFailedError', message: /correct length/ })
    await assert.rejects(f.run(['ip', 'address', 'del', '10.0.0.1/32', 'dev', 'wg0']), { message: /Cannot assign requested address/ })
    await assert.rejects(f.run(['ip', 'link', 'add', 'wg0', 'type', 'wireguard']), { message: /File exists/ })
    await assert.rejects(f.run(['rm', '-rf', '/']), { name: 'CommandFailedError', message: /exit 127/ })
    assert.equal(f.commands.length, 6)
    assert.equal(f.commands[5], 'rm -rf /')
  })

  it('deleting an IPv4 primary deletes its subnet\'s secondaries, as Linux does', async () => {
    const f = new FakeWireGuardRunner()
    f.addInterface('wg0')
    for (const a of ['100.96.3.4/16', '100.96.9.9/16', '10.0.0.1/8', 'fd00::1/64', 'fd00::2/64']) await f.run(['ip', 'address', 'add', a, 'dev', 'wg0'])
    assert.match((await f.run(['ip', '-o', 'addr', 'show', 'dev', 'wg0'])).stdout, /inet 100\.96\.9\.9\/16 scope global secondary wg0/)
    await f.run(['ip', 'address', 'del', 'fd00::1/64', 'dev', 'wg0'])
    await f.run(['ip', 'address', 'del', '100.96.3.4/16', 'dev', 'wg0'])
    assert.deepEqual(f.interfaces.get('wg0')?.addresses, ['10.0.0.1/8', 'fd00::2/64'])
    await f.run(['ip', 'address', 'replace', '10.0.0.1/8', 'dev', 'wg0'])
    await f.run(['ip', 'address', 'replace', '100.96.9.9/16', 'dev', 'wg0'])
    assert.deepEqual(f.interfaces.get('wg0')?.addresses, ['10.0.0.1/8', 'fd00::2/64', '100.96.9.9/16'])
  })

  it('applies a wg set line all-or-nothing', async () => {
    const f = new FakeWireGuardRunner()
    f.addInterface('wg0')
    await assert.rejects(f.run(['wg', 'set', 'wg0', 'listen-port', '1', 'peer', A, 'allowed-ips', '10.0.0.1/32', 'bogus']))
    assert.equal(f.interfaces.get('wg0')?.listenPort, 0)
    assert.equal(f.interfaces.get('wg0')?.peers.size, 0)
  })
})
