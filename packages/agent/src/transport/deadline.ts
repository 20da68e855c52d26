/**
 * A signal that aborts after `ms` (a TimeoutError) or as soon as `parent` aborts.
 *
 * Not `AbortSignal.any([AbortSignal.timeout(ms), parent])`: Node 20 holds the sources of
 * `any` weakly, so a timeout signal that nothing else references is collected by the next
 * garbage collection and never fires (seen: a dial to a seed that accepted TCP and then said
 * nothing was not cut at its 3 s but only by libp2p's own, later timeout, so the "a different
 * mesh key?" diagnosis came late). Here the timer holds the controller until `clear()`, which
 * the caller runs when the operation is over (it also detaches from `parent`). The timer is
 * unref'd: it never keeps a stopping process alive.
 */
export function deadline (ms: number, parent: AbortSignal): { signal: AbortSignal, clear: () => void } {
  const ac = new AbortController()
  const onParent = (): void => { ac.abort(parent.reason) }
  if (parent.aborted) ac.abort(parent.reason)
  else parent.addEventListener('abort', onParent, { once: true })
  const timer = setTimeout(() => { ac.abort(new DOMException(`timed out after ${ms} ms`, 'TimeoutError')) }, ms)
  timer.unref()
  return {
    signal: ac.signal,
    clear: () => {
      clearTimeout(timer)
      parent.removeEventListener('abort', onParent)
    }
  }
}
