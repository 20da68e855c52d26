/**
 * Who holds which overlay address and WireGuard key, in this table's own order of events. Pure.
 *
 * A holding belongs to the first member this table accepted with it, and stays with it until
 * that member leaves, expires or moves off it (a newer record of its own with other values).
 * Nothing in a record decides a contest: `ipSince`, the nodeId and the seq are all chosen by
 * the claimant, so a claim on a holding of another member is refused whatever it says. The one
 * exception — the node giving up its own fresh address to a holder it had not heard of when it
 * claimed it — is decided by the membership table (see `Membership.check`). In certificate
 * mode the CA decides too: an address a member's certificate names goes to it, from a holder
 * whose certificate does not name it (or names it in an older certificate).
 */
import type { NodeRecord } from './types.js'

export type HoldingWhat = 'ip' | 'wg-key'

/** A holding another member has on values `r` claims (`key`: "v4:<ip>", "v6:<ip>" or "wg:<key>"). */
export interface Contest { what: HoldingWhat, holder: string, key: string }

function keysOf (r: NodeRecord): Array<[HoldingWhat, string]> {
  return [['ip', `v4:${r.ipv4}`], ['ip', `v6:${r.ipv6}`], ['wg-key', `wg:${r.wgPublicKey}`]]
}

export class Holdings {
  private readonly owners = new Map<string, string>()

  /** The holdings of other members that `r` claims (at most one per value). */
  contests (r: NodeRecord): Contest[] {
    const out: Contest[] = []
    for (const [what, k] of keysOf(r)) {
      const holder = this.owners.get(k)
      if (holder !== undefined && holder !== r.nodeId) out.push({ what, holder, key: k })
    }
    return out
  }

  /** Take every value of `r` that is free; values held by others stay theirs. */
  take (r: NodeRecord): void {
    for (const [, k] of keysOf(r)) if (!this.owners.has(k)) this.owners.set(k, r.nodeId)
  }

  /** Give up what `r`'s node holds through `r`. */
  release (r: NodeRecord): void {
    for (const [, k] of keysOf(r)) if (this.owners.get(k) === r.nodeId) this.owners.delete(k)
  }

  /** Give up the addresses (not the key) `r`'s node holds through `r`: it is moving. */
  releaseAddresses (r: NodeRecord): void {
    for (const [what, k] of keysOf(r)) if (what === 'ip' && this.owners.get(k) === r.nodeId) this.owners.delete(k)
  }

  /** Whether `r`'s node holds every value `r` claims. */
  holdsAll (r: NodeRecord): boolean {
    return keysOf(r).every(([, k]) => this.owners.get(k) === r.nodeId)
  }

  /** The holder of an overlay IPv4 address. */
  ipv4Holder (ipv4: string): string | undefined { return this.owners.get(`v4:${ipv4}`) }

  get size (): number { return this.owners.size }
}
