export { gateKeyFromMeshKey, gateStreamKeys, GATE_KEY_INFO, GATE_NONCE_LENGTH } from './gate-key.js'
export type { GateStreamKeys } from './gate-key.js'
export { meshGate, GateRefusedError, GATE_HANDSHAKE_TIMEOUT_MS } from './mesh-gate.js'
export {
  createGossipNode,
  DialError,
  SyncError,
  MessageTooLargeError,
  MAX_MESSAGE_BYTES,
  MAX_RPC_FRAME_BYTES,
  MAX_PENDING_INBOUND_PER_ADDRESS,
  MAX_PENDING_INBOUND,
  INBOUND_UPGRADE_TIMEOUT_MS
} from './gossip-node.js'
export { InboundGate, addressKey } from './inbound-gate.js'
export { PeerProtocols, peerProtocols } from './peer-protocols.js'
export type { PeerProtocolsComponents } from './peer-protocols.js'
export type { InboundGateInit } from './inbound-gate.js'
export type { GossipNode, GossipNodeInit, TransportLogger, ValidationResult } from './gossip-node.js'
export {
  SYNC_PROTOCOL,
  DEFAULT_SYNC_LIMITS,
  SyncProtocolError,
  SyncMessageDecoder,
  encodeSyncMessage,
  exchangeDigest,
  MessageReader
} from './sync-protocol.js'
export type { SyncLimits, SyncStream, EncodedSyncMessage, DigestSyncHandler, DigestSyncResult } from './sync-protocol.js'
