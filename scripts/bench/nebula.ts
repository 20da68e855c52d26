/**
 * Nebula (Debian's `nebula` 1.6.1) in lab hosts, for comparison benchmarks: a throw-away CA and
 * host certificates made with nebula-cert in a temp dir, one config per host, daemons spawned
 * through the lab (recorded PIDs, killed by PID by lab.down()).
 *
 * Setup: lighthouse = pub1 (like wgmesh's single --peer seed); every public host is a relay
 * (am_relay) and every NATted host names all public hosts as its relays (use_relays on
 * everywhere); punchy punch + respond on; overlay 100.99.0.0/16 (inside 100.64.0.0/10, away
 * from wgmesh's default 100.96.0.0/16); tun devices nb<index> (kernel tun, per namespace);
 * firewall: everything in and out (ICMP for pings, TCP for iperf3). Everything else is Nebula's default (lighthouse interval
 * 10 s, etc.).
 */
import { execFileSync } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Lab, LabProcess } from '../../test/lab/lab.js'

const PORT = 4242

export class NebulaMesh {
  readonly dir = mkdtempSync(join(tmpdir(), 'wgmesh-bench-nebula-'))
  /** overlay IPv4 per host */
  readonly ip = new Map<string, string>()
  readonly procs = new Map<string, LabProcess>()

  /** make the CA, certificates and configs (before t0); `hosts` in lab order, lighthouse first */
  constructor (private readonly lab: Lab, private readonly hosts: string[], private readonly lighthouses = [hosts[0]!]) {
    hosts.forEach((h, i) => this.ip.set(h, `100.99.0.${i + 1}`))
    const cert = (...args: string[]): void => { execFileSync('nebula-cert', args, { cwd: this.dir, stdio: ['ignore', 'ignore', 'inherit'] }) }
    cert('ca', '-name', 'wgmesh bench', '-duration', '24h')
    const pubs = hosts.filter(h => lab.host(h).role === 'pub')
    for (const h of hosts) {
      cert('sign', '-name', h, '-ip', `${this.ip.get(h)}/16`, '-out-crt', `${h}.crt`, '-out-key', `${h}.key`)
      const isPub = lab.host(h).role === 'pub'
      const isLh = this.lighthouses.includes(h)
      const config = {
        pki: { ca: join(this.dir, 'ca.crt'), cert: join(this.dir, `${h}.crt`), key: join(this.dir, `${h}.key`) },
        static_host_map: Object.fromEntries(this.lighthouses.map(l => [this.ip.get(l), [`${lab.host(l).ip}:${PORT}`]])),
        lighthouse: { am_lighthouse: isLh, hosts: isLh ? [] : this.lighthouses.map(l => this.ip.get(l)) },
        listen: { host: '0.0.0.0', port: PORT },
        punchy: { punch: true, respond: true },
        relay: { am_relay: isPub, use_relays: true, relays: isPub ? [] : pubs.map(p => this.ip.get(p)) },
        tun: { dev: `nb${hosts.indexOf(h)}`, mtu: 1300 },
        logging: { level: 'info', format: 'text' },
        firewall: {
          outbound: [{ port: 'any', proto: 'any', host: 'any' }],
          inbound: [{ port: 'any', proto: 'any', host: 'any' }]
        }
      }
      // JSON is YAML
      writeFileSync(join(this.dir, `${h}.yml`), JSON.stringify(config, null, 2))
    }
  }

  /** spawn every daemon at once */
  start (): void {
    for (const h of this.hosts) this.procs.set(h, this.lab.spawn(`nebula-${h}`, h, ['nebula', '-config', join(this.dir, `${h}.yml`)]))
  }

  cleanup (): void { rmSync(this.dir, { recursive: true, force: true }) }
}
