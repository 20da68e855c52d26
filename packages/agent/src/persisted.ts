/**
 * Pure transitions of the persisted state (state.json): what a restart restores, and what
 * is written back.
 */
import { allocate, formatCidr, type Cidr, type Membership } from '@wgmesh/core'
import type { PersistedState } from './state-store.js'
import type { SelfAddressing } from './self-record.js'

/** Keep the saved addresses (same keys, same IPs after a restart) unless the mesh range changed. */
export function restoreAddressing (p: PersistedState, cidr4: Cidr, ula: Cidr, wgPublicKey: string, now: number): SelfAddressing {
  if (p.ipv4 !== undefined && p.ipv6 !== undefined && p.cidr4 === formatCidr(cidr4) && p.ipSalt !== undefined && p.ipSince !== undefined) {
    return { ipv4: p.ipv4, ipv6: p.ipv6, ipSalt: p.ipSalt, ipSince: p.ipSince }
  }
  const a = allocate(cidr4, ula, wgPublicKey, new Set())
  return { ipv4: a.ipv4, ipv6: a.ipv6, ipSalt: a.salt, ipSince: now }
}

/** The state to save now: a seq floor above anything published before the next save, our addresses, the members to re-dial. */
export function nextPersisted (prev: PersistedState, seq: number, addressing: SelfAddressing, cidr4: Cidr, table: Membership | undefined, selfId: string | undefined): PersistedState {
  const known = table?.active()
    .filter(m => m.record.nodeId !== selfId)
    .map(m => ({ nodeId: m.record.nodeId, name: m.record.name, gossipAddrs: m.record.gossipAddrs })) ?? []
  return {
    ...prev,
    version: 1,
    seq: Math.max(prev.seq, seq + 120_000),
    ...addressing,
    cidr4: formatCidr(cidr4),
    // an empty table (just started, or everyone expired) does not erase whom to re-dial
    known: known.length > 0 || prev.left === true ? known : prev.known
  }
}
