/**
 * The demo: a mixed wgmesh in network namespaces on this machine (nothing touches the real
 * network): 2 public hosts, one behind a cone NAT, one behind a symmetric NAT, and two behind
 * one cone NAT (on one LAN; each with its own WireGuard port, see docs/NAT.md). STUN is served
 * by the mesh's own public nodes. Starts pub1 with `wgmesh up`, joins the others through it,
 * waits until every pair has settled on a path, then prints `wgmesh info` of a NATted node, the
 * path of every pair (direct / lan / relay via X) and an IPv4/IPv6 ping matrix over the
 * overlay, then cleans up.
 */
import { Lab } from '../test/lab/lab.js'
import { WgmeshLab, BUNDLE, type InfoJson } from '../test/netns/wgmesh-lab.js'

// nat1: cone NAT, nat2: symmetric NAT, nat3 + nat3-b: one cone NAT, one LAN
const HOSTS = ['pub1', 'pub2', 'nat1', 'nat2', 'nat3', 'nat3-b']
const LIMIT_MS = 60_000

function pathOf (info: InfoJson, peer: string): string {
  const p = info.peers.find(x => x.name === peer)
  if (p === undefined) return '?'
  return p.path === 'relay' ? `relay:${p.via ?? '?'}` : p.path
}

async function main (): Promise<void> {
  Lab.requireRoot()
  const lab = await Lab.up({ public: 2, natted: 3, nat: ['cone', 'symmetric', 'cone'], sharedLan: { 3: 1 } })
  const mesh = new WgmeshLab(lab)
  try {
    const t0 = Date.now()
    await mesh.start('pub1', 'up')
    const keyFile = `${mesh.node('pub1').stateDir}/mesh.key`
    await Promise.all(HOSTS.slice(1).map(async h => await mesh.start(h, 'join', ['--peer', lab.host('pub1').ip, '--mesh-key-file', keyFile,
      ...(h === 'nat3-b' ? ['--listen-port', '51830'] : [])])))
    const infos = new Map<string, InfoJson>()
    await mesh.waitFor('every pair settled on a path', async () => {
      for (const h of HOSTS) {
        const i = await mesh.tryInfo(h)
        if (i === undefined) return false
        infos.set(h, i)
        if (i.peers.filter(p => p.status === 'alive').length !== HOSTS.length - 1) return false
        if (i.peers.some(p => p.path === 'punching' || p.path === 'down')) return false
      }
      return true
    }, LIMIT_MS, 250)
    console.log(`\nmesh of ${HOSTS.length} settled ${Date.now() - t0} ms after the first start`)
    console.log(`NAT types as each node found them (STUN served by the mesh's public nodes): ${HOSTS.map(h => `${h}=${infos.get(h)!.nat}`).join(' ')}\n`)
    console.log('$ wgmesh info   (on nat1, behind a cone NAT)')
    console.log((await lab.exec('nat1', [process.execPath, BUNDLE, 'info', '--state-dir', mesh.node('nat1').stateDir])).stdout)
    console.log('path of every pair: row = from, column = to')
    const w = 13
    console.log(['', ...HOSTS].map(s => s.padEnd(w)).join(''))
    for (const src of HOSTS) console.log([src, ...HOSTS.map(dst => dst === src ? '-' : pathOf(infos.get(src)!, dst))].map(s => s.padEnd(w)).join(''))
    console.log('')
    for (const fam of ['ipv4', 'ipv6'] as const) {
      console.log(`ping matrix over the overlay (${fam}): row = from, column = to`)
      console.log(['', ...HOSTS].map(s => s.padEnd(w)).join(''))
      for (const src of HOSTS) {
        const cells: string[] = []
        for (const dst of HOSTS) {
          if (dst === src) { cells.push('-'); continue }
          const r = await lab.ping(src, infos.get(dst)![fam], { count: 1, timeoutMs: 3000 })
          cells.push(r.ok ? 'ok' : 'FAIL')
        }
        console.log([src, ...cells].map(s => s.padEnd(w)).join(''))
      }
      console.log('')
    }
  } finally {
    await lab.down()
    mesh.cleanup()
    console.log('lab cleaned up (namespaces, NAT routers, agents, wireguard-go)')
  }
}

main().catch((err: Error) => { console.error(err.stack ?? err.message); process.exit(1) })
