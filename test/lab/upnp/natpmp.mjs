#!/usr/bin/env node
// Raw NAT-PMP (RFC 6886) client, independent of @achingbrain/nat-port-mapper (to tell library
// bugs from gateway behaviour). Run inside a lab host:
//   node natpmp.mjs GATEWAY_IP external
//   node natpmp.mjs GATEWAY_IP map udp|tcp INTERNAL_PORT [EXTERNAL_PORT=INTERNAL_PORT] [LIFETIME_S=120]
//   node natpmp.mjs GATEWAY_IP unmap udp|tcp INTERNAL_PORT      (= map with lifetime 0)
// Sends from an ephemeral port to GATEWAY_IP:5351, retries 4 times (250 ms, doubling) and prints
// the answer as JSON: {"op":N,"result":N,"epoch":N, ...}; exit 0 if result is 0 (success).
import { createSocket } from 'node:dgram'

const [gw, cmd, proto = 'udp', iportS, eportS, lifeS] = process.argv.slice(2)
if (gw === undefined || !['external', 'map', 'unmap'].includes(cmd ?? '')) {
  console.error('usage: natpmp.mjs GATEWAY_IP external | map|unmap udp|tcp INTERNAL_PORT [EXTERNAL_PORT] [LIFETIME_S]')
  process.exit(2)
}
let req
if (cmd === 'external') {
  req = Buffer.from([0, 0])
} else {
  const iport = Number(iportS)
  const eport = cmd === 'unmap' ? 0 : Number(eportS ?? iport)
  const life = cmd === 'unmap' ? 0 : Number(lifeS ?? 120)
  req = Buffer.alloc(12)
  req.writeUInt8(0, 0)
  req.writeUInt8(proto === 'tcp' ? 2 : 1, 1)
  req.writeUInt16BE(iport, 4)
  req.writeUInt16BE(eport, 6)
  req.writeUInt32BE(life, 8)
}
const s = createSocket('udp4')
let tries = 0
let timer
const send = () => {
  if (tries++ >= 4) { console.log(JSON.stringify({ error: 'timeout' })); s.close(); process.exitCode = 1; return }
  s.send(req, 5351, gw)
  timer = setTimeout(send, 250 * 2 ** (tries - 1))
}
s.on('message', (b, r) => {
  if (r.address !== gw || b.length < 8 || b.readUInt8(1) !== (req.readUInt8(1) | 128)) return
  clearTimeout(timer)
  const out = { op: b.readUInt8(1), result: b.readUInt16BE(2), epoch: b.readUInt32BE(4) }
  if (b.length >= 12 && req.length === 2) out.externalAddress = [...b.subarray(8, 12)].join('.')
  if (b.length >= 16 && req.length === 12) {
    Object.assign(out, { internalPort: b.readUInt16BE(8), externalPort: b.readUInt16BE(10), lifetime: b.readUInt32BE(12) })
  }
  console.log(JSON.stringify(out))
  process.exitCode = out.result === 0 ? 0 : 1
  s.close()
})
s.bind(0, send)
