/**
 * Per-peer path state: punch → direct, or → relay when no direct path forms; direct → relay
 * when a direct path dies; relay → punching again when the relay goes away or the pair's
 * situation changes (either end's NAT type, or the peer's best candidate), for a pair that is
 * not hopeless (both symmetric). Pure: time and WireGuard's counters come in, the
 * endpoint/keepalive to set and the path come out.
 *
 * A relayed peer's WireGuard entry points at the relay's port for the pair (the relay copies
 * ciphertext), so WireGuard's counters then describe the relayed path: no background punching
 * runs while relayed (one peer entry has one endpoint), and a relayed pair tries direct again
 * only when something changed that could make it work.
 *
 * Punching is done by WireGuard itself (it owns the UDP port): both ends learn each other's
 * record through gossip at about the same moment, set the peer's current candidate endpoint
 * with a 1 s persistent keepalive, and step through the candidates until a handshake shows.
 * A direct path is alive while WireGuard receives from the peer: both ends keep a persistent
 * keepalive, so silence longer than a few keepalive intervals means the path is gone.
 *
 * Family fallback (dual-stack pairs): a direct path over which the failure detector's pings go
 * unanswered and nothing arrives moves to the peer's first candidate of the other family at
 * once, still direct — the session stays, WireGuard sends to the new endpoint and the peer
 * roams to where the packets come from. Between two public ends this is the only way a dead
 * direct path is noticed (neither sends keepalives). Once per episode of unanswered probes.
 */
import type { PathKind } from './types.js'
import { parseEndpoint } from './ip.js'
import { isGlobalV6 } from './underlay.js'

export interface PathPolicy {
  /**
   * Time on each candidate. @default 5000 — WireGuard sends at most one handshake initiation
   * per 5 s (REKEY_TIMEOUT), so a faster rotation would skip candidates unheard.
   */
  punchStepMs: number
  /** Punching this long without a handshake → relay (if one is available). @default 3000 */
  relayAfterMs: number
  /** Keepalive while punching, or relayed until the relayed session carries packets, seconds. @default 1 */
  probeKeepaliveS: number
  /** Keepalive on a working direct path, seconds (the `--keepalive` setting). */
  steadyKeepaliveS: number
  /** No packet from the peer for this long → the direct path is dead. */
  pathDeadMs: number
  /**
   * Direct, the failure detector's pings to the peer unanswered, and WireGuard's receive
   * counter unchanged for this long → try the peer's other family. @default 400
   */
  fallbackQuietMs: number
}

export function pathPolicy (steadyKeepaliveS: number, over: Partial<PathPolicy> = {}): PathPolicy {
  const k = Math.max(1, steadyKeepaliveS)
  return {
    punchStepMs: 5000,
    relayAfterMs: 3000,
    probeKeepaliveS: 1,
    steadyKeepaliveS: k,
    pathDeadMs: Math.round(k * 2500 + 1000),
    fallbackQuietMs: 400,
    ...over
  }
}

export interface PeerCounters {
  /** Unix seconds of the latest handshake; 0 = never. */
  latestHandshake: number
  rxBytes: number
}

export type PathPhase = 'punching' | 'direct' | 'relay'

export interface PathState {
  phase: PathPhase
  /** Candidate being tried (index into the candidate list given on each step). */
  index: number
  /** The endpoint last chosen (kept while direct: WireGuard may roam away from it). */
  endpoint?: string
  /** The best candidate when last stepped: a new best one is tried at once. */
  best?: string
  stepAt: number
  punchStart: number
  lastRx: number
  lastRxAt: number
  /** When the current phase began. */
  since: number
  /** Both ends' NAT types when last stepped ("self/peer"): a change ends a relayed phase. */
  natKey?: string
  /** Relayed, and the relayed session carries packets (a handshake, and traffic since). */
  carrying?: boolean
  /**
   * Punching with a relay port known: the rx counter at the last step that found WireGuard's
   * endpoint off the relay's port (undefined after a step that found it on it).
   */
  offRelayRx?: number
  /** Direct, probes unanswered: the episode (its start), and the rx counter and when it last moved. */
  quiet?: { since: number, rx: number, at: number }
  /** Direct: the endpoint a family fallback left in this episode of unanswered probes. */
  fellBackFrom?: string
  /** WireGuard's endpoint for the peer at the last step (`currentEndpoint`): what {@link pathKind} names. */
  wgEndpoint?: string
}

export interface PathInput {
  now: number
  candidates: string[]
  counters: PeerCounters | undefined
  /** A relay both ends would choose exists. */
  relayAvailable: boolean
  /** Both ends are behind symmetric NATs: no direct path can form, relay at once. */
  hopeless: boolean
  /**
   * This end holds a NAT mapping (it is not public, or not yet classified): it sends the steady
   * keepalive on a direct path. A public end sends none. @default true
   */
  holdsMapping?: boolean
  /**
   * The peer sends keepalives (it is not public), so silence from it means the direct path died.
   * Between two public ends an idle tunnel is silent and stays direct. @default true
   */
  peerSendsKeepalive?: boolean
  /** Both ends' NAT types ("self/peer"): a relayed pair whose NAT types change tries direct again. */
  natKey?: string
  /**
   * WireGuard's endpoint for the peer is the relay's port for the pair: packets come through
   * the relay (WireGuard roams to where authenticated packets come from). Such traffic never
   * counts as a direct path, and a direct path that roamed there means the peer relays.
   * Undefined when no relay port is known for the pair.
   */
  endpointIsRelay?: boolean
  /**
   * The failure detector's direct pings to the peer have gone unanswered since this time
   * (FailureDetector.unanswered); undefined while they are answered, or not sent.
   */
  unansweredSince?: number
  /** WireGuard's endpoint for the peer now (it roams to where packets come from). */
  currentEndpoint?: string
}

export interface PathDecision {
  state: PathState
  /** Endpoint to configure (undefined: none known). */
  endpoint?: string
  keepaliveS: number
  /** Route this peer's addresses through the relay. */
  relayed: boolean
}

const HANDSHAKE_FRESH_S = 180 // WireGuard rejects sessions older than this

function fresh (c: PeerCounters | undefined, now: number): boolean {
  return c !== undefined && c.latestHandshake > 0 && now / 1000 - c.latestHandshake < HANDSHAKE_FRESH_S
}

export function initialPathState (now: number, counters: PeerCounters | undefined): PathState {
  // an agent restarted under live tunnels: keep what works instead of punching over it
  if (fresh(counters, now)) return { phase: 'direct', index: 0, stepAt: now, punchStart: now, lastRx: counters!.rxBytes, lastRxAt: now, since: now }
  return { phase: 'punching', index: 0, stepAt: now, punchStart: now, lastRx: counters?.rxBytes ?? 0, lastRxAt: -Infinity, since: now }
}

export function stepPath (prev: PathState, input: PathInput, policy: PathPolicy): PathDecision {
  const { now, candidates, counters } = input
  const s: PathState = { ...prev }
  if (counters !== undefined && counters.rxBytes !== s.lastRx) {
    // a counter that went down means the peer entry was re-created: count it as news too
    s.lastRx = counters.rxBytes
    s.lastRxAt = now
  }
  const alive = fresh(counters, now) && now - s.lastRxAt < policy.pathDeadMs
  const heardSincePunch = s.lastRxAt >= s.punchStart

  const viaRelay = input.endpointIsRelay === true
  // with a relay port known, packets still arriving through the relay roam WireGuard back to
  // it; a direct path shows as traffic between two steps that both found the endpoint off the
  // relay (a relayed packet in between would have moved it there)
  const directEvidence = input.endpointIsRelay === undefined
    ? heardSincePunch
    : !viaRelay && prev.offRelayRx !== undefined && counters !== undefined && counters.rxBytes > prev.offRelayRx && heardSincePunch
  s.offRelayRx = input.endpointIsRelay === undefined || viaRelay ? undefined : counters?.rxBytes
  switch (s.phase) {
    case 'direct':
      // public ↔ public: no keepalives either way, so silence says nothing; no relay applies anyway
      if ((!alive && input.peerSendsKeepalive !== false) || (viaRelay && input.relayAvailable)) {
        s.punchStart = now
        s.stepAt = now
        s.since = now
        s.phase = input.relayAvailable ? 'relay' : 'punching'
      }
      break
    case 'punching':
      if (alive && directEvidence) {
        s.phase = 'direct'
        s.since = now
      } else if (input.relayAvailable && (input.hopeless || now - s.punchStart >= policy.relayAfterMs)) {
        s.phase = 'relay'
        s.since = now
      }
      break
    case 'relay': {
      const changed = (input.natKey !== undefined && s.natKey !== undefined && input.natKey !== s.natKey) ||
        (candidates.length > 0 && s.best !== undefined && candidates[0] !== s.best)
      if (!input.relayAvailable || (changed && !input.hopeless)) {
        s.phase = 'punching'
        s.since = now
        s.punchStart = now
        s.stepAt = now
        s.index = 0
        s.endpoint = undefined
      }
      break
    }
  }
  if (input.natKey !== undefined) s.natKey = input.natKey
  s.wgEndpoint = input.currentEndpoint
  familyFallback(s, input, policy)

  if (s.phase === 'punching' && candidates.length > 0) {
    const step = policy.punchStepMs
    if (candidates[0] !== s.best) {
      // a better candidate appeared (e.g. the peer learnt its public address): try it now
      s.index = 0
      s.stepAt = now
      s.endpoint = undefined
    }
    s.best = candidates[0]
    if (s.endpoint === undefined || !candidates.includes(s.endpoint)) {
      // the candidate being tried vanished (e.g. a `seen` claim that keeps changing): its slot
      // still ends on time, so a flapping candidate cannot hold the rotation
      if (s.endpoint !== undefined && now - s.stepAt >= step) { s.index++; s.stepAt = now }
      s.index = s.index % candidates.length
    } else if (now - s.stepAt >= step) {
      s.index = (candidates.indexOf(s.endpoint) + 1) % candidates.length
      s.stepAt = now
    } else {
      s.index = candidates.indexOf(s.endpoint)
    }
    s.endpoint = candidates[s.index]
  } else if (s.endpoint === undefined) {
    s.endpoint = candidates[0]
  }
  if (s.phase === 'relay' && candidates.length > 0) s.best = candidates[0]
  // relayed: 1 s keepalives until the relayed session carries packets, then the steady ones
  // (both ends are behind NATs, each holds its mapping to the relay)
  const relayUp = s.phase === 'relay' && alive && s.lastRxAt >= s.since
  s.carrying = relayUp
  return {
    state: s,
    endpoint: s.endpoint,
    keepaliveS: s.phase === 'direct' ? (input.holdsMapping === false ? 0 : policy.steadyKeepaliveS) : relayUp ? policy.steadyKeepaliveS : policy.probeKeepaliveS,
    relayed: s.phase === 'relay'
  }
}

/**
 * Direct, the failure detector's pings unanswered and nothing received for `fallbackQuietMs`
 * (measured between steps): point the peer at its first candidate of the other family. Once
 * per episode; an answered probe ends it. A dead agent on a live tunnel also leaves pings
 * unanswered, but moving such a peer to another family that works costs nothing.
 */
function familyFallback (s: PathState, input: PathInput, policy: PathPolicy): void {
  const since = input.unansweredSince
  const rx = input.counters?.rxBytes
  if (since === undefined || s.phase !== 'direct' || rx === undefined) {
    s.quiet = undefined
    if (since === undefined) s.fellBackFrom = undefined
    return
  }
  if (s.quiet?.since !== since || s.quiet.rx !== rx) {
    s.quiet = { since, rx, at: input.now } // a new episode, or the peer still sends: watch from here
    return
  }
  if (s.fellBackFrom !== undefined || input.now - s.quiet.at < policy.fallbackQuietMs) return
  const current = input.currentEndpoint ?? s.endpoint
  const family = current === undefined ? undefined : parseEndpoint(current)?.family
  const other = family === undefined ? undefined : input.candidates.find(c => parseEndpoint(c)?.family !== family)
  if (other === undefined) return
  s.fellBackFrom = current
  s.endpoint = other
  s.best = input.candidates[0]
}

/** A relayed pair whose relayed session does not carry packets this long is shown down. */
export const RELAY_SETUP_MS = 10_000

/**
 * What `wgmesh info` shows. 'relay' only once the relayed session carries packets: until then
 * it is still being set up ('punching'), and after RELAY_SETUP_MS without packets it is 'down'.
 * A direct path is 'lan' when `onLan` (the caller's: the endpoint is on a local subnet and we
 * are behind a NAT) unless it runs to a global IPv6 address: that is the peer's own public
 * address — no NAT maps it, at most a stateful firewall guards it —, so two such hosts sharing
 * a /64 are public hosts sharing a subnet: 'direct'.
 */
export function pathKind (s: PathState | undefined, onLan: boolean, now: number, policy: PathPolicy): PathKind {
  if (s === undefined) return 'punching'
  if (s.phase === 'direct') return onLan && !toGlobalV6(s.wgEndpoint ?? s.endpoint) ? 'lan' : 'direct'
  if (s.phase === 'relay') return s.carrying === true ? 'relay' : now - s.since < RELAY_SETUP_MS ? 'punching' : 'down'
  return now - s.punchStart < policy.relayAfterMs ? 'punching' : 'down'
}

function toGlobalV6 (endpoint: string | undefined): boolean {
  const e = endpoint === undefined ? undefined : parseEndpoint(endpoint)
  return e?.family === 6 && isGlobalV6(e.host)
}
