/**
 * What `wgmesh info` shows: the membership view joined with what WireGuard reports. Pure.
 */
import type { Membership, NatType, NodeRecord, PathKind } from '@wgmesh/core'
import type { PathManager } from './path-manager.js'
import type { Dump } from '@wgmesh/wireguard'
import { peerIdOf } from './self-record.js'

export interface PeerInfo {
  name: string
  nodeId: string
  ipv4: string
  ipv6: string
  status: 'alive' | 'dead' | 'left' | 'conflict'
  /** Seconds since the last record from it. */
  lastSeenS: number
  /** The endpoint WireGuard uses now (it roams to where packets come from). */
  endpoint?: string
  /** Unix seconds of the latest handshake; undefined = never. */
  latestHandshake?: number
  /** Seconds since the latest handshake. */
  handshakeAgeS?: number
  rxBytes: number
  txBytes: number
  tags: string[]
  /** Whether we hold a gossip connection to it right now. */
  gossip: boolean
  /** How traffic to it travels now. */
  path: PathKind
  /** The relay's name when path is 'relay'. */
  via?: string
  /** Its NAT type, as it reports it. */
  nat?: NatType
}

/** Certificate mode: this node's certificate and the revocations held. */
export interface CertInfo {
  /** The CA's fingerprint. */
  ca: string
  serial: string
  /** ms since epoch. */
  notAfter: number
  roles: string[]
  revocations: number
}

export interface AgentInfo {
  name: string
  nodeId: string
  interface: string
  ipv4: string
  ipv6: string
  wgPublicKey: string
  listenPort: number
  endpoints: string[]
  gossipAddrs: string[]
  meshCidr4: string
  meshUla: string
  /** This node's NAT type from its STUN probes. */
  nat: NatType
  /** Whether this node relays for others. */
  relay: boolean
  peers: PeerInfo[]
  /** Records refused, by reason, and records the table let go early (`departure-evicted`). */
  rejected: Record<string, number>
  /** Certificate mode only. */
  cert?: CertInfo
}

export interface InfoInput {
  self: NodeRecord
  interface: string
  table: Membership
  dump: Dump | undefined
  now: number
  gossipPeers: string[]
  rejected: Record<string, number>
  cidr4: string
  ula: string
  nat: NatType
  paths?: PathManager
  cert?: CertInfo
}

export function buildInfo (i: InfoInput): AgentInfo {
  const byKey = new Map((i.dump?.peers ?? []).map(p => [p.publicKey, p]))
  const connected = new Set(i.gossipPeers)
  const peers: PeerInfo[] = []
  for (const m of i.table.all()) {
    const r = m.record
    if (r.nodeId === i.self.nodeId || m.status === 'left') continue
    const wg = byKey.get(r.wgPublicKey)
    const hs = wg?.latestHandshake !== undefined && wg.latestHandshake > 0 ? wg.latestHandshake : undefined
    const p: PeerInfo = {
      name: r.name,
      nodeId: r.nodeId,
      ipv4: r.ipv4,
      ipv6: r.ipv6,
      status: m.conflict !== undefined ? 'conflict' : m.status,
      lastSeenS: Math.max(0, Math.round((i.now - m.lastHeard) / 100) / 10),
      rxBytes: wg?.transferRx ?? 0,
      txBytes: wg?.transferTx ?? 0,
      tags: r.tags,
      gossip: r.gossipAddrs.some(a => { const id = peerIdOf(a); return id !== undefined && connected.has(id) }),
      path: i.paths?.view(r.nodeId)?.path ?? 'punching'
    }
    const via = i.paths?.view(r.nodeId)?.via
    if (via !== undefined) p.via = via
    if (r.nat !== undefined) p.nat = r.nat
    if (wg?.endpoint !== undefined) p.endpoint = wg.endpoint
    if (hs !== undefined) {
      p.latestHandshake = hs
      p.handshakeAgeS = Math.max(0, Math.round(i.now / 1000 - hs))
    }
    peers.push(p)
  }
  peers.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : a.nodeId < b.nodeId ? -1 : a.nodeId > b.nodeId ? 1 : 0)) // ordinal: localeCompare loads ICU collation data (~2.7 MiB RSS)
  return {
    name: i.self.name,
    nodeId: i.self.nodeId,
    interface: i.interface,
    ipv4: i.self.ipv4,
    ipv6: i.self.ipv6,
    wgPublicKey: i.self.wgPublicKey,
    listenPort: i.self.wgPort,
    endpoints: i.self.endpoints,
    gossipAddrs: i.self.gossipAddrs,
    meshCidr4: i.cidr4,
    meshUla: i.ula,
    nat: i.nat,
    relay: i.self.relay === true,
    peers,
    // records the table itself let go before their time (a tombstone evicted for a newer one)
    rejected: { ...i.rejected, ...i.table.drops() },
    ...(i.cert === undefined ? {} : { cert: i.cert })
  }
}

function bytes (n: number): string {
  if (n < 1024) return `${n} B`
  if (n < 1024 ** 2) return `${(n / 1024).toFixed(1)} KiB`
  if (n < 1024 ** 3) return `${(n / 1024 ** 2).toFixed(1)} MiB`
  return `${(n / 1024 ** 3).toFixed(1)} GiB`
}

/** Human table for `wgmesh info`. */
export function formatInfo (info: AgentInfo): string {
  const lines = [
    `node      ${info.name}  (${info.nodeId.slice(0, 12)}…)`,
    `overlay   ${info.ipv4}  ${info.ipv6}`,
    `interface ${info.interface}  port ${info.listenPort}  mesh ${info.meshCidr4} ${info.meshUla}`,
    `endpoints ${info.endpoints.join(' ') || '-'}`,
    `nat       ${info.nat}${info.relay ? '  (relays for others)' : ''}`,
    ...(info.cert === undefined
      ? []
      : [`cert      serial ${info.cert.serial.slice(0, 8)}…  expires ${new Date(info.cert.notAfter).toISOString()}  roles ${info.cert.roles.join(',') || '-'}  CA ${info.cert.ca.slice(0, 12)}…  revocations ${info.cert.revocations}`]),
    ''
  ]
  const header = ['NAME', 'IPV4', 'IPV6', 'STATUS', 'PATH', 'ENDPOINT', 'HANDSHAKE', 'RX', 'TX', 'GOSSIP']
  const rows = info.peers.map(p => [
    p.name, p.ipv4, p.ipv6, p.status, p.via === undefined ? p.path : `relay:${p.via}`, p.endpoint ?? '-',
    p.handshakeAgeS === undefined ? 'never' : `${p.handshakeAgeS}s ago`,
    bytes(p.rxBytes), bytes(p.txBytes), p.gossip ? 'yes' : 'no'
  ])
  const widths = header.map((h, c) => Math.max(h.length, ...rows.map(r => r[c]!.length)))
  const fmt = (r: string[]): string => r.map((v, c) => v.padEnd(widths[c]!)).join('  ').trimEnd()
  lines.push(fmt(header), ...rows.map(fmt))
  if (info.peers.length === 0) lines.push('(no peers yet)')
  const rej = Object.entries(info.rejected)
  if (rej.length > 0) lines.push('', `rejected records: ${rej.map(([k, v]) => `${k}=${v}`).join(' ')}`)
  return lines.join('\n')
}
