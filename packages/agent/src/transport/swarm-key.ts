// Derives the libp2p private-network (pnet) swarm key from the mesh key.
//
// The PSK is HKDF-SHA256(meshKey, salt = empty, info = "wgmesh pnet v1"), so it is
// independent of (and does not reveal) the key used to seal records.
import { hkdfSync } from 'node:crypto'

export const SWARM_KEY_INFO = 'wgmesh pnet v1'
const MESH_KEY_LENGTH = 32
const PSK_LENGTH = 32

/** The raw 32-byte pre-shared key derived from the mesh key. */
export function pnetPskFromMeshKey (meshKey: Uint8Array): Uint8Array {
  if (!(meshKey instanceof Uint8Array) || meshKey.byteLength !== MESH_KEY_LENGTH) {
    throw new RangeError(`mesh key must be ${MESH_KEY_LENGTH} bytes`)
  }
  return new Uint8Array(hkdfSync('sha256', meshKey, new Uint8Array(0), SWARM_KEY_INFO, PSK_LENGTH))
}

/**
 * The swarm key in the format `@libp2p/pnet` expects:
 * `/key/swarm/psk/1.0.0/\n/base16/\n<64 lowercase hex chars>`.
 */
export function swarmKeyFromMeshKey (meshKey: Uint8Array): Uint8Array {
  const hex = Buffer.from(pnetPskFromMeshKey(meshKey)).toString('hex')
  return new TextEncoder().encode(`/key/swarm/psk/1.0.0/\n/base16/\n${hex}`)
}
