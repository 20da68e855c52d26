/**
 * The agent's timers: periodic ones and one-shots, all cleared at once when it stops (no
 * heartbeat may follow a departure record). A callback that throws is logged, and its timer
 * keeps running.
 */
import type { Logger } from './logger.js'

export class AgentTimers {
  private readonly periodic: NodeJS.Timeout[] = []
  private readonly oneShots = new Set<NodeJS.Timeout>()

  constructor (private readonly log: Logger) {}

  every (ms: number, fn: () => void): void {
    this.periodic.push(setInterval(() => { this.run(fn) }, ms))
  }

  /** Run `fn` once in `ms`, unless cleared first. */
  later (ms: number, fn: () => void): void {
    const t = setTimeout(() => { this.oneShots.delete(t); this.run(fn) }, Math.max(0, ms))
    this.oneShots.add(t)
  }

  clear (): void {
    for (const t of this.periodic.splice(0)) clearInterval(t)
    for (const t of this.oneShots) clearTimeout(t)
    this.oneShots.clear()
  }

  /** Timers pending (tests). */
  get size (): number { return this.periodic.length + this.oneShots.size }

  private run (fn: () => void): void {
    try { fn() } catch (err) { this.log.error('timer failed', { error: (err as Error).message }) }
  }
}
