/**
 * Every bad flag, environment value and combination a user reported (issue 8), run as users run
 * it (the bundle): exit 2, one line naming the flag and the fix, no stack trace, and nothing
 * left behind — the state directory is not even created, no interface, no wireguard-go.
 * Should parsing ever wrongly pass, `--backend existing` on a missing interface keeps the
 * agent from creating anything (and the test fails on the files it would write).
 */
import { after, test } from 'node:test'
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

const BUNDLE = fileURLToPath(new URL('../../packages/cli/dist/wgmesh.mjs', import.meta.url))
const tmp = mkdtempSync(join(tmpdir(), 'wgmesh-errors-'))
after(() => { rmSync(tmp, { recursive: true, force: true }) })
const keyFile = join(tmp, 'mesh.key')
writeFileSync(keyFile, Buffer.alloc(32, 7).toString('base64') + '\n', { mode: 0o600 })
const keyDir = join(tmp, 'keydir')
mkdirSync(keyDir, { mode: 0o755 })

function wgmesh (args: string[], env: Record<string, string> = {}): { code: number | null, stdout: string, stderr: string } {
  assert.ok(existsSync(BUNDLE), 'run npm run build first')
  const clean = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('WGMESH_')))
  const r = spawnSync(process.execPath, [BUNDLE, ...args], { env: { ...clean, ...env }, encoding: 'utf8', timeout: 20_000 })
  return { code: r.status, stdout: r.stdout, stderr: r.stderr }
}

/** Processes whose command line names `word` (a wireguard-go for our interface would). */
function processesNaming (word: string): string[] {
  const out: string[] = []
  for (const pid of readdirSync('/proc').filter(p => /^[0-9]+$/.test(p))) {
    try {
      const cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0')
      if (cmd.includes(word)) out.push(`${pid}: ${cmd.join(' ')}`)
    } catch {}
  }
  return out
}

interface Case { cmd: 'up' | 'join', args: string[], env?: Record<string, string>, code: number, msg: RegExp, iface?: string }

let n = 0
const KEY = ['--mesh-key-file', keyFile]
const CASES: Case[] = [
  { cmd: 'join', args: ['--peer', 'not a host!!', ...KEY], code: 2, msg: /^wgmesh: --peer 'not a host!!' is not host\[:port\]: .*neither an IP address nor a host name.*\(e\.g\. 198\.18\.1\.1/ },
  { cmd: 'up', args: ['--peer', 'host:abc', ...KEY], code: 2, msg: /^wgmesh: --peer 'host:abc' is not host\[:port\]: port 'abc' is not in 1\.\.65535/ },
  { cmd: 'join', args: ['--peer', '[::1', ...KEY], code: 2, msg: /^wgmesh: --peer '\[::1' is not host\[:port\]: .*closing '\]'/ },
  { cmd: 'join', args: ['--peer', ':', ...KEY], code: 2, msg: /^wgmesh: --peer ':' is not host\[:port\]: the host is missing/ },
  { cmd: 'join', args: ['--peer', '1.2.3.4:99999', ...KEY], code: 2, msg: /^wgmesh: --peer '1\.2\.3\.4:99999' is not host\[:port\]: port '99999' is not in 1\.\.65535/ },
  { cmd: 'join', args: ['--peer', '1.2.3.4:'], env: { WGMESH_MESH_KEY_FILE: keyFile }, code: 2, msg: /^wgmesh: --peer '1\.2\.3\.4:' is not host\[:port\]: the port is missing/ },
  { cmd: 'join', args: KEY, env: { WGMESH_PEERS: '1.2.3.400' }, code: 2, msg: /^wgmesh: --peer '1\.2\.3\.400' is not host\[:port\]: '1\.2\.3\.400' is not an IPv4 address/ },
  { cmd: 'up', args: ['--gossip-host', 'foo'], code: 2, msg: /^wgmesh: --gossip-host 'foo' is not an IP address: .*:: = every address of both families/ },
  { cmd: 'up', args: ['--gossip-host', 'fe80::1'], code: 2, msg: /^wgmesh: --gossip-host 'fe80::1' is an IPv6 link-local address \(it needs a zone/ },
  { cmd: 'up', args: ['--gossip-host', '2001:db8:::1'], code: 2, msg: /^wgmesh: --gossip-host '2001:db8:::1' is not an IP address/ },
  { cmd: 'join', args: ['--peer', '[fe80::1]:51821', ...KEY], code: 2, msg: /^wgmesh: --peer '\[fe80::1\]:51821' is not host\[:port\]: 'fe80::1' is IPv6 link-local, which needs a zone/ },
  { cmd: 'join', args: ['--peer', '[2001:db8::1]:0', ...KEY], code: 2, msg: /^wgmesh: --peer '\[2001:db8::1\]:0' is not host\[:port\]: port '0' is not in 1\.\.65535/ },
  { cmd: 'up', args: ['--cidr', 'foo'], code: 2, msg: /^wgmesh: --cidr 'foo' is not an IPv4 CIDR \(e\.g\. 100\.96\.0\.0\/16\)$/ },
  { cmd: 'up', args: ['--cidr', '10.0.0.1/16'], code: 2, msg: /^wgmesh: --cidr '10\.0\.0\.1\/16' has host bits set: did you mean 10\.0\.0\.0\/16\?$/ },
  { cmd: 'up', args: ['--cidr', '10.0.0.0/30'], code: 2, msg: /^wgmesh: --cidr '10\.0\.0\.0\/30' is too small: \/29 or larger/ },
  { cmd: 'up', args: [], env: { WGMESH_CIDR: 'fd00::/64' }, code: 2, msg: /^wgmesh: --cidr 'fd00::\/64' is IPv6/ },
  { cmd: 'up', args: ['--heartbeat', '5x'], code: 2, msg: /^wgmesh: --heartbeat: '5x' is not a duration/ },
  { cmd: 'up', args: [], env: { WGMESH_DEAD_AFTER: 'soon' }, code: 2, msg: /^wgmesh: --dead-after: 'soon' is not a duration/ },
  { cmd: 'up', args: ['--heartbeat', '2s', '--dead-after', '3s'], code: 2, msg: /^wgmesh: --dead-after \(3000 ms\) must be at least twice the --heartbeat \(2000 ms\)$/ },
  { cmd: 'up', args: ['--dead-after', '10s', '--expire-after', '5s'], code: 2, msg: /^wgmesh: --expire-after must not be shorter than --dead-after$/ },
  { cmd: 'up', args: ['--interface', 'waytoolonginterfacename0'], iface: 'waytoolonginterfacename0', code: 2, msg: /^wgmesh: --interface 'waytoolonginterfacename0' is not a Linux interface name: 1\.\.15 characters/ },
  { cmd: 'up', args: ['--interface', 'wg/0'], iface: 'wg/0', code: 2, msg: /^wgmesh: --interface 'wg\/0' is not a Linux interface name/ },
  { cmd: 'up', args: ['--mesh-domain', 'Bad_Domain'], code: 2, msg: /^wgmesh: --mesh-domain 'Bad_Domain' is not a domain name/ },
  { cmd: 'up', args: ['--hosts-file', 'hosts'], code: 2, msg: /^wgmesh: --hosts-file 'hosts' must be an absolute path/ },
  { cmd: 'up', args: ['--hosts-file', '/nonexistent-dir/hosts'], code: 2, msg: /^wgmesh: --hosts-file \/nonexistent-dir\/hosts: its directory \/nonexistent-dir does not exist$/ },
  { cmd: 'up', args: ['--hosts-file', tmp], code: 2, msg: /is not a regular file$/ },
  // a key file that is a directory: no false "readable by others" warning first
  { cmd: 'join', args: ['--peer', '198.18.1.1', '--mesh-key-file', keyDir], code: 2, msg: /^wgmesh: cannot read the mesh key file .*keydir: not a regular file/ },
  // usage errors commander reports: exit 2 like every other bad usage (was 1)
  { cmd: 'up', args: ['--no-such-flag'], code: 2, msg: /unknown option '--no-such-flag'/ },
  { cmd: 'up', args: ['--relay', 'sometimes'], code: 2, msg: /argument 'sometimes' is invalid\. Allowed choices are auto, on, off/ },
  // advertised routes (issue 9)
  { cmd: 'up', args: ['--advertise-route', '10.1.0.5/24'], code: 2, msg: /^wgmesh: --advertise-route: 10\.1\.0\.5\/24 has host bits set: did you mean 10\.1\.0\.0\/24\?/ },
  { cmd: 'up', args: ['--advertise-route', '100.96.5.0/24'], code: 2, msg: /^wgmesh: --advertise-route: 100\.96\.5\.0\/24 overlaps the mesh range 100\.96\.0\.0\/16: advertise only subnets outside/ },
  { cmd: 'up', args: ['--advertise-route', 'lan'], code: 2, msg: /^wgmesh: --advertise-route: .*lan.* is not a CIDR/ },
  { cmd: 'up', args: [], env: { WGMESH_ADVERTISE_ROUTES: '10.1.0.0/24,127.0.0.0/8' }, code: 2, msg: /^wgmesh: --advertise-route: .*127\.0\.0\.0\/8.*loopback/ },
  { cmd: 'up', args: ['--advertise-route', '10.1.0.0/24', '--route-priority', '5000'], code: 2, msg: /^wgmesh: --route-priority must be an integer in 0\.\.1000, got '5000'/ },
  { cmd: 'up', args: ['--advertise-route', '10.1.0.0/24', '--route-group', 'Office_GW'], code: 2, msg: /^wgmesh: --route-group 'Office_GW' is not a group name/ },
  { cmd: 'up', args: ['--route-group', 'office'], code: 2, msg: /^wgmesh: --route-group needs --advertise-route CIDR/ },
  { cmd: 'join', args: ['--peer', '198.18.1.1', ...KEY, '--advertise-route', '0.0.0.0/0', '--exit-node', 'exit'], code: 2, msg: /^wgmesh: --exit-node and an advertised default route/ },
  { cmd: 'up', args: ['--advertise-route', '10.1.0.0/24', '--gateway-hook', 'hook.sh'], code: 2, msg: /^wgmesh: --gateway-hook 'hook\.sh' must be an absolute path/ },
  { cmd: 'up', args: ['--advertise-route', '10.1.0.0/24', '--gateway-hook', '/nonexistent/hook'], code: 2, msg: /^wgmesh: --gateway-hook \/nonexistent\/hook is not an executable file/ },
  { cmd: 'up', args: ['--route-return', 'never'], code: 2, msg: /argument 'never' is invalid\. Allowed choices are preferred, sticky/ }
]

for (const c of CASES) {
  const i = n++
  const shown = [...Object.entries(c.env ?? {}).map(([k, v]) => `${k}=${v}`), c.cmd, ...c.args].join(' ').replace(tmp, '$TMP')
  test(`bad input: wgmesh ${shown} → exit ${c.code}, one line, nothing left behind`, () => {
    const state = join(tmp, `state-${i}`)
    const iface = c.iface ?? `wgmerr${process.pid % 1000}x${i}`
    const r = wgmesh([c.cmd, '--state-dir', state, '--backend', 'existing', ...(c.iface === undefined ? ['--interface', iface] : []), ...c.args], c.env)
    assert.equal(r.code, c.code, `exit code; stderr: ${r.stderr}`)
    const first = r.stderr.split('\n')[0]!
    assert.match(first, c.msg)
    assert.doesNotMatch(r.stderr, /this is a bug|\n\s+at /, 'no stack trace')
    if (first.startsWith('wgmesh:')) assert.equal(r.stderr.trim().split('\n').length, 1, `one line: ${r.stderr}`)
    assert.doesNotMatch(r.stderr, /readable by others|created a new mesh/)
    assert.equal(existsSync(state), false, 'the state directory was not even created')
    assert.equal(existsSync(`/sys/class/net/${iface}`), false, 'no interface')
    assert.deepEqual(processesNaming(iface), [], 'no wireguard-go')
  })
}

test('--peer HOST with --gossip-port 0 defaults the seed to port 51821 (not the local port 0)', () => {
  // no exit 70: the seed is valid; the start then stops at the missing 'existing' interface
  const state = join(tmp, 'seed-port')
  const r = wgmesh(['join', '--state-dir', state, '--backend', 'existing', '--interface', 'wgmnone0', '--gossip-host', '127.0.0.1', '--gossip-port', '0', '--peer', '10.250.0.9', ...KEY])
  assert.equal(r.code, 1, r.stderr)
  assert.doesNotMatch(r.stderr, /this is a bug|port must be/)
  assert.match(r.stderr, /interface wgmnone0 does not exist/)
})

test('IPv6 (issue 11): --gossip-host :: and --peer [v6] / bare v6 are accepted (the start stops only at the missing interface)', () => {
  for (const peer of ['[2001:db8::9]:51821', '2001:db8::9', '[2001:db8::9]']) {
    const state = join(tmp, `v6-${peer.replace(/[^0-9a-z]/g, '')}`)
    const r = wgmesh(['join', '--state-dir', state, '--backend', 'existing', '--interface', 'wgmnone0', '--gossip-host', '::', '--gossip-port', '0', '--peer', peer, ...KEY])
    assert.equal(r.code, 1, r.stderr)
    assert.doesNotMatch(r.stderr, /this is a bug|ValidationError|Invalid IPv4/)
    assert.match(r.stderr, /interface wgmnone0 does not exist/)
  }
})

test('IPv6 (issue 11): a --gossip-host that is not this host\'s is refused before anything is written', () => {
  const state = join(tmp, 'v6-not-mine')
  const r = wgmesh(['up', '--state-dir', state, '--backend', 'existing', '--interface', 'wgmnone0', '--gossip-host', '2001:db8:ffff::99'])
  assert.equal(r.code, 1, r.stderr)
  assert.match(r.stderr.split('\n')[0]!, /^wgmesh: --gossip-host 2001:db8:ffff::99 is not an address of this host: give one of its addresses, or :: for all$/)
  assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr)
  assert.equal(existsSync(state), false, 'no state directory, no mesh.key')
})
