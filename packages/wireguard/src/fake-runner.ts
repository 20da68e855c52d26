/**
 * An in-memory WireGuard host for tests: a {@link CommandRunner} that understands the
 * commands this package issues and mutates a simulated interface, recording every argv.
 */
import { createHash } from 'node:crypto'
import { canonicalCidr } from './cidr.js'
import type { CommandRunner, RunOptions, RunResult } from './command-runner.js'
import { CommandFailedError } from './errors.js'
import type { DumpPeer } from './dump.js'
import { decodeWireGuardKey, publicKeyFromPrivateKey } from './keys.js'

/** A simulated peer: what `wg show dump` reports for it (allowed-ips canonical, host bits cleared). */
export type FakePeer = DumpPeer

export interface FakeInterface {
  name: string
  index: number
  kind: 'kernel' | 'userspace'
  privateKey?: string
  publicKey?: string
  listenPort: number
  fwmark?: number
  mtu: number
  up: boolean
  /** Canonical "addr/plen". */
  addresses: string[]
  peers: Map<string, FakePeer>
}

export interface FakeWireGuardRunnerInit {
  /** false = `ip link add ... type wireguard` fails as on a host without the module. Default true. */
  kernelModule?: boolean
  /** Program names that act as a userspace implementation. Default ["wireguard-go"]. */
  userspaceBinaries?: string[]
  /** Key file path → base64 private key. Unlisted files get a deterministic key (see `privateKeyFor`). */
  privateKeys?: Record<string, string>
  /** Injected failures: return a result to fail that argv (checked before simulation). */
  failWhen?: (argv: string[]) => { code?: number, stderr?: string } | undefined
  /**
   * Offer `runIpBatch` (as the real runner does): the batch is recorded as "ip -batch -" plus its
   * lines, and runs line by line up to the first failure. Default false: each `ip` step is run alone.
   */
  ipBatch?: boolean
}

type Res = RunResult

const ok = (stdout = ''): Res => ({ stdout, stderr: '', code: 0 })
const fail = (code: number, stderr: string): Res => ({ stdout: '', stderr, code })

export class FakeWireGuardRunner implements CommandRunner {
  /** Every argv run, joined by single spaces, in order (failed ones included). */
  readonly commands: string[] = []
  /** The simulated interfaces by name; tests may inspect and mutate them (e.g. to simulate roaming). */
  readonly interfaces = new Map<string, FakeInterface>()
  kernelModule: boolean
  userspaceBinaries: string[]
  failWhen: FakeWireGuardRunnerInit['failWhen']
  private readonly privateKeys: Record<string, string>
  private nextIndex = 10

  constructor (init: FakeWireGuardRunnerInit = {}) {
    this.kernelModule = init.kernelModule ?? true
    this.userspaceBinaries = init.userspaceBinaries ?? ['wireguard-go']
    this.privateKeys = { ...init.privateKeys }
    this.failWhen = init.failWhen
    if (init.ipBatch === true) this.runIpBatch = async (steps) => { await this.ipBatch(steps) }
  }

  runIpBatch?: (steps: string[][]) => Promise<void>

  private async ipBatch (steps: string[][]): Promise<void> {
    this.commands.push(`ip -batch - <<< ${steps.map(s => s.slice(1).join(' ')).join('; ')}`)
    for (const argv of steps) {
      const injected = this.failWhen?.(argv)
      const r = injected !== undefined ? fail(injected.code ?? 1, injected.stderr ?? 'injected failure') : this.simulate(argv)
      if (r.code !== 0) throw new CommandFailedError(argv, r.code, r.stderr, r.stdout)
    }
  }

  /** The private key the fake uses for a key file. */
  privateKeyFor (file: string): string {
    return this.privateKeys[file] ?? createHash('sha256').update(`wgmesh-fake-key:${file}`).digest('base64')
  }

  /** Creates an interface directly (as if someone else had), e.g. for backend 'existing'. */
  addInterface (name: string, kind: 'kernel' | 'userspace' = 'kernel'): FakeInterface {
    const iface: FakeInterface = { name, index: this.nextIndex++, kind, listenPort: 0, mtu: 1420, up: false, addresses: [], peers: new Map() }
    this.interfaces.set(name, iface)
    return iface
  }

  /** Returns the recorded commands and clears the record. */
  takeCommands (): string[] {
    return this.commands.splice(0, this.commands.length)
  }

  async run (argv: string[], opts: RunOptions = {}): Promise<RunResult> {
    this.commands.push(argv.join(' '))
    const injected = this.failWhen?.(argv)
    const r = injected !== undefined ? fail(injected.code ?? 1, injected.stderr ?? 'injected failure') : this.simulate(argv)
    if (r.code !== 0 && opts.allowFail !== true) throw new CommandFailedError(argv, r.code, r.stderr, r.stdout)
    return r
  }

  private simulate (argv: string[]): Res {
    const [cmd, ...a] = argv
    if (cmd === 'wg') return this.wg(a)
    if (cmd === 'ip') return this.ip(a)
    if (cmd !== undefined && this.userspaceBinaries.includes(cmd)) {
      const name = a[0]
      if (name === undefined || a.length !== 1) return fail(1, `Usage: ${cmd} [-f/--foreground] INTERFACE-NAME`)
      if (this.interfaces.has(name)) return fail(1, `ERROR: (${name}) Failed to create TUN device: device or resource busy`)
      this.addInterface(name, 'userspace')
      return ok()
    }
    return fail(127, `${cmd ?? ''}: command not found (FakeWireGuardRunner)`)
  }

  private wg (a: string[]): Res {
    const [sub, name, ...rest] = a
    if (name === undefined) return fail(1, 'Usage: wg <cmd> [<args>]')
    const iface = this.interfaces.get(name)
    if (sub === 'show' && rest.length === 1 && rest[0] === 'dump') {
      if (iface === undefined) return fail(1, `Unable to access interface: No such device`)
      return ok(this.dump(iface))
    }
    if (sub === 'set') {
      if (iface === undefined) return fail(1, `Unable to modify interface: No such device`)
      return this.wgSet(iface, rest)
    }
    return fail(1, `FakeWireGuardRunner: unsupported wg command: wg ${a.join(' ')}`)
  }

  private dump (iface: FakeInterface): string {
    const none = (s: string | undefined): string => s ?? '(none)'
    const lines = [[none(iface.privateKey), none(iface.publicKey), String(iface.listenPort), iface.fwmark === undefined ? 'off' : `0x${iface.fwmark.toString(16)}`].join('\t')]
    for (const p of iface.peers.values()) {
      lines.push([p.publicKey, none(p.presharedKey), none(p.endpoint), p.allowedIps.length === 0 ? '(none)' : p.allowedIps.join(','),
        String(p.latestHandshake), String(p.transferRx), String(p.transferTx), p.persistentKeepalive === undefined ? 'off' : String(p.persistentKeepalive)].join('\t'))
    }
    return lines.join('\n') + '\n'
  }

  /** Parses the whole `wg set` line first and applies it only if it all parses, like wg. */
  private wgSet (iface: FakeInterface, t: string[]): Res {
    const ops: Array<(i: FakeInterface) => void> = []
    const bad = (msg: string): Res => fail(1, msg)
    const isKey = (k: string): boolean => { try { decodeWireGuardKey(k); return true } catch { return false } }
    let i = 0
    let peer: string | undefined
    while (i < t.length) {
      const kw = t[i++] as string
      const val = t[i]
      if (peer === undefined) {
        if (kw === 'listen-port' && val !== undefined && /^\d+$/.test(val) && Number(val) < 65536) { i++; ops.push(x => { x.listenPort = Number(val) }); continue }
        if (kw === 'fwmark' && val !== undefined) { i++; ops.push(x => { if (val === 'off' || Number(val) === 0) delete x.fwmark; else x.fwmark = Number(val) }); continue }
        if (kw === 'private-key' && val !== undefined) {
          i++
          const priv = this.privateKeyFor(val)
          ops.push(x => { x.privateKey = priv; x.publicKey = publicKeyFromPrivateKey(priv) })
          continue
        }
      }
      if (kw === 'peer') {
        if (val === undefined || !isKey(val)) return bad('Key is not the correct length or format')
        i++
        peer = val
        const pk = val
        ops.push(x => { if (!x.peers.has(pk)) x.peers.set(pk, { publicKey: pk, allowedIps: [], latestHandshake: 0, transferRx: 0, transferTx: 0 }) })
        continue
      }
      if (peer === undefined) return bad(`Invalid argument: ${kw}`)
      const pk = peer
      if (kw === 'remove') { ops.push(x => { x.peers.delete(pk) }); continue }
      if (kw === 'endpoint' && val !== undefined && /^(\[[^\]]+\]|[^:[\]]+):\d+$/.test(val)) { i++; ops.push(x => { peerOf(x, pk).endpoint = val }); continue }
      if (kw === 'persistent-keepalive' && val !== undefined && (val === 'off' || /^\d+$/.test(val))) {
        i++
        ops.push(x => { const p = peerOf(x, pk); if (val === 'off' || Number(val) === 0) delete p.persistentKeepalive; else p.persistentKeepalive = Number(val) })
        continue
      }
      if (kw === 'allowed-ips' && val !== undefined) {
        i++
        const ips = val.split(',').map(s => s.trim()).filter(s => s !== '').map(s => canonicalCidr(s, true))
        if (ips.some(s => !/^[0-9a-f.:]+\/\d+$/.test(s))) return bad(`Unable to parse IP address: ${val}`)
        ops.push(x => {
          for (const other of x.peers.values()) other.allowedIps = other.allowedIps.filter(c => !ips.includes(c))
          peerOf(x, pk).allowedIps = [...new Set(ips)]
        })
        continue
      }
      if (kw === 'preshared-key' && val !== undefined) { i++; ops.push(x => { peerOf(x, pk).presharedKey = this.privateKeyFor(val) }); continue }
      return bad(`Invalid argument: ${kw}`)
    }
    for (const op of ops) op(iface)
    return ok()
  }

  private ip (a: string[]): Res {
    let o = false
    if (a[0] === '-o') { o = true; a = a.slice(1) }
    const [obj, verb, ...rest] = a
    const devName = (args: string[]): string | undefined => {
      const d = args.indexOf('dev')
      return d === -1 ? args[0] : args[d + 1]
    }
    if (obj === 'link' || obj === 'l') {
      if (verb === 'show') {
        const name = devName(rest) ?? ''
        const iface = this.interfaces.get(name)
        if (iface === undefined) return fail(1, `Device "${name}" does not exist.`)
        return ok(this.linkLine(iface, o))
      }
      if (verb === 'add') {
        const [name, type, kind] = rest
        if (name === undefined || type !== 'type' || kind !== 'wireguard') return fail(1, `FakeWireGuardRunner: unsupported: ip ${a.join(' ')}`)
        if (!this.kernelModule) return fail(2, 'Error: Unknown device type.')
        if (this.interfaces.has(name)) return fail(2, 'RTNETLINK answers: File exists')
        this.addInterface(name, 'kernel')
        return ok()
      }
      if (verb === 'del' || verb === 'delete') {
        const name = devName(rest) ?? ''
        if (!this.interfaces.delete(name)) return fail(1, `Cannot find device "${name}"`)
        return ok()
      }
      if (verb === 'set') {
        const d = rest.indexOf('dev')
        const name = d === -1 ? rest[0] : rest[d + 1]
        const iface = this.interfaces.get(name ?? '')
        if (iface === undefined) return fail(1, `Cannot find device "${name ?? ''}"`)
        const args = rest.filter((_, k) => d === -1 ? k !== 0 : k !== d && k !== d + 1)
        for (let k = 0; k < args.length; k++) {
          const w = args[k]
          if (w === 'up') iface.up = true
          else if (w === 'down') iface.up = false
          else if (w === 'mtu' && /^\d+$/.test(args[k + 1] ?? '')) iface.mtu = Number(args[++k])
          else return fail(1, `Error: either "dev" is duplicate, or "${w ?? ''}" is a garbage.`)
        }
        return ok()
      }
    }
    if (obj === 'address' || obj === 'addr' || obj === 'a') {
      if (verb === 'show') {
        const name = devName(rest) ?? ''
        const iface = this.interfaces.get(name)
        if (iface === undefined) return fail(1, `Device "${name}" does not exist.`)
        return ok(this.addrLines(iface))
      }
      const d = rest.indexOf('dev')
      const name = d === -1 ? '' : rest[d + 1] ?? ''
      const iface = this.interfaces.get(name)
      if (iface === undefined) return fail(1, `Cannot find device "${name}"`)
      const addr = canonicalCidr(rest[0] ?? '', false)
      if (verb === 'add') {
        if (iface.addresses.includes(addr)) return fail(2, 'RTNETLINK answers: File exists')
        iface.addresses.push(addr)
        return ok()
      }
      if (verb === 'replace') {
        if (!iface.addresses.includes(addr)) iface.addresses.push(addr)
        return ok()
      }
      if (verb === 'del' || verb === 'delete') {
        if (!iface.addresses.includes(addr)) return fail(2, 'RTNETLINK answers: Cannot assign requested address')
        // Like Linux without promote_secondaries: deleting an IPv4 primary takes its subnet's secondaries along.
        const net = v4Subnet(addr)
        const primary = net !== undefined && iface.addresses.find(x => v4Subnet(x) === net) === addr
        iface.addresses = iface.addresses.filter(x => x !== addr && !(primary && v4Subnet(x) === net))
        return ok()
      }
    }
    return fail(1, `FakeWireGuardRunner: unsupported: ip ${o ? '-o ' : ''}${a.join(' ')}`)
  }

  private linkLine (i: FakeInterface, oneline: boolean): string {
    const flags = i.up ? 'POINTOPOINT,NOARP,UP,LOWER_UP' : 'POINTOPOINT,NOARP'
    const sep = oneline ? '\\    ' : '\n    '
    return `${i.index}: ${i.name}: <${flags}> mtu ${i.mtu} qdisc noqueue state ${i.up ? 'UNKNOWN' : 'DOWN'} mode DEFAULT group default qlen 1000${sep}link/none \n`
  }

  private addrLines (i: FakeInterface): string {
    return i.addresses.map(a => {
      if (a.includes(':')) return `${i.index}: ${i.name}    inet6 ${a} scope global \\       valid_lft forever preferred_lft forever\n`
      const secondary = i.addresses.find(x => v4Subnet(x) === v4Subnet(a)) !== a ? 'secondary ' : ''
      return `${i.index}: ${i.name}    inet ${a} scope global ${secondary}${i.name}\\       valid_lft forever preferred_lft forever\n`
    }).join('')
  }
}

function v4Subnet (addr: string): string | undefined {
  return addr.includes(':') ? undefined : canonicalCidr(addr, true)
}

function peerOf (iface: FakeInterface, pk: string): FakePeer {
  const p = iface.peers.get(pk)
  if (p === undefined) throw new Error(`fake: peer ${pk} vanished`)
  return p
}
