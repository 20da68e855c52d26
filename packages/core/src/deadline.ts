/**
 * A signal that aborts after `ms` (a TimeoutError) or as soon as `parent` aborts. Call
 * `clear()` when the operation is over (it stops the timer and detaches from `parent`).
 *
 * Not `AbortSignal.timeout`, alone or in `AbortSignal.any`:
 * - its timer is unref'd, so a short-lived process (a CLI command waiting for a gateway that
 *   never answers) would exit with the operation still pending;
 * - Node 20 holds the sources of `AbortSignal.any` weakly, so a timeout signal nothing else
 *   references is collected by the next garbage collection and never fires (seen in the agent:
 *   a dial to a seed that accepted TCP and then said nothing was not cut at its 3 s, only by
 *   libp2p's own later timeout). Here the timer holds the controller until `clear()`.
 */
export function deadline (ms: number, parent?: AbortSignal): { signal: AbortSignal, clear: () => void } {
  const ac = new AbortController()
  const onParent = (): void => { ac.abort(parent?.reason) }
  if (parent?.aborted === true) onParent()
  else parent?.addEventListener('abort', onParent, { once: true })
  const timer = setTimeout(() => { ac.abort(new DOMException(`timed out after ${ms} ms`, 'TimeoutError')) }, ms)
  return {
    signal: ac.signal,
    clear: () => {
      clearTimeout(timer)
      parent?.removeEventListener('abort', onParent)
    }
  }
}
