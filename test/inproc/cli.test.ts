/**
 * The CLI's contract on bad input and its help text, run as users run it (the bundle).
 * Nothing here starts an agent: agents only ever run inside lab namespaces (test/netns).
 */
import { after, test } from 'node:test'
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

const BUNDLE = fileURLToPath(new URL('../../packages/cli/dist/wgmesh.mjs', import.meta.url))
const tmp = mkdtempSync(join(tmpdir(), 'wgmesh-cli-'))
after(() => { rmSync(tmp, { recursive: true, force: true }) })

function wgmesh (args: string[], env: Record<string, string> = {}): { code: number | null, stdout: string, stderr: string } {
  assert.ok(existsSync(BUNDLE), 'run npm run build first')
  const clean = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('WGMESH_')))
  const r = spawnSync(process.execPath, [BUNDLE, ...args], { env: { ...clean, ...env }, encoding: 'utf8', timeout: 20_000 })
  return { code: r.status, stdout: r.stdout, stderr: r.stderr }
}

test('--help lists every command and --version prints one', () => {
  const r = wgmesh(['--help'])
  assert.equal(r.code, 0)
  for (const c of ['up', 'join', 'info', 'leave', 'metrics']) assert.match(r.stdout, new RegExp(`\\n  ${c} `))
  assert.match(wgmesh(['--version']).stdout, /^\d+\.\d+\.\d+/)
})

test('every agent flag names its WGMESH_* twin in --help', () => {
  const r = wgmesh(['join', '--help'])
  const flags = [...r.stdout.matchAll(/^ {2}--([a-z-]+)/gm)].map(m => m[1]!).filter(f => f !== 'help')
  assert.ok(flags.length >= 15, flags.join(' '))
  const text = r.stdout.replace(/\s+/g, ' ')
  for (const f of flags) {
    const plural: Record<string, string> = { peer: 'WGMESH_PEERS', tag: 'WGMESH_TAGS', 'stun-server': 'WGMESH_STUN_SERVERS' }
    const twin = plural[f] ?? `WGMESH_${f.replace(/-/g, '_').toUpperCase()}`
    assert.ok(text.includes(`env: ${twin}`), `--${f} documents ${twin}`)
  }
})

test('join without saved state needs --peer and the key, and says so', () => {
  const state = join(tmp, 'fresh')
  let r = wgmesh(['join', '--state-dir', state])
  assert.equal(r.code, 2)
  assert.match(r.stderr, /join needs --peer/)
  r = wgmesh(['join', '--state-dir', state, '--peer', '198.18.1.1'])
  assert.equal(r.code, 2)
  assert.match(r.stderr, /mesh key: --mesh-key-file FILE or WGMESH_MESH_KEY/)
})

test('a bad mesh key is refused, wherever it comes from, without echoing it', () => {
  const state = join(tmp, 'badkey')
  const file = join(tmp, 'mesh.key')
  writeFileSync(file, 'c2VjcmV0LWJ1dC10b28tc2hvcnQ=\n', { mode: 0o600 })
  let r = wgmesh(['join', '--state-dir', state, '--peer', '198.18.1.1', '--mesh-key-file', file])
  assert.equal(r.code, 2)
  assert.match(r.stderr, /a mesh key is 32 bytes of base64/)
  assert.ok(!r.stderr.includes('c2VjcmV0'), 'the secret is not echoed')
  r = wgmesh(['join', '--state-dir', state, '--peer', '198.18.1.1'], { WGMESH_MESH_KEY: 'c2VjcmV0LWJ1dC10b28tc2hvcnQ=' })
  assert.equal(r.code, 2)
  assert.match(r.stderr, /WGMESH_MESH_KEY: a mesh key is 32 bytes/)
  r = wgmesh(['join', '--state-dir', state, '--peer', '198.18.1.1', '--mesh-key-file', join(tmp, 'nope')])
  assert.equal(r.code, 2)
  assert.match(r.stderr, /cannot read the mesh key file/)
})

test('bad flag values and their env twins give clear errors', () => {
  // should parsing ever wrongly succeed, these flags keep the agent harmless: loopback only,
  // and an 'existing' interface that does not exist, so nothing is created
  const safe = ['--state-dir', join(tmp, 'flags'), '--gossip-host', '127.0.0.1', '--gossip-port', '0', '--interface', 'wgmnone0']
  let r = wgmesh(['up', ...safe, '--backend', 'existing', '--listen-port', '99999'])
  assert.notEqual(r.code, 0)
  assert.match(r.stderr, /--listen-port must be an integer in 1\.\.65535/)
  r = wgmesh(['up', ...safe, '--backend', 'existing'], { WGMESH_LISTEN_PORT: 'abc' })
  assert.notEqual(r.code, 0)
  assert.match(r.stderr, /--listen-port must be an integer/)
  r = wgmesh(['up', ...safe, '--backend', 'existing', '--dead-after', '3 parsecs'])
  assert.match(r.stderr, /is not a duration/)
  r = wgmesh(['up', ...safe, '--backend', 'magic'])
  assert.match(r.stderr, /Allowed choices are auto, kernel, userspace, existing/)
})

test('tags and advertised endpoints are checked before anything starts', () => {
  const safe = ['--state-dir', join(tmp, 'opts'), '--gossip-host', '127.0.0.1', '--gossip-port', '0', '--interface', 'wgmnone0', '--backend', 'existing']
  let r = wgmesh(['up', ...safe, '--tag', 'has space'])
  assert.equal(r.code, 1)
  assert.match(r.stderr, /tag 'has space' is not valid/)
  r = wgmesh(['up', ...safe, '--advertise', '203.0.113.7'])
  assert.equal(r.code, 1)
  assert.match(r.stderr, /--advertise '203\.0\.113\.7' is not ip:port/)
})

test('up --peer without a key refuses instead of starting a second mesh', () => {
  const r = wgmesh(['up', '--state-dir', join(tmp, 'uppeer'), '--peer', '198.18.1.1'])
  assert.equal(r.code, 2)
  assert.match(r.stderr, /--peer joins an existing mesh, which needs its key/)
})

test('info and leave without a running agent explain what to do', () => {
  for (const cmd of ['info', 'leave']) {
    const r = wgmesh([cmd, '--state-dir', join(tmp, 'none')])
    assert.equal(r.code, 1)
    assert.match(r.stderr, /no wgmesh agent is running with control socket .*wgmesh\.sock/)
  }
})
