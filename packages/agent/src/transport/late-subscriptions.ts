/**
 * Late gossipsub subscriptions. gossipsub sends a topic's messages only to peers known to
 * subscribe to it, and a peer's subscription comes after its gossipsub stream is open
 * (100 ms or more on a busy start): a record this node takes in between the first exchange
 * with a peer and that peer's subscription is never sent to it. The seed of a fleet started at
 * once takes most records in that window; they waited for the next anti-entropy round (~1 s).
 * So the table's hash after an exchange with a peer not yet subscribed is kept; when its
 * subscription comes and the table has changed since, one more exchange brings it what it
 * missed. Used by gossip-node.ts.
 */
export interface LateSubscriptionHost {
  topic: string
  /** The table's hash now (the digest sync's). */
  hash: () => Uint8Array
  /** Whether the peer is connected (and the node running). */
  connected: (peer: string) => boolean
  /** Run one more exchange with the peer. */
  resync: (peer: string) => void
}

export interface SubscriptionChange {
  peerId: { toString(): string }
  subscriptions: Array<{ topic: string, subscribe: boolean }>
}

export class LateSubscriptions {
  private readonly subscribed = new Set<string>()
  private readonly hashAfterSync = new Map<string, Uint8Array>()
  private readonly host: LateSubscriptionHost

  constructor (host: LateSubscriptionHost) {
    this.host = host
  }

  /** An exchange with `peer` ended: remember the table's hash if it has not subscribed yet. */
  exchanged (peer: string): void {
    if (this.host.connected(peer) && !this.subscribed.has(peer)) this.hashAfterSync.set(peer, this.host.hash())
  }

  /** gossipsub's 'subscription-change' event. */
  changed (change: SubscriptionChange): void {
    const peer = change.peerId.toString()
    for (const sub of change.subscriptions) {
      if (sub.topic !== this.host.topic) continue
      if (!sub.subscribe) { this.subscribed.delete(peer); continue }
      this.subscribed.add(peer)
      const before = this.hashAfterSync.get(peer)
      this.hashAfterSync.delete(peer)
      if (before === undefined || !this.host.connected(peer) || Buffer.from(before).equals(this.host.hash())) continue
      this.host.resync(peer)
    }
  }

  /** The peer disconnected. */
  forget (peer: string): void {
    this.subscribed.delete(peer)
    this.hashAfterSync.delete(peer)
  }

  clear (): void {
    this.subscribed.clear()
    this.hashAfterSync.clear()
  }
}
