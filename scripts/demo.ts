/**
 * The demo: a 4-node wgmesh in network namespaces on this machine (nothing touches the real
 * network). Starts one node with `wgmesh up`, joins three more (each through a different
 * member), prints `wgmesh info` and an IPv4/IPv6 ping matrix over the overlay, then cleans up.
 */
import { Lab } from '../test/lab/lab.js'
import { WgmeshLab, BUNDLE } from '../test/netns/wgmesh-lab.js'

const HOSTS = ['pub1', 'pub2', 'pub3', 'pub4']

async function main (): Promise<void> {
  Lab.requireRoot()
  const lab = await Lab.up({ public: HOSTS.length, natted: 0 })
  const mesh = new WgmeshLab(lab)
  try {
    const t0 = Date.now()
    await mesh.start('pub1', 'up')
    const keyFile = `${mesh.node('pub1').stateDir}/mesh.key`
    for (let i = 2; i <= HOSTS.length; i++) {
      await mesh.start(`pub${i}`, 'join', ['--peer', lab.host(`pub${i - 1}`).ip, '--mesh-key-file', keyFile])
    }
    await mesh.waitFor('full mesh', async () => {
      for (const h of HOSTS) if ((await mesh.info(h)).peers.filter(p => p.status === 'alive').length !== HOSTS.length - 1) return false
      return true
    }, 20_000)
    const infos = await Promise.all(HOSTS.map(async h => await mesh.info(h)))
    // a first packet to each peer so handshakes show in `wgmesh info`
    await Promise.all(HOSTS.map(async (h) => { for (const i of infos) if (i.name !== h) await lab.ping(h, i.ipv4, { count: 1, timeoutMs: 2000 }) }))
    console.log(`\nmesh of ${HOSTS.length} formed in ${Date.now() - t0} ms\n`)
    console.log('$ wgmesh info   (on pub1)')
    console.log((await lab.exec('pub1', [process.execPath, BUNDLE, 'info', '--state-dir', mesh.node('pub1').stateDir])).stdout)
    for (const fam of ['ipv4', 'ipv6'] as const) {
      console.log(`ping matrix over the overlay (${fam}): row = from, column = to`)
      console.log(['', ...HOSTS].map(s => s.padEnd(6)).join(''))
      for (const src of HOSTS) {
        const cells: string[] = []
        for (const dst of infos) {
          if (dst.name === src) { cells.push('-'); continue }
          const r = await lab.ping(src, dst[fam], { count: 1, timeoutMs: 2000 })
          cells.push(r.ok ? 'ok' : 'FAIL')
        }
        console.log([src, ...cells].map(s => s.padEnd(6)).join(''))
      }
      console.log('')
    }
  } finally {
    await lab.down()
    mesh.cleanup()
    console.log('lab cleaned up (namespaces, agents, wireguard-go)')
  }
}

main().catch((err: Error) => { console.error(err.stack ?? err.message); process.exit(1) })
