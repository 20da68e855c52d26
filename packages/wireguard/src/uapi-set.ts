/**
 * Encoder of UAPI `set` requests (pure), and the translation of the planner's `wg set` steps
 * into them. Line order follows wireguard-tools' `userspace_set_device`: device keys
 * (private_key, listen_port, fwmark) before the first `public_key`; per peer
 * `public_key`, then `remove=true` alone, or [update_only] [endpoint] [persistent_keepalive_interval]
 * [replace_allowed_ips=true + allowed_ip lines]; a blank line ends the request.
 */
import { decodeWireGuardKey } from './keys.js'
import { UapiEncodeError } from './errors.js'
import { formatCidr, formatEndpoint, parseCidrText, parseEndpoint } from './uapi-parse.js'
import type { Step } from './plan.js'

export interface UapiPeerChange {
  /** base64 */
  publicKey: string
  /** Remove the peer (other fields are then ignored). */
  remove?: boolean
  /** Do not create the peer if it does not exist. */
  updateOnly?: boolean
  /** IP literal "ip:port" / "[ip6]:port" (wireguard-go does not resolve names). */
  endpoint?: string
  /** Seconds; 0 = off. */
  persistentKeepalive?: number
  /** Replaces the peer's allowed-ips with exactly these ([] removes them all). */
  allowedIps?: string[]
}

export interface UapiSetRequest {
  /** base64. Encoded as hex into the request; never logged, never put in an error message. */
  privateKey?: string
  listenPort?: number
  /** 0 = off. */
  fwmark?: number
  peers?: UapiPeerChange[]
}

function hexKey (b64: string, what: string): string {
  try {
    return decodeWireGuardKey(b64).toString('hex')
  } catch {
    throw new UapiEncodeError(`${what} is not a 32-byte base64 WireGuard key`)
  }
}

function intIn (n: number | undefined, max: number, what: string): number | undefined {
  if (n === undefined) return undefined
  if (!Number.isInteger(n) || n < 0 || n > max) throw new UapiEncodeError(`${what} must be an integer 0..${max}, got ${String(n)}`)
  return n
}

/** The request text, "set=1\n...\n\n". Throws {@link UapiEncodeError} on invalid input (no line injection possible). */
export function encodeUapiSet (req: UapiSetRequest): string {
  const lines = ['set=1']
  if (req.privateKey !== undefined) lines.push(`private_key=${hexKey(req.privateKey, 'private key')}`)
  const port = intIn(req.listenPort, 65535, 'listen port')
  if (port !== undefined) lines.push(`listen_port=${port}`)
  const mark = intIn(req.fwmark, 0xffffffff, 'fwmark')
  if (mark !== undefined) lines.push(`fwmark=${mark}`)
  for (const p of req.peers ?? []) {
    lines.push(`public_key=${hexKey(p.publicKey, 'peer public key')}`)
    if (p.remove === true) {
      lines.push('remove=true')
      continue
    }
    if (p.updateOnly === true) lines.push('update_only=true')
    if (p.endpoint !== undefined) {
      const ep = parseEndpoint(p.endpoint)
      if (ep === undefined) throw new UapiEncodeError(`endpoint is not an IP literal ip:port or [ip6]:port: ${JSON.stringify(p.endpoint.slice(0, 80))}`)
      lines.push(`endpoint=${formatEndpoint(ep)}`)
    }
    const ka = intIn(p.persistentKeepalive, 65535, 'persistent keepalive')
    if (ka !== undefined) lines.push(`persistent_keepalive_interval=${ka}`)
    if (p.allowedIps !== undefined) {
      lines.push('replace_allowed_ips=true')
      for (const a of p.allowedIps) {
        const c = parseCidrText(a.trim())
        if (c === undefined) throw new UapiEncodeError(`allowed-ip is not ip/plen: ${JSON.stringify(a.slice(0, 80))}`)
        const bits = c.family === 4 ? 32 : 128
        const value = c.value & ~((1n << BigInt(bits - c.plen)) - 1n) // host bits cleared, as the device stores it
        lines.push(`allowed_ip=${formatCidr({ ...c, value })}`)
      }
    }
  }
  return lines.join('\n') + '\n\n'
}

/** A `wg set` step in UAPI form. The private key stays a file path here; the adapter reads it. */
export interface WgSetAsUapi {
  request: UapiSetRequest
  /** `private-key <file>` of the step: the adapter reads the key from it. */
  privateKeyFile?: string
}

/**
 * Translates a planned `['wg', 'set', <if>, ...]` step into a UAPI request. Returns undefined when the step
 * is not a `wg set` for `ifname` or uses something UAPI cannot express as is (a host-name endpoint,
 * `preshared-key`, `+`/`-` allowed-ips): run the command then.
 */
export function wgSetStepToUapi (step: Step, ifname: string): WgSetAsUapi | undefined {
  if (step[0] !== 'wg' || step[1] !== 'set' || step[2] !== ifname) return undefined
  const t = step.slice(3)
  const request: UapiSetRequest = {}
  let privateKeyFile: string | undefined
  const peers: UapiPeerChange[] = []
  let peer: UapiPeerChange | undefined
  const isUint = (s: string | undefined, max: number): s is string => s !== undefined && /^\d{1,10}$/.test(s) && Number(s) <= max
  for (let i = 0; i < t.length; i++) {
    const kw = t[i]
    const val = t[i + 1]
    if (peer === undefined && kw === 'listen-port' && isUint(val, 65535)) { request.listenPort = Number(val); i++; continue }
    if (peer === undefined && kw === 'fwmark' && val !== undefined && (val === 'off' || isUint(val, 0xffffffff))) { request.fwmark = val === 'off' ? 0 : Number(val); i++; continue }
    if (peer === undefined && kw === 'private-key' && val !== undefined && val !== '') { privateKeyFile = val; i++; continue }
    if (kw === 'peer' && val !== undefined) {
      try { decodeWireGuardKey(val) } catch { return undefined }
      peer = { publicKey: val }
      peers.push(peer)
      i++
      continue
    }
    if (peer === undefined) return undefined
    if (kw === 'remove') { peer.remove = true; continue }
    if (kw === 'endpoint' && val !== undefined && parseEndpoint(val) !== undefined) { peer.endpoint = val; i++; continue }
    if (kw === 'persistent-keepalive' && val !== undefined && (val === 'off' || isUint(val, 65535))) {
      peer.persistentKeepalive = val === 'off' ? 0 : Number(val)
      i++
      continue
    }
    if (kw === 'allowed-ips' && val !== undefined) {
      const ips = val.split(',').map(s => s.trim()).filter(s => s !== '')
      if (ips.some(s => parseCidrText(s) === undefined)) return undefined // includes '+'/'-' prefixes
      peer.allowedIps = ips
      i++
      continue
    }
    return undefined
  }
  if (peers.length > 0) request.peers = peers
  return privateKeyFile === undefined ? { request } : { request, privateKeyFile }
}
