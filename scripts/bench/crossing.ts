/**
 * Crossing initiations, on real wireguard-go (the cause of t_full's 5 s tail; see path-manager.ts,
 * FIRST_CONTACT_*): two public hosts add each other as WireGuard peers at the same moment and both
 * send at once (as two agents do when each gets the other's record from one gossip message, with
 * traffic waiting). Each try removes the peers, re-adds them at once on both ends and times the
 * first handshake; at 400 ms without one it prints both ends' rx/tx bytes (crossed: each has
 * received one initiation, 148 bytes, and sent an initiation and a response, 240). Then the same
 * tries with the agent's remedy: the lower-key end re-creates its entry at 0.5 s.
 * Usage: run.sh [TRIES] crossing   (default 16 tries per setting)
 */
import { Lab } from '../../test/lab/lab.js'

const tries = Number(process.argv[2] ?? 16)
Lab.requireRoot()
const lab = await Lab.up({ public: 2, natted: 0 })
try {
  const a = await lab.wireguard('pub1', { listenPort: 51820, addresses: ['100.64.0.1/24'] })
  const b = await lab.wireguard('pub2', { listenPort: 51820, addresses: ['100.64.0.2/24'] })
  const ends = [
    { h: 'pub1', w: a, o: b, ep: `${lab.host('pub2').ip}:51820`, dst: '100.64.0.2' },
    { h: 'pub2', w: b, o: a, ep: `${lab.host('pub1').ip}:51820`, dst: '100.64.0.1' }
  ]
  const lower = a.publicKey < b.publicKey ? ends[0]! : ends[1]!
  const setPeer = (e: typeof ends[number]): string => `wg set ${e.w.ifname} peer ${e.o.publicKey} endpoint ${e.ep} allowed-ips ${e.dst}/32`
  const transfer = async (e: typeof ends[number]): Promise<string> => (await lab.run(e.h, ['wg', 'show', e.w.ifname, 'transfer'])).trim().split(/\s+/).slice(1).join('/')
  for (const kickMs of [0, 500]) {
    const times: number[] = []
    for (let i = 0; i < tries; i++) {
      for (const e of ends) await lab.exec(e.h, ['wg', 'set', e.w.ifname, 'peer', e.o.publicKey, 'remove'])
      await new Promise(resolve => setTimeout(resolve, 300))
      const t0 = Date.now()
      // both ends at once: add the peer, then send (one ping, then 100 ms pings as the bench does)
      const runs = ends.map(async e => await lab.exec(e.h, ['sh', '-c', `${setPeer(e)}; ping -c 1 -W 0.2 ${e.dst} >/dev/null; ping -i 0.1 -c 60 -W 0.2 ${e.dst} >/dev/null`]))
      let shown = false
      let kicked = false
      let at = Infinity
      while (Date.now() - t0 < 8000) {
        const hs = (await lab.run('pub1', ['wg', 'show', a.ifname, 'latest-handshakes'])).trim().split(/\s+/)[1] ?? '0'
        if (hs !== '0') { at = Date.now() - t0; break }
        if (!shown && Date.now() - t0 >= 400) {
          shown = true
          console.log(`  try ${i}: no handshake at 400 ms; rx/tx pub1 ${await transfer(ends[0]!)}, pub2 ${await transfer(ends[1]!)}`)
        }
        if (kickMs > 0 && !kicked && Date.now() - t0 >= kickMs) {
          kicked = true
          await lab.run(lower.h, ['sh', '-c', `wg set ${lower.w.ifname} peer ${lower.o.publicKey} remove; ${setPeer(lower)}`])
        }
        await new Promise(resolve => setTimeout(resolve, 20))
      }
      times.push(at)
      await Promise.allSettled(runs)
    }
    const slow = times.filter(t => t >= 1000)
    console.log(`${kickMs === 0 ? 'no re-creation' : `lower-key end re-creates at ${kickMs} ms`}: ${tries} tries, first handshake ≤ 100 ms in ${times.filter(t => t <= 100).length}, ` +
      `≥ 1 s in ${slow.length} (${slow.map(t => Number.isFinite(t) ? `${t} ms` : 'none in 8 s').join(', ')}); all: ${times.map(t => Number.isFinite(t) ? t : 'none').join(' ')}`)
  }
} finally {
  await lab.down()
}
