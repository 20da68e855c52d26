/**
 * The gossip addresses a record may advertise, parsed strictly. Every member dials what others
 * advertise, so only what a gossip listener can be: `/ip4|/ip6/<address>/tcp/<port>` or
 * `/dns4|/dns6|/dns/<host name>/tcp/<port>`, optionally followed by `/p2p/<the record's own
 * PeerId>`. Not an unspecified, multicast or broadcast address, not an IPv6 link-local one
 * (undialable without its zone), not port 0, nothing else (no other protocols, no circuit
 * relays, no other node's PeerId). Pure.
 */
import { fromBase64Url } from './keys.js'
import { parseIPv4, parseIPv6 } from './ip.js'

const B58 = '123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz'

function base58btc (bytes: Uint8Array): string {
  let n = BigInt('0x' + (Buffer.from(bytes).toString('hex') || '0'))
  let out = ''
  while (n > 0n) { out = B58[Number(n % 58n)]! + out; n /= 58n }
  for (const b of bytes) { if (b !== 0) break; out = '1' + out }
  return out
}

/**
 * The libp2p PeerId (base58btc) of a nodeId: the identity multihash of the protobuf-encoded
 * Ed25519 public key (`00 24 08 01 12 20 ‖ key`), i.e. the `12D3KooW…` form.
 */
export function peerIdOfNodeId (nodeId: string): string | undefined {
  const key = fromBase64Url(nodeId)
  if (key?.length !== 32) return undefined
  return base58btc(new Uint8Array([0x00, 0x24, 0x08, 0x01, 0x12, 0x20, ...key]))
}

const HOST_RE = /^(?=.{1,253}$)([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.?$/
const PORT_RE = /^[1-9][0-9]{0,4}$/

export interface GossipAddr { proto: 'ip4' | 'ip6' | 'dns4' | 'dns6' | 'dns', host: string, port: number, peerId?: string }

/** Parse a gossip address, or undefined when it is not one a member may advertise. */
export function parseGossipAddr (s: string): GossipAddr | undefined {
  if (s.length > 256) return undefined
  const parts = s.split('/')
  if (parts[0] !== '' || (parts.length !== 5 && parts.length !== 7)) return undefined
  const [, proto, host, tcp, port, p2p, peerId] = parts as [string, string, string, string, string, string?, string?]
  if (tcp !== 'tcp' || !PORT_RE.test(port) || Number(port) > 65535) return undefined
  if (parts.length === 7 && (p2p !== 'p2p' || peerId === undefined || !/^[1-9A-HJ-NP-Za-km-z]{40,60}$/.test(peerId))) return undefined
  if (proto === 'ip4') {
    const v = parseIPv4(host)
    // 0.0.0.0/8 (unspecified), 224.0.0.0/4 (multicast) and above (reserved, broadcast)
    if (v === undefined || (v >> 24n) === 0n || v >= 0xe0000000n) return undefined
  } else if (proto === 'ip6') {
    const v = parseIPv6(host)
    // unspecified, multicast, link-local (fe80::/10)
    if (v === undefined || v === 0n || (v >> 120n) === 0xffn || (v >> 118n) === 0x3fan) return undefined
  } else if (proto === 'dns4' || proto === 'dns6' || proto === 'dns') {
    if (!HOST_RE.test(host) || /^[0-9.]+$/.test(host)) return undefined
  } else {
    return undefined
  }
  const out: GossipAddr = { proto, host, port: Number(port) }
  if (peerId !== undefined) out.peerId = peerId
  return out
}

/** Whether `s` is a gossip address the node `nodeId` may advertise (a `/p2p/` part must be its own). */
export function isValidGossipAddr (s: string, nodeId: string): boolean {
  const a = parseGossipAddr(s)
  return a !== undefined && (a.peerId === undefined || a.peerId === peerIdOfNodeId(nodeId))
}
