/**
 * Per-node control-plane cost against mesh size, on the real core (Membership, FailureDetector,
 * probe wire format) in one process with a fake clock (packages/core/test/sim-mesh.ts):
 *   - idle bytes/s per node: probe datagrams as they cross the underlay (payload + inner UDP/IP
 *     + WireGuard data header and tag + outer UDP/IP) over a 60 s window, after settling;
 *   - one record change: bytes per node to spread it (gossipsub: each member receives it from
 *     about `copies` mesh neighbours) and hops to reach all (gossipsub's mesh degree D = 6);
 *   - dead detection: kill one member; time until every live member holds it dead.
 * Not simulated here, and O(1) per node by construction (see docs/PERFORMANCE.md): the
 * anti-entropy sync (two 32-byte hashes every 30 s when tables agree), yamux keepalives on a
 * bounded number of connections, WireGuard keepalives from behind NATs.
 * Usage: node --import tsx scripts/bench/scale.ts [N ...]   (default 10 50 100 1000)
 */
import { SimMesh } from '../../packages/core/test/sim-mesh.js'

const sizes = process.argv.slice(2).map(Number).filter(n => n > 2)
const NS = sizes.length > 0 ? sizes : [10, 50, 100, 1000]
const RECORD_BYTES = 900 // a sealed record of a public member with 3 endpoints, measured
const GOSSIP_D = 6

interface Row { n: number, idle: number, changeBytes: number, hops: number, deadMs: number, falseDead: number, wallS: number }

function run (n: number): Row {
  const t0 = Date.now()
  const sim = new SimMesh({ n, seed: 1234 + n, recordBytes: RECORD_BYTES, gossipCopies: 3 })
  sim.run(5000, n >= 500 ? 100 : 50)
  sim.resetBytes()
  const window = 60_000
  sim.run(window, n >= 500 ? 100 : 50)
  const idle = sim.bytesPerNodePerSecond(window)
  const falseDead = sim.deadAt.size
  sim.resetBytes()
  sim.change(1)
  sim.run(1000, 50)
  const changeBytes = sim.bytesPerNodePerSecond(1000) - idle // what the change added, per node
  const victim = sim.nodes[n - 1]!.id
  const killedAt = sim.now
  sim.kill(n - 1)
  sim.run(sim.settings.deadAfterMs + 2000, 50)
  const seen = sim.deadAt.get(victim)
  const deadMs = seen === undefined || seen.size < n - 1 ? Number.NaN : Math.max(...seen.values()) - killedAt
  return { n, idle, changeBytes, hops: Math.ceil(Math.log(n) / Math.log(GOSSIP_D)), deadMs, falseDead, wallS: (Date.now() - t0) / 1000 }
}

console.log('wgmesh control plane per node against N (simulated: real core, fake clock; heartbeat 1 s, dead-after 3 s)')
console.log('| N | idle B/s per node (probes) | one change: bytes per node | gossip hops to all | dead everywhere after (ms) | false deaths | sim wall (s) |')
console.log('| ---: | ---: | ---: | ---: | ---: | ---: | ---: |')
for (const n of NS) {
  const r = run(n)
  console.log(`| ${r.n} | ${r.idle.toFixed(0)} | ${r.changeBytes.toFixed(0)} | ${r.hops} | ${Number.isNaN(r.deadMs) ? 'not all' : r.deadMs} | ${r.falseDead} | ${r.wallS.toFixed(1)} |`)
}
