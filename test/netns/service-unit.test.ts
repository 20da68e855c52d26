/**
 * Install and service (issue 8, items 1–2), on real wireguard-go in lab namespaces:
 * - `npm pack` of the package → `npm install -g --prefix <empty dir> --offline` gives a
 *   `wgmesh` that runs inside a namespace with no network beyond the lab (nothing to fetch),
 *   prints the package's version and help, and ships its man page and bash completion;
 * - `systemd-analyze verify` accepts the shipped unit, without a single warning;
 * - three agents started the way the unit starts them (ExecStart, EnvironmentFile, only
 *   CAP_NET_ADMIN, no new privileges; see service-harness.ts) become ready by the unit's own
 *   ExecStartPost and form a mesh; stopping one the KillMode=process way (SIGTERM to the main
 *   PID only) leaves its wireguard-go and interface running and forwarding; the restarted
 *   agent adopts them (same wireguard-go PID, no second one) and the mesh works again.
 */
import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { spawnSync } from 'node:child_process'
import { Lab } from '../lab/lab.js'
import { WgmeshLab, waitAllAlive, waitAllPairsPing } from './wgmesh-lab.js'
import { buildProgram } from '../../packages/cli/src/program.js'
import {
  ROOT, UNIT_BIN, UNIT_FILE, execStartPost, one, packAndInstall, parseUnit, requireTools, startUnit, stopMainPid,
  unitEnv, wireguardGoPids, type RunningUnit, type Unit
} from './service-harness.js'

const HOSTS = ['pub1', 'pub2', 'pub3']
const LIMIT_MS = 60_000
let lab: Lab
let mesh: WgmeshLab
let pkg: ReturnType<typeof packAndInstall>
let unit: Unit
const running = new Map<string, RunningUnit>()

before(async () => {
  Lab.requireRoot()
  requireTools('npm', 'setpriv', 'systemd-analyze', 'man', 'bash')
  pkg = packAndInstall()
  unit = parseUnit(readFileSync(UNIT_FILE, 'utf8'))
  lab = await Lab.up({ public: 3, natted: 0 })
  mesh = new WgmeshLab(lab)
})

after(async () => {
  // every agent is stopped (and the lab taken down) even if one stop fails; the failures are
  // reported once everything is cleaned up
  const failed: string[] = []
  for (const u of running.values()) await stopMainPid(lab, u, pkg.prefix).catch((err: Error) => { failed.push(`${u.host}: ${err.message}`) })
  await lab?.down()
  mesh?.cleanup()
  if (pkg !== undefined) rmSync(pkg.workDir, { recursive: true, force: true })
  assert.deepEqual(failed, [], 'stopping the agents')
})

test('npm pack → npm install -g into an empty prefix: a working wgmesh with nothing to fetch', async () => {
  const want = JSON.parse(readFileSync(join(ROOT, 'packaging/npm/package.json'), 'utf8')) as { name: string, version: string, dependencies?: unknown }
  assert.equal(want.name, 'wgmesh')
  assert.equal(want.dependencies, undefined, 'the package has no dependencies')
  assert.equal(buildProgram().version(), want.version, 'package version = the CLI\'s VERSION')
  assert.match(pkg.tarball, new RegExp(`wgmesh-${want.version.replace(/\./g, '\\.')}\\.tgz$`))
  // the installed tree is exactly the package: no node_modules of its own
  const installed = join(pkg.prefix, 'lib/node_modules/wgmesh')
  assert.throws(() => statSync(join(installed, 'node_modules')), 'no dependencies were installed')
  // run through the bin link (the shebang), inside a namespace that reaches no registry
  const version = await lab.run('pub1', [pkg.bin, '--version'])
  assert.equal(version.trim(), want.version)
  // the loader found the bundle and its code cache through the bin link, and V8 took the cache
  const cache = spawnSync(pkg.bin, ['--version'], { encoding: 'utf8', env: { ...process.env, WGMESH_CODE_CACHE_REPORT: '1' } })
  assert.match(cache.stderr, /wgmesh code cache: used/)
  const help = await lab.run('pub1', [pkg.bin, '--help'])
  for (const c of buildProgram().commands) assert.match(help, new RegExp(`^\\s+${c.name()}\\b`, 'm'), `--help lists ${c.name()}`)
  const upHelp = await lab.run('pub1', [pkg.bin, 'help', 'up'])
  assert.match(upHelp, /--mesh-key-file <file>/)
  // the man page is linked into the prefix and formats
  const man = spawnSync('man', ['-P', 'cat', 'wgmesh'], { encoding: 'utf8', env: { ...process.env, MANPATH: join(pkg.prefix, 'share/man'), MANWIDTH: '100' } })
  assert.equal(man.status, 0, man.stderr)
  assert.match(man.stdout, /WGMESH_MESH_KEY_FILE/)
  // the shipped bash completion completes a subcommand
  const comp = spawnSync('bash', ['-c', `source '${join(installed, 'share/bash-completion/completions/wgmesh')}'; COMP_WORDS=(wgmesh jo); COMP_CWORD=1; _wgmesh; echo "\${COMPREPLY[*]}"`], { encoding: 'utf8' })
  assert.equal(comp.stdout.trim(), 'join', comp.stderr)
})

test('systemd-analyze verify accepts the shipped unit without a warning', () => {
  // the unit names /usr/local/bin/wgmesh (npm's default prefix): point it at the installed one,
  // so verify checks a real executable, and let man find the installed page (Documentation=)
  const dir = join(pkg.workDir, 'verify')
  mkdirSync(dir, { recursive: true })
  writeFileSync(join(dir, 'wgmesh.service'), readFileSync(UNIT_FILE, 'utf8').split(UNIT_BIN).join(pkg.bin))
  const r = spawnSync('systemd-analyze', ['verify', join(dir, 'wgmesh.service')], { encoding: 'utf8', env: { ...process.env, MANPATH: join(pkg.prefix, 'share/man'), SYSTEMD_LOG_LEVEL: 'notice' } })
  assert.equal(r.status, 0, r.stderr)
  assert.equal(r.stderr.trim(), '', 'no warnings (verify exits 0 even on ignored lines)')
  // the choices the service depends on
  assert.equal(one(unit, 'KillMode'), 'process')
  assert.equal(one(unit, 'CapabilityBoundingSet'), 'CAP_NET_ADMIN')
  assert.equal(one(unit, 'StateDirectory'), 'wgmesh')
  assert.ok(one(unit, 'EnvironmentFile').startsWith('-/etc/wgmesh/'), 'settings from an EnvironmentFile')
  assert.doesNotMatch(readFileSync(UNIT_FILE, 'utf8').replace(/^#.*$/gm, ''), /WGMESH_MESH_KEY=/, 'no inline mesh key')
})

function envFile (host: string, key: string, peer?: string): string {
  const n = mesh.node(host)
  mkdirSync(n.stateDir, { recursive: true, mode: 0o700 }) // StateDirectory= with StateDirectoryMode=0700
  const lines = [
    // the lab's hosts share one filesystem: each gets its own state dir and interface name
    `WGMESH_STATE_DIR=${n.stateDir}`,
    `WGMESH_INTERFACE=${n.iface}`,
    `WGMESH_NAME=${host}`,
    'WGMESH_HEARTBEAT=500ms',
    'WGMESH_DEAD_AFTER=2s',
    'WGMESH_LOG_LEVEL=debug',
    `WGMESH_MESH_KEY_FILE=${key}`,
    ...(peer !== undefined ? [`WGMESH_PEERS=${peer}`] : [])
  ]
  const f = join(mesh.root, `${host}.env`)
  writeFileSync(f, lines.join('\n') + '\n', { mode: 0o644 })
  return f
}

async function startReady (host: string, env: string): Promise<RunningUnit> {
  const u = startUnit(lab, host, unit, { envFile: env, bin: pkg.bin, logFile: join(lab.logDir, `unit-${host}.log`) })
  running.set(host, u)
  const t0 = Date.now()
  const ready = await execStartPost(lab, host, unit, u.env, pkg.bin, 40_000)
  assert.equal(ready.code, 0, `ExecStartPost (readiness) failed in ${host}: ${ready.stderr}\n${u.log()}`)
  console.log(`# ${host}: ready by ExecStartPost ${Date.now() - t0} ms after ExecStart`)
  // ready means serving and configured
  const info = await mesh.info(host)
  assert.equal(info.interface, mesh.node(host).iface)
  assert.match(await lab.run(host, ['ip', '-4', '-o', 'addr', 'show', 'dev', mesh.node(host).iface]), new RegExp(` ${info.ipv4.replace(/\./g, '\\.')}/`))
  return u
}

test('agents run as the unit runs them; KillMode=process keeps wireguard-go across a restart, which adopts it', async () => {
  const key = join(mesh.root, 'mesh.key')
  writeFileSync(key, randomBytes(32).toString('base64') + '\n', { mode: 0o600 })
  const envs = new Map(HOSTS.map(h => [h, envFile(h, key, h === 'pub1' ? undefined : lab.host('pub1').ip)]))

  // readiness is real: before the agent runs, ExecStartPost does not succeed
  const early = await execStartPost(lab, 'pub2', unit, unitEnv(unit, envs.get('pub2')), pkg.bin, 2000)
  assert.notEqual(early.code, 0, 'ExecStartPost must not report ready without an agent')

  for (const h of HOSTS) await startReady(h, envs.get(h)!)
  let infos = await waitAllAlive(mesh, HOSTS, LIMIT_MS)
  await waitAllPairsPing(mesh, HOSTS, infos, LIMIT_MS, ['ipv4'])

  // the agent holds only CAP_NET_ADMIN and cannot gain more
  const status = readFileSync(`/proc/${running.get('pub2')!.pid}/status`, 'utf8')
  assert.match(status, /^CapEff:\s+0000000000001000$/m, 'effective capabilities: CAP_NET_ADMIN only')
  assert.match(status, /^NoNewPrivs:\s+1$/m)

  // SIGHUP (a closed terminal, `systemctl reload`): logged, and the agent keeps serving
  const hup = running.get('pub3')!
  process.kill(hup.pid, 'SIGHUP')
  await mesh.waitFor('pub3 logs the SIGHUP', () => hup.log().includes('received SIGHUP'), 5000)
  assert.equal((await mesh.info('pub3')).name, 'pub3', 'pub3 still answers after SIGHUP')

  // stop pub2 the KillMode=process way: SIGTERM to the main PID only
  const victim = 'pub2'
  const iface = mesh.node(victim).iface
  const wgBefore = await wireguardGoPids(lab, victim, iface)
  assert.equal(wgBefore.length, 1, `one wireguard-go for ${iface}, found ${wgBefore.join(',')}`)
  const exit = await stopMainPid(lab, running.get(victim)!, pkg.prefix)
  assert.deepEqual(exit, { code: 0, signal: null }, 'a clean stop (exit 0) on SIGTERM')
  running.delete(victim)
  // the interface and its wireguard-go stay, and forward without the agent
  assert.deepEqual(await wireguardGoPids(lab, victim, iface), wgBefore, 'wireguard-go survived the agent\'s stop')
  await lab.run(victim, ['ip', 'link', 'show', 'dev', iface])
  const ping = await lab.ping(victim, infos.get('pub1')!.ipv4, { count: 3, timeoutMs: 5000 })
  assert.ok(ping.ok, `pub2 → pub1 over the tunnel with pub2's agent stopped: ${ping.output}`)

  // start again (systemctl start): the agent adopts the running interface
  const before = infos.get(victim)!
  await startReady(victim, envs.get(victim)!)
  assert.deepEqual(await wireguardGoPids(lab, victim, iface), wgBefore, 'the same wireguard-go, no second one')
  const after = await mesh.info(victim)
  assert.equal(after.wgPublicKey, before.wgPublicKey)
  assert.equal(after.ipv4, before.ipv4)
  infos = await waitAllAlive(mesh, HOSTS, LIMIT_MS)
  await waitAllPairsPing(mesh, HOSTS, infos, LIMIT_MS)
})

