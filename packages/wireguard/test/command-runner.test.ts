import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { execRunner } from '../src/command-runner.js'
import { CommandFailedError } from '../src/errors.js'

const node = process.execPath

describe('execRunner', () => {
  it('passes argv verbatim (no shell) and captures stdout', async () => {
    const r = await execRunner().run([node, '-e', 'process.stdout.write(JSON.stringify(process.argv.slice(1)))', '$HOME', 'a b', '; echo hi'])
    assert.deepEqual(JSON.parse(r.stdout), ['$HOME', 'a b', '; echo hi'])
    assert.equal(r.code, 0)
  })

  it('feeds stdin', async () => {
    const r = await execRunner().run([node, '-e', 'process.stdin.pipe(process.stdout)'], { stdin: 'private-key-data\n' })
    assert.equal(r.stdout, 'private-key-data\n')
  })

  it('throws CommandFailedError with argv, code and stderr on non-zero exit', async () => {
    const argv = [node, '-e', 'process.stderr.write("RTNETLINK answers: Operation not permitted\\n"); process.exit(2)']
    await assert.rejects(execRunner().run(argv), (e: unknown) => {
      assert.ok(e instanceof CommandFailedError)
      assert.equal(e.name, 'CommandFailedError')
      assert.deepEqual(e.argv, argv)
      assert.equal(e.code, 2)
      assert.match(e.stderr, /Operation not permitted/)
      assert.match(e.message, /exit 2.*Operation not permitted/)
      return true
    })
  })

  it('returns the failure instead with allowFail', async () => {
    const r = await execRunner().run([node, '-e', 'process.exit(3)'], { allowFail: true })
    assert.equal(r.code, 3)
  })

  it('reports a missing program as code 127', async () => {
    const r = await execRunner().run(['/nonexistent/wgmesh-no-such-binary'], { allowFail: true })
    assert.equal(r.code, 127)
    await assert.rejects(execRunner().run(['/nonexistent/wgmesh-no-such-binary']), { name: 'CommandFailedError' })
  })

  it('returns when the process exits even if a daemonized child keeps stdout open', async () => {
    // The parent exits at once; a detached grandchild holds the inherited stdout for 5 s (like wireguard-go with LOG_LEVEL set).
    const script = `require('child_process').spawn(process.execPath, ['-e', 'setTimeout(() => {}, 5000)'], { detached: true, stdio: ['ignore', 'inherit', 'inherit'] }).unref(); console.log('parent done')`
    const t0 = Date.now()
    const r = await execRunner({ closeGraceMs: 100 }).run([node, '-e', script])
    assert.equal(r.code, 0)
    assert.match(r.stdout, /parent done/)
    assert.ok(Date.now() - t0 < 4000, 'did not wait for the grandchild')
  })

  it('kills and reports a command that times out as code 124', async () => {
    const r = await execRunner({ timeoutMs: 200 }).run([node, '-e', 'setTimeout(() => {}, 10000)'], { allowFail: true })
    assert.equal(r.code, 124)
    assert.match(r.stderr, /timed out/)
  })

  it('L3: a child never sees the mesh key or any other secret of the environment (the attack: read /proc/<child>/environ)', async () => {
    const saved = { ...process.env }
    process.env.WGMESH_MESH_KEY = 'c2VjcmV0LW1lc2gta2V5LW5ldmVyLWluLWEtY2hpbGQ='
    process.env.WGMESH_STATE_DIR = '/var/lib/wgmesh'
    process.env.SOME_API_TOKEN = 'tok'
    process.env.AWS_SECRET_ACCESS_KEY = 'aws'
    process.env.WG_PROCESS_FOREGROUND = '1' // wireguard-go's own settings still go through
    try {
      const r = await execRunner().run([node, '-e', 'process.stdout.write(JSON.stringify(process.env))'])
      const env = JSON.parse(r.stdout) as Record<string, string>
      assert.ok(!r.stdout.includes('c2VjcmV0LW1lc2gta2V5'), 'the mesh key reached the child')
      for (const k of ['WGMESH_MESH_KEY', 'WGMESH_STATE_DIR', 'SOME_API_TOKEN', 'AWS_SECRET_ACCESS_KEY']) assert.equal(env[k], undefined, k)
      assert.equal(env.WG_PROCESS_FOREGROUND, '1')
      assert.equal(env.LC_ALL, 'C')
      assert.equal(env.PATH, process.env.PATH)
    } finally {
      for (const k of Object.keys(process.env)) if (!(k in saved)) Reflect.deleteProperty(process.env, k)
    }
  })

  it('runIpBatch runs ip steps in one ip process; a failure names the step that failed', async () => {
    const runner = execRunner()
    assert.ok(runner.runIpBatch !== undefined)
    await runner.runIpBatch([['ip', 'link', 'show', 'dev', 'lo'], ['ip', 'address', 'show', 'dev', 'lo']])
    await assert.rejects(runner.runIpBatch([['ip', 'link', 'show', 'dev', 'lo'], ['ip', 'link', 'show', 'dev', 'wgmesh-none0'], ['ip', 'link', 'show', 'dev', 'lo']]), (e: unknown) => {
      assert.ok(e instanceof CommandFailedError)
      assert.deepEqual(e.argv, ['ip', 'link', 'show', 'dev', 'wgmesh-none0'])
      assert.match(e.stderr, /does not exist/)
      assert.doesNotMatch(e.stderr, /Command failed/)
      return true
    })
  })
})
