/**
 * In-memory twins of the UAPI socket and the native link reader, on the same simulated host as a
 * {@link FakeWireGuardRunner}: only its 'userspace' interfaces answer over UAPI (like wireguard-go's
 * socket), kernel ones do not. Requests are parsed and applied the way wireguard-go does (line by line,
 * stopping at the first bad line with errno=-22), so the encoder and parser are exercised end to end.
 */
import { canonicalCidr } from './cidr.js'
import { UapiConnectionError } from './errors.js'
import type { FakeInterface, FakeWireGuardRunner } from './fake-runner.js'
import type { LinkRead, LinkReader } from './link-reader.js'
import { publicKeyFromPrivateKey } from './keys.js'
import { formatEndpoint, keyHexToBase64, parseCidrText, parseEndpoint } from './uapi-parse.js'
import type { UapiTransport } from './uapi.js'

const EINVAL = -22
const hex = (b64: string): string => Buffer.from(b64, 'base64').toString('hex')

export class FakeUapi implements UapiTransport {
  /** Every request, private_key values redacted ("get=1", "set=1 listen_port=51820 public_key=..."). */
  readonly requests: string[] = []
  /** Injected failures: return an errno to refuse that request before applying it. */
  failWhen: ((ifname: string, body: string) => number | undefined) | undefined
  private readonly host: FakeWireGuardRunner

  constructor (host: FakeWireGuardRunner, init: { failWhen?: (ifname: string, body: string) => number | undefined } = {}) {
    this.host = host
    this.failWhen = init.failWhen
  }

  /** Returns the recorded requests and clears the record. */
  takeRequests (): string[] {
    return this.requests.splice(0, this.requests.length)
  }

  async available (ifname: string): Promise<boolean> {
    return this.host.interfaces.get(ifname)?.kind === 'userspace'
  }

  async request (ifname: string, body: string): Promise<string> {
    const iface = this.host.interfaces.get(ifname)
    if (iface?.kind !== 'userspace') throw new UapiConnectionError(ifname, 'ENOENT', `no UAPI socket for ${ifname} (FakeUapi)`)
    this.requests.push(body.replace(/private_key=[0-9a-f]*/g, 'private_key=(redacted)').trim().split('\n').join(' '))
    const injected = this.failWhen?.(ifname, body)
    if (injected !== undefined) return `errno=${injected}\n\n`
    if (body === 'get=1\n\n') return this.get(iface)
    if (body.startsWith('set=1\n') && body.endsWith('\n\n')) return `errno=${this.set(iface, body.slice(6, -1))}\n\n`
    throw new UapiConnectionError(ifname, 'ECLOSED', 'invalid UAPI operation: the device closed the connection (FakeUapi)')
  }

  private get (i: FakeInterface): string {
    const l: string[] = []
    if (i.privateKey !== undefined) l.push(`private_key=${hex(i.privateKey)}`)
    if (i.listenPort !== 0) l.push(`listen_port=${i.listenPort}`)
    if (i.fwmark !== undefined) l.push(`fwmark=${i.fwmark}`)
    for (const p of i.peers.values()) {
      l.push(`public_key=${hex(p.publicKey)}`, `preshared_key=${p.presharedKey === undefined ? '0'.repeat(64) : hex(p.presharedKey)}`, 'protocol_version=1')
      if (p.endpoint !== undefined) l.push(`endpoint=${p.endpoint}`)
      l.push(`last_handshake_time_sec=${p.latestHandshake}`, 'last_handshake_time_nsec=0', `tx_bytes=${p.transferTx}`, `rx_bytes=${p.transferRx}`,
        `persistent_keepalive_interval=${p.persistentKeepalive ?? 0}`)
      for (const a of p.allowedIps) l.push(`allowed_ip=${a}`)
    }
    l.push('errno=0', '', '')
    return l.join('\n')
  }

  /** Applies line by line like wireguard-go; returns the errno. */
  private set (i: FakeInterface, text: string): number {
    let pk: string | undefined
    let dummy = false
    let created = false
    for (const line of text.split('\n')) {
      if (line === '') return 0
      const eq = line.indexOf('=')
      if (eq === -1) return EINVAL
      const key = line.slice(0, eq)
      const value = line.slice(eq + 1)
      if (key === 'public_key') {
        const k = keyHexToBase64(value)
        if (k === undefined) return EINVAL
        pk = k
        dummy = k === i.publicKey
        created = !dummy && !i.peers.has(k)
        if (created) i.peers.set(k, { publicKey: k, allowedIps: [], latestHandshake: 0, transferRx: 0, transferTx: 0 })
        continue
      }
      if (pk === undefined) {
        if (key === 'private_key') {
          const k = keyHexToBase64(value)
          if (k === undefined) return EINVAL
          if (/^0+$/.test(value)) { delete i.privateKey; delete i.publicKey } else { i.privateKey = k; i.publicKey = publicKeyFromPrivateKey(k) }
        } else if (key === 'listen_port' && /^\d{1,5}$/.test(value) && Number(value) < 65536) i.listenPort = Number(value)
        else if (key === 'fwmark' && /^\d{1,10}$/.test(value) && Number(value) <= 0xffffffff) { if (Number(value) === 0) delete i.fwmark; else i.fwmark = Number(value) }
        else if (key === 'replace_peers' && value === 'true') i.peers.clear()
        else return EINVAL
        continue
      }
      const p = dummy ? undefined : i.peers.get(pk)
      if (key === 'update_only' && value === 'true') {
        if (created && !dummy) i.peers.delete(pk) // created by this public_key line: undo that
        dummy = true
      } else if (key === 'remove' && value === 'true') {
        if (!dummy) i.peers.delete(pk)
        dummy = true
      } else if (key === 'endpoint') {
        const ep = parseEndpoint(value)
        if (ep === undefined) return EINVAL
        if (p !== undefined) p.endpoint = formatEndpoint(ep)
      } else if (key === 'persistent_keepalive_interval' && /^\d{1,5}$/.test(value) && Number(value) < 65536) {
        if (p !== undefined) { if (Number(value) === 0) delete p.persistentKeepalive; else p.persistentKeepalive = Number(value) }
      } else if (key === 'replace_allowed_ips' && value === 'true') {
        if (p !== undefined) p.allowedIps = []
      } else if (key === 'allowed_ip') {
        const remove = value.startsWith('-')
        const c = parseCidrText(remove ? value.slice(1) : value)
        if (c === undefined || !value.includes('/')) return EINVAL
        const cidr = canonicalCidr(remove ? value.slice(1) : value, true)
        if (p === undefined) continue
        if (remove) { p.allowedIps = p.allowedIps.filter(a => a !== cidr); continue }
        for (const other of i.peers.values()) other.allowedIps = other.allowedIps.filter(a => a !== cidr)
        p.allowedIps.push(cidr)
      } else if (key === 'preshared_key') {
        const k = keyHexToBase64(value)
        if (k === undefined) return EINVAL
        if (p !== undefined) { if (/^0+$/.test(value)) delete p.presharedKey; else p.presharedKey = k }
      } else if (!(key === 'protocol_version' && value === '1')) {
        return EINVAL
      }
    }
    return 0
  }
}

/** A {@link LinkReader} on the fake host; like the real one, it gives no addresses for a link that is down. */
export class FakeLinkReader implements LinkReader {
  /** Interfaces read, in order. */
  readonly reads: string[] = []
  private readonly host: FakeWireGuardRunner

  constructor (host: FakeWireGuardRunner) {
    this.host = host
  }

  async read (ifname: string): Promise<LinkRead> {
    this.reads.push(ifname)
    const i = this.host.interfaces.get(ifname)
    if (i === undefined) return { state: 'missing' }
    const flags = i.up ? ['POINTOPOINT', 'NOARP', 'UP', 'LOWER_UP'] : ['POINTOPOINT', 'NOARP']
    return { state: 'present', link: { name: i.name, flags, mtu: i.mtu, up: i.up, operState: i.up ? 'UNKNOWN' : 'DOWN' }, addresses: i.up ? [...i.addresses] : undefined }
  }
}
