/**
 * Pure transitions of the persisted state (state.json): what a restart restores, what is
 * written back, and the strict check of what was read (a state file is checked like a record:
 * exact types, bounded sizes, no unknown fields, addresses inside the mesh ranges).
 */
import {
  allocate, cidrContains, cidrSize, formatCidr, parseIP, tryParseCidr,
  type Cidr, type Membership
} from '@wgmesh/core'
import type { KnownMember, PersistedState } from './state-store.js'
import type { SelfAddressing } from './self-record.js'

/** Largest state.json read; a bigger file is not ours. */
export const MAX_STATE_BYTES = 4 * 1024 * 1024
/** Bounds of what a state file may hold (a record's own bounds where they exist). */
export const STATE_LIMITS = { known: 65_536, gossipAddrs: 16, chars: 256, ipSalt: 1_000_000 } as const

/** The ULA range (RFC 4193, L = 1) every mesh's IPv6 prefix lies in. */
const ULA: Cidr = tryParseCidr('fd00::/8') as Cidr
const FIELDS = new Set(['version', 'seq', 'ipv4', 'ipv6', 'ipSalt', 'ipSince', 'cidr4', 'known', 'left'])
const KNOWN_FIELDS = new Set(['nodeId', 'name', 'gossipAddrs'])

const isUint = (v: unknown, max = Number.MAX_SAFE_INTEGER): v is number => Number.isSafeInteger(v) && (v as number) >= 0 && (v as number) <= max
const isStr = (v: unknown): v is string => typeof v === 'string' && v.length > 0 && v.length <= STATE_LIMITS.chars

/** A host address of `c` (not its network or broadcast address, for IPv4 ranges that have them). */
function hostOf (c: Cidr, ip: string): boolean {
  const p = parseIP(ip)
  if (p === undefined || !cidrContains(c, p.family, p.value)) return false
  if (c.family === 4 && cidrSize(c) > 2n) return p.value !== c.base && p.value !== c.base + cidrSize(c) - 1n
  return true
}

function knownMember (k: unknown): KnownMember | undefined {
  if (typeof k !== 'object' || k === null || Array.isArray(k)) return undefined
  const m = k as Record<string, unknown>
  if (Object.keys(m).some(f => !KNOWN_FIELDS.has(f))) return undefined
  if (!isStr(m.nodeId) || typeof m.name !== 'string' || m.name.length > STATE_LIMITS.chars) return undefined
  if (!Array.isArray(m.gossipAddrs) || m.gossipAddrs.length > STATE_LIMITS.gossipAddrs || !m.gossipAddrs.every(isStr)) return undefined
  return { nodeId: m.nodeId, name: m.name, gossipAddrs: [...m.gossipAddrs as string[]] }
}

/**
 * The state held by a parsed state.json, or why it is unusable. Strict: unknown fields, wrong
 * types, out-of-range numbers, an overlay IPv4 outside the CIDR saved with it (or not a host
 * address of it), an IPv6 outside the ULA range fd00::/8, or addresses without their salt and
 * time are all refused. Known members of a bad shape are left out (the rest is kept): they are
 * only a re-dial list. Pure.
 */
export function parsePersisted (x: unknown): { ok: true, state: PersistedState, droppedKnown: number } | { ok: false, why: string } {
  if (typeof x !== 'object' || x === null || Array.isArray(x)) return { ok: false, why: 'not an object' }
  const s = x as Record<string, unknown>
  const unknown = Object.keys(s).filter(f => !FIELDS.has(f))
  if (unknown.length > 0) return { ok: false, why: `unknown field ${JSON.stringify(unknown[0])}` }
  if (s.version !== 1) return { ok: false, why: 'version is not 1' }
  if (!isUint(s.seq)) return { ok: false, why: 'seq is not a non-negative integer' }
  if (!Array.isArray(s.known) || s.known.length > STATE_LIMITS.known) return { ok: false, why: `known is not a list of at most ${STATE_LIMITS.known} members` }
  if (s.left !== undefined && typeof s.left !== 'boolean') return { ok: false, why: 'left is not a boolean' }
  const addressed = ['ipv4', 'ipv6', 'ipSalt', 'ipSince', 'cidr4'].filter(f => s[f] !== undefined)
  if (addressed.length !== 0 && addressed.length !== 5) return { ok: false, why: 'ipv4, ipv6, ipSalt, ipSince and cidr4 go together' }
  const state: PersistedState = { version: 1, seq: s.seq, known: [] }
  if (addressed.length === 5) {
    const cidr = typeof s.cidr4 === 'string' ? tryParseCidr(s.cidr4) : undefined
    if (cidr === undefined || cidr.family !== 4 || formatCidr(cidr) !== s.cidr4) return { ok: false, why: 'cidr4 is not an IPv4 CIDR' }
    if (typeof s.ipv4 !== 'string' || !hostOf(cidr, s.ipv4)) return { ok: false, why: `ipv4 is not an address of ${s.cidr4}` }
    if (typeof s.ipv6 !== 'string' || !hostOf(ULA, s.ipv6)) return { ok: false, why: 'ipv6 is not a ULA address (fd00::/8)' }
    if (!isUint(s.ipSalt, STATE_LIMITS.ipSalt)) return { ok: false, why: 'ipSalt out of range' }
    if (!isUint(s.ipSince)) return { ok: false, why: 'ipSince is not a time' }
    Object.assign(state, { ipv4: s.ipv4, ipv6: s.ipv6, ipSalt: s.ipSalt, ipSince: s.ipSince, cidr4: s.cidr4 })
  }
  if (s.left !== undefined) state.left = s.left
  for (const k of s.known) {
    const m = knownMember(k)
    if (m !== undefined) state.known.push(m)
  }
  return { ok: true, state, droppedKnown: s.known.length - state.known.length }
}


/**
 * Keep the saved addresses (same keys, same IPs after a restart) unless the mesh range changed
 * or they are not ours to take: the IPv4 must be a host address of the mesh range and the IPv6
 * inside the mesh's ULA prefix (a state file naming 8.8.8.8 gets a fresh allocation).
 */
export function restoreAddressing (p: PersistedState, cidr4: Cidr, ula: Cidr, wgPublicKey: string, now: number): SelfAddressing {
  if (p.ipv4 !== undefined && p.ipv6 !== undefined && p.cidr4 === formatCidr(cidr4) && p.ipSalt !== undefined && p.ipSince !== undefined &&
    hostOf(cidr4, p.ipv4) && hostOf(ula, p.ipv6) && isUint(p.ipSalt, STATE_LIMITS.ipSalt) && isUint(p.ipSince)) {
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
