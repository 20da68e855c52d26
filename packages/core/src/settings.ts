/**
 * Mesh-wide timing and addressing settings, with defaults and validation.
 * Every key has a named default constant so docs and CLI help quote the same value.
 */
import { InvalidConfigError } from './errors.js'
import { parseCidr, type Cidr } from './ip.js'
import { detectorTimings } from './failure-detector.js'

/** @default '100.96.0.0/16' — inside CGNAT space 100.64.0.0/10, away from Tailscale's 100.64/16 habits. */
export const DEFAULT_MESH_CIDR = '100.96.0.0/16'
/** @default 51820 */
export const DEFAULT_WG_PORT = 51820
/** @default 51821 — TCP, libp2p gossip. */
export const DEFAULT_GOSSIP_PORT = 51821
/** @default 'wgmesh0' */
export const DEFAULT_INTERFACE = 'wgmesh0'
/** @default 1000 — the failure detector's probe interval (each node pings its ring successors this often). */
export const DEFAULT_HEARTBEAT_MS = 1000
/** @default 3000 — a dead node (agent or host gone, or its tunnel) is marked dead everywhere within this (its peer stays configured). */
export const DEFAULT_DEAD_AFTER_MS = 3000
/** @default 3_600_000 — a dead node is forgotten (peer removed) after this long. */
export const DEFAULT_EXPIRE_AFTER_MS = 3_600_000
/** @default 300_000 — records issued further than this from our clock are rejected. */
export const DEFAULT_MAX_CLOCK_SKEW_MS = 300_000
/**
 * @default 25 — WireGuard persistent keepalive on a working direct path, seconds, sent only by
 * an end behind a NAT (it holds the NAT mapping open; a public end sends none). It is also the
 * heartbeat of such a path: ~2.5 intervals of silence means the direct path is dead and the
 * peer moves to a relay (while punching, 1 s is used).
 */
export const DEFAULT_KEEPALIVE_S = 25
/** @default 1420 */
export const DEFAULT_MTU = 1420
/** @default 4096 — bytes of a sealed record on the wire. */
export const MAX_SEALED_RECORD_BYTES = 4096
/** @default 4096 — members (not left) a table holds, the node itself included; a new one beyond is refused (`table-full`). */
export const DEFAULT_MAX_MEMBERS = 4096
/** @default 1024 — departure records (tombstones) a table holds; see membership.ts for what makes room. */
export const DEFAULT_MAX_DEPARTED = 1024
/** @default 600 — never-seen nodeIds taken per minute, after a burst of `DEFAULT_NEW_MEMBERS_BURST` (`new-member-rate`). */
export const DEFAULT_NEW_MEMBERS_PER_MINUTE = 600
/** @default 1024 — never-seen nodeIds taken at once (a joiner learning a mesh takes this many at its first sync). */
export const DEFAULT_NEW_MEMBERS_BURST = 1024
/**
 * @default 10_000 — after this node first hears another member, for this long, its own freshly
 * claimed address gives way to a holder it had not heard of (a joiner learning the table finds
 * its address taken). Never after: a held address is never handed to a newer claim.
 */
export const DEFAULT_CLAIM_SETTLE_MS = 10_000

export interface MeshSettings {
  cidr4: Cidr
  heartbeatMs: number
  deadAfterMs: number
  /** Suspicion timeout with one accuser, and with `observers` or more (Lifeguard). */
  suspicionMaxMs: number
  suspicionMinMs: number
  /** Ring successors each node watches (the failure detector's observers). */
  observers: number
  /** A record is republished unchanged this often (a repair beside sync; well below expiry). */
  refreshMs: number
  expireAfterMs: number
  maxClockSkewMs: number
  keepaliveS: number
  /** Members (not left) held at most, self included. */
  maxMembers: number
  /** Departure records (tombstones) held at most. */
  maxDeparted: number
  /** Never-seen nodeIds taken per minute, and at once. */
  newMembersPerMinute: number
  newMembersBurst: number
  /** How long after its first contact a node's own fresh address gives way to an unheard-of holder. */
  claimSettleMs: number
}

export interface MeshSettingsInit {
  cidr4?: string
  heartbeatMs?: number
  deadAfterMs?: number
  expireAfterMs?: number
  maxClockSkewMs?: number
  keepaliveS?: number
  maxMembers?: number
  maxDeparted?: number
  newMembersPerMinute?: number
  newMembersBurst?: number
  claimSettleMs?: number
}

function positiveInt (name: string, v: number, min: number, max: number): number {
  if (!Number.isInteger(v) || v < min || v > max) {
    throw new InvalidConfigError(`${name} must be an integer in ${min}..${max}, got ${String(v)}`)
  }
  return v
}

export function meshSettings (init: MeshSettingsInit = {}): MeshSettings {
  let cidr4: Cidr
  try {
    cidr4 = parseCidr(init.cidr4 ?? DEFAULT_MESH_CIDR)
  } catch (err) {
    throw new InvalidConfigError(`mesh CIDR: ${(err as Error).message}`)
  }
  if (cidr4.family !== 4) throw new InvalidConfigError('mesh CIDR must be IPv4 (IPv6 comes from the mesh key)')
  if (cidr4.prefix > 29) throw new InvalidConfigError('mesh CIDR must be /29 or larger')
  const heartbeatMs = positiveInt('heartbeat', init.heartbeatMs ?? DEFAULT_HEARTBEAT_MS, 50, 600_000)
  const deadAfterMs = positiveInt('dead-after', init.deadAfterMs ?? DEFAULT_DEAD_AFTER_MS, 100, 86_400_000)
  if (deadAfterMs < heartbeatMs * 2) {
    throw new InvalidConfigError(`dead-after (${deadAfterMs} ms) must be at least twice the heartbeat (${heartbeatMs} ms)`)
  }
  const expireAfterMs = positiveInt('expire-after', init.expireAfterMs ?? DEFAULT_EXPIRE_AFTER_MS, 1000, 365 * 86_400_000)
  if (expireAfterMs < deadAfterMs) throw new InvalidConfigError('expire-after must not be shorter than dead-after')
  const t = detectorTimings(heartbeatMs, deadAfterMs)
  return {
    cidr4,
    heartbeatMs,
    deadAfterMs,
    suspicionMaxMs: t.suspicionMaxMs,
    suspicionMinMs: t.suspicionMinMs,
    observers: t.detector.observers,
    refreshMs: Math.max(1000, Math.min(Math.floor(expireAfterMs / 3), 1_200_000)),
    expireAfterMs,
    maxClockSkewMs: positiveInt('max-clock-skew', init.maxClockSkewMs ?? DEFAULT_MAX_CLOCK_SKEW_MS, 1000, 86_400_000),
    keepaliveS: positiveInt('keepalive', init.keepaliveS ?? DEFAULT_KEEPALIVE_S, 0, 65535),
    maxMembers: positiveInt('max-members', init.maxMembers ?? DEFAULT_MAX_MEMBERS, 2, 65_536),
    maxDeparted: positiveInt('max-departed', init.maxDeparted ?? DEFAULT_MAX_DEPARTED, 1, 65_536),
    newMembersPerMinute: positiveInt('new-members-per-minute', init.newMembersPerMinute ?? DEFAULT_NEW_MEMBERS_PER_MINUTE, 1, 1_000_000),
    newMembersBurst: positiveInt('new-members-burst', init.newMembersBurst ?? DEFAULT_NEW_MEMBERS_BURST, 1, 65_536),
    claimSettleMs: positiveInt('claim-settle', init.claimSettleMs ?? DEFAULT_CLAIM_SETTLE_MS, 0, 86_400_000)
  }
}
