import { createHash } from 'node:crypto'
import { createSigner, seal, type RecordSigner } from '../src/envelope.js'
import { encodeRecord } from '../src/record.js'
import { overlayIPv4, overlayIPv6, ulaPrefix } from '../src/addressing.js'
import { meshSettings } from '../src/settings.js'
import type { NodeRecord } from '../src/types.js'

export const MESH_KEY = new Uint8Array(32).fill(7)
export const OTHER_MESH_KEY = new Uint8Array(32).fill(9)
export const T0 = 1_800_000_000_000
export const settings = meshSettings({ cidr4: '100.96.0.0/16', heartbeatMs: 1000, deadAfterMs: 3000, expireAfterMs: 60_000 })
export const ula = ulaPrefix(MESH_KEY)

/** Deterministic test seed/key material from a label. */
export function seedOf (label: string): Uint8Array {
  return new Uint8Array(createHash('sha256').update('seed:' + label).digest())
}
export function wgKeyOf (label: string): string {
  return createHash('sha256').update('wg:' + label).digest('base64')
}

export interface TestNode { label: string, signer: RecordSigner, wgPublicKey: string }
export function testNode (label: string): TestNode {
  return { label, signer: createSigner(seedOf(label)), wgPublicKey: wgKeyOf(label) }
}

export function recordOf (n: TestNode, over: Partial<NodeRecord> = {}): NodeRecord {
  const salt = over.ipSalt ?? 0
  return {
    v: 1,
    nodeId: n.signer.nodeId,
    seq: 1,
    issuedAt: T0,
    name: n.label,
    wgPublicKey: n.wgPublicKey,
    ipv4: overlayIPv4(settings.cidr4, n.wgPublicKey, salt),
    ipv6: overlayIPv6(ula, n.wgPublicKey, salt),
    ipSince: T0,
    ipSalt: salt,
    wgPort: 51820,
    endpoints: ['198.18.1.1:51820'],
    gossipAddrs: ['/ip4/198.18.1.1/tcp/51821'],
    routes: [],
    tags: [],
    ...over
  }
}

let nonceCounter = 0
export function nonce (): Uint8Array {
  const n = new Uint8Array(24)
  new DataView(n.buffer).setUint32(0, ++nonceCounter)
  return n
}

export function sealRecord (n: TestNode, r: NodeRecord, meshKey = MESH_KEY): Uint8Array {
  return seal(meshKey, n.signer, encodeRecord(r), nonce())
}
