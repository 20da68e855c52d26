#!/usr/bin/env node
// Minimal STUN Binding responder for the lab's miniupnpd (test/lab/upnp). Run inside a router
// namespace, bound to the router's own WAN address:
//   node stun-responder.mjs BIND_IP [PORT=3478]
// Why: miniupnpd (>= 2.2) refuses to map ports when its WAN address is private/reserved, and
// every lab address is reserved (198.18.0.0/15, TEST-NETs). With ext_perform_stun=yes it asks a
// STUN server instead; this one answers from inside the router (miniupnpd -> BIND_IP over lo),
// so no STUN packet ever leaves the namespace. miniupnpd sends 4 Binding requests, three with
// CHANGE-REQUEST(change IP+port), and treats the NAT as "unrestricted 1:1" only if all four are
// answered with the requester's own address:port. We answer every request from BIND_IP:PORT
// (CHANGE-REQUEST is not honoured) with MAPPED-ADDRESS, XOR-MAPPED-ADDRESS and OTHER-ADDRESS
// (RFC 5780; newer miniupnpd versions require it) = our own address.
// Logs "ready IP:PORT" and one "stun IP:PORT" line per answered request; SIGTERM exits.
import { createSocket } from 'node:dgram'

const bindIp = process.argv[2]
const port = Number(process.argv[3] ?? 3478)
if (bindIp === undefined || !/^\d+\.\d+\.\d+\.\d+$/.test(bindIp)) {
  console.error('usage: stun-responder.mjs BIND_IPV4 [PORT]')
  process.exit(2)
}
const COOKIE = 0x2112a442

function addrAttr (type, ip, p, xor) {
  const b = Buffer.alloc(12)
  b.writeUInt16BE(type, 0)
  b.writeUInt16BE(8, 2)
  b.writeUInt8(0, 4)
  b.writeUInt8(1, 5) // IPv4
  const ipn = ip.split('.').reduce((a, o) => ((a << 8) | Number(o)) >>> 0, 0)
  b.writeUInt16BE(xor ? (p ^ (COOKIE >>> 16)) : p, 6)
  b.writeUInt32BE(xor ? (ipn ^ COOKIE) >>> 0 : ipn, 8)
  return b
}

const s = createSocket('udp4')
s.on('message', (msg, r) => {
  // Binding Request, RFC 5389 magic cookie (miniupnpd always sends it)
  if (msg.length < 20 || msg.readUInt16BE(0) !== 0x0001 || msg.readUInt32BE(4) !== COOKIE || r.family !== 'IPv4') return
  const attrs = Buffer.concat([
    addrAttr(0x0001, r.address, r.port, false), // MAPPED-ADDRESS
    addrAttr(0x0020, r.address, r.port, true), // XOR-MAPPED-ADDRESS
    addrAttr(0x802b, bindIp, port, false), // RESPONSE-ORIGIN
    addrAttr(0x802c, bindIp, port, false) // OTHER-ADDRESS
  ])
  const hdr = Buffer.alloc(20)
  hdr.writeUInt16BE(0x0101, 0)
  hdr.writeUInt16BE(attrs.length, 2)
  msg.copy(hdr, 4, 4, 20) // cookie + transaction id
  s.send(Buffer.concat([hdr, attrs]), r.port, r.address)
  console.log(`stun ${r.address}:${r.port}`)
})
s.on('error', (e) => { console.error(`error ${e.message}`); process.exit(1) })
process.on('SIGTERM', () => { s.close(); process.exit(0) })
s.bind(port, bindIp, () => console.log(`ready ${bindIp}:${port}`))
