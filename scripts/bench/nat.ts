/**
 * NAT traversal benchmark (network namespaces, real NAT routers, wireguard-go):
 * 2 public, 2 cone, 2 symmetric and 2 nodes behind one cone NAT, all 8 agents spawned at t0.
 * Per ordered pair: time to its first overlay ping, and time to its final path (the last
 * 'peer path' log line of the source agent within the settle window). Median over RUNS runs,
 * plus the count of direct / lan / relay pairs.
 */
import { Lab, type LabProcess } from '../../test/lab/lab.js'
import { WgmeshLab, BUNDLE } from '../../test/netns/wgmesh-lab.js'
import { prepareIdentities } from './identities.js'
import { median, pingAll, sleep } from './measure.js'

const RUNS = Number(process.argv[2] ?? 3)
const SETTLE_MS = 30_000
const HOSTS = ['pub1', 'pub2', 'nat1', 'nat2', 'nat3', 'nat4', 'nat5', 'nat5-b']

interface Run { firstPing: number[], finalPath: number[], counts: Record<string, number> }

async function oneRun (run: number): Promise<Run> {
  const lab = await Lab.up({ public: 2, natted: 5, nat: ['cone', 'cone', 'symmetric', 'symmetric', 'cone'], sharedLan: { 5: 1 } })
  const mesh = new WgmeshLab(lab)
  try {
    const { keyFile, ip } = prepareIdentities(mesh, HOSTS)
    const t0 = Date.now()
    const procs = new Map<string, LabProcess>()
    for (const h of HOSTS) {
      procs.set(h, lab.spawn(`agent-${h}`, h, [process.execPath, BUNDLE, h === 'pub1' ? 'up' : 'join', '--state-dir', mesh.node(h).stateDir,
        '--interface', mesh.node(h).iface, '--name', h, '--mesh-key-file', keyFile, '--log-format', 'json',
        ...(h === 'pub1' ? [] : ['--peer', lab.host('pub1').ip]),
        ...(h === 'nat5-b' ? ['--listen-port', '51830'] : [])])) // one port per host behind one NAT (docs/NAT.md)
    }
    // one loop per target, in parallel: a silent target must not delay the others
    const firstPing = (await pingAll(lab, HOSTS, ip, t0, { method: 'parallel', timeoutS: 40 })).times
    const wait = t0 + SETTLE_MS - Date.now()
    if (wait > 0) await sleep(wait)
    const finalPath: number[] = []
    const counts: Record<string, number> = {}
    for (const [h, p] of procs) {
      const last = new Map<string, { ms: number, path: string }>()
      for (const line of p.log().split('\n')) {
        if (!line.includes('"peer path"')) continue
        const j = JSON.parse(line) as { peer: string, path: string, ts: string }
        last.set(j.peer, { ms: Date.parse(j.ts) - t0, path: j.path })
      }
      for (const [, v] of last) { finalPath.push(v.ms); counts[v.path] = (counts[v.path] ?? 0) + 1 }
      void h
    }
    console.log(`run ${run}: ${firstPing.length}/56 pairs pinged, first ping median ${median(firstPing)} ms max ${Math.max(...firstPing)} ms; final path median ${median(finalPath)} ms max ${Math.max(...finalPath)} ms; ${JSON.stringify(counts)}`)
    return { firstPing, finalPath, counts }
  } finally {
    await lab.down()
    mesh.cleanup()
  }
}

async function main (): Promise<void> {
  Lab.requireRoot()
  const runs: Run[] = []
  for (let i = 1; i <= RUNS; i++) runs.push(await oneRun(i))
  const all = (k: 'firstPing' | 'finalPath'): number[] => runs.flatMap(r => r[k])
  console.log('')
  console.log(`wgmesh NAT benchmark: 8 agents (2 public, 2 cone, 2 symmetric, 2 on one LAN) spawned at once; ${RUNS} runs, 56 ordered pairs each`)
  console.log(`  start → pair's first overlay ping : median ${median(all('firstPing')).toFixed(0)} ms, max ${Math.max(...all('firstPing')).toFixed(0)} ms`)
  console.log(`  start → pair's final path         : median ${median(all('finalPath')).toFixed(0)} ms, max ${Math.max(...all('finalPath')).toFixed(0)} ms`)
  const c = runs.map(r => r.counts)
  for (const k of ['direct', 'lan', 'relay', 'down']) console.log(`  ${k.padEnd(6)} pairs per run: ${c.map(x => x[k] ?? 0).join(' / ')}`)
}

main().catch((err: Error) => { console.error(err.stack ?? err.message); process.exit(1) })
