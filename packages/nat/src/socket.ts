/** Small UDP socket helpers shared by the STUN server, client and LAN beacon. */
import type dgram from 'node:dgram'
import { parseIP } from '@wgmesh/core'

/** Creates a UDP socket of the given type (an injection seam for tests). */
export type SocketFactory = (type: 'udp4' | 'udp6') => dgram.Socket

/** A UDP server address. `host` is an IP literal (IPv6 without brackets). */
export interface HostPort {
  host: string
  port: number
}

/** 'udp6' for IPv6 literals ("::", "fd00::1", "[::1]"), 'udp4' otherwise. */
export function socketTypeFor (host: string): 'udp4' | 'udp6' {
  const h = host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host
  return parseIP(h)?.family === 6 ? 'udp6' : 'udp4'
}

/** Strip brackets from "[v6]" hosts. */
export function bareHost (host: string): string {
  return host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host
}
