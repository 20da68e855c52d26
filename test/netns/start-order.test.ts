/**
 * One mesh from any start order (issue 6): hosts started at the same moment, the way an
 * Ansible play or a fleet deploy starts them, each `--peer` another host that is itself still
 * starting; and joiners whose seed comes up last. Real agents and WireGuard in namespaces.
 * Behaviour with generous limits; the times printed are for the record (speed lives in
 * scripts/bench).
 */
import { after, afterEach, before, test } from 'node:test'
import assert from 'node:assert/strict'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { randomBytes } from 'node:crypto'
import { Lab } from '../lab/lab.js'
import { WgmeshLab, waitAllAlive, waitAllPairsPing } from './wgmesh-lab.js'

const HOSTS = ['pub1', 'pub2', 'pub3', 'pub4', 'pub5']
let lab: Lab
let mesh: WgmeshLab | undefined

before(async () => {
  Lab.requireRoot()
  lab = await Lab.up({ public: 5, natted: 0 })
})
after(async () => { await lab?.down() })

afterEach(async () => {
  // each test starts from nothing: fresh state dirs, no agents, no interfaces
  if (mesh === undefined) return
  for (const h of HOSTS) {
    const n = mesh.nodes.get(h)
    if (n?.proc !== undefined && !n.proc.exited) {
      await n.proc.kill('SIGKILL')
      // the agent leaves its interface (and wireguard-go) behind on a kill: remove it, and check it is gone
      const r = await lab.exec(h, ['ip', 'link', 'del', n.iface])
      assert.ok(r.code === 0 || /Cannot find device/.test(r.stderr), `ip link del ${n.iface}: ${r.stderr}`)
    }
  }
  mesh.cleanup()
  mesh = undefined
})

function freshMesh (): { m: WgmeshLab, keyFile: string } {
  const m = new WgmeshLab(lab)
  mesh = m
  const keyFile = join(m.root, 'mesh.key')
  writeFileSync(keyFile, randomBytes(32).toString('base64') + '\n', { mode: 0o600 })
  return { m, keyFile }
}

test('5 hosts started at the same moment in a chain (each --peer the previous, still starting) form one mesh', async () => {
  const { m, keyFile } = freshMesh()
  const t0 = Date.now()
  HOSTS.forEach((h, i) => {
    m.launch(h, i === 0 ? 'up' : 'join', ['--mesh-key-file', keyFile, ...(i === 0 ? [] : ['--peer', lab.host(HOSTS[i - 1]!).ip])])
  })
  const infos = await waitAllAlive(m, HOSTS, 60_000)
  const alive = Date.now() - t0
  await waitAllPairsPing(m, HOSTS, infos, 60_000)
  console.log(`# chain started at once: one mesh (all alive everywhere) ${alive} ms after the start, all 40 pings (v4+v6) ${Date.now() - t0} ms`)
})

test('joiners started first, their seed 10 s later: one mesh soon after the seed answers', async () => {
  const { m, keyFile } = freshMesh()
  // pub2..pub5 each name pub1 (not yet running) and pub2..pub4 also a neighbour: without the
  // seed they can only find a part of each other
  HOSTS.slice(1).forEach((h, i) => {
    const extra = i === 0 ? [] : ['--peer', lab.host(HOSTS[i]!).ip]
    m.launch(h, 'join', ['--mesh-key-file', keyFile, '--peer', lab.host('pub1').ip, ...extra])
  })
  await new Promise(resolve => setTimeout(resolve, 10_000))
  const t0 = Date.now()
  m.launch('pub1', 'up', ['--mesh-key-file', keyFile])
  const infos = await waitAllAlive(m, HOSTS, 60_000)
  const alive = Date.now() - t0
  await waitAllPairsPing(m, HOSTS, infos, 60_000)
  console.log(`# seed started 10 s after its joiners: one mesh ${alive} ms after the seed started, all 40 pings (v4+v6) ${Date.now() - t0} ms`)
})
