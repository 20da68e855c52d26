/**
 * Stops a libp2p node, with two workarounds for timers the libraries leave behind (each kept
 * the process alive ~1 s after stop: transport.test.ts checks that nothing does).
 */
export async function stopLibp2p (node: { stop: () => void | Promise<void> }, pubsub: unknown): Promise<void> {
  // @libp2p/gossipsub 17.1.1: stop() replaces `status` without clearing
  // `status.heartbeatTimeout`, so one ref'd ~1 s heartbeat timer outlives stop(). Keep the
  // status object (it is mutated in place when the heartbeat reschedules) and clear its timer
  // after stopping.
  const gsStatus = (pubsub as { status?: { heartbeatTimeout?: ReturnType<typeof setTimeout> } }).status
  await node.stop()
  clearTimeout(gsStatus?.heartbeatTimeout)
  // libp2p 3.3.11: the address manager debounces a peer-store update by 1 s on
  // 'transport:close' and never cancels it; cancel it.
  const am = (node as { components?: { addressManager?: { _updatePeerStoreAddresses?: { stop?: () => void } } } }).components?.addressManager
  am?._updatePeerStoreAddresses?.stop?.()
}
