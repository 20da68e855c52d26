import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { encodeUapiSet, wgSetStepToUapi } from '../src/uapi-set.js'

const PRIV = 'yAnz5TF+lXXJte14tji3zlMNq+hd2rYUIgJBgB3fBmk='
const P1 = 'xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg='
const P2 = 'TrMvSoP4jYQlY6RIzBgbssQqY3vxI2Pi+y71lOWWXX0='
const hex = (b64: string): string => Buffer.from(b64, 'base64').toString('hex')

describe('encodeUapiSet', () => {
  it('device keys before the first public_key; add, update and remove peers', () => {
    const text = encodeUapiSet({
      privateKey: PRIV,
      listenPort: 51820,
      peers: [
        { publicKey: P1, endpoint: '198.51.100.7:51820', persistentKeepalive: 25, allowedIps: ['100.96.1.2/32', 'FD00:0::1/64'] },
        { publicKey: P2, updateOnly: true, persistentKeepalive: 0 },
        { publicKey: P2, remove: true, endpoint: 'ignored:1' }
      ]
    })
    assert.equal(text, [
      'set=1', `private_key=${hex(PRIV)}`, 'listen_port=51820',
      `public_key=${hex(P1)}`, 'endpoint=198.51.100.7:51820', 'persistent_keepalive_interval=25', 'replace_allowed_ips=true',
      'allowed_ip=100.96.1.2/32', 'allowed_ip=fd00::/64',
      `public_key=${hex(P2)}`, 'update_only=true', 'persistent_keepalive_interval=0',
      `public_key=${hex(P2)}`, 'remove=true', '', ''
    ].join('\n'))
  })

  it('IPv6 endpoints in brackets, an empty allowed-ips list replaces with none, fwmark', () => {
    assert.equal(encodeUapiSet({ fwmark: 0, peers: [{ publicKey: P1, endpoint: '[2001:DB8::1]:1', allowedIps: [] }] }),
      `set=1\nfwmark=0\npublic_key=${hex(P1)}\nendpoint=[2001:db8::1]:1\nreplace_allowed_ips=true\n\n`)
  })

  it('rejects what could inject lines or that wireguard-go would refuse, without echoing keys', () => {
    assert.throws(() => encodeUapiSet({ peers: [{ publicKey: P1, endpoint: '1.2.3.4:1\nremove=true' }] }), { name: 'UapiEncodeError' })
    assert.throws(() => encodeUapiSet({ peers: [{ publicKey: P1, endpoint: 'host.example:51820' }] }), { name: 'UapiEncodeError' })
    assert.throws(() => encodeUapiSet({ peers: [{ publicKey: P1, allowedIps: ['10.0.0.1/24\nx=y'] }] }), { name: 'UapiEncodeError' })
    assert.throws(() => encodeUapiSet({ listenPort: 65536 }), { name: 'UapiEncodeError' })
    assert.throws(() => encodeUapiSet({ peers: [{ publicKey: P1, persistentKeepalive: 1.5 }] }), { name: 'UapiEncodeError' })
    assert.throws(() => encodeUapiSet({ privateKey: PRIV.slice(0, 40) }), (e: Error) => e.name === 'UapiEncodeError' && !e.message.includes(PRIV.slice(0, 20)))
  })
})

describe('wgSetStepToUapi', () => {
  it('translates the planner steps; the private key stays a file path', () => {
    assert.deepEqual(wgSetStepToUapi(['wg', 'set', 'wg0', 'listen-port', '51820', 'private-key', '/k'], 'wg0'),
      { request: { listenPort: 51820 }, privateKeyFile: '/k' })
    assert.deepEqual(wgSetStepToUapi(['wg', 'set', 'wg0', 'peer', P1, 'endpoint', '192.0.2.1:51820', 'persistent-keepalive', '25', 'allowed-ips', '100.96.0.1/32,fd00::1/128'], 'wg0'),
      { request: { peers: [{ publicKey: P1, endpoint: '192.0.2.1:51820', persistentKeepalive: 25, allowedIps: ['100.96.0.1/32', 'fd00::1/128'] }] } })
    assert.deepEqual(wgSetStepToUapi(['wg', 'set', 'wg0', 'peer', P1, 'persistent-keepalive', 'off', 'allowed-ips', ''], 'wg0'),
      { request: { peers: [{ publicKey: P1, persistentKeepalive: 0, allowedIps: [] }] } })
    assert.deepEqual(wgSetStepToUapi(['wg', 'set', 'wg0', 'peer', P1, 'remove'], 'wg0'), { request: { peers: [{ publicKey: P1, remove: true }] } })
  })

  it('returns undefined for what must stay a command', () => {
    assert.equal(wgSetStepToUapi(['ip', 'link', 'set', 'dev', 'wg0', 'up'], 'wg0'), undefined)
    assert.equal(wgSetStepToUapi(['wg', 'set', 'wg1', 'peer', P1, 'remove'], 'wg0'), undefined)
    assert.equal(wgSetStepToUapi(['wg', 'set', 'wg0', 'peer', P1, 'endpoint', 'host.example:51820'], 'wg0'), undefined)
    assert.equal(wgSetStepToUapi(['wg', 'set', 'wg0', 'peer', P1, 'preshared-key', '/psk'], 'wg0'), undefined)
    assert.equal(wgSetStepToUapi(['wg', 'set', 'wg0', 'peer', P1, 'allowed-ips', '+10.0.0.0/8'], 'wg0'), undefined)
    assert.equal(wgSetStepToUapi(['wg', 'set', 'wg0', 'peer', 'nokey', 'remove'], 'wg0'), undefined)
  })
})
