/**
 * The rate at which a table takes never-seen nodeIds: a token bucket (`burst` at once, then
 * `perMinute`). Pure: the clock comes in as `now`. A joiner's first sync takes up to `burst`
 * members at once; the rest follow at the rate, through the next syncs.
 */
export class NewMemberRate {
  private tokens: number
  private last: number | undefined

  constructor (private readonly perMinute: number, private readonly burst: number) {
    this.tokens = burst
  }

  private refill (now: number): void {
    if (this.last !== undefined && now > this.last) {
      this.tokens = Math.min(this.burst, this.tokens + (now - this.last) * this.perMinute / 60_000)
    }
    if (this.last === undefined || now > this.last) this.last = now
  }

  /** Whether one more never-seen nodeId may be taken now. */
  available (now: number): boolean {
    this.refill(now)
    return this.tokens >= 1
  }

  /** One was taken. */
  take (now: number): void {
    this.refill(now)
    this.tokens = Math.max(0, this.tokens - 1)
  }
}
