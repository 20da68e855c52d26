/**
 * What `wgmesh info` shows: the membership view joined with what WireGuard reports. Pure.
 */
import type { GroupInfo } from './gateways.js'
import { endpointFamily, type Membership, type NatType, type NodeRecord, type PathKind } from '@wgmesh/core'
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
  /** The underlay family of that endpoint: the path runs over IPv4 or IPv6. */
  family?: 4 | 6
  /** Unix seconds of the latest handshake; undefined = never. */
  latestHandshake?: number
  /** Seconds since the latest handshake. */
  handshakeAgeS?: number
  /** WireGuard's byte counters of the peer's current entry (they restart when it is re-created). */
  rxBytes: number
  txBytes: number
  /** Bytes since the agent started, carried across re-created entries (as in the metrics). */
  rxTotal?: number
  txTotal?: number
  /** Round-trip time through the tunnel, ms: median of the last 5 failure-detector probe samples; absent: no sample in the last 10 min. */
  rttMs?: number
  /** Seconds since the latest RTT sample. */
  rttAgeS?: number
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

/** Version of the `wgmesh info --json` layout; bumped when a field changes meaning or goes away. */
export const INFO_SCHEMA = 1

export interface AgentInfo {
  /** Layout version of this object ({@link INFO_SCHEMA}). */
  schema: number
  /** The agent's wgmesh version. */
  version: string
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
  /**
   * Gateway groups with a live member (advertised routes): their routes (the active member's),
   * the active gateway and since when (ms epoch, this node's clock), the live members by rank.
   */
  groups?: GroupInfo[]
  /** `--exit-node GROUP`: this host's default route goes through that group's active gateway. */
  exitNode?: string
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
  version?: string
  /** The latest RTT estimate to a member, if any. */
  rtt?: (nodeId: string) => { ms: number, ageMs: number } | undefined
  /** Gateway groups with a live member, and this host's `--exit-node` group. */
  groups?: GroupInfo[]
  exitNode?: string
}

/** RTT samples older than this are not shown. */
const RTT_SHOWN_MS = 600_000

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
    if (wg?.endpoint !== undefined) {
      p.endpoint = wg.endpoint
      const family = endpointFamily(wg.endpoint)
      if (family !== undefined) p.family = family
    }
    const rtt = i.rtt?.(r.nodeId)
    if (rtt !== undefined && rtt.ageMs <= RTT_SHOWN_MS) {
      p.rttMs = Math.round(rtt.ms * 100) / 100
      p.rttAgeS = Math.round(rtt.ageMs / 1000)
    }
    if (hs !== undefined) {
      p.latestHandshake = hs
      p.handshakeAgeS = Math.max(0, Math.round(i.now / 1000 - hs))
    }
    peers.push(p)
  }
  peers.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : a.nodeId < b.nodeId ? -1 : a.nodeId > b.nodeId ? 1 : 0)) // ordinal: localeCompare loads ICU collation data (~2.7 MiB RSS)
  return {
    schema: INFO_SCHEMA,
    version: i.version ?? 'unknown',
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
    ...(i.cert === undefined ? {} : { cert: i.cert }),
    ...(i.groups === undefined ? {} : { groups: i.groups }),
    ...(i.exitNode === undefined ? {} : { exitNode: i.exitNode })
  }
}

function bytes (n: number): string {
  if (n < 1024) return `${n} B`
  if (n < 1024 ** 2) return `${(n / 1024).toFixed(1)} KiB`
  if (n < 1024 ** 3) return `${(n / 1024 ** 2).toFixed(1)} MiB`
  return `${(n / 1024 ** 3).toFixed(1)} GiB`
}

/** "850µs", "0.42ms", "12.3ms", "184ms", "1.25s". */
export function formatRtt (ms: number | undefined): string {
  if (ms === undefined) return '-'
  if (ms < 1) return `${(ms).toFixed(2)}ms`
  if (ms < 100) return `${ms.toFixed(1)}ms`
  if (ms < 1000) return `${Math.round(ms)}ms`
  return `${(ms / 1000).toFixed(2)}s`
}

/** "12s", "4m05s", "3h12m", "6d". */
export function formatAge (s: number | undefined): string {
  if (s === undefined) return 'never'
  if (s < 60) return `${s}s`
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`
  if (s < 86400) return `${Math.floor(s / 3600)}h${String(Math.floor(s / 60) % 60).padStart(2, '0')}m`
  return `${Math.floor(s / 86400)}d`
}

/** Cut to `n` characters with an ellipsis. */
const cut = (v: string, n: number): string => v.length <= n ? v : `${v.slice(0, n - 1)}…`

/** `label` then the words, wrapped to `width` columns (continuation lines indented). */
function wrapped (label: string, words: string[], width: number): string[] {
  const pad = ' '.repeat(label.length)
  const out: string[] = []
  let line = label
  for (const w of words.length === 0 ? ['-'] : words) {
    if (line.length > label.length && line.length + 1 + w.length > width) { out.push(line); line = pad }
    line += (line.length > label.length ? ' ' : '') + w
  }
  out.push(line)
  return out
}

export interface FormatOptions {
  /** Every column, nothing cut (wider than a terminal). @default false */
  wide?: boolean
}

/** Columns the compact table and its header lines keep within. */
export const COMPACT_WIDTH = 100
/** In the compact table: names cut to this, and the path column (relay:<name>) to 26. */
const NAME_COLS = 24
const PATH_COLS = 26

/**
 * Human table for `wgmesh info`. Compact (default): NAME IPV4 STATUS PATH RTT HANDSHAKE, at
 * most {@link COMPACT_WIDTH} columns (long names cut with '…'); `wide`: every column.
 */
export function formatInfo (info: AgentInfo & { join?: { line?: string } }, opts: FormatOptions = {}): string {
  const wide = opts.wide === true
  const W = wide ? Infinity : COMPACT_WIDTH
  const lines = [
    `node      ${wide ? info.name : cut(info.name, 48)}  (${info.nodeId.slice(0, 12)}…)  wgmesh ${info.version}`,
    `overlay   ${info.ipv4}  ${info.ipv6}`,
    `interface ${info.interface}  port ${info.listenPort}  mesh ${info.meshCidr4} ${info.meshUla}`,
    ...wrapped('endpoints ', info.endpoints, W),
    `nat       ${info.nat}${info.relay ? '  (relays for others)' : ''}`,
    ...(info.cert === undefined
      ? []
      : [`cert      serial ${info.cert.serial.slice(0, 8)}…  expires ${new Date(info.cert.notAfter).toISOString()}  roles ${info.cert.roles.join(',') || '-'}`,
          `          CA ${info.cert.ca.slice(0, 12)}…  revocations ${info.cert.revocations}`]),
    // nobody reached yet (wrong mesh key? unreachable seeds?): say so before the table
    ...(info.join?.line === undefined ? [] : [`joining   ${info.join.line}`]),
    ''
  ]
  // a path over IPv6 says so (direct/v6); IPv4, what most paths are, shows as before
  const path = (p: PeerInfo): string => (p.via === undefined ? p.path : `relay:${p.via}`) + (p.family === 6 ? '/v6' : '')
  const header = wide
    ? ['NAME', 'IPV4', 'IPV6', 'STATUS', 'PATH', 'ENDPOINT', 'RTT', 'HANDSHAKE', 'RX', 'TX', 'NAT', 'GOSSIP']
    : ['NAME', 'IPV4', 'STATUS', 'PATH', 'RTT', 'HANDSHAKE']
  const rows = info.peers.map(p => wide
    ? [p.name, p.ipv4, p.ipv6, p.status, path(p), p.endpoint ?? '-', formatRtt(p.rttMs),
        p.handshakeAgeS === undefined ? 'never' : `${formatAge(p.handshakeAgeS)} ago`,
        bytes(p.rxBytes), bytes(p.txBytes), p.nat ?? '-', p.gossip ? 'yes' : 'no']
    : [cut(p.name, NAME_COLS), p.ipv4, p.status, cut(path(p), PATH_COLS), formatRtt(p.rttMs), formatAge(p.handshakeAgeS)])
  const widths = header.map((h, c) => Math.max(h.length, ...rows.map(r => r[c]!.length)))
  const fmt = (r: string[]): string => r.map((v, c) => v.padEnd(widths[c]!)).join('  ').trimEnd()
  lines.push(fmt(header), ...rows.map(fmt))
  if (info.peers.length === 0) lines.push('(no peers yet)')
  const groups = info.groups ?? []
  if (groups.length > 0 || info.exitNode !== undefined) {
    const gh = ['GROUP', 'ROUTES', 'ACTIVE', 'SINCE', 'MEMBERS']
    const gr = groups.map(g => [g.group + (g.group === info.exitNode ? ' (exit)' : ''), g.routes.join(','), g.active?.name ?? '-',
      g.active === undefined ? '-' : formatAge(Math.max(0, Math.round((Date.now() - g.active.since) / 1000))),
      g.members.map(m => `${m.name}(${m.priority})`).join(' ')])
    if (info.exitNode !== undefined && !groups.some(g => g.group === info.exitNode)) gr.push([`${info.exitNode} (exit)`, '-', '-', '-', 'no live gateway: default route unchanged'])
    const gw = gh.map((h, c) => Math.max(h.length, ...gr.map(r => r[c]!.length)))
    const gf = (r: string[]): string => r.map((v, c) => v.padEnd(gw[c]!)).join('  ').trimEnd()
    lines.push('', gf(gh), ...gr.map(gf))
  }
  const rej = Object.entries(info.rejected)
  if (rej.length > 0) lines.push('', ...wrapped('rejected records: ', rej.map(([k, v]) => `${k}=${v}`), W))
  return lines.join('\n')
}
