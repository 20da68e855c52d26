#!/usr/bin/env node
// Tiny UDP peer for lab tests (no python/socat needed). Run inside a lab namespace:
//   node udp-peer.mjs PORT [--echo] [--target IP:PORT]
// Logs "ready PORT", "recv IP:PORT MSG" per datagram, "sent IP:PORT MSG". --echo answers every
// datagram with "echo:MSG"; SIGUSR1 sends "punch" from PORT to --target; SIGTERM exits.
// One-shot sender: node udp-peer.mjs --send IP:PORT MSG [SRC_PORT]
import { createSocket } from 'node:dgram'

const args = process.argv.slice(2)
const split = (s) => { const i = s.lastIndexOf(':'); return [s.slice(0, i), Number(s.slice(i + 1))] }
if (args[0] === '--send') {
  const [ip, port] = split(args[1])
  const s = createSocket('udp4')
  s.bind(Number(args[3] ?? 0), () => s.send(args[2] ?? 'x', port, ip, (err) => {
    console.log(err ? `error ${err.code}` : `sent ${ip}:${port} ${args[2] ?? 'x'}`)
    s.close()
    process.exitCode = err ? 1 : 0
  }))
} else {
  const port = Number(args[0])
  const echo = args.includes('--echo')
  const ti = args.indexOf('--target')
  const target = ti >= 0 ? split(args[ti + 1]) : undefined
  const s = createSocket('udp4')
  s.on('message', (msg, r) => {
    console.log(`recv ${r.address}:${r.port} ${msg}`)
    if (echo) s.send(`echo:${msg}`, r.port, r.address)
  })
  process.on('SIGUSR1', () => {
    if (target) s.send('punch', target[1], target[0], () => console.log(`sent ${target[0]}:${target[1]} punch`))
  })
  process.on('SIGTERM', () => { s.close(); process.exit(0) })
  s.bind(port, () => console.log(`ready ${port}`))
}
