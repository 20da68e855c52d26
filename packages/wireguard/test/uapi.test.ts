import assert from 'node:assert/strict'
import { linkSync, mkdtempSync, mkdirSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { createServer, type Server, type Socket } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, describe, it } from 'node:test'
import { sysfsLinkReader } from '../src/link-reader.js'
import { runWgSetOverUapi, uapiGet, uapiSet, unixUapi } from '../src/uapi.js'

const dir = mkdtempSync(join(tmpdir(), 'wgmesh-uapi-sock-'))
after(() => { rmSync(dir, { recursive: true, force: true }) })
const P1 = 'xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg='
const PRIV = 'yAnz5TF+lXXJte14tji3zlMNq+hd2rYUIgJBgB3fBmk='
const hex = (b64: string): string => Buffer.from(b64, 'base64').toString('hex')

/** A wireguard-go stand-in: answers each request on the connection with `answer(request)`. */
async function fakeDevice (ifname: string, answer: (req: string, sock: Socket) => string | undefined): Promise<{ server: Server, requests: string[], connections: () => number }> {
  const requests: string[] = []
  let conns = 0
  const server = createServer(sock => {
    conns++
    let buf = ''
    sock.on('data', b => {
      buf += b.toString()
      for (let end = buf.indexOf('\n\n'); end !== -1; end = buf.indexOf('\n\n')) {
        const req = buf.slice(0, end + 2)
        buf = buf.slice(end + 2)
        requests.push(req)
        const a = answer(req, sock)
        if (a !== undefined) sock.write(a)
      }
    })
  })
  await new Promise<void>(resolve => server.listen(join(dir, `${ifname}.sock`), resolve))
  return { server, requests, connections: () => conns }
}
const close = async (s: Server): Promise<void> => { await new Promise(resolve => s.close(resolve)) }

describe('unixUapi', () => {
  it('get and set on one kept-open connection, one request at a time', async () => {
    const dev = await fakeDevice('wgt0', req => req.startsWith('get') ? `listen_port=7\npublic_key=${hex(P1)}\nendpoint=[2001:db8::1]:9\nerrno=0\n\n` : 'errno=0\n\n')
    const t = unixUapi({ socketDir: dir })
    try {
      assert.equal(await t.available('wgt0'), true)
      const [a, b] = await Promise.all([uapiGet(t, 'wgt0'), uapiGet(t, 'wgt0'), uapiSet(t, 'wgt0', { listenPort: 8 })])
      assert.equal(a.interface.listenPort, 7)
      assert.deepEqual(a, b)
      assert.equal(a.peers[0]?.endpoint, '[2001:db8::1]:9')
      assert.deepEqual(dev.requests, ['get=1\n\n', 'get=1\n\n', 'set=1\nlisten_port=8\n\n'])
      assert.equal(dev.connections(), 1)
    } finally { t.close(); await close(dev.server) }
  })

  it('a non-zero errno is a UapiError with the errno, and the connection is renewed', async () => {
    const dev = await fakeDevice('wgt1', () => 'errno=-22\n\n')
    const t = unixUapi({ socketDir: dir })
    try {
      await assert.rejects(uapiSet(t, 'wgt1', { listenPort: 1 }), { name: 'UapiError', errno: -22 })
      await assert.rejects(uapiGet(t, 'wgt1'), { name: 'UapiError', errno: -22 })
      assert.equal(dev.connections(), 2)
    } finally { t.close(); await close(dev.server) }
  })

  it('times out with UapiConnectionError ETIMEDOUT, and recovers', async () => {
    let silent = true
    const dev = await fakeDevice('wgt2', () => silent ? undefined : 'errno=0\n\n')
    const t = unixUapi({ socketDir: dir, timeoutMs: 100 })
    try {
      await assert.rejects(uapiGet(t, 'wgt2'), { name: 'UapiConnectionError', code: 'ETIMEDOUT' })
      silent = false
      assert.deepEqual(await uapiGet(t, 'wgt2'), { interface: { listenPort: 0 }, peers: [] })
    } finally { t.close(); await close(dev.server) }
  })

  it('a device closing mid-request, or an oversize answer, rejects with a named error', async () => {
    const dev = await fakeDevice('wgt3', (req, sock) => { if (req.startsWith('set')) sock.destroy(); return req.startsWith('get') ? 'x=' + 'y'.repeat(5000) : undefined })
    const t = unixUapi({ socketDir: dir, maxResponseBytes: 1000 })
    try {
      await assert.rejects(uapiSet(t, 'wgt3', { listenPort: 1 }), { name: 'UapiConnectionError', code: 'ECLOSED' })
      await assert.rejects(uapiGet(t, 'wgt3'), { name: 'UapiParseError' })
    } finally { t.close(); await close(dev.server) }
  })

  it('not available: no socket, a regular file, a stale socket, a bad interface name', async () => {
    const t = unixUapi({ socketDir: dir })
    writeFileSync(join(dir, 'wgfile.sock'), '')
    // a stale socket, as a SIGKILLed wireguard-go leaves it: a socket file nobody listens on
    const dev = await fakeDevice('wglive', () => undefined)
    linkSync(join(dir, 'wglive.sock'), join(dir, 'wgstale.sock'))
    await close(dev.server)
    assert.equal(await t.available('wgnone'), false)
    assert.equal(await t.available('wgfile'), false)
    assert.ok(statSync(join(dir, 'wgstale.sock')).isSocket())
    assert.equal(await t.available('wgstale'), false)
    await assert.rejects(t.request('wgstale', 'get=1\n\n'), { name: 'UapiConnectionError', code: 'ECONNREFUSED' })
    assert.equal(await t.available('../etc/x'), false)
    await assert.rejects(t.request('wgnone', 'get=1\n\n'), { name: 'UapiConnectionError', code: 'ENOENT' })
  })

  it('runWgSetOverUapi reads the private key file and sends it as hex; untranslatable steps return false', async () => {
    const dev = await fakeDevice('wgt4', () => 'errno=0\n\n')
    const t = unixUapi({ socketDir: dir })
    const keyFile = join(dir, 'k')
    writeFileSync(keyFile, `${PRIV}\n`, { mode: 0o600 })
    try {
      assert.equal(await runWgSetOverUapi(t, 'wgt4', ['wg', 'set', 'wgt4', 'listen-port', '51820', 'private-key', keyFile]), true)
      assert.deepEqual(dev.requests, [`set=1\nprivate_key=${hex(PRIV)}\nlisten_port=51820\n\n`])
      assert.equal(await runWgSetOverUapi(t, 'wgt4', ['wg', 'set', 'wgt4', 'peer', P1, 'preshared-key', keyFile]), false)
      writeFileSync(keyFile, 'not a key')
      await assert.rejects(runWgSetOverUapi(t, 'wgt4', ['wg', 'set', 'wgt4', 'private-key', keyFile]), (e: Error) => e.name === 'UapiParseError' && !e.message.includes('not a key'))
    } finally { t.close(); await close(dev.server) }
  })
})

describe('sysfsLinkReader', () => {
  const sys = join(dir, 'sys')
  const mk = (name: string, files: Record<string, string>): void => {
    mkdirSync(join(sys, name), { recursive: true })
    for (const [f, v] of Object.entries(files)) writeFileSync(join(sys, name, f), `${v}\n`)
  }
  const ifaces = (): NodeJS.Dict<import('node:os').NetworkInterfaceInfo[]> => ({
    wgup: [
      { address: '100.96.3.4', netmask: '255.255.0.0', family: 'IPv4', mac: '00:00:00:00:00:00', internal: false, cidr: '100.96.3.4/16' },
      { address: 'fdab::5', netmask: 'ffff:ffff:ffff::', family: 'IPv6', mac: '00:00:00:00:00:00', internal: false, cidr: 'fdab::5/48', scopeid: 0 },
      { address: 'fe80::1', netmask: 'ffff:ffff:ffff:ffff::', family: 'IPv6', mac: '00:00:00:00:00:00', internal: false, cidr: 'fe80::1/64', scopeid: 5 }
    ]
  })

  it('link from sysfs, addresses from getifaddrs (link-local skipped); missing and down links', async () => {
    mk('wgup', { mtu: '1420', flags: '0x1091', operstate: 'unknown' })
    mk('wgdown', { mtu: '1380', flags: '0x1090', operstate: 'down' })
    const r = sysfsLinkReader({ sysClassNet: sys, networkInterfaces: ifaces })
    assert.deepEqual(await r.read('wgup'), { state: 'present', link: { name: 'wgup', flags: ['UP', 'POINTOPOINT', 'NOARP', 'MULTICAST', 'LOWER_UP'], mtu: 1420, up: true, operState: 'UNKNOWN' }, addresses: ['100.96.3.4/16', 'fdab::5/48'] })
    assert.deepEqual(await r.read('wgdown'), { state: 'present', link: { name: 'wgdown', flags: ['POINTOPOINT', 'NOARP', 'MULTICAST'], mtu: 1380, up: false, operState: 'DOWN' }, addresses: undefined })
    assert.deepEqual(await r.read('wgnone'), { state: 'missing' })
    assert.deepEqual(await sysfsLinkReader({ sysClassNet: join(dir, 'nosys') }).read('wgup'), { state: 'unknown' })
  })

  it('on this host: agrees with the loopback device', async () => {
    const r = await sysfsLinkReader().read('lo')
    assert.equal(r.state, 'present')
    if (r.state === 'present') assert.ok(r.link.up && r.link.mtu > 0)
  })
})
