/**
 * The certificate-mode commands as users run them (the bundle): `ca init|sign|revoke|show`,
 * `id`, `revoke`; files and modes, --json, and errors that say what to do. No agent runs here.
 */
import { after, test } from 'node:test'
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { decodeCaPublic, verifyCert, verifyRevocation } from '@wgmesh/core'

const BUNDLE = fileURLToPath(new URL('../../packages/cli/dist/wgmesh.mjs', import.meta.url))
const tmp = mkdtempSync(join(tmpdir(), 'wgmesh-cli-cert-'))
after(() => { rmSync(tmp, { recursive: true, force: true }) })

function wgmesh (args: string[]): { code: number | null, stdout: string, stderr: string } {
  assert.ok(existsSync(BUNDLE), 'run npm run build first')
  const clean = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('WGMESH_')))
  const r = spawnSync(process.execPath, [BUNDLE, ...args], { env: clean, encoding: 'utf8', timeout: 20_000 })
  return { code: r.status, stdout: r.stdout, stderr: r.stderr }
}

test('--help shows the certificate commands and flags', () => {
  const top = wgmesh(['--help']).stdout
  for (const c of ['id', 'revoke', 'ca']) assert.match(top, new RegExp(`\\n  ${c} `))
  const ca = wgmesh(['ca', '--help']).stdout
  for (const c of ['init', 'sign', 'revoke', 'show']) assert.match(ca, new RegExp(`\\n  ${c} `))
  const sign = wgmesh(['ca', 'sign', '--help']).stdout
  for (const f of ['--ca-dir', '--node-id', '--name', '--ipv4', '--ipv6', '--roles', '--valid-for', '--out', '--json']) assert.ok(sign.includes(f), f)
  const join_ = wgmesh(['join', '--help']).stdout
  for (const f of ['--ca <file>', '--cert <file>', '--max-clock-skew']) assert.ok(join_.includes(f), f)
})

test('ca init → id → ca sign → ca revoke: files, modes, --json, and what a mistake says', () => {
  const dir = join(tmp, 'ca')
  const init = wgmesh(['ca', 'init', '--ca-dir', dir, '--json'])
  assert.equal(init.code, 0, init.stderr)
  const j = JSON.parse(init.stdout) as { fingerprint: string, caPub: string }
  assert.equal(statSync(dir).mode & 0o777, 0o700)
  assert.equal(statSync(join(dir, 'ca.key')).mode & 0o777, 0o600)
  const ca = decodeCaPublic(readFileSync(j.caPub, 'utf8'))
  assert.ok(ca.ok)
  assert.equal(j.fingerprint, `SHA256:${ca.ca.fingerprint}`)
  const again = wgmesh(['ca', 'init', '--ca-dir', dir])
  assert.equal(again.code, 1)
  assert.match(again.stderr, /already holds a CA .*refusing to overwrite/)
  // id: creates the node key (0600) once, prints the same id after
  const state = join(tmp, 'state')
  const id = wgmesh(['id', '--state-dir', state]).stdout.trim()
  assert.match(id, /^[A-Za-z0-9_-]{43}$/)
  assert.equal(statSync(join(state, 'node.key')).mode & 0o777, 0o600)
  assert.deepEqual(JSON.parse(wgmesh(['id', '--state-dir', state, '--json']).stdout), { nodeId: id, stateDir: state, created: false })
  // sign
  const out = join(tmp, 'host.cert')
  const s = wgmesh(['ca', 'sign', '--ca-dir', dir, '--node-id', id, '--name', 'host', '--ipv4', '100.96.3.4', '--roles', 'relay', '--valid-for', '30d', '--out', out, '--json'])
  assert.equal(s.code, 0, s.stderr)
  const v = verifyCert(readFileSync(out, 'utf8').trim(), ca.ca, id, Date.now(), 0)
  assert.ok(v.ok)
  assert.equal(v.cert.ipv4, '100.96.3.4')
  assert.deepEqual(v.cert.roles, ['relay'])
  assert.ok(Math.abs(v.cert.notAfter - v.cert.notBefore - 30 * 86_400_000) < 1000)
  for (const [args, msg] of [
    [['--node-id', 'short', '--name', 'h'], /is not a nodeId: run 'wgmesh id/],
    [['--node-id', id, '--name', 'Bad_Name'], /not a node name/],
    [['--node-id', id, '--name', 'h', '--ipv4', '10.0.0.1'], /not a host address of the mesh range 100\.96\.0\.0\/16/],
    [['--node-id', id, '--name', 'h', '--roles', 'admin'], /unknown role 'admin'/],
    [['--node-id', id, '--name', 'h', '--valid-for', '4000d'], /at most 3650d/]
  ] as Array<[string[], RegExp]>) {
    const r = wgmesh(['ca', 'sign', '--ca-dir', dir, ...args, '--out', join(tmp, 'x.cert')])
    assert.equal(r.code, 2, args.join(' '))
    assert.match(r.stderr, msg)
  }
  const noCa = wgmesh(['ca', 'sign', '--ca-dir', join(tmp, 'nope'), '--node-id', id, '--name', 'h', '--out', join(tmp, 'x.cert')])
  assert.match(noCa.stderr, /create a CA with 'wgmesh ca init/)
  // revoke: a verifiable revocation; the node is never signed again
  const rev = join(tmp, 'host.rev')
  const r = wgmesh(['ca', 'revoke', '--ca-dir', dir, '--node-id', id, '--out', rev])
  assert.equal(r.code, 0, r.stderr)
  assert.match(r.stdout, /wgmesh revoke --state-dir .* --file /)
  const rv = verifyRevocation(readFileSync(rev, 'utf8').trim(), ca.ca)
  assert.ok(rv.ok)
  assert.equal(rv.revocation.nodeId, id)
  assert.equal(rv.revocation.until, v.cert.notAfter, 'kept until the node\'s last certificate expires')
  const resign = wgmesh(['ca', 'sign', '--ca-dir', dir, '--node-id', id, '--name', 'host', '--out', out])
  assert.equal(resign.code, 1)
  assert.match(resign.stderr, /was revoked by this CA/)
  // handing it to an agent that is not running, or handing a certificate instead
  const noAgent = wgmesh(['revoke', '--state-dir', state, '--file', rev])
  assert.equal(noAgent.code, 1)
  assert.match(noAgent.stderr, /no wgmesh agent is running/)
  const wrong = wgmesh(['revoke', '--state-dir', state, '--file', out])
  assert.equal(wrong.code, 2)
  assert.match(wrong.stderr, /is not a wgmesh revocation .*wgmesh ca revoke/)
  assert.match(wgmesh(['ca', 'show', out]).stdout, /ipv4 {6}100\.96\.3\.4/)
})

test('agent flags: --ca without --cert, and a certificate for another node, are refused before anything starts', () => {
  const dir = join(tmp, 'ca')
  const state = join(tmp, 'other-state')
  const r = wgmesh(['up', '--state-dir', state, '--ca', join(dir, 'ca.pub')])
  assert.equal(r.code, 1)
  assert.match(r.stderr, /--ca needs --cert FILE too/)
  const wrongNode = wgmesh(['up', '--state-dir', state, '--ca', join(dir, 'ca.pub'), '--cert', join(tmp, 'host.cert')])
  assert.equal(wrongNode.code, 1)
  assert.match(wrongNode.stderr, /issued to another node/)
})
