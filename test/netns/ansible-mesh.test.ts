/**
 * The Ansible role and example playbook (issue 8, item 4):
 * - `ansible-playbook --syntax-check` and `ansible-lint` pass;
 * - the example playbook (ansible/playbooks/mesh.yml) really runs against 3 lab hosts:
 *   each inventory host is a lab namespace (ansible_connection=local, every module run
 *   through `ip netns exec <ns> python3`), with its own paths, because the hosts share one
 *   filesystem. It installs the npm tarball, writes the mesh key from a vaulted variable (mode
 *   0600, never in the output), renders the settings file and the unit. There is no systemd
 *   here (wgmesh_manage_service=false), so the documented stand-in starts the service: each
 *   host's rendered unit is run the way service-harness.ts runs the shipped one (ExecStart,
 *   EnvironmentFile, CAP_NET_ADMIN only, ExecStartPost readiness);
 * - the three form a mesh: every host's `wgmesh info --json` shows the other two alive;
 * - a second run of the playbook changes nothing.
 */
import { after, before, test } from 'node:test'
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { spawn, spawnSync } from 'node:child_process'
import { Lab } from '../lab/lab.js'
import { WgmeshLab, type InfoJson } from './wgmesh-lab.js'
import {
  ROOT, UNIT_BIN, UNIT_FILE, execStartPost, one, packAndInstall, parseUnit, requireTools, startUnit, stopMainPid, type RunningUnit
} from './service-harness.js'

const HOSTS = ['pub1', 'pub2', 'pub3']
const ANSIBLE_DIR = join(ROOT, 'ansible')
let lab: Lab
let mesh: WgmeshLab
let pkg: ReturnType<typeof packAndInstall>
let work: string
let meshKey: string
const running = new Map<string, RunningUnit>()
const paths = (h: string): { prefix: string, config: string, units: string, cache: string, completion: string } => ({
  prefix: join(work, h, 'usr/local'),
  config: join(work, h, 'etc/wgmesh'),
  units: join(work, h, 'etc/systemd/system'),
  cache: join(work, h, 'var/cache/wgmesh'),
  completion: join(work, h, 'bash-completion')
})

const ansibleEnv = (): NodeJS.ProcessEnv => ({
  ...process.env,
  ANSIBLE_CONFIG: join(ANSIBLE_DIR, 'ansible.cfg'),
  ANSIBLE_NOCOLOR: '1',
  ANSIBLE_LOCAL_TEMP: join(work, 'ansible-local'),
  ANSIBLE_REMOTE_TEMP: join(work, 'ansible-remote'),
  ANSIBLE_HOST_KEY_CHECKING: 'False'
})

async function run (cmd: string, args: string[], opts: { cwd?: string, input?: string, env?: NodeJS.ProcessEnv, timeoutMs?: number } = {}): Promise<{ code: number | null, stdout: string, stderr: string }> {
  return await new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd: opts.cwd ?? ANSIBLE_DIR, env: opts.env ?? ansibleEnv(), stdio: ['pipe', 'pipe', 'pipe'] })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (b: Buffer) => { stdout += b.toString() })
    child.stderr.on('data', (b: Buffer) => { stderr += b.toString() })
    const t = setTimeout(() => { child.kill('SIGKILL') }, opts.timeoutMs ?? 300_000)
    child.on('error', reject)
    child.on('close', code => { clearTimeout(t); resolve({ code, stdout, stderr }) })
    child.stdin.end(opts.input ?? '')
  })
}

before(async () => {
  Lab.requireRoot()
  requireTools('ansible-playbook', 'ansible-lint', 'ansible-vault', 'npm', 'setpriv', 'python3')
  pkg = packAndInstall()
  work = join(pkg.workDir, 'ansible')
  mkdirSync(work, { recursive: true })
  lab = await Lab.up({ public: 3, natted: 0 })
  mesh = new WgmeshLab(lab)
})

after(async () => {
  // every agent is stopped (and the lab taken down) even if one stop fails; the failures are
  // reported once everything is cleaned up
  const failed: string[] = []
  for (const u of running.values()) await stopMainPid(lab, u, 'wgmesh').catch((err: Error) => { failed.push(`${u.host}: ${err.message}`) })
  await lab?.down()
  mesh?.cleanup()
  if (pkg !== undefined) rmSync(pkg.workDir, { recursive: true, force: true })
  assert.deepEqual(failed, [], 'stopping the agents')
})

test('ansible-playbook --syntax-check and ansible-lint pass', async () => {
  const syntax = await run('ansible-playbook', ['--syntax-check', 'playbooks/mesh.yml'])
  assert.equal(syntax.code, 0, syntax.stdout + syntax.stderr)
  const lint = await run('ansible-lint', ['--offline', '--nocolor', 'playbooks/mesh.yml', 'roles/wgmesh'])
  assert.equal(lint.code, 0, lint.stdout + lint.stderr)
})

function writeInventory (): string {
  const ip = spawnSync('sh', ['-c', 'command -v ip'], { encoding: 'utf8' }).stdout.trim()
  const python = spawnSync('sh', ['-c', 'command -v python3'], { encoding: 'utf8' }).stdout.trim()
  const hosts: Record<string, unknown> = {}
  for (const h of HOSTS) {
    const p = paths(h)
    hosts[h] = {
      ansible_connection: 'local',
      // every module of this host runs inside its lab namespace
      ansible_python_interpreter: `${ip} netns exec ${lab.ns(h)} ${python}`,
      ansible_become: false,
      wgmesh_address: lab.host(h).ip,
      wgmesh_name: h,
      wgmesh_interface: mesh.node(h).iface,
      wgmesh_state_dir: mesh.node(h).stateDir,
      wgmesh_prefix: p.prefix,
      wgmesh_config_dir: p.config,
      wgmesh_unit_dir: p.units,
      wgmesh_cache_dir: p.cache,
      wgmesh_bash_completion_dir: p.completion
    }
    for (const d of [p.units, p.completion]) mkdirSync(d, { recursive: true })
  }
  const inventory = {
    wgmesh: {
      hosts,
      vars: {
        wgmesh_npm_tarball: pkg.tarball,
        wgmesh_install_packages: false,
        // no systemd here: the test starts the rendered units (see the file comment)
        wgmesh_manage_service: false,
        wgmesh_settings: { WGMESH_HEARTBEAT: '500ms', WGMESH_DEAD_AFTER: '2s', WGMESH_LOG_LEVEL: 'debug' }
      }
    }
  }
  const f = join(work, 'inventory.yml')
  writeFileSync(f, JSON.stringify(inventory, null, 2)) // JSON is YAML
  return f
}

async function playbook (inventory: string): Promise<{ code: number | null, stdout: string, stderr: string }> {
  return await run('ansible-playbook', ['-i', inventory, '--vault-password-file', join(work, 'vault-pass'), 'playbooks/mesh.yml'])
}

test('the example playbook sets up 3 namespace hosts that form a mesh; a second run changes nothing', async () => {
  // the mesh key as a vaulted variable, encrypted from stdin (never in argv)
  meshKey = randomBytes(32).toString('base64')
  writeFileSync(join(work, 'vault-pass'), randomBytes(24).toString('hex') + '\n', { mode: 0o600 })
  const enc = await run('ansible-vault', ['encrypt_string', '--vault-password-file', join(work, 'vault-pass'), '--stdin-name', 'wgmesh_mesh_key'], { input: meshKey })
  assert.equal(enc.code, 0, enc.stderr)
  assert.ok(!enc.stdout.includes(meshKey))
  mkdirSync(join(work, 'group_vars'), { recursive: true })
  writeFileSync(join(work, 'group_vars/wgmesh.yml'), `---\n${enc.stdout}\n`, { mode: 0o600 })
  const inventory = writeInventory()

  // the inventory's hosts really are the namespaces: a module run for pub2 sees pub2's address
  const where = await run('ansible', ['-i', inventory, 'pub2', '-m', 'ansible.builtin.command', '-a', 'ip -4 -o addr show dev eth0'])
  assert.equal(where.code, 0, where.stdout + where.stderr)
  assert.ok(where.stdout.includes(` ${lab.host('pub2').ip}/`), where.stdout)

  const t0 = Date.now()
  const first = await playbook(inventory)
  assert.equal(first.code, 0, first.stdout + first.stderr)
  console.log(`# playbook, first run: ${Date.now() - t0} ms`)
  assert.ok(!(first.stdout + first.stderr).includes(meshKey), 'the key never shows in the output')

  const shipped = readFileSync(UNIT_FILE, 'utf8')
  for (const h of HOSTS) {
    const p = paths(h)
    // the key: from the vault, mode 0600
    const keyFile = join(p.config, 'mesh.key')
    assert.equal(readFileSync(keyFile, 'utf8').trim(), meshKey)
    assert.equal(statSync(keyFile).mode & 0o777, 0o600)
    const env = readFileSync(join(p.config, 'wgmesh.env'), 'utf8')
    assert.ok(!env.includes(meshKey), 'no key in the settings file')
    assert.match(env, new RegExp(`^WGMESH_MESH_KEY_FILE=${keyFile}$`, 'm'))
    const others = HOSTS.filter(x => x !== h).map(x => lab.host(x).ip).join(',')
    assert.match(env, new RegExp(`^WGMESH_PEERS=${others.replace(/\./g, '\\.')}$`, 'm'))
    // the unit is the shipped one with this host's paths
    const rendered = readFileSync(join(p.units, 'wgmesh.service'), 'utf8')
    const expect = shipped.split(UNIT_BIN).join(`${p.prefix}/bin/wgmesh`).split('/etc/wgmesh/wgmesh.env').join(join(p.config, 'wgmesh.env'))
      .replace('\nStateDirectoryMode=0700\n', `\nStateDirectoryMode=0700\n# a state directory elsewhere: writable under ProtectSystem=strict\nReadWritePaths=${mesh.node(h).stateDir}\n`)
    assert.equal(rendered.replace(/^# Ansible managed.*\n/m, ''), expect)
    // the command and its completion are installed
    assert.equal((await lab.run(h, [join(p.prefix, 'bin/wgmesh'), '--version'])).trim(), '0.1.0')
    assert.ok(statSync(join(p.completion, 'wgmesh')).isFile())
  }

  // stand-in for `systemctl start wgmesh` on each host: the rendered unit, started at once
  const units = new Map(HOSTS.map(h => [h, parseUnit(readFileSync(join(paths(h).units, 'wgmesh.service'), 'utf8'))]))
  for (const h of HOSTS) {
    assert.equal(one(units.get(h)!, 'KillMode'), 'process')
    running.set(h, startUnit(lab, h, units.get(h)!, { logFile: join(lab.logDir, `ansible-unit-${h}.log`) }))
  }
  for (const h of HOSTS) {
    const r = await execStartPost(lab, h, units.get(h)!, running.get(h)!.env, undefined, 40_000)
    assert.equal(r.code, 0, `${h} not ready: ${r.stderr}\n${running.get(h)!.log()}`)
  }
  // every host sees the other two alive, asked with the installed command
  let last = ''
  await mesh.waitFor('every host sees the other two alive', async () => {
    const views: string[] = []
    let ok = true
    for (const h of HOSTS) {
      const r = await lab.exec(h, [join(paths(h).prefix, 'bin/wgmesh'), 'info', '--json', '--state-dir', mesh.node(h).stateDir], { timeoutMs: 5000 })
      if (r.code !== 0) { ok = false; views.push(`${h}: no info`); continue }
      const info = JSON.parse(r.stdout) as InfoJson
      const alive = info.peers.filter(p => p.status === 'alive').map(p => p.name).sort()
      if (alive.join(' ') !== HOSTS.filter(x => x !== h).join(' ')) ok = false
      views.push(`${h}: ${info.peers.map(p => `${p.name}=${p.status}`).join(' ')}`)
    }
    last = views.join('; ')
    return ok
  }, 60_000, 250).catch((err: Error) => { throw new Error(`${err.message}; last: ${last}`) })

  // idempotent: nothing changes on a second run
  const second = await playbook(inventory)
  assert.equal(second.code, 0, second.stdout + second.stderr)
  for (const h of HOSTS) assert.match(second.stdout, new RegExp(`^${h}\\s+: ok=\\d+\\s+changed=0\\s`, 'm'), `${h} unchanged on the second run:\n${second.stdout}`)
})
