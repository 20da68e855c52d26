/**
 * Start-up failures that need root, real network namespaces and real wireguard-go (the pure
 * bad-input cases live in test/inproc/errors-table.test.ts): no CAP_NET_ADMIN, the WireGuard /
 * gossip / probe port taken, the interface of a running agent, a second agent on one state dir,
 * a wrong mesh key and an unreachable seed. Each refusal: its exit code, one line naming the
 * cause and the fix (no stack trace), and nothing left behind — no state dir or new file in it,
 * no interface, no wireguard-go in the namespace, no control socket, no interface claim.
 * The join cases: the 'no member reached' warning within seconds (log and info --json), the
 * key not saved, a retry with the right key joins; a wrong key reads as "a different mesh
 * key?" whether the seed resets the connection or lets the dial time out (a silent listener
 * makes the second deterministic), a refused or absent seed as "unreachable".
 */
import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import { existsSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { randomBytes } from 'node:crypto'
import { fileURLToPath } from 'node:url'
import { Lab, type ExecResult, type LabProcess } from '../lab/lab.js'
import { BUNDLE, WgmeshLab, waitAllAlive, waitAllPairsPing, type InfoJson } from './wgmesh-lab.js'

const UDP_PEER = fileURLToPath(new URL('../lab/udp-peer.mjs', import.meta.url))
const RUN_DIR = '/run/wireguard'
let lab: Lab
let mesh: WgmeshLab
let rightKey: string
/** interfaces this file names (for the claim files it checks and, on a failure, removes) */
const ifaces = new Set<string>()
/** listeners this file started (killed by their recorded PID) */
const listeners: LabProcess[] = []

type JoinInfo = InfoJson & { join?: { reached: boolean, since?: number, failures: Array<{ addr: string, kind: string, error: string }>, line?: string } }

before(async () => {
  Lab.requireRoot()
  lab = await Lab.up({ public: 5, natted: 0 })
  mesh = new WgmeshLab(lab)
  // a running two-node mesh (pub1 created it, pub2 joined), with the default ports
  const t0 = Date.now()
  await mesh.start('pub1', 'up')
  rightKey = join(mesh.node('pub1').stateDir, 'mesh.key')
  await mesh.start('pub2', 'join', ['--peer', lab.host('pub1').ip, '--mesh-key-file', rightKey])
  await waitAllAlive(mesh, ['pub1', 'pub2'], 30_000)
  console.log(`# running mesh pub1+pub2 alive ${Date.now() - t0} ms after the first start`)
})

after(async () => {
  for (const p of listeners) if (!p.exited) await p.kill('SIGTERM')
  await lab?.down()
  // an agent killed on the way (a failed test) may leave its claim note behind
  for (const i of ifaces) rmSync(join(RUN_DIR, `${i}.wgmesh`), { force: true })
  mesh?.cleanup()
})

/** A fresh state dir path (not created) and interface name on `host`, unique on the machine. */
function fresh (host: string, what: string): { stateDir: string, iface: string } {
  const iface = `${mesh.node(host).iface.slice(0, 10)}${what}`.slice(0, 15)
  ifaces.add(iface)
  lab.registerWgInterface(iface)
  return { stateDir: join(mesh.root, `${host}-${what}`), iface }
}

/** `wgmesh ARGS` in `host` (optionally under a wrapper such as setpriv), as a user runs it. */
async function wgmesh (host: string, args: string[], wrapper: string[] = []): Promise<ExecResult & { ms: number }> {
  const t0 = Date.now()
  const r = await lab.exec(host, [...wrapper, process.execPath, BUNDLE, ...args], { timeoutMs: 20_000 })
  return { ...r, ms: Date.now() - t0 }
}

/** Exit code, then exactly one line on stderr matching `msg`, no stack trace, nothing on stdout. */
function assertRefused (r: ExecResult, code: number, msg: RegExp): void {
  assert.equal(r.code, code, `exit code; stderr: ${r.stderr}; stdout: ${r.stdout}`)
  assert.doesNotMatch(r.stderr + r.stdout, /this is a bug|\n\s+at |Error:/, 'no stack trace')
  const lines = r.stderr.trim().split('\n')
  assert.equal(lines.length, 1, `one line on stderr: ${r.stderr}`)
  assert.match(lines[0]!, /^wgmesh: /)
  assert.match(lines[0]!, msg)
  assert.equal(r.stdout, '', 'nothing on stdout')
}

/**
 * Nothing of a refused start is left in `host`: its state dir not created (or, given the
 * names it held before, no new name), no interface, no wireguard-go for it in the namespace,
 * no UAPI socket, no control socket, no claim note (unless another agent owns the interface).
 */
async function assertNothingLeft (host: string, stateDir: string, iface: string, opts: { stateDirBefore?: string[], claimOwnedBy?: string, procsBefore?: Set<number> } = {}): Promise<void> {
  if (opts.stateDirBefore === undefined) {
    assert.equal(existsSync(stateDir), false, `the state dir ${stateDir} was not created`)
  } else {
    assert.deepEqual(readdirSync(stateDir).sort(), opts.stateDirBefore, 'no new file in the state dir')
  }
  if (opts.claimOwnedBy === undefined) {
    const link = await lab.exec(host, ['ip', 'link', 'show', iface])
    assert.notEqual(link.code, 0, `no interface ${iface} in ${host}`)
    assert.equal(existsSync(join(RUN_DIR, `${iface}.sock`)), false, `no wireguard-go UAPI socket for ${iface}`)
    assert.equal(existsSync(join(RUN_DIR, `${iface}.wgmesh`)), false, `no claim note for ${iface}`)
  } else {
    const claim = JSON.parse(readFileSync(join(RUN_DIR, `${iface}.wgmesh`), 'utf8')) as { stateDir: string }
    assert.equal(claim.stateDir, opts.claimOwnedBy, 'the running agent still owns the interface claim')
  }
  // no process of this start left: none naming the interface or state dir, no wireguard-go, that was not there before
  const left = (await lab.processes(host)).filter(p => !(opts.procsBefore ?? new Set()).has(p.pid) &&
    (p.argv.some(a => /wireguard-go$/.test(a)) || p.argv.includes(iface) || p.argv.includes(stateDir)))
  assert.deepEqual(left, [], `no wireguard-go or agent of this start left in ${host}`)
}

/** PIDs in `host`'s namespace now (to tell a refused start's leftovers from what ran before). */
async function pids (host: string): Promise<Set<number>> {
  return new Set((await lab.processes(host)).map(p => p.pid))
}

/** ms until the part of `p`'s log after `from` matches `re`; on timeout the error shows that log. */
async function waitLog (p: LabProcess, re: RegExp, timeoutMs: number, from = 0): Promise<number> {
  try {
    return await mesh.waitFor(`${p.label} logs ${String(re)}`, () => re.test(p.log().slice(from)), timeoutMs, 50)
  } catch (err) {
    throw new Error(`${(err as Error).message}\n--- log of ${p.label}:\n${p.log().slice(from).split('\n').slice(-40).join('\n')}`)
  }
}

/** The JSON log lines of an agent at `level` whose message matches `re`. */
function logLines (p: LabProcess, level: string, re: RegExp, from = 0): Array<{ level: string, message: string, ts: string }> {
  const out: Array<{ level: string, message: string, ts: string }> = []
  for (const l of p.log().slice(from).split('\n')) {
    if (!l.startsWith('{')) continue
    try {
      const j = JSON.parse(l) as { level: string, message: string, ts: string }
      if (j.level === level && re.test(j.message)) out.push(j)
    } catch {}
  }
  return out
}

async function joinInfo (host: string, stateDir: string): Promise<JoinInfo | undefined> {
  const r = await wgmesh(host, ['info', '--json', '--state-dir', stateDir])
  return r.code === 0 ? JSON.parse(r.stdout) as JoinInfo : undefined
}

test('not root (no CAP_NET_ADMIN): refused with exit 1 before anything is written', async () => {
  // setpriv (util-linux) drops every capability: root without CAP_NET_ADMIN, as a user without sudo
  const setpriv = ['/usr/bin/setpriv', '/bin/setpriv', '/usr/sbin/setpriv'].find(existsSync)
  assert.ok(setpriv !== undefined, 'setpriv (util-linux) is needed for this test: apt-get install util-linux')
  const { stateDir, iface } = fresh('pub3', 'np')
  const wrapper = [setpriv, '--inh-caps=-all', '--ambient-caps=-all', '--bounding-set=-all', '--']
  const check = await lab.exec('pub3', [...wrapper, 'grep', '^CapEff', '/proc/self/status'])
  assert.match(check.stdout, /^CapEff:\s*0+$/m, 'the wrapper really drops every capability')
  for (const cmd of [['up'], ['join', '--peer', lab.host('pub1').ip, '--mesh-key-file', rightKey]]) {
    const r = await wgmesh('pub3', [...cmd, '--state-dir', stateDir, '--interface', iface], wrapper)
    assertRefused(r, 1, /must run as root \(CAP_NET_ADMIN\).*interface .*: run it with sudo, or as the systemd service/)
    assert.match(r.stderr, new RegExp(iface))
    await assertNothingLeft('pub3', stateDir, iface)
    console.log(`# no CAP_NET_ADMIN (${cmd[0]}): refused in ${r.ms} ms`)
  }
  // and a plain unprivileged user (nobody), when it can read the bundle at all
  const nobody = await wgmesh('pub3', ['up', '--state-dir', stateDir, '--interface', iface], [setpriv, '--reuid=65534', '--regid=65534', '--clear-groups', '--'])
  if (!/Cannot find module|EACCES|permission denied/i.test(nobody.stderr)) {
    assertRefused(nobody, 1, /must run as root \(CAP_NET_ADMIN\)/)
    await assertNothingLeft('pub3', stateDir, iface)
    console.log(`# uid nobody: refused in ${nobody.ms} ms`)
  } else {
    console.log('# (uid nobody cannot read the bundle here: only the capability-less root was checked)')
  }
})

/** Starts a listener on `proto` port `port` in `host` (recorded by the lab, killed by PID). */
async function listen (host: string, proto: 'udp' | 'udp6' | 'tcp', port: number): Promise<LabProcess> {
  const argv = proto === 'udp'
    ? [process.execPath, UDP_PEER, String(port)]
    : proto === 'udp6'
      ? [process.execPath, '-e', `require('dgram').createSocket({ type: 'udp6', ipv6Only: true }).bind(${port}, '::', () => console.log('ready ${port}'))`]
      : [process.execPath, '-e', `require('net').createServer(s => s.destroy()).listen(${port}, '0.0.0.0', () => console.log('ready ${port}'))`]
  const p = lab.spawn(`${proto}-${port}-${host}`, host, argv)
  listeners.push(p)
  await waitLog(p, new RegExp(`ready ${port}`), 5000)
  return p
}

for (const c of [
  { name: 'the WireGuard UDP port', proto: 'udp' as const, port: 51820, args: [] as string[], msg: /^wgmesh: --listen-port 51820: UDP port 51820 is already in use on this host .*: pick a free one with --listen-port$/ },
  { name: 'the gossip TCP port', proto: 'tcp' as const, port: 51821, args: [], msg: /^wgmesh: --gossip-port 51821: TCP port 51821 is already in use on 0\.0\.0\.0 .*: pick another with --gossip-port$/ },
  // wireguard-go binds both families: a port held on IPv6 only is just as taken
  { name: 'the WireGuard UDP port (IPv6 only)', proto: 'udp6' as const, port: 51820, args: [], msg: /^wgmesh: --listen-port 51820: UDP port 51820 is already in use on this host .*: pick a free one with --listen-port$/ },
  { name: 'the probe UDP port', proto: 'udp' as const, port: 51823, args: [], msg: /^wgmesh: --probe-port 51823: UDP port 51823 is already in use on this host: pick another with --probe-port/ },
  { name: 'the WireGuard UDP port (--listen-port 40000)', proto: 'udp' as const, port: 40000, args: ['--listen-port', '40000'], msg: /^wgmesh: --listen-port 40000: UDP port 40000 is already in use/ }
]) {
  test(`${c.name} in use in the namespace: refused with exit 1, nothing left behind`, async () => {
    const host = 'pub3'
    const p = await listen(host, c.proto, c.port)
    try {
      const { stateDir, iface } = fresh(host, `p${c.port}`)
      for (const cmd of [['up'], ['join', '--peer', lab.host('pub1').ip, '--mesh-key-file', rightKey]]) {
        const r = await wgmesh(host, [...cmd, '--state-dir', stateDir, '--interface', iface, ...c.args])
        assertRefused(r, 1, c.msg)
        await assertNothingLeft(host, stateDir, iface)
        console.log(`# ${c.name} in use (${cmd[0]}): refused in ${r.ms} ms`)
      }
      assert.equal(p.exited, false, 'the listener that holds the port is untouched')
    } finally {
      await p.kill('SIGTERM')
    }
  })
}

test('the --interface of a running agent (another state dir): refused, the running agent keeps working', async () => {
  const owner = mesh.node('pub1')
  const { stateDir } = fresh('pub1', 'si')
  const procsBefore = await pids('pub1')
  // other ports, so that only the interface can be the reason
  const r = await wgmesh('pub1', ['up', '--state-dir', stateDir, '--interface', owner.iface, '--listen-port', '41000', '--gossip-port', '41001'])
  assertRefused(r, 1, new RegExp(`^wgmesh: --interface ${owner.iface} is managed by another running wgmesh agent \\(state dir ${owner.stateDir}, pid [0-9]+\\): stop it \\('wgmesh leave --state-dir ${owner.stateDir}'\\), or pass another --interface$`))
  console.log(`# interface of a running agent: refused in ${r.ms} ms`)
  await assertNothingLeft('pub1', stateDir, owner.iface, { claimOwnedBy: owner.stateDir, procsBefore })
  // the same from another namespace (wireguard-go's sockets and the claim are machine-wide)
  const { stateDir: sd2 } = fresh('pub3', 'si')
  const r2 = await wgmesh('pub3', ['up', '--state-dir', sd2, '--interface', owner.iface])
  assertRefused(r2, 1, /is managed by another running wgmesh agent/)
  assert.equal(existsSync(sd2), false, 'no state dir')
  assert.notEqual((await lab.exec('pub3', ['ip', 'link', 'show', owner.iface])).code, 0, 'no interface in pub3')
  // the running agent is untouched: serving, its interface configured, pings over the overlay
  assert.equal(owner.proc?.exited, false, 'the running agent still runs')
  assert.equal(existsSync(join(RUN_DIR, `${owner.iface}.sock`)), true, 'its wireguard-go socket is still there')
  const infos = await waitAllAlive(mesh, ['pub1', 'pub2'], 10_000)
  const ms = await waitAllPairsPing(mesh, ['pub1', 'pub2'], infos, 10_000)
  console.log(`# running agent after the refusal: both pairs ping over the overlay (${ms} ms)`)
})

test('a second agent on the same state dir: refused, the first keeps serving', async () => {
  const owner = mesh.node('pub2')
  const before = readdirSync(owner.stateDir).sort()
  const sockIno = statSync(join(owner.stateDir, 'wgmesh.sock')).ino
  const procsBefore = await pids('pub2')
  // the same command again (same interface), and with another interface
  for (const iface of [owner.iface, fresh('pub2', 'sd').iface]) {
    const r = await wgmesh('pub2', ['join', '--state-dir', owner.stateDir, '--interface', iface])
    assertRefused(r, 1, new RegExp(`^wgmesh: a wgmesh agent is already running with --state-dir ${owner.stateDir} \\(its control socket .*wgmesh\\.sock answers\\): stop it first \\('wgmesh leave' or SIGTERM\\), or pass another --state-dir$`))
    console.log(`# second agent on the state dir (--interface ${iface === owner.iface ? 'same' : 'other'}): refused in ${r.ms} ms`)
    await assertNothingLeft('pub2', owner.stateDir, iface, { stateDirBefore: before, claimOwnedBy: iface === owner.iface ? owner.stateDir : undefined, procsBefore })
  }
  assert.equal(statSync(join(owner.stateDir, 'wgmesh.sock')).ino, sockIno, 'the running agent\'s control socket was not replaced')
  assert.equal(owner.proc?.exited, false)
  const i = await mesh.info('pub2')
  assert.deepEqual(i.peers.map(p => `${p.name}=${p.status}`), ['pub1=alive'])
})

test('wrong mesh key: "no member reached" within seconds (log and info), key not saved; the retry with the right key joins', async () => {
  const host = 'pub3'
  const n = mesh.node(host)
  const wrongKey = join(mesh.root, 'wrong.key')
  writeFileSync(wrongKey, randomBytes(32).toString('base64') + '\n', { mode: 0o600 })
  const seed = lab.host('pub1').ip
  const t0 = Date.now()
  mesh.launch(host, 'join', ['--peer', seed, '--mesh-key-file', wrongKey, '--log-level', 'info'])
  const proc = n.proc!
  const warnMs = await waitLog(proc, /no member reached since/, 12_000)
  console.log(`# wrong key: 'no member reached' warned ${warnMs} ms after the start`)
  assert.ok(warnMs >= 4000, `not before the 5 s grace (${warnMs} ms)`)
  const warn = logLines(proc, 'warn', /^no member reached since /)
  assert.equal(warn.length, 1, `one warning so far:\n${proc.log()}`)
  assert.match(warn[0]!.message, new RegExp(`${seed.replace(/\./g, '\\.')}\\S* answered but refused the connection: a different mesh key\\?`))
  const info = await joinInfo(host, n.stateDir)
  assert.ok(info !== undefined, 'info serves')
  assert.equal(info.join?.reached, false)
  assert.match(info.join?.line ?? '', /^no member reached since \d{4}-\d\d-\d\dT.*a different mesh key\?/)
  assert.ok(info.join!.failures.some(f => f.addr.includes(seed) && f.kind === 'handshake-failed'), JSON.stringify(info.join))
  console.log(`# wrong key: info join.failures ${info.join!.failures.map(f => `${f.addr} ${f.kind} (${f.error})`).join('; ')}`)
  assert.deepEqual(info.peers, [], 'nobody in its table')
  assert.equal(existsSync(join(n.stateDir, 'mesh.key')), false, 'the wrong key was not saved')
  // the mesh did not take it in either
  assert.equal((await mesh.info('pub1')).peers.some(p => p.name === host), false)

  // stop it: no stale control socket, the claim goes; the wrong key is still not saved
  await proc.kill('SIGTERM')
  assert.equal(existsSync(join(n.stateDir, 'wgmesh.sock')), false, 'no stale control socket')
  assert.equal(existsSync(join(RUN_DIR, `${n.iface}.wgmesh`)), false, 'claim note removed')
  assert.equal(existsSync(join(n.stateDir, 'mesh.key')), false, 'the wrong key was not saved')

  // the retry with the right key joins: alive on both sides, the key saved now
  const t1 = Date.now()
  const from = proc.log().length // the lab appends the restart's output to the same log file
  mesh.launch(host, 'join', ['--peer', seed, '--mesh-key-file', rightKey, '--log-level', 'info'])
  const infos = await waitAllAlive(mesh, ['pub1', 'pub2', host], 20_000)
  console.log(`# retry with the right key: alive on all three ${Date.now() - t1} ms after the restart (${Date.now() - t0} ms in all)`)
  assert.deepEqual(readFileSync(join(n.stateDir, 'mesh.key')), readFileSync(rightKey), 'the right key is saved')
  assert.equal(infos.get(host)?.ipv4 !== undefined, true)
  const after = await joinInfo(host, n.stateDir)
  assert.equal(after?.join, undefined, 'no join line once reached')
  assert.equal(logLines(n.proc!, 'warn', /no member reached/, from).length, 0, 'no warning on the retry')
  await waitAllPairsPing(mesh, ['pub1', host], infos, 15_000, ['ipv4'])
})

test('unreachable seed: the same warning within seconds; the agent keeps running and serving info', async () => {
  const host = 'pub4'
  const n = mesh.node(host)
  // pub5 exists but nobody listens there (connection refused); 198.18.1.200 is nobody at all.
  // LAN discovery off: on this one bridge it would find pub1 by its beacons (and rightly not warn)
  const refused = `${lab.host('pub5').ip}:51821`
  const nobody = '198.18.1.200'
  const t0 = Date.now()
  await mesh.start(host, 'join', ['--peer', refused, '--peer', nobody, '--mesh-key-file', rightKey, '--lan-port', '0', '--log-level', 'info'])
  const proc = n.proc!
  const servingMs = Date.now() - t0
  const warnMs = await waitLog(proc, /no member reached since/, 12_000)
  console.log(`# unreachable seeds: serving after ${servingMs} ms, 'no member reached' warned ${warnMs} ms after the start`)
  const warn = logLines(proc, 'warn', /^no member reached since /)
  assert.equal(warn.length, 1, proc.log())
  assert.match(warn[0]!.message, new RegExp(`${lab.host('pub5').ip.replace(/\./g, '\\.')}\\S* .*unreachable \\(check the address, and that TCP to its gossip port is open\\)`))
  assert.doesNotMatch(warn[0]!.message, /different mesh key/, 'a refused TCP connection is not a key problem')
  const info = await joinInfo(host, n.stateDir)
  assert.ok(info !== undefined)
  assert.equal(info.join?.reached, false)
  assert.match(info.join?.line ?? '', /^no member reached since /)
  assert.ok(info.join!.failures.some(f => f.addr.includes(lab.host('pub5').ip) && f.kind === 'unreachable'), JSON.stringify(info.join))
  const noHost = info.join!.failures.find(f => f.addr.includes(nobody))
  console.log(`# the address nobody has: ${noHost === undefined ? 'not failed yet' : `${noHost.kind} (${noHost.error})`} at ${Date.now() - t0} ms`)
  assert.equal(existsSync(join(n.stateDir, 'mesh.key')), false, 'the key is not saved before a member is reached')
  // still running a few seconds on, and still serving
  await new Promise(resolve => setTimeout(resolve, 2000))
  assert.equal(proc.exited, false, 'the agent keeps running')
  assert.ok(await joinInfo(host, n.stateDir) !== undefined, 'and serving info')
  assert.equal(logLines(proc, 'warn', /^no member reached since /).length, 1, 'warned once, not every second')
  await proc.kill('SIGTERM')
  const exit = await proc.wait()
  assert.equal(exit.code, 0, 'a clean stop')
  assert.equal(existsSync(join(n.stateDir, 'wgmesh.sock')), false, 'no stale control socket')
  assert.equal(existsSync(join(RUN_DIR, `${n.iface}.wgmesh`)), false, 'claim note removed')
})

test('a seed whose TCP port answers but never finishes the handshake: "a different mesh key?", not "unreachable"', async () => {
  // what a wrong mesh key often looks like: the TCP connection is made, then both sides read the
  // other's encrypted bytes as noise and wait, until the dial times out. Here, deterministically:
  // a listener that accepts and never says a word.
  const host = 'pub5'
  const hole = lab.spawn('tcp-hole-pub5', host, [process.execPath, '-e', "const h = []; require('net').createServer(s => { h.push(s) }).listen(51821, '0.0.0.0', () => console.log('ready 51821'))"])
  listeners.push(hole)
  await waitLog(hole, /ready 51821/, 5000)
  const { stateDir, iface } = fresh('pub4', 'bh')
  const t0 = Date.now()
  const agent = lab.spawn('wgmesh-pub4-bh', 'pub4', [process.execPath, BUNDLE, 'join', '--state-dir', stateDir, '--interface', iface, '--name', 'bh',
    '--peer', lab.host(host).ip, '--mesh-key-file', rightKey, '--lan-port', '0', '--log-format', 'json',
    '--listen-port', '41820', '--gossip-port', '41821'])
  try {
    let last: JoinInfo['join']
    const ms = await mesh.waitFor('the seed is classified', async () => {
      last = (await joinInfo('pub4', stateDir))?.join
      return last?.failures.some(f => f.addr.includes(lab.host(host).ip)) === true && /a different mesh key\?|unreachable/.test(last.line ?? '') && Date.now() - t0 > 5500
    }, 12_000, 200)
    console.log(`# black-hole seed: ${last?.failures.map(f => `${f.kind} (${f.error})`).join('; ')} after ${ms} ms`)
    assert.match(last?.line ?? '', /answered but refused the connection: a different mesh key\?/)
    assert.doesNotMatch(last?.line ?? '', /unreachable/)
    await waitLog(agent, /no member reached since .*a different mesh key\?/, 5000)
  } finally {
    await agent.kill('SIGTERM')
    await hole.kill('SIGTERM')
  }
  assert.equal(existsSync(join(stateDir, 'mesh.key')), false, 'the key is not saved')
  assert.equal(existsSync(join(stateDir, 'wgmesh.sock')), false, 'no stale control socket')
})
