/**
 * Runs host-routes-plan.ts against the host: `ip route`, `ip rule`, `sysctl`, `nft`, all through
 * the CommandRunner seam (tests give a recording fake: an in-process agent must never touch the
 * real host's routing). Only called when something changed, never per tick.
 *
 * Sysctls wgmesh switches on (forwarding) are written down with their old values in
 * <stateDir>/forwarding.json before they change, and put back by `down()` — also by the next
 * start after a kill -9 (the agent calls `down()` when it no longer advertises routes).
 */
import { accessSync, constants as fsc, existsSync, readFileSync, unlinkSync } from 'node:fs'
import { delimiter, join } from 'node:path'
import { InvalidConfigError } from '@wgmesh/core'
import type { CommandRunner } from '@wgmesh/wireguard'
import type { Logger } from './logger.js'
import { writeFileAtomic } from './state-store.js'
import {
  EXIT_TABLE, RULE_PREF_PEERS, ROUTE_PROTO, exitRules, forwardingRuleset, isExitCidr, nftTableName, peerRuleDiff, routeDiff,
  type IpRoute, type IpRule
} from './host-routes-plan.js'

export interface GatewaySetup {
  /** Advertised CIDRs (canonical; exit CIDRs included). */
  routes: string[]
  masquerade: boolean
}

const parseJson = <T>(s: string): T[] => { try { const v = JSON.parse(s) as unknown; return Array.isArray(v) ? v as T[] : [] } catch { return [] } }

/**
 * Before a gateway starts anything: it must be able to switch forwarding on (a read-only
 * /proc/sys, e.g. systemd's ProtectKernelTunables=, would leave it elected but dropping
 * everything) and to load its nftables table.
 */
export function checkGatewayHost (env: NodeJS.ProcessEnv = process.env): void {
  try { accessSync('/proc/sys/net/ipv4/conf/all/forwarding', fsc.W_OK) } catch (err) {
    throw new InvalidConfigError(`--advertise-route needs to switch on IP forwarding, but /proc/sys/net is not writable here (${(err as NodeJS.ErrnoException).code ?? (err as Error).message}): run as root; under systemd with ProtectKernelTunables=yes add ReadWritePaths=/proc/sys/net (the shipped unit has it)`)
  }
  const nft = (env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin').split(delimiter).some(d => { try { accessSync(join(d, 'nft'), fsc.X_OK); return true } catch { return false } })
  if (!nft) throw new InvalidConfigError('--advertise-route needs the nft command (package nftables) for its forwarding rules: install it')
}

export class HostRoutes {
  private routesApplied = ''
  private gatewayApplied = ''
  private exitApplied = ''

  /**
   * `savedPath`: the forwarding sysctls' old values — written by every gatewayUp (`{}` when it
   * switched nothing on), so it also marks "this host was a gateway"; `exitMarker`: present while
   * exit routing may be set up. A start or stop with neither spawns nothing to clean up.
   */
  constructor (private readonly runner: CommandRunner, private readonly iface: string, private readonly log: Logger,
    private readonly savedPath: string, private readonly exitMarker: string) {}

  private async run (argv: string[], stdin?: string): Promise<string> {
    return (await this.runner.run(argv, stdin === undefined ? {} : { stdin })).stdout
  }

  /** Exactly these non-exit CIDRs routed into the mesh interface (ours: proto ROUTE_PROTO). */
  async syncRoutes (cidrs: string[]): Promise<void> {
    const key = [...cidrs].sort().join(',')
    if (key === this.routesApplied) return
    for (const fam of [4, 6] as const) {
      const have = parseJson<IpRoute>(await this.run(['ip', `-${fam}`, '-j', 'route', 'show', 'dev', this.iface, 'proto', String(ROUTE_PROTO)]))
      const { add, del } = routeDiff(have.map(r => ({ ...r, protocol: r.protocol ?? ROUTE_PROTO })), fam, cidrs)
      for (const c of del) await this.run(['ip', `-${fam}`, 'route', 'del', c, 'dev', this.iface, 'proto', String(ROUTE_PROTO)])
      for (const c of add) await this.run(['ip', `-${fam}`, 'route', 'replace', c, 'dev', this.iface, 'proto', String(ROUTE_PROTO)])
      if (add.length + del.length > 0) this.log.info('mesh routes changed', { family: fam, added: add, removed: del })
    }
    this.routesApplied = key
  }

  private readSaved (): Record<string, string> {
    try { return JSON.parse(readFileSync(this.savedPath, 'utf8')) as Record<string, string> } catch { return {} }
  }

  /** Switch a forwarding sysctl on, noting its old value first. Returns whether it was off. */
  private async enable (key: string, saved: Record<string, string>): Promise<boolean> {
    const cur = (await this.run(['sysctl', '-n', key])).trim()
    if (cur === '1') return false
    if (saved[key] === undefined) { saved[key] = cur; writeFileAtomic(this.savedPath, JSON.stringify(saved) + '\n') }
    await this.run(['sysctl', '-q', '-w', `${key}=1`])
    return true
  }

  /** The interfaces the host reaches `cidr` through (its first address; exit: the default route's). */
  private async egress (cidr: string): Promise<string | undefined> {
    const v6 = cidr.includes(':')
    const dst = isExitCidr(cidr) ? (v6 ? '2001:db8::1' : '192.0.2.1') : cidr.split('/')[0]!
    const r = await this.runner.run(['ip', v6 ? '-6' : '-4', '-j', 'route', 'get', dst], { allowFail: true })
    const dev = parseJson<{ dev?: string }>(r.stdout)[0]?.dev
    return dev === undefined || dev === this.iface || dev === 'lo' ? undefined : dev
  }

  /** Forwarding from the mesh to the advertised subnets (and replies back), masquerading. */
  async gatewayUp (g: GatewaySetup): Promise<void> {
    const key = JSON.stringify(g)
    if (key === this.gatewayApplied) return
    const saved = this.readSaved()
    if (!existsSync(this.savedPath)) writeFileAtomic(this.savedPath, JSON.stringify(saved) + '\n')
    const flipped: string[] = []
    const v4 = g.routes.some(c => !c.includes(':'))
    const v6 = g.routes.some(c => c.includes(':'))
    if (v4) {
      if (await this.enable(`net/ipv4/conf/${this.iface}/forwarding`, saved)) flipped.push(this.iface)
      for (const c of g.routes.filter(x => !x.includes(':'))) {
        const dev = await this.egress(c)
        if (dev === undefined) { this.log.warn('advertised route is not reachable from this host (no route out of it): clients will be sent here and dropped', { route: c }); continue }
        if (await this.enable(`net/ipv4/conf/${dev}/forwarding`, saved)) flipped.push(dev)
      }
      // an exit's replies come back on whichever interface reaches the destination: all of them
      // forward, and the table drops what this switch newly allowed between non-mesh interfaces
      if (g.routes.includes('0.0.0.0/0') && await this.enable('net/ipv4/conf/all/forwarding', saved)) flipped.push('*')
    }
    if (v6 && await this.enable('net/ipv6/conf/all/forwarding', saved)) {
      this.log.warn('IPv6 forwarding switched on for the advertised IPv6 routes: interfaces that take their default route from router advertisements need accept_ra=2')
    }
    const exists = (await this.runner.run(['nft', 'list', 'table', 'inet', nftTableName(this.iface)], { allowFail: true })).code === 0
    const rules = forwardingRuleset({
      iface: this.iface,
      routes: g.routes.filter(c => !isExitCidr(c)),
      exit4: g.routes.includes('0.0.0.0/0'),
      exit6: g.routes.includes('::/0'),
      masquerade: g.masquerade,
      flipped: [...new Set([...flipped, ...Object.keys(saved).map(k => /^net\/ipv4\/conf\/(.+)\/forwarding$/.exec(k)?.[1]).filter((x): x is string => x !== undefined)
        .map(x => x === 'all' ? '*' : x)])]
    }, exists)
    await this.run(['nft', '-f', '-'], rules)
    this.gatewayApplied = key
    this.log.info('gateway forwarding on', { routes: g.routes, masquerade: g.masquerade, forwardingSwitchedOn: flipped })
  }

  /** Forwarding rules removed, sysctls back to what they were before wgmesh switched them. */
  async gatewayDown (): Promise<void> {
    if (this.gatewayApplied === '' && !existsSync(this.savedPath)) return // never a gateway here (or cleaned up)
    const t = nftTableName(this.iface)
    if ((await this.runner.run(['nft', 'list', 'table', 'inet', t], { allowFail: true })).code === 0) {
      await this.run(['nft', 'delete', 'table', 'inet', t])
    }
    const saved = this.readSaved()
    // conf/all first: writing it resets every interface, the per-interface values come after
    const order = (k: string): number => k.includes('/all/') ? 0 : 1
    for (const [k, v] of Object.entries(saved).sort((x, y) => order(x[0]) - order(y[0]))) {
      await this.runner.run(['sysctl', '-q', '-w', `${k}=${v}`], { allowFail: true })
    }
    if (existsSync(this.savedPath)) {
      try { unlinkSync(this.savedPath) } catch (err) { this.log.warn('could not remove the saved forwarding settings (they are put back again at the next start)', { file: this.savedPath, error: (err as Error).message }) }
      this.log.info('gateway forwarding off', { restored: saved })
    }
    this.gatewayApplied = ''
  }

  /**
   * Exit node: policy routing on (`gateway` set: the family's default goes into the mesh; the
   * active exit gateway's AllowedIPs catch it) with the peers' underlay addresses kept on the
   * main table; off (`undefined`): rules and table routes removed.
   */
  async exitSync (families: { v4: boolean, v6: boolean }, peers: { v4: string[], v6: string[] }): Promise<void> {
    const key = JSON.stringify({ families, peers })
    if (key === this.exitApplied) return
    const anyOn = families.v4 || families.v6
    if (!anyOn && this.exitApplied === '' && !existsSync(this.exitMarker)) { this.exitApplied = key; return } // nothing of ours to remove
    if (anyOn) writeFileAtomic(this.exitMarker, '')
    for (const fam of [4, 6] as const) {
      const on = fam === 4 ? families.v4 : families.v6
      const want = on ? (fam === 4 ? peers.v4 : peers.v6) : []
      const have = parseJson<IpRule>(await this.run(['ip', `-${fam}`, '-j', 'rule', 'show']))
      const ours = have.filter(r => r.priority !== undefined && r.priority >= RULE_PREF_PEERS && r.priority <= RULE_PREF_PEERS + 2)
      if (!on) {
        for (const r of ours) await this.runner.run(['ip', `-${fam}`, 'rule', 'del', 'pref', String(r.priority)], { allowFail: true })
        await this.runner.run(['ip', `-${fam}`, 'route', 'flush', 'table', String(EXIT_TABLE)], { allowFail: true })
        continue
      }
      const rules = exitRules([])
      const haveFixed = new Set(ours.filter(r => r.priority !== RULE_PREF_PEERS).map(r => r.priority))
      for (const r of rules) {
        const pref = Number(r[r.length - 1])
        if (!haveFixed.has(pref)) await this.run(['ip', `-${fam}`, 'rule', 'add', ...r])
      }
      const { add, del } = peerRuleDiff(ours, want.map(a => a.replace(/\/(32|128)$/, '')))
      for (const a of del) await this.runner.run(['ip', `-${fam}`, 'rule', 'del', 'to', a, 'pref', String(RULE_PREF_PEERS)], { allowFail: true })
      for (const a of add) await this.run(['ip', `-${fam}`, 'rule', 'add', 'to', a, 'lookup', 'main', 'pref', String(RULE_PREF_PEERS)])
      await this.run(['ip', `-${fam}`, 'route', 'replace', fam === 4 ? '0.0.0.0/0' : '::/0', 'dev', this.iface, 'table', String(EXIT_TABLE)])
    }
    if (!anyOn) { try { unlinkSync(this.exitMarker) } catch (err) { if ((err as NodeJS.ErrnoException).code !== 'ENOENT') this.log.warn('could not remove the exit-routing marker', { file: this.exitMarker, error: (err as Error).message }) } }
    this.exitApplied = key
  }
}
