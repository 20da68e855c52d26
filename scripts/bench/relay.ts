/**
 * Throughput through a relay, wgmesh beside Nebula on the same lab in the same run: 2 public
 * hosts (relays) and 2 hosts behind symmetric NATs, whose pair can only be relayed.
 *   relayed  iperf3 (TCP, 5 s) nat1 → nat2 over the overlay: through the relay
 *   direct   iperf3 nat1 → the relay host itself over the overlay: the same first hop, no relay
 * wgmesh's relay copies ciphertext between two UDP ports (the pair's WireGuard session is end
 * to end); Nebula's relay forwards its own relay-wrapped packets. Ratio = relayed / direct.
 * Usage: run.sh [RUNS] relay  (installs Debian's iperf3 and nebula if missing)
 */
import { Lab } from '../../test/lab/lab.js'
import { WgmeshLab } from '../../test/netns/wgmesh-lab.js'
import { NebulaMesh } from './nebula.js'
import { median, sleep } from './measure.js'

const RUNS = Number(process.argv[2] ?? 3)
const HOSTS = ['pub1', 'pub2', 'nat1', 'nat2']
const SECONDS = 5

interface Row { relayed: number, direct: number }

async function iperf (lab: Lab, client: string, server: string, ip: string): Promise<number> {
  const srv = lab.spawn(`iperf3-${server}`, server, ['iperf3', '-s', '-1', '-p', '5201'])
  try {
    await sleep(300)
    const r = await lab.exec(client, ['iperf3', '-c', ip, '-p', '5201', '-t', String(SECONDS), '-J'], { timeoutMs: (SECONDS + 20) * 1000 })
    if (r.code !== 0) throw new Error(`iperf3 ${client} → ${ip}: ${r.stderr || r.stdout.slice(0, 300)}`)
    const j = JSON.parse(r.stdout) as { end: { sum_received: { bits_per_second: number } } }
    return j.end.sum_received.bits_per_second / 1e6
  } finally {
    await srv.kill('SIGTERM')
  }
}

async function waitFor (what: string, cond: () => Promise<boolean>, ms: number): Promise<void> {
  const t0 = Date.now()
  while (!(await cond())) {
    if (Date.now() - t0 > ms) throw new Error(`timed out: ${what}`)
    await sleep(250)
  }
}

async function wgmesh (lab: Lab): Promise<Row> {
  const mesh = new WgmeshLab(lab)
  try {
    await mesh.start('pub1', 'up')
    const key = `${mesh.node('pub1').stateDir}/mesh.key`
    await Promise.all(HOSTS.slice(1).map(async h => await mesh.start(h, 'join', ['--peer', lab.host('pub1').ip, '--mesh-key-file', key])))
    let via = ''
    let nat2 = ''
    await waitFor('wgmesh: nat1↔nat2 relayed', async () => {
      const i = await mesh.tryInfo('nat1')
      const p = i?.peers.find(x => x.name === 'nat2')
      via = p?.via ?? ''
      nat2 = p?.ipv4 ?? ''
      return p?.path === 'relay'
    }, 60_000)
    const relayIp = (await mesh.info('nat1')).peers.find(x => x.name === via)!.ipv4
    return { relayed: await iperf(lab, 'nat1', 'nat2', nat2), direct: await iperf(lab, 'nat1', via, relayIp) }
  } finally {
    for (const n of mesh.nodes.values()) await n.proc?.kill('SIGTERM')
    mesh.cleanup()
  }
}

async function nebula (lab: Lab): Promise<Row> {
  const nb = new NebulaMesh(lab, HOSTS)
  try {
    nb.start()
    const ip = (h: string): string => nb.ip.get(h)!
    await waitFor('nebula: nat1 → nat2', async () => (await lab.ping('nat1', ip('nat2'), { count: 1, timeoutMs: 1000 })).received === 1, 60_000)
    await waitFor('nebula: nat1 → pub1', async () => (await lab.ping('nat1', ip('pub1'), { count: 1, timeoutMs: 1000 })).received === 1, 60_000)
    return { relayed: await iperf(lab, 'nat1', 'nat2', ip('nat2')), direct: await iperf(lab, 'nat1', 'pub1', ip('pub1')) }
  } finally {
    for (const p of nb.procs.values()) await p.kill('SIGTERM')
    nb.cleanup()
  }
}

const results: Record<'wgmesh' | 'nebula', Row[]> = { wgmesh: [], nebula: [] }
for (let i = 0; i < RUNS; i++) {
  for (const system of (i % 2 === 0 ? ['wgmesh', 'nebula'] : ['nebula', 'wgmesh']) as Array<'wgmesh' | 'nebula'>) {
    const lab = await Lab.up({ public: 2, natted: 2, nat: 'symmetric' })
    try {
      const row = system === 'wgmesh' ? await wgmesh(lab) : await nebula(lab)
      results[system].push(row)
      console.log(`run ${i + 1} ${system.padEnd(6)} relayed ${row.relayed.toFixed(0)} Mbit/s  direct ${row.direct.toFixed(0)} Mbit/s  ratio ${(row.relayed / row.direct).toFixed(2)}`)
    } finally {
      await lab.down()
    }
  }
}
console.log(`\nmedian of ${RUNS} (iperf3 TCP ${SECONDS} s, 2 symmetric-NAT hosts relayed by a public host; direct = to the relay host itself)`)
console.log('system  relayed Mbit/s  direct Mbit/s  relayed/direct')
for (const s of ['wgmesh', 'nebula'] as const) {
  const rel = median(results[s].map(r => r.relayed))
  const dir = median(results[s].map(r => r.direct))
  console.log(`${s.padEnd(7)} ${rel.toFixed(0).padStart(14)} ${dir.toFixed(0).padStart(14)} ${(median(results[s].map(r => r.relayed / r.direct))).toFixed(2).padStart(15)}`)
}
console.log(`wgmesh relayed / Nebula relayed: ${(median(results.wgmesh.map(r => r.relayed)) / median(results.nebula.map(r => r.relayed))).toFixed(2)}`)
