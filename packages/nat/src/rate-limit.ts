/**
 * Per-key token buckets with a bounded table. Pure apart from the injected clock.
 */

export interface RateLimiterInit {
  /** Tokens added per second (sustained rate). */
  ratePerSecond: number
  /** Bucket size (largest burst). Default: `ratePerSecond`. */
  burst?: number
  /** Most keys tracked; when full, full buckets are evicted, then the oldest. Default 10 000. */
  maxKeys?: number
  /** Milliseconds clock. Default `performance.now`. */
  now?: () => number
}

interface Bucket { tokens: number, at: number }

export class RateLimiter {
  private readonly rate: number
  private readonly burst: number
  private readonly maxKeys: number
  private readonly now: () => number
  private readonly buckets = new Map<string, Bucket>()

  constructor (init: RateLimiterInit) {
    this.rate = init.ratePerSecond
    this.burst = init.burst ?? init.ratePerSecond
    this.maxKeys = init.maxKeys ?? 10_000
    this.now = init.now ?? (() => performance.now())
  }

  /** Take one token for `key`; false when its bucket is empty (drop the packet). */
  take (key: string): boolean {
    const t = this.now()
    let b = this.buckets.get(key)
    if (b === undefined) {
      if (this.buckets.size >= this.maxKeys) this.evict(t)
      b = { tokens: this.burst, at: t }
      this.buckets.set(key, b)
    } else {
      b.tokens = Math.min(this.burst, b.tokens + ((t - b.at) / 1000) * this.rate)
      b.at = t
    }
    if (b.tokens < 1) return false
    b.tokens -= 1
    return true
  }

  /** Number of keys currently tracked. */
  get size (): number {
    return this.buckets.size
  }

  private evict (t: number): void {
    for (const [k, b] of this.buckets) {
      if (b.tokens + ((t - b.at) / 1000) * this.rate >= this.burst) this.buckets.delete(k)
    }
    while (this.buckets.size >= this.maxKeys) {
      const first = this.buckets.keys().next()
      if (first.done === true) break
      this.buckets.delete(first.value)
    }
  }
}
