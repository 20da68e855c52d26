/**
 * Idle cost per node (issue 6): 10 agents on 127.0.0.1 with the default timers, formed and
 * settled; then every byte their processes write to TCP (libp2p: gossip, sync, yamux, noise)
 * and UDP (failure-detector probes) is counted for a fixed window. The bound is the model's
 * O(1) per-node cost (docs/PERFORMANCE.md): two probes and two acks per second, a sync of two
 * hashes every 30 s, yamux keepalives on a bounded number of connections — nothing that grows
 * with the mesh, so the same bound holds at 100 (see the simulation in scripts/bench/scale.ts).
 */
import { after, test } from 'node:test'
import assert from 'node:assert/strict'
import { Socket } from 'node:net'
import { Socket as UdpSocket } from 'node:dgram'
import { cleanupDirs, startAgent, viewOf, waitFor, type TestAgent } from './harness.js'

const N = 10
const WINDOW_MS = 20_000
/** Bytes per node per second written at the transport, idle. */
const BOUND = 300

const agents: TestAgent[] = []
after(async () => {
  await Promise.allSettled(agents.map(async a => await a.agent.stop()))
  cleanupDirs()
})

// every agent's log events (debug included), to say what happened in the window
const events: Array<{ t: number, msg: string }> = []
const record = (msg: string): void => { events.push({ t: Date.now(), msg }) }
const logger = { debug: record, info: record, warn: record, error: record }

test(`idle: ${N} agents write at most ${BOUND} bytes/s per node at the transport (TCP + UDP)`, async () => {
  const timers = { heartbeatMs: 1000, deadAfterMs: 3000, logger }
  const first = await startAgent({ label: 'i0', createMesh: true, ...timers })
  agents.push(first)
  const meshKey = first.agent.store.meshKey()!
  for (let i = 1; i < N; i++) agents.push(await startAgent({ label: `i${i}`, meshKey, peers: [agents[i - 1]!.agent.listenAddrs()[0]!], ...timers }))
  await waitFor('identical tables', () => {
    const v = agents.map(a => viewOf(a.agent))
    return v.every(x => x === v[0]) && v[0]!.split('\n').length === N && !v[0]!.includes(' dead')
  }, 60_000)
  // settle: join-time syncs back off, gossipsub's mesh forms
  await new Promise(resolve => setTimeout(resolve, 15_000))

  // what the agents counted (records, notices, syncs, connections…) over the window: on a
  // failure, says what the bytes were for
  const counters = async (): Promise<Map<string, number>> => {
    const m = new Map<string, number>()
    for (const a of agents) {
      for (const line of (await a.agent.metrics.registry.metrics()).split('\n')) {
        const c = /^(wgmesh_[a-z_]*_total(?:\{[^}]*\})?) (\d+(?:\.\d+)?)$/.exec(line)
        if (c !== null) m.set(c[1]!, (m.get(c[1]!) ?? 0) + Number(c[2]))
      }
    }
    return m
  }
  const before = await counters()
  const t0 = Date.now()
  let tcp = 0
  let udp = 0
  const write = Socket.prototype.write
  const send = UdpSocket.prototype.send
  Socket.prototype.write = function (this: Socket, chunk: unknown, ...rest: unknown[]) {
    if (chunk instanceof Uint8Array || typeof chunk === 'string') tcp += typeof chunk === 'string' ? Buffer.byteLength(chunk) : chunk.byteLength
    return (write as (...a: unknown[]) => boolean).call(this, chunk, ...rest)
  } as typeof Socket.prototype.write
  UdpSocket.prototype.send = function (this: UdpSocket, msg: unknown, ...rest: unknown[]) {
    if (msg instanceof Uint8Array) udp += msg.byteLength
    return (send as (...a: unknown[]) => void).call(this, msg, ...rest)
  } as typeof UdpSocket.prototype.send
  try {
    await new Promise(resolve => setTimeout(resolve, WINDOW_MS))
  } finally {
    Socket.prototype.write = write
    UdpSocket.prototype.send = send
  }
  const perNode = (tcp + udp) / N / (WINDOW_MS / 1000)
  console.log(`# idle over ${WINDOW_MS / 1000} s: TCP ${tcp} B, UDP ${udp} B in all → ${perNode.toFixed(0)} B/s per node (bound ${BOUND})`)
  const afterCounts = await counters()
  const moved = [...afterCounts].map(([k, v]) => [k, v - (before.get(k) ?? 0)] as const).filter(([, d]) => d !== 0)
  console.log(`# counters that moved in the window (sum over the ${N} agents): ${moved.map(([k, d]) => `${k} +${d}`).join(', ') || 'none'}`)
  const logged = new Map<string, number>()
  for (const e of events) if (e.t >= t0 && e.t <= t0 + WINDOW_MS) logged.set(e.msg, (logged.get(e.msg) ?? 0) + 1)
  console.log(`# logged in the window: ${[...logged].map(([m, n]) => `${m} ×${n}`).join('; ') || 'nothing'}`)
  assert.ok(udp > 0, 'the failure detector probes (the count sees the probe socket)')
  assert.ok(perNode <= BOUND, `${perNode.toFixed(0)} B/s per node exceeds ${BOUND}`)
  const views = agents.map(a => viewOf(a.agent))
  assert.ok(views.every(v => v === views[0]) && !views[0]!.includes(' dead'), 'still one mesh, all alive')
})
