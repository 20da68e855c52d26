/**
 * Benchmark of the core mesh on real WireGuard in network namespaces (no NAT):
 *   - cold start: t0 = 5 agents spawned at once (one `up`, four `join` through it) → every
 *     ordered pair has answered a ping over the overlay (pairs ping as soon as both ends exist)
 *   - join: t0 = a 6th agent spawned → it has pinged all 5 members
 *   - agent RSS after settling, and start → serving (from the agent's own log line)
 * Prints the median of RUNS runs (default 3). Usage: bench/run.sh [RUNS]
 */
import { Lab, type LabProcess } from '../../test/lab/lab.js'
import { WgmeshLab, BUNDLE } from '../../test/netns/wgmesh-lab.js'
import { prepareIdentities } from './identities.js'
import { median, pingAll, pingLoop, procSample, sleep } from './measure.js'

const RUNS = Number(process.argv[2] ?? 3)
interface RunResult { coldAllPairsMs: number, joinMs: number, rssMiB: number[], startMs: number[], processMs: number[] }

async function oneRun (run: number): Promise<RunResult> {
  const lab = await Lab.up({ public: 6, natted: 0 })
  const mesh = new WgmeshLab(lab)
  try {
    const hosts = ['pub1', 'pub2', 'pub3', 'pub4', 'pub5', 'pub6']
    const { keyFile, ip } = prepareIdentities(mesh, hosts)
    const agentArgs = (h: string): string[] => [process.execPath, BUNDLE, h === 'pub1' ? 'up' : 'join', '--state-dir', mesh.node(h).stateDir,
      '--interface', mesh.node(h).iface, '--name', h, '--mesh-key-file', keyFile, '--log-format', 'json',
      ...(h === 'pub1' ? [] : ['--peer', lab.host('pub1').ip])]
    const first5 = hosts.slice(0, 5)
    const t0 = Date.now()
    const procs = new Map<string, LabProcess>()
    for (const h of first5) procs.set(h, lab.spawn(`agent-${h}`, h, agentArgs(h)))
    const cold = await pingAll(lab, first5, ip, t0, { method: 'ping', timeoutS: 30 })
    if (cold.missing.length > 0) throw new Error(`only ${cold.times.length}/20 pairs answered (missing ${cold.missing.join(' ')})`)
    const coldAllPairsMs = cold.fullMs

    // 6th node joins through pub3
    const t1 = Date.now()
    procs.set('pub6', lab.spawn('agent-pub6', 'pub6', [...agentArgs('pub6').filter(a => a !== lab.host('pub1').ip), lab.host('pub3').ip]))
    const joinLoop = pingLoop(lab, 'pub6', first5.map(x => ip.get(x)!), t1, 'ping-pub6', { method: 'ping', timeoutS: 30 })
    const jt = await joinLoop.done
    if (jt.size !== 5) throw new Error(`6th node reached ${jt.size}/5`)
    const joinMs = Math.max(...jt.values())

    await sleep(2000) // settle: heartbeats, gossip meshes
    const rssMiB: number[] = []
    const startMs: number[] = []
    const processMs: number[] = []
    for (const [, p] of procs) {
      rssMiB.push(procSample(p.pid).rssKiB / 1024)
      const line = p.log().split('\n').find(l => l.includes('wgmesh agent serving'))
      if (line !== undefined) {
        const j = JSON.parse(line) as { startMs: number, processMs: number }
        startMs.push(j.startMs)
        processMs.push(j.processMs)
      }
    }
    console.log(`run ${run}: cold all-pairs ${coldAllPairsMs} ms, join ${joinMs} ms, RSS ${rssMiB.map(x => x.toFixed(0)).join('/')} MiB, start→serving ${processMs.join('/')} ms`)
    return { coldAllPairsMs, joinMs, rssMiB, startMs, processMs }
  } finally {
    await lab.down()
    mesh.cleanup()
  }
}

async function main (): Promise<void> {
  Lab.requireRoot()
  const runs: RunResult[] = []
  for (let i = 1; i <= RUNS; i++) runs.push(await oneRun(i))
  const all = <K extends keyof RunResult>(k: K): number[] => runs.flatMap(r => r[k] as number[] | number) as number[]
  console.log('')
  console.log(`wgmesh core mesh benchmark (median of ${RUNS} runs, 2-core VM, wireguard-go, netns)`)
  console.log(`  5 agents cold start → all 20 ordered pairs ping : ${median(all('coldAllPairsMs')).toFixed(0)} ms   (goal ≤ 1500 ms first milestone)`)
  console.log(`  6th node join → pings all 5 members              : ${median(all('joinMs')).toFixed(0)} ms   (goal ≤ 1500 ms)`)
  console.log(`  agent RSS after settling (6 nodes, 5 peers)      : median ${median(all('rssMiB')).toFixed(1)} MiB, max ${Math.max(...all('rssMiB')).toFixed(1)} MiB   (goal ≤ 60 MiB at 50 peers)`)
  console.log(`  start → serving, from process start              : median ${median(all('processMs')).toFixed(0)} ms   (goal ≤ 350 ms)`)
  console.log(`  start → serving, from Agent.start()              : median ${median(all('startMs')).toFixed(0)} ms`)
}

main().catch((err: Error) => { console.error(err.stack ?? err.message); process.exit(1) })
