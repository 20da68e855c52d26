/**
 * In place of libp2p's identify: every gossip peer is a wgmesh agent holding the mesh key (pnet
 * and noise let no one else in), so what identify would learn is known before the connection
 * opens, and the one thing libp2p needs it for, telling gossipsub that a peer speaking its
 * protocol connected, is done here at once.
 *
 * Identify cost each connection, at both ends: two more streams (a protocol negotiation each, one
 * round trip), a signed peer record built, sent and verified, and several peer-store writes
 * (protobuf encodes and decodes), ~15 % of an agent's CPU while a fleet forms; and gossipsub's
 * streams, so the peer's subscription and every record gossiped to it, waited for its round trip
 * (docs/PERFORMANCE.md). The addresses and agent version it carried were never used: members'
 * gossip addresses come in their signed records, observed addresses from STUN.
 *
 * On a new connection (either direction) the topologies registered for `protocols` (gossipsub's)
 * are told that the peer connected, as libp2p's registrar does after identify; when the last
 * connection to a peer closes, that it disconnected. A topology's filter, when it has one, keeps
 * either from being told twice (libp2p's registrar tells them too, from the protocols the peer's
 * streams put in the peer store).
 */
import { serviceCapabilities } from '@libp2p/interface'
import type { Connection, Libp2pEvents, PeerId, Startable, Topology, TypedEventTarget } from '@libp2p/interface'
import type { Registrar } from '@libp2p/interface-internal'

export interface PeerProtocolsComponents {
  events: TypedEventTarget<Libp2pEvents>
  registrar: Pick<Registrar, 'getTopologies'>
}

export class PeerProtocols implements Startable {
  readonly [Symbol.toStringTag] = 'wgmesh/peer-protocols'
  // gossipsub declares that it needs identify; what it needs of it, being told which connected
  // peers speak its protocol, is what this does
  readonly [serviceCapabilities]: string[] = ['@libp2p/identify']
  private readonly onOpen = (evt: CustomEvent<Connection>): void => { this.connected(evt.detail) }
  private readonly onDisconnect = (evt: CustomEvent<PeerId>): void => { this.disconnected(evt.detail) }

  constructor (private readonly components: PeerProtocolsComponents, private readonly protocols: () => readonly string[]) {}

  start (): void {
    this.components.events.addEventListener('connection:open', this.onOpen)
    this.components.events.addEventListener('peer:disconnect', this.onDisconnect)
  }

  stop (): void {
    this.components.events.removeEventListener('connection:open', this.onOpen)
    this.components.events.removeEventListener('peer:disconnect', this.onDisconnect)
  }

  private topologies (): Set<Topology> {
    // one topology may be registered for several protocols (gossipsub's three versions): once each
    return new Set(this.protocols().flatMap(p => this.components.registrar.getTopologies(p)))
  }

  private connected (conn: Connection): void {
    if (conn.status !== 'open') return
    for (const t of this.topologies()) {
      if (conn.limits !== undefined && t.notifyOnLimitedConnection !== true) continue
      if (t.filter?.has(conn.remotePeer) === true) continue
      t.filter?.add(conn.remotePeer)
      void Promise.resolve(t.onConnect?.(conn.remotePeer, conn)).catch(() => {})
    }
  }

  private disconnected (peer: PeerId): void {
    for (const t of this.topologies()) {
      if (t.filter !== undefined && !t.filter.has(peer)) continue
      t.filter?.remove(peer)
      void Promise.resolve(t.onDisconnect?.(peer)).catch(() => {})
    }
  }
}

/** The libp2p service factory: `services: { peerProtocols: peerProtocols(() => protocols) }`. */
export function peerProtocols (protocols: () => readonly string[]): (components: PeerProtocolsComponents) => PeerProtocols {
  return (components) => new PeerProtocols(components, protocols)
}
