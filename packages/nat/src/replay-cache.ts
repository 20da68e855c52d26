/**
 * Seen nonces, each kept until its validity ends, in a bounded table. Pure apart from the
 * injected clock. Full of live entries, it refuses new nonces (fails closed: a replay is never
 * let through because the table was full).
 */

export interface ReplayCacheInit {
  /** How long a nonce is remembered, ms (at least twice a message's allowed age either way). */
  ttlMs: number
  /** Most nonces held. Default 8192. */
  maxEntries?: number
  /** Milliseconds clock. Default `Date.now`. */
  now?: () => number
}

export type ReplayVerdict = 'fresh' | 'replay' | 'full'

export class ReplayCache {
  private readonly ttlMs: number
  private readonly max: number
  private readonly now: () => number
  /** nonce → expiry; insertion order is expiry order (constant ttl, monotonic-ish clock). */
  private readonly seen = new Map<string, number>()

  constructor (init: ReplayCacheInit) {
    this.ttlMs = init.ttlMs
    this.max = init.maxEntries ?? 8192
    this.now = init.now ?? Date.now
  }

  /** Record `nonce`: 'fresh' the first time within its ttl, 'replay' after, 'full' when no room. */
  check (nonce: string): ReplayVerdict {
    const t = this.now()
    this.sweep(t)
    const exp = this.seen.get(nonce)
    if (exp !== undefined && exp > t) return 'replay'
    if (this.seen.size >= this.max) return 'full'
    this.seen.set(nonce, t + this.ttlMs)
    return 'fresh'
  }

  get size (): number { return this.seen.size }

  private sweep (t: number): void {
    for (const [k, exp] of this.seen) {
      if (exp > t) break
      this.seen.delete(k)
    }
  }
}
