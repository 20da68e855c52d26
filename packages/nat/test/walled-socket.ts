/**
 * Test support (this package's tests and the agent's): a real UDP socket that lets in only
 * datagrams from an address:port it sent to — a stateful firewall (conntrack's `ct state
 * established`) on the socket itself. `onDrop` is called for each datagram it keeps out.
 */
import dgram from 'node:dgram'

export function walledSocket (type: 'udp4' | 'udp6', onDrop: () => void = () => {}): dgram.Socket {
  const s = dgram.createSocket(type)
  const sentTo = new Set<string>()
  const send = s.send.bind(s) as (...args: unknown[]) => void
  s.send = ((...args: unknown[]) => { sentTo.add(`${String(args[2])}|${String(args[1])}`); send(...args) }) as typeof s.send
  const emit = s.emit.bind(s) as (event: string | symbol, ...args: unknown[]) => boolean
  s.emit = ((event: string | symbol, ...args: unknown[]) => {
    if (event === 'message') {
      const r = args[1] as dgram.RemoteInfo
      if (!sentTo.has(`${r.address}|${r.port}`)) { onDrop(); return false }
    }
    return emit(event, ...args)
  }) as typeof s.emit
  return s
}
