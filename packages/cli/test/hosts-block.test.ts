/** The managed hosts-file block (packages/agent/src/hosts-block.ts): pure, text in, text out. */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { removeHostsBlock, updateHostsText, type HostsMember } from '../../agent/src/hosts-block.js'

const USER = '127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost\n# a comment\n10.0.0.5  printer\n'
const A: HostsMember = { name: 'alpha', ipv4: '100.96.0.2', ipv6: 'fd3c::2', self: true }
const B: HostsMember = { name: 'bravo', ipv4: '100.96.0.3', ipv6: 'fd3c::3' }

test('the block is appended, names and name.<domain> on IPv4 and IPv6, lines outside byte-identical', () => {
  const r = updateHostsText(USER, 'wgmesh0', 'wgmesh', [B, A])
  assert.equal(r.changed, true)
  assert.equal(r.text, USER + [
    '# BEGIN wgmesh wgmesh0',
    '100.96.0.2\talpha alpha.wgmesh',
    '100.96.0.3\tbravo bravo.wgmesh',
    'fd3c::2\talpha alpha.wgmesh',
    'fd3c::3\tbravo bravo.wgmesh',
    '# END wgmesh wgmesh0', ''].join('\n'))
  assert.deepEqual(r.names, ['alpha', 'bravo'])
  // the same members again: nothing changes; another set: only the block changes, in place
  assert.equal(updateHostsText(r.text, 'wgmesh0', 'wgmesh', [A, B]).changed, false)
  const tail = '192.0.2.1 after-block\n'
  const r2 = updateHostsText(r.text + tail, 'wgmesh0', 'wgmesh', [A])
  assert.equal(r2.text, USER + '# BEGIN wgmesh wgmesh0\n100.96.0.2\talpha alpha.wgmesh\nfd3c::2\talpha alpha.wgmesh\n# END wgmesh wgmesh0\n' + tail)
  // removed: exactly the file before
  assert.equal(removeHostsBlock(r2.text, 'wgmesh0').text, USER + tail)
  assert.equal(removeHostsBlock(USER, 'wgmesh0').changed, false)
})

test('a file without a final newline, CRLF lines and another interface\'s block are kept', () => {
  const other = '# BEGIN wgmesh wg1\n100.64.0.9\tzulu zulu.wgmesh\n# END wgmesh wg1\n'
  const cur = 'a b\r\n' + other + 'last-line-no-newline'
  const r = updateHostsText(cur, 'wgmesh0', 'wgmesh', [A])
  // a newline goes before our block, and the block ends without one, as the file did
  assert.equal(r.text, cur + '\n# BEGIN wgmesh wgmesh0\n100.96.0.2\talpha alpha.wgmesh\nfd3c::2\talpha alpha.wgmesh\n# END wgmesh wgmesh0')
  // updated in place, it keeps that shape; removed, the file is exactly what it was
  const r2 = updateHostsText(r.text, 'wgmesh0', 'wgmesh', [A, B])
  assert.ok(r2.text.endsWith('# END wgmesh wgmesh0') && r2.text.includes('bravo'))
  assert.equal(removeHostsBlock(r.text, 'wgmesh0').text, cur)
  assert.equal(removeHostsBlock(r2.text, 'wgmesh0').text, cur)
  assert.equal(removeHostsBlock(r.text, 'wg1').text, 'a b\r\n' + 'last-line-no-newline\n# BEGIN wgmesh wgmesh0\n100.96.0.2\talpha alpha.wgmesh\nfd3c::2\talpha alpha.wgmesh\n# END wgmesh wgmesh0')
})

test('hostile names and addresses from the network are left out and counted; nothing injects a line', () => {
  const evil: HostsMember[] = [
    { name: 'evil\n1.2.3.4 bank', ipv4: '100.96.0.9' },
    { name: 'x # comment', ipv4: '100.96.0.10' },
    { name: 'UPPER', ipv4: '100.96.0.11' },
    { name: '-dash', ipv4: '100.96.0.12' },
    { name: 'a'.repeat(64), ipv4: '100.96.0.13' },
    { name: 'dot.ted', ipv4: '100.96.0.14' },
    { name: 'localhost', ipv4: '100.96.0.15' },
    { name: 'okname', ipv4: '100.96.0.16\n6.6.6.6 bank', ipv6: 'fd3c::16' },
    { name: 'alpha', ipv4: '100.96.0.17' }, // another member claiming this node's name
    { name: 'twin', ipv4: '100.96.0.18' },
    { name: 'twin', ipv4: '100.96.0.19' }
  ]
  const r = updateHostsText(USER, 'wgmesh0', 'wgmesh', [A, ...evil])
  assert.deepEqual(r.dropped, { invalid: 6, reserved: 1, duplicate: 3, badAddress: 1 })
  assert.deepEqual(r.names, ['alpha', 'okname'])
  const block = r.text.slice(USER.length).split('\n').filter(l => l !== '')
  assert.deepEqual(block, ['# BEGIN wgmesh wgmesh0', '100.96.0.2\talpha alpha.wgmesh', 'fd3c::2\talpha alpha.wgmesh', 'fd3c::16\tokname okname.wgmesh', '# END wgmesh wgmesh0'])
  assert.ok(!r.text.includes('bank') && !r.text.includes('6.6.6.6'))
})

test('a BEGIN marker without its END: the file is left alone with an error', () => {
  const cur = USER + '# BEGIN wgmesh wgmesh0\n1.2.3.4 keep-me\n'
  const r = updateHostsText(cur, 'wgmesh0', 'wgmesh', [A])
  assert.equal(r.changed, false)
  assert.equal(r.text, cur)
  assert.match(r.error ?? '', /has no '# END wgmesh wgmesh0'/)
  assert.equal(removeHostsBlock(cur, 'wgmesh0').text, cur)
})

test('a bad interface or domain is refused (they are written into marker and name lines)', () => {
  assert.throws(() => updateHostsText('', 'wg0\nx', 'wgmesh', [A]))
  assert.throws(() => updateHostsText('', 'wgmesh0', 'Bad Domain', [A]))
})
