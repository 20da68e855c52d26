/**
 * Parser of `wg show <if> dump` (pure). Format, tab-separated:
 *   line 1: private-key  public-key  listen-port  fwmark
 *   peers:  public-key  preshared-key  endpoint  allowed-ips  latest-handshake  transfer-rx  transfer-tx  persistent-keepalive
 * "(none)" means unset; fwmark and keepalive may be "off".
 */
import { DumpParseError } from './errors.js'

export interface DumpInterface {
  /** base64; undefined when no key is set. Redacted (undefined) in `WireGuardConfigurator.show()`. */
  privateKey?: string
  /** base64; undefined when no key is set. */
  publicKey?: string
  /** 0 when not listening yet. */
  listenPort: number
  /** undefined = off. */
  fwmark?: number
}

export interface DumpPeer {
  publicKey: string
  /** Always undefined unless someone set a preshared key; wg prints it in the dump. */
  presharedKey?: string
  /** "ip:port" / "[ip6]:port"; undefined = none known yet. */
  endpoint?: string
  /** CIDRs as the kernel reports them; empty when "(none)". */
  allowedIps: string[]
  /** Unix seconds of the last handshake; 0 = never. */
  latestHandshake: number
  /** Bytes received. */
  transferRx: number
  /** Bytes sent. */
  transferTx: number
  /** Seconds; undefined = off. */
  persistentKeepalive?: number
}

export interface Dump {
  interface: DumpInterface
  peers: DumpPeer[]
}

const NONE = '(none)'

function opt (s: string): string | undefined {
  return s === NONE || s === '' ? undefined : s
}

function num (s: string, what: string, line: number): number {
  if (!/^(\d+|0x[0-9a-fA-F]+)$/.test(s)) throw new DumpParseError(`wg dump line ${line}: ${what} is not a number: ${JSON.stringify(s)}`)
  return Number(s)
}

function offOrNum (s: string, what: string, line: number): number | undefined {
  if (s === 'off') return undefined
  const n = num(s, what, line)
  return n === 0 ? undefined : n
}

/** Parses the whole dump. Throws {@link DumpParseError} on a missing interface line or a line with the wrong field count or bad numbers. */
export function parseDump (text: string): Dump {
  const lines = text.split('\n').map(l => l.replace(/\r$/, '')).filter(l => l.trim() !== '')
  const first = lines[0]
  if (first === undefined) throw new DumpParseError('wg dump is empty (no interface line)')
  const f = first.split('\t')
  if (f.length !== 4) throw new DumpParseError(`wg dump line 1: expected 4 tab-separated fields, got ${f.length}`)
  const iface: DumpInterface = { listenPort: num(f[2] ?? '', 'listen-port', 1) }
  const privateKey = opt(f[0] ?? '')
  const publicKey = opt(f[1] ?? '')
  const fwmark = offOrNum(f[3] ?? '', 'fwmark', 1)
  if (privateKey !== undefined) iface.privateKey = privateKey
  if (publicKey !== undefined) iface.publicKey = publicKey
  if (fwmark !== undefined) iface.fwmark = fwmark
  const peers = lines.slice(1).map((l, i) => parsePeerLine(l, i + 2))
  return { interface: iface, peers }
}

function parsePeerLine (l: string, line: number): DumpPeer {
  const f = l.split('\t')
  if (f.length !== 8) throw new DumpParseError(`wg dump line ${line}: expected 8 tab-separated fields, got ${f.length}`)
  const [pk = '', psk = '', ep = '', ips = '', hs = '', rx = '', tx = '', ka = ''] = f
  if (opt(pk) === undefined) throw new DumpParseError(`wg dump line ${line}: peer has no public key`)
  const peer: DumpPeer = {
    publicKey: pk,
    allowedIps: opt(ips) === undefined ? [] : ips.split(',').map(s => s.trim()).filter(s => s !== ''),
    latestHandshake: num(hs, 'latest-handshake', line),
    transferRx: num(rx, 'transfer-rx', line),
    transferTx: num(tx, 'transfer-tx', line)
  }
  const presharedKey = opt(psk)
  const endpoint = opt(ep)
  const keepalive = offOrNum(ka, 'persistent-keepalive', line)
  if (presharedKey !== undefined) peer.presharedKey = presharedKey
  if (endpoint !== undefined) peer.endpoint = endpoint
  if (keepalive !== undefined) peer.persistentKeepalive = keepalive
  return peer
}
