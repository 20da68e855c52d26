/**
 * The Nix files (issue 8, item 3) without a nixpkgs checkout: every file parses
 * (nix-instantiate --parse), and nix/module.nix is evaluated strictly against a stub of `lib`
 * and `pkgs` (nix/tests/stub-lib.nix, eval-module.nix: option defaults, type checks, mkIf):
 * the service is the shipped unit's [Service] section with only the paths rewritten, settings
 * become WGMESH_* variables, the mesh key is a credential loaded from a path that may not be
 * in the store, and openFirewall opens exactly the configured ports. Fails when nix-instantiate
 * is missing (scripts/setup.sh installs nix-bin).
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync, readdirSync } from 'node:fs'
import { join } from 'node:path'
import { spawnSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'

const ROOT = fileURLToPath(new URL('../../../', import.meta.url))
const NIX_ENV = { ...process.env, NIX_CONFIG: 'build-users-group =\nexperimental-features =' }

function nix (args: string[]): { status: number | null, stdout: string, stderr: string } {
  const r = spawnSync('nix-instantiate', args, { cwd: ROOT, encoding: 'utf8', env: NIX_ENV })
  if (r.error !== undefined) throw new Error(`nix-instantiate cannot run (${r.error.message}); install nix-bin (bash scripts/setup.sh)`)
  return r
}

interface Eval { config: Record<string, any>, failedAssertions: string[] } // eslint-disable-line @typescript-eslint/no-explicit-any

function evalModule (cfg: string): Eval {
  const r = nix(['--eval', '--strict', '--json', 'nix/tests/eval-module.nix', '--arg', 'cfg', cfg])
  assert.equal(r.status, 0, r.stderr)
  return JSON.parse(r.stdout) as Eval
}

function evalFails (cfg: string): string {
  const r = nix(['--eval', '--strict', '--json', 'nix/tests/eval-module.nix', '--arg', 'cfg', cfg])
  assert.notEqual(r.status, 0, `expected an evaluation error for ${cfg}`)
  return r.stderr
}

/** The shipped unit's [Service] Key=Value pairs. */
function shippedService (): Record<string, string> {
  const out: Record<string, string> = {}
  let section = ''
  for (const line of readFileSync(join(ROOT, 'packaging/systemd/wgmesh.service'), 'utf8').split('\n')) {
    const sec = /^\[(\w+)\]/.exec(line)
    if (sec !== null) { section = sec[1]!; continue }
    const kv = /^([A-Za-z]+)=(.*)$/.exec(line)
    if (kv !== null && section === 'Service') out[kv[1]!] = kv[2]!
  }
  return out
}

test('every Nix file parses', () => {
  const files = ['default.nix', 'flake.nix', ...readdirSync(join(ROOT, 'nix')).filter(f => f.endsWith('.nix')).map(f => `nix/${f}`),
    ...readdirSync(join(ROOT, 'nix/tests')).filter(f => f.endsWith('.nix')).map(f => `nix/tests/${f}`)]
  assert.ok(files.includes('nix/module.nix') && files.includes('nix/package.nix'))
  for (const f of files) {
    const r = nix(['--parse', f])
    assert.equal(r.status, 0, `${f}: ${r.stderr}`)
  }
})

test('module: disabled → no config; enabled → the shipped unit with the package\'s paths', () => {
  assert.deepEqual(evalModule('{ }').config, {})
  const { config, failedAssertions } = evalModule('{ enable = true; }')
  assert.deepEqual(failedAssertions, [])
  const svc = config.systemd.services.wgmesh
  const bin = '/nix/store/00000000000000000000000000000000-wgmesh-0.1.0/bin/wgmesh'
  const shipped = shippedService()
  const { EnvironmentFile: _env, ExecStart: _start, ExecStartPost: post, ...rest } = shipped
  for (const [k, v] of Object.entries(rest)) assert.equal(svc.serviceConfig[k], v, `serviceConfig.${k} as in the shipped unit`)
  assert.equal(svc.serviceConfig.ExecStart, `${bin} up`)
  assert.equal(svc.serviceConfig.ExecStartPost, post!.replace(/\/usr\/local\/bin\/wgmesh/g, bin).replace('/bin/sh ', '/nix/store/00000000000000000000000000000000-bash/bin/bash '))
  assert.equal(svc.serviceConfig.KillMode, 'process')
  assert.equal(svc.serviceConfig.EnvironmentFile, undefined)
  assert.equal(svc.serviceConfig.LoadCredential, undefined, 'no key file, no credential')
  assert.deepEqual(svc.wantedBy, ['multi-user.target'])
  assert.deepEqual(svc.environment, { WGMESH_INTERFACE: 'wgmesh0', WGMESH_LISTEN_PORT: '51820', WGMESH_GOSSIP_PORT: '51821', WGMESH_STUN_PORT: '3478' })
  assert.deepEqual(config.networking?.firewall ?? {}, {}, 'openFirewall is off by default: no port opened')
})

test('module: settings → WGMESH_* and the key as a credential from a path outside the store', () => {
  const { config, failedAssertions } = evalModule(`{ enable = true; command = "join"; meshKeyFile = "/run/secrets/wgmesh.key";
    settings = { peers = [ "198.18.1.1" "198.18.1.2:51821" ]; tags = [ "eu" ]; deadAfter = "5s"; upnp = false; name = "host-a"; }; }`)
  assert.deepEqual(failedAssertions, [])
  const svc = config.systemd.services.wgmesh
  assert.match(svc.serviceConfig.ExecStart, / join$/)
  assert.equal(svc.serviceConfig.LoadCredential, 'mesh.key:/run/secrets/wgmesh.key')
  assert.equal(svc.environment.WGMESH_MESH_KEY_FILE, '%d/mesh.key')
  assert.equal(svc.environment.WGMESH_PEERS, '198.18.1.1,198.18.1.2:51821')
  assert.equal(svc.environment.WGMESH_TAGS, 'eu')
  assert.equal(svc.environment.WGMESH_DEAD_AFTER, '5s')
  assert.equal(svc.environment.WGMESH_UPNP, 'off')
  assert.equal(svc.environment.WGMESH_NAME, 'host-a')
  assert.ok(!JSON.stringify(config).includes('WGMESH_MESH_KEY"'), 'no inline key variable')
})

test('module: the mesh key never goes into the store', () => {
  assert.deepEqual(evalModule('{ enable = true; meshKeyFile = "/nix/store/abc-mesh.key"; }').failedAssertions,
    ['services.wgmesh.meshKeyFile must be an absolute path outside the Nix store (the store is world-readable)'])
  assert.equal(evalModule('{ enable = true; meshKeyFile = "relative/mesh.key"; }').failedAssertions.length, 1)
  // a path literal would be copied into the store: the option's type refuses it
  assert.match(evalFails('{ enable = true; meshKeyFile = /etc/wgmesh/mesh.key; }'), /meshKeyFile.*not of type/)
  assert.match(evalModule('{ enable = true; settings.meshKey = "x"; }').failedAssertions.join('\n'), /settings\.meshKey/)
  assert.match(evalFails('{ enable = true; settings.listenPort = 70000; }'), /listenPort.*not of type port/)
})

test('module: openFirewall opens the configured ports (probe port on the mesh interface only)', () => {
  const fw = (cfg: string): Record<string, any> => evalModule(cfg).config.networking.firewall // eslint-disable-line @typescript-eslint/no-explicit-any
  assert.deepEqual(fw('{ enable = true; openFirewall = true; }'), {
    allowedUDPPorts: [51820, 3478, 3479, 51822], allowedTCPPorts: [51821], interfaces: { wgmesh0: { allowedUDPPorts: [51823] } }
  })
  assert.deepEqual(fw(`{ enable = true; openFirewall = true; settings = { interface = "mesh1"; listenPort = 40000; gossipPort = 40001;
    stunPort = 0; lanPort = 0; probePort = 40100; }; }`), {
    allowedUDPPorts: [40000], allowedTCPPorts: [40001], interfaces: { mesh1: { allowedUDPPorts: [40100] } }
  })
  assert.match(evalModule('{ enable = true; openFirewall = true; settings.gossipPort = 0; }').failedAssertions.join('\n'), /gossipPort/)
})

test('default.nix and flake.nix name the tarball of the package\'s version; package.nix installs files the package ships', () => {
  const pkg = JSON.parse(readFileSync(join(ROOT, 'packaging/npm/package.json'), 'utf8')) as { version: string, files: string[] }
  for (const f of ['default.nix', 'flake.nix']) assert.ok(readFileSync(join(ROOT, f), 'utf8').includes(`packaging/npm/wgmesh-${pkg.version}.tgz`), f)
  const pkgNix = readFileSync(join(ROOT, 'nix/package.nix'), 'utf8')
  assert.ok(pkgNix.includes(`version ? "${pkg.version}"`))
  for (const used of ['dist/wgmesh.mjs', 'dist/wgmesh.cjs', 'dist/wgmesh.cjs.cache', 'share/man', 'share/bash-completion', 'share/systemd']) {
    assert.ok(pkgNix.includes(used), `package.nix uses ${used}`)
    assert.ok(pkg.files.some(f => f.startsWith(used)), `the npm package ships ${used}`)
  }
})
