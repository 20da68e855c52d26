/**
 * Relaying, both roles: as a relay (RelayServer, while this node relays) and as an end of
 * relayed pairs (RelayClient). Control messages travel over the probe socket, inside the
 * tunnels; this file wires them and answers the path manager's "where does the relay copy our
 * end of this pair".
 */
import { formatEndpoint, parseEndpoint, relayLegHost, type Membership, type NodeRecord, type RelayCtl } from '@wgmesh/core'
import type { Dump } from '@wgmesh/wireguard'
import { probeAddr, type ProbeVia } from './liveness.js'
import { RelayClient } from './relay-client.js'
import { RelayServer } from './relay-server.js'
import type { RelayEndpoint } from './path-manager.js'
import type { Logger } from './logger.js'

export interface RelayingHost {
  now: () => number
  selfId: string
  table: () => Membership
  /** The interface's peers as last read (where WireGuard hears each member). */
  lastDump: () => Dump | undefined
  /** Send a relay control message from our probe socket. */
  send: (to: string, msg: RelayCtl) => void
  /** A relay port changed: re-plan. */
  changed: () => void
  /** Where probes (and relay control) go: a member's overlay address or its gossip host. */
  via: ProbeVia
  log: Logger
}

export class Relaying {
  private readonly host: RelayingHost
  private readonly client: RelayClient
  private server?: RelayServer

  constructor (host: RelayingHost) {
    this.host = host
    this.client = new RelayClient({ now: host.now, selfId: host.selfId, send: host.send, changed: host.changed, log: host.log })
  }

  get serving (): RelayServer | undefined { return this.server }

  /**
   * For the path manager: the relay's address in a family we have (where we reach it: an
   * IPv6-only host its IPv6 address, an IPv4-only one its IPv4 address) and the port of our end.
   */
  readonly endpoint: RelayEndpoint = (relay, peerId, relayWg, ask, families) => {
    const ctl = probeAddr(relay, this.host.via)
    const host = relayLegHost(relay, families, relayWg)
    if (ctl === undefined || host === undefined) return undefined
    const port = ask ? this.client.port(relay.nodeId, ctl, peerId) : this.client.known(relay.nodeId, ctl, peerId)
    return port === undefined ? undefined : formatEndpoint(host, port)
  }

  /** An authenticated relay control message arrived on our probe socket. */
  onControl (from: string, msg: RelayCtl): void {
    if (msg.t === 'alloc') {
      if (this.server === undefined) this.host.send(from, { t: 'no', peer: msg.peer, id: msg.id, why: 'not a relay' })
      else this.server.onAlloc(from, msg)
      return
    }
    this.client.onAnswer(from, msg)
  }

  /** Start or stop serving as a relay. */
  serve (on: boolean): void {
    if (on && this.server === undefined) {
      this.server = new RelayServer({
        now: this.host.now,
        member: (id) => this.member(id),
        fromMatches: (id, fromHost) => this.fromMatches(id, fromHost),
        sourcesOf: (id) => this.sourcesOf(id),
        reply: this.host.send,
        log: this.host.log
      })
      this.host.log.info('relaying for pairs that cannot reach each other directly (ciphertext only; no IP forwarding)')
    } else if (!on && this.server !== undefined) {
      this.server.close()
      this.server = undefined
    }
  }

  tick (): void {
    this.client.tick()
  }

  stop (): void {
    this.serve(false)
  }

  private member (nodeId: string): NodeRecord | undefined {
    const m = this.host.table().get(nodeId)
    if (m === undefined || m.status === 'left' || m.conflict !== undefined || m.record.leaving === true || nodeId === this.host.selfId) return undefined
    return m.record
  }

  /** In the overlay the tunnel vouches for the source address: it must be the member's own. */
  private fromMatches (nodeId: string, fromHost: string): boolean {
    const r = this.member(nodeId)
    if (r === undefined) return false
    if (this.host.via === 'overlay') return r.ipv4 === fromHost
    return probeAddr(r, 'underlay')?.startsWith(`${fromHost}:`) === true
  }

  private sourcesOf (nodeId: string): Set<string> {
    const out = new Set<string>()
    const r = this.member(nodeId)
    if (r === undefined) return out
    for (const e of r.endpoints) {
      const h = parseEndpoint(e)?.host
      if (h !== undefined) out.add(h)
    }
    const wg = this.host.lastDump()?.peers.find(p => p.publicKey === r.wgPublicKey)?.endpoint
    const h = wg === undefined ? undefined : parseEndpoint(wg)?.host
    if (h !== undefined) out.add(h)
    return out
  }
}
