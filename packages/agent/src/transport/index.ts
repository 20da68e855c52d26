export { swarmKeyFromMeshKey, pnetPskFromMeshKey, SWARM_KEY_INFO } from './swarm-key.js'
export {
  createGossipNode,
  DialError,
  SyncError,
  MessageTooLargeError,
  MAX_MESSAGE_BYTES,
  MAX_RPC_FRAME_BYTES
} from './gossip-node.js'
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
