// Keys of the connection gate (mesh-gate.ts), derived from the mesh key. Pure.
//
// gate key      = HKDF-SHA256(meshKey, salt = empty, info = "wgmesh gate v2")
// stream key    = HKDF-SHA256(gate key, salt = initiator nonce ‖ responder nonce,
//                             info = "wgmesh gate v2 initiator" | "wgmesh gate v2 responder")
// The gate key is independent of (and does not reveal) the key that seals records; each
// connection gets two fresh stream keys (one per direction: the sender's role is in the info),
// so no key stream is ever used twice, even if a peer repeats or reflects a nonce.
import { hkdfSync } from 'node:crypto'

export const GATE_KEY_INFO = 'wgmesh gate v2'
export const GATE_NONCE_LENGTH = 24
const MESH_KEY_LENGTH = 32
const KEY_LENGTH = 32

const hkdf = (ikm: Uint8Array, salt: Uint8Array, info: string): Uint8Array =>
  new Uint8Array(hkdfSync('sha256', ikm, salt, info, KEY_LENGTH))

/** The 32-byte gate key of a mesh. */
export function gateKeyFromMeshKey (meshKey: Uint8Array): Uint8Array {
  if (!(meshKey instanceof Uint8Array) || meshKey.byteLength !== MESH_KEY_LENGTH) {
    throw new RangeError(`mesh key must be ${MESH_KEY_LENGTH} bytes`)
  }
  return hkdf(meshKey, new Uint8Array(0), GATE_KEY_INFO)
}

export interface GateStreamKeys {
  /** Key of what this end sends. */
  send: Uint8Array
  /** Key of what this end receives. */
  receive: Uint8Array
}

/** One connection's two stream keys, for the end that dialed (`outbound`) or answered (`inbound`). */
export function gateStreamKeys (gateKey: Uint8Array, localNonce: Uint8Array, remoteNonce: Uint8Array, direction: 'inbound' | 'outbound'): GateStreamKeys {
  if (gateKey.byteLength !== KEY_LENGTH) throw new RangeError(`gate key must be ${KEY_LENGTH} bytes`)
  if (localNonce.byteLength !== GATE_NONCE_LENGTH || remoteNonce.byteLength !== GATE_NONCE_LENGTH) {
    throw new RangeError(`gate nonces must be ${GATE_NONCE_LENGTH} bytes`)
  }
  const initiator = direction === 'outbound'
  const salt = new Uint8Array(2 * GATE_NONCE_LENGTH)
  salt.set(initiator ? localNonce : remoteNonce, 0)
  salt.set(initiator ? remoteNonce : localNonce, GATE_NONCE_LENGTH)
  const fromInitiator = hkdf(gateKey, salt, `${GATE_KEY_INFO} initiator`)
  const fromResponder = hkdf(gateKey, salt, `${GATE_KEY_INFO} responder`)
  return initiator
    ? { send: fromInitiator, receive: fromResponder }
    : { send: fromResponder, receive: fromInitiator }
}
