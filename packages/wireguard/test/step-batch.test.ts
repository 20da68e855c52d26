import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { batchSteps, failedBatchIndex, ipBatchable, ipBatchScript } from '../src/step-batch.js'

const A = Buffer.alloc(32, 1).toString('base64')
const B = Buffer.alloc(32, 2).toString('base64')
const both = { uapi: true, ipBatch: true }

describe('step batching', () => {
  it('runs of wg set become one UAPI request in order, runs of ip one batch', () => {
    const steps = [
      ['wg', 'set', 'wg0', 'listen-port', '51820', 'private-key', '/k'],
      ['wg', 'set', 'wg0', 'peer', A, 'remove'],
      ['wg', 'set', 'wg0', 'peer', A, 'endpoint', '192.0.2.1:51820', 'allowed-ips', '100.96.0.1/32'],
      ['wg', 'set', 'wg0', 'peer', B, 'remove'],
      ['ip', 'address', 'add', '100.96.0.9/16', 'dev', 'wg0'],
      ['ip', 'link', 'set', 'dev', 'wg0', 'mtu', '1420', 'up']
    ]
    const g = batchSteps(steps, 'wg0', both)
    assert.deepEqual(g.map(x => [x.kind, x.steps.length]), [['uapi', 4], ['ip', 2]])
    const first = g[0]
    assert.ok(first?.kind === 'uapi')
    assert.equal(first.set.privateKeyFile, '/k')
    assert.equal(first.set.request.listenPort, 51820)
    // the removal and the re-creation of A stay in order, B's removal after them
    assert.deepEqual(first.set.request.peers?.map(p => [p.publicKey, p.remove === true, p.endpoint]), [[A, true, undefined], [A, false, '192.0.2.1:51820'], [B, true, undefined]])
  })

  it('device keys after a peer start a new request (UAPI wants them before the first peer)', () => {
    const steps = [
      ['wg', 'set', 'wg0', 'peer', A, 'persistent-keepalive', '25'],
      ['wg', 'set', 'wg0', 'fwmark', '30573'],
      ['wg', 'set', 'wg0', 'peer', B, 'remove']
    ]
    assert.deepEqual(batchSteps(steps, 'wg0', both).map(x => [x.kind, x.steps.length]), [['uapi', 1], ['uapi', 2]])
  })

  it('what cannot be batched runs alone: a host-name endpoint, another interface, no UAPI, an unsafe word', () => {
    const steps = [
      ['wg', 'set', 'wg0', 'peer', A, 'endpoint', 'peer.example:51820'],
      ['wg', 'set', 'wg1', 'peer', A, 'remove'],
      ['ip', 'address', 'add', '100.96.0.9/16', 'dev', 'wg0'],
      ['ip', 'link', 'set', 'dev', 'wg 0', 'up'],
      ['wireguard-go', 'wg0']
    ]
    assert.deepEqual(batchSteps(steps, 'wg0', both).map(x => x.kind), ['one', 'one', 'ip', 'one', 'one'])
    assert.deepEqual(batchSteps(steps.slice(0, 3), 'wg0', { uapi: false, ipBatch: false }).map(x => x.kind), ['one', 'one', 'one'])
    assert.equal(ipBatchable(['ip', 'link', 'set', 'dev', 'wg0', 'alias', '"x"']), false)
    assert.equal(ipBatchable(['ip', 'route', 'add', '10.0.0.0/8', 'dev', 'wg0', '#x']), false)
    assert.equal(ipBatchable(['wg', 'show']), false)
  })

  it('ip -batch input and the failed line it reports', () => {
    assert.equal(ipBatchScript([['ip', 'address', 'add', '100.96.0.9/16', 'dev', 'wg0'], ['ip', 'link', 'set', 'dev', 'wg0', 'up']]),
      'address add 100.96.0.9/16 dev wg0\nlink set dev wg0 up\n')
    assert.equal(failedBatchIndex('RTNETLINK answers: File exists\nCommand failed -:2\n', 3), 1)
    assert.equal(failedBatchIndex('Command failed -:4\n', 3), undefined)
    assert.equal(failedBatchIndex('Command failed -:0\n', 3), undefined)
    assert.equal(failedBatchIndex('something else', 3), undefined)
  })
})
