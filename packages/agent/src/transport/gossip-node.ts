// A thin libp2p 3 node for the agent: TCP + the mesh gate (mesh-gate.ts) + noise + yamux,
// gossipsub (told of peers by peer-protocols.ts, no identify) on a records topic and a
// liveness-notice topic, and the `/wgmesh/sync/2.0.0` digest exchange. The agent's logic stays outside: it supplies callbacks.
import { createLibp2p } from 'libp2p'
import type { Libp2p } from 'libp2p'
import { tcp } from '@libp2p/tcp'
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { fastNoiseCrypto } from './noise-crypto.js'
import { gossipsub, StrictNoSign, TopicValidatorResult } from '@libp2p/gossipsub'
import type { GossipSub, Message } from '@libp2p/gossipsub'
import { privateKeyFromRaw } from '@libp2p/crypto/keys'
import { deadline, ed25519RawPublicKey } from '@wgmesh/core'
import { peerIdFromString } from '@libp2p/peer-id'
import { multiaddr } from '@multiformats/multiaddr'
import type { Multiaddr } from '@multiformats/multiaddr'
import { meshGate } from './mesh-gate.js'
import { InboundGate } from './inbound-gate.js'
import { peerProtocols, type PeerProtocols } from './peer-protocols.js'
import { stopLibp2p } from './stop-node.js'
import { LateSubscriptions, type SubscriptionChange } from './late-subscriptions.js'
import { DEFAULT_SYNC_LIMITS, SYNC_PROTOCOL, exchangeDigest } from './sync-protocol.js'
import type { DigestSyncHandler, DigestSyncResult, SyncLimits } from './sync-protocol.js'

export type ValidationResult = 'accept' | 'reject' | 'ignore'

export interface TransportLogger {
  debug(msg: string, meta?: object): void
  warn(msg: string, meta?: object): void
}

export interface GossipNodeInit {
  /** 32-byte Ed25519 seed; the libp2p PeerId is derived from it. */
  identitySeed: Uint8Array
  /** 32-byte mesh key; the connection gate's key is derived from it (HKDF, see gate-key.ts). */
  meshKey: Uint8Array
  /** Listen multiaddrs, e.g. ['/ip4/0.0.0.0/tcp/51821'] or ['/ip4/127.0.0.1/tcp/0']. */
  listen: string[]
  /** One gossipsub topic per mesh (records). */
  topic: string
  /** A second topic for small liveness notices (optional). */
  noticeTopic?: string
  /** Validator of the notice topic (as `validate`). */
  validateNotice?: (data: Uint8Array, from: string) => ValidationResult
  /**
   * Called from the gossipsub topic validator for every message not seen before.
   * `from` is the peer that forwarded it (messages carry no libp2p signature: payloads are
   * sealed and signed by their author, see StrictNoSign below). A throw counts as 'reject'.
   */
  validate: (data: Uint8Array, from: string) => ValidationResult
  /** Called for accepted messages only (never for our own publishes); `from` is '' (unsigned messages name no author). */
  onMessage: (data: Uint8Array, from: string) => void
  /** The digest exchange's view of our table (see sync-protocol.ts). */
  sync: DigestSyncHandler
  /** A completed exchange (fires on both ends, once per exchange; `received` may be []). */
  onSyncResult: (result: DigestSyncResult, from: string) => void
  onPeerConnect?: (peerId: string) => void
  onPeerDisconnect?: (peerId: string) => void
  /** Dial timeout in ms. @default 3000 */
  dialTimeoutMs?: number
  /** Whole sync exchange timeout in ms. @default 10000 */
  syncTimeoutMs?: number
  /** Run one sync automatically on every outbound connection. @default true */
  syncOnConnect?: boolean
  /** libp2p connection manager cap; beyond it libp2p prunes the least valuable connections. @default 300 */
  maxConnections?: number
  /**
   * Inbound connections not yet authenticated (mesh gate + noise), per source address (IPv6: per
   * /64) and in all. Anyone can open them without the mesh key; the caps keep one outsider
   * from taking every slot. @default 8 per address, 128 in all
   */
  maxPendingInboundPerAddress?: number
  maxPendingInbound?: number
  /** Time for an inbound connection to be upgraded (mesh gate, noise, muxer), ms. @default 3000 */
  inboundUpgradeTimeoutMs?: number
  logger?: TransportLogger
}

export interface GossipNode {
  readonly peerId: string
  /** Actual bound multiaddrs, each ending in /p2p/<peerId>. */
  listenAddrs(): string[]
  /**
   * Publish on the topic; resolves with the number of peers it went to (0: nobody subscribed
   * yet). Never throws for "no peers"; throws MessageTooLargeError for > MAX_MESSAGE_BYTES.
   */
  publish(data: Uint8Array): Promise<number>
  /** Publish on the notice topic (no-op without one). */
  publishNotice(data: Uint8Array): Promise<void>
  /** Dial a multiaddr (with or without /p2p); resolves with the remote peer id; throws DialError. */
  dial(addr: string): Promise<string>
  /** Push-pull sync with a peer (dials it if needed and its address is known); throws SyncError. */
  sync(peerId: string): Promise<void>
  connectedPeers(): string[]
  /** Close every connection to `peerId` (the dial policy's ceiling). */
  hangUp(peerId: string): Promise<void>
  /**
   * Drop our connections to `peerId` that run over an underlay family that just died (a path
   * fell back to the other family): a blackholed TCP connection would hold gossip for as long
   * as yamux's keepalive takes to notice. Returns how many were dropped.
   */
  dropConnections(peerId: string, family: 4 | 6): number
  stop(): Promise<void>
}

/** Inbound connections not yet authenticated, per source address (IPv6: /64) and in all. */
export const MAX_PENDING_INBOUND_PER_ADDRESS = 8
export const MAX_PENDING_INBOUND = 128
/** How long the listen addresses (a wildcard listener expanded to the host's addresses) are reused, ms. */
export const LISTEN_ADDRS_TTL_MS = 2000
/** Time for an inbound connection to complete the mesh gate, noise and the muxer, ms. */
export const INBOUND_UPGRADE_TIMEOUT_MS = 3000

/** Max gossip message payload; larger messages are refused on publish and rejected on receipt. */
export const MAX_MESSAGE_BYTES = 16 * 1024
/** Max length-prefixed gossipsub RPC frame accepted from a peer (an RPC may batch several messages). */
export const MAX_RPC_FRAME_BYTES = 1024 * 1024

export class DialError extends Error {
  override name = 'DialError'
  readonly addr: string
  constructor (addr: string, message: string, options?: { cause?: unknown }) {
    super(message, options)
    this.addr = addr
  }
}

export class SyncError extends Error {
  override name = 'SyncError'
  readonly peerId: string
  constructor (peerId: string, message: string, options?: { cause?: unknown }) {
    super(message, options)
    this.peerId = peerId
  }
}

export class MessageTooLargeError extends Error {
  override name = 'MessageTooLargeError'
}

const noopLogger: TransportLogger = { debug () {}, warn () {} }

function errMsg (err: unknown): string {
  return err instanceof Error ? `${err.name}: ${err.message}` : String(err)
}

function toValidatorResult (r: ValidationResult): TopicValidatorResult {
  switch (r) {
    case 'accept': return TopicValidatorResult.Accept
    case 'ignore': return TopicValidatorResult.Ignore
    default: return TopicValidatorResult.Reject
  }
}

type Services = { peerProtocols: PeerProtocols, pubsub: GossipSub }
type Node = Libp2p<Services>
type Connection = Awaited<ReturnType<Node['dial']>>
type Stream = Awaited<ReturnType<Connection['newStream']>>

export async function createGossipNode (init: GossipNodeInit): Promise<GossipNode> {
  if (init.identitySeed.byteLength !== 32) throw new RangeError('identitySeed must be 32 bytes')
  const log = init.logger ?? noopLogger
  const dialTimeoutMs = init.dialTimeoutMs ?? 3000
  const syncTimeoutMs = init.syncTimeoutMs ?? 10_000
  const syncOnConnect = init.syncOnConnect ?? true
  const limits: SyncLimits = DEFAULT_SYNC_LIMITS
  const topic = init.topic

  // seed ‖ public key: libp2p's generateKeyPairFromSeed derives the public key in JS (noble),
  // whose first base-point multiplication builds tables for ~0.3 s of CPU at every start;
  // node:crypto derives it natively
  const privateKey = privateKeyFromRaw(new Uint8Array([...init.identitySeed, ...ed25519RawPublicKey(init.identitySeed)]))
  const inboundUpgradeTimeoutMs = init.inboundUpgradeTimeoutMs ?? INBOUND_UPGRADE_TIMEOUT_MS
  const gate = new InboundGate({
    maxPendingPerAddress: init.maxPendingInboundPerAddress ?? MAX_PENDING_INBOUND_PER_ADDRESS,
    releaseAfterMs: inboundUpgradeTimeoutMs + 2000
  })

  const node: Node = await createLibp2p({
    privateKey,
    start: false,
    addresses: { listen: init.listen },
    transports: [tcp()],
    connectionProtector: meshGate(init.meshKey),
    connectionEncrypters: [noise({ crypto: fastNoiseCrypto() })],
    streamMuxers: [yamux()],
    // before the gate: at most 8 pending inbound connections per source address (see inbound-gate.ts)
    connectionGater: {
      denyInboundConnection: (maConn) => gate.denyInboundConnection(maConn),
      denyInboundEncryptedConnection: (peer, maConn) => gate.denyInboundEncryptedConnection(peer, maConn)
    },
    connectionManager: {
      maxConnections: init.maxConnections ?? 300,
      maxParallelDials: 50,
      dialTimeout: dialTimeoutMs,
      maxIncomingPendingConnections: init.maxPendingInbound ?? MAX_PENDING_INBOUND,
      inboundConnectionThreshold: 10,
      // an honest dialer gives up after its dial timeout (3 s) anyway
      inboundUpgradeTimeout: inboundUpgradeTimeoutMs
    },
    nodeInfo: { name: 'wgmesh', version: '1', userAgent: 'wgmesh' },
    // libp2p's monitor pings every connection every 10 s (a stream, a negotiation, 32 bytes,
    // ~400 bytes on the wire): at 14 connections that alone was ~0.5 KiB/s per idle node.
    // Members' liveness is the failure detector's job; dead TCP connections are found by
    // yamux's 30 s keepalive. Nothing pings, so no ping service either (one protocol fewer to
    // register).
    connectionMonitor: { enabled: false },
    services: {
      // no identify: every peer is a wgmesh agent, gossipsub is told at once (peer-protocols.ts)
      peerProtocols: peerProtocols(() => node.services.pubsub.protocols),
      pubsub: gossipsub({
        // every payload (record, notice, revocation) is already sealed and signed by its
        // author's node key and checked by the validator; a second, libp2p signature per
        // message (an Ed25519 sign per publish, a verify per receipt, ~100 bytes) adds nothing.
        // Message ids are then content hashes: every sealed payload carries a fresh nonce.
        globalSignaturePolicy: StrictNoSign,
        allowPublishToZeroTopicPeers: true,
        ignoreDuplicatePublishError: true,
        emitSelf: false,
        fallbackToFloodsub: false,
        allowedTopics: init.noticeTopic === undefined ? [topic] : [topic, init.noticeTopic],
        maxInboundDataLength: MAX_RPC_FRAME_BYTES
      })
    }
  })
  const pubsub = node.services.pubsub
  const self = node.peerId.toString()

  let stopped = false
  const stopController = new AbortController()

  // --- gossip -------------------------------------------------------------
  const validatorOf = (fn: (data: Uint8Array, from: string) => ValidationResult) => (propagationSource: { toString(): string }, msg: Message): TopicValidatorResult => {
    if (msg.data.byteLength > MAX_MESSAGE_BYTES) return TopicValidatorResult.Reject
    const author = msg.type === 'signed' ? msg.from.toString() : propagationSource.toString()
    try {
      return toValidatorResult(fn(msg.data, author))
    } catch (err) {
      log.warn('transport: validate threw, rejecting', { from: author, err: errMsg(err) })
      return TopicValidatorResult.Reject
    }
  }
  pubsub.topicValidators.set(topic, validatorOf(init.validate))
  if (init.noticeTopic !== undefined) pubsub.topicValidators.set(init.noticeTopic, validatorOf(init.validateNotice ?? (() => 'reject')))
  const onGossip = (evt: CustomEvent<Message>): void => {
    const msg = evt.detail
    if (msg.topic !== topic) return
    const author = msg.type === 'signed' ? msg.from.toString() : ''
    try {
      init.onMessage(msg.data, author)
    } catch (err) {
      log.warn('transport: onMessage threw', { from: author, err: errMsg(err) })
    }
  }
  pubsub.addEventListener('message', onGossip)

  // --- sync ---------------------------------------------------------------
  const runExchange = async (stream: Stream, remote: string, role: 'initiator' | 'responder'): Promise<void> => {
    const d = deadline(syncTimeoutMs, stopController.signal)
    const t0 = Date.now()
    let result: DigestSyncResult
    try {
      result = await exchangeDigest(stream, init.sync, { limits, signal: d.signal })
    } finally {
      d.clear()
    }
    if (result.dropped > 0) log.warn('transport: sync exceeds limits, records left out', { peer: remote, sent: result.sent, dropped: result.dropped })
    log.debug('transport: sync done', { peer: remote, role, rounds: result.rounds, sent: result.sent, received: result.received.length, ms: Date.now() - t0 })
    if (stopped) return
    late.exchanged(remote)
    try {
      init.onSyncResult(result, remote)
    } catch (err) {
      log.warn('transport: onSyncResult threw', { peer: remote, err: errMsg(err) })
    }
  }

  await node.handle(SYNC_PROTOCOL, async (stream, connection) => {
    const remote = connection.remotePeer.toString()
    try {
      await runExchange(stream, remote, 'responder')
    } catch (err) {
      stream.abort(err instanceof Error ? err : new Error(String(err)))
      log.debug('transport: inbound sync failed', { peer: remote, err: errMsg(err) })
    }
  }, { maxInboundStreams: 4, maxOutboundStreams: 4 })

  const syncOver = async (remote: string, open: (signal: AbortSignal) => Promise<Stream>): Promise<void> => {
    if (stopped) throw new SyncError(remote, 'node stopped')
    let stream: Stream
    const d = deadline(dialTimeoutMs, stopController.signal)
    try {
      stream = await open(d.signal)
    } catch (err) {
      throw new SyncError(remote, `cannot open sync stream: ${errMsg(err)}`, { cause: err })
    } finally {
      d.clear()
    }
    try {
      await runExchange(stream, remote, 'initiator')
    } catch (err) {
      throw new SyncError(remote, `sync failed: ${errMsg(err)}`, { cause: err })
    }
  }

  const late = new LateSubscriptions({
    topic,
    hash: () => init.sync.hash(),
    connected: (peer) => !stopped && peers.has(peer),
    resync: (peer) => {
      const pid = peerIdFromString(peer)
      syncOver(peer, async (signal) => await node.dialProtocol(pid, SYNC_PROTOCOL, { signal }))
        .catch(err => { log.debug('transport: sync after a late subscription failed', { peer, err: errMsg(err) }) })
    }
  })
  const onSubscriptionChange = (evt: CustomEvent<SubscriptionChange>): void => { late.changed(evt.detail) }
  pubsub.addEventListener('subscription-change', onSubscriptionChange)

  // --- connection events --------------------------------------------------
  const onConnectionOpen = (evt: CustomEvent<Connection>): void => {
    const conn = evt.detail
    if (!syncOnConnect || stopped || conn.direction !== 'outbound') return
    const remote = conn.remotePeer.toString()
    syncOver(remote, async (signal) => await conn.newStream(SYNC_PROTOCOL, { signal }))
      .catch(err => { log.debug('transport: sync on connect failed', { peer: remote, err: errMsg(err) }) })
  }
  // who is connected, kept from libp2p's peer:connect / peer:disconnect (first connection to a
  // peer opened, last one closed): asked several times a second (redial, liveness), where
  // node.getPeers() builds and base58-encodes every peer id anew (~0.1 % of a core at idle)
  const peers = new Set<string>()
  const onPeerConnect = (evt: CustomEvent<{ toString(): string }>): void => {
    const id = evt.detail.toString()
    peers.add(id)
    log.debug('transport: peer connected', { peer: id })
    try { init.onPeerConnect?.(id) } catch (err) { log.warn('transport: onPeerConnect threw', { err: errMsg(err) }) }
  }
  const onPeerDisconnect = (evt: CustomEvent<{ toString(): string }>): void => {
    const id = evt.detail.toString()
    peers.delete(id)
    late.forget(id)
    log.debug('transport: peer disconnected', { peer: id })
    try { init.onPeerDisconnect?.(id) } catch (err) { log.warn('transport: onPeerDisconnect threw', { err: errMsg(err) }) }
  }
  node.addEventListener('connection:open', onConnectionOpen)
  node.addEventListener('peer:connect', onPeerConnect)
  node.addEventListener('peer:disconnect', onPeerDisconnect)

  let listenCache: { at: number, addrs: string[] } | undefined
  await node.start()
  pubsub.subscribe(topic)
  if (init.noticeTopic !== undefined) pubsub.subscribe(init.noticeTopic)

  return {
    peerId: self,

    listenAddrs () {
      // libp2p expands a wildcard listener to every interface address (os.networkInterfaces()
      // and multiaddr building on each call); the record is rebuilt every heartbeat and every
      // LAN beacon carries them: computed at most every LISTEN_ADDRS_TTL_MS
      const t = Date.now()
      if (listenCache === undefined || t - listenCache.at >= LISTEN_ADDRS_TTL_MS || t < listenCache.at) {
        listenCache = { at: t, addrs: node.getMultiaddrs().map(ma => ma.toString()) }
      }
      return [...listenCache.addrs]
    },

    async publish (data) {
      if (data.byteLength > MAX_MESSAGE_BYTES) {
        throw new MessageTooLargeError(`message of ${data.byteLength} bytes exceeds ${MAX_MESSAGE_BYTES}`)
      }
      if (stopped) return 0
      const res = await pubsub.publish(topic, data)
      log.debug('transport: published', { bytes: data.byteLength, recipients: res.recipients.length })
      return res.recipients.length
    },

    async publishNotice (data) {
      if (init.noticeTopic === undefined || stopped) return
      if (data.byteLength > MAX_MESSAGE_BYTES) throw new MessageTooLargeError(`message of ${data.byteLength} bytes exceeds ${MAX_MESSAGE_BYTES}`)
      await pubsub.publish(init.noticeTopic, data)
    },

    async dial (addr) {
      if (stopped) throw new DialError(addr, 'node stopped')
      let ma: Multiaddr
      try {
        ma = multiaddr(addr)
      } catch (err) {
        throw new DialError(addr, `invalid multiaddr: ${errMsg(err)}`, { cause: err })
      }
      const d = deadline(dialTimeoutMs, stopController.signal)
      try {
        const conn = await node.dial(ma, { signal: d.signal })
        return conn.remotePeer.toString()
      } catch (err) {
        const why = d.signal.aborted ? `timed out after ${dialTimeoutMs} ms (wrong mesh key or unreachable)` : errMsg(err)
        throw new DialError(addr, `dial ${addr} failed: ${why}`, { cause: err })
      } finally {
        d.clear()
      }
    },

    async sync (peerId) {
      let pid: ReturnType<typeof peerIdFromString>
      try {
        pid = peerIdFromString(peerId)
      } catch (err) {
        throw new SyncError(peerId, 'invalid peer id', { cause: err })
      }
      await syncOver(peerId, async (signal) => await node.dialProtocol(pid, SYNC_PROTOCOL, { signal }))
    },

    connectedPeers () {
      return [...peers]
    },

    async hangUp (peerId) {
      let pid: ReturnType<typeof peerIdFromString>
      try { pid = peerIdFromString(peerId) } catch { return }
      await node.hangUp(pid)
    },

    dropConnections (peerId, family) {
      let pid: ReturnType<typeof peerIdFromString>
      try { pid = peerIdFromString(peerId) } catch { return 0 }
      const dead = node.getConnections(pid).filter(c => c.remoteAddr.toString().startsWith(`/ip${family}/`))
      for (const c of dead) c.abort(new Error(`the IPv${family} underlay to this peer died`))
      if (dead.length > 0) log.debug('transport: dropped connections over a dead underlay family', { peer: peerId, family, n: dead.length })
      return dead.length
    },

    async stop () {
      if (stopped) return
      stopped = true
      stopController.abort(new Error('node stopping'))
      node.removeEventListener('connection:open', onConnectionOpen)
      pubsub.removeEventListener('message', onGossip)
      pubsub.removeEventListener('subscription-change', onSubscriptionChange)
      try { pubsub.unsubscribe(topic) } catch {}
      if (init.noticeTopic !== undefined) try { pubsub.unsubscribe(init.noticeTopic) } catch {}
      await stopLibp2p(node, pubsub) // (with workarounds for timers libp2p leaves behind)
      node.removeEventListener('peer:connect', onPeerConnect)
      node.removeEventListener('peer:disconnect', onPeerDisconnect)
      peers.clear()
      late.clear()
      gate.clear()
    }
  }
}
