/**
 * `wgmesh ca init|sign|revoke`: the operator's side of certificate mode. Runs where the CA
 * directory is (the operator's machine); agents never need the CA key.
 */
import { randomBytes } from 'node:crypto'
import { readFileSync, writeFileSync } from 'node:fs'
import { Command, Option } from 'commander'
import { writeFileAtomic } from '@wgmesh/agent'
import {
  CERT_ROLES, DEFAULT_MESH_CIDR, MAX_CERT_ROUTES, MAX_CERT_VALIDITY_MS, parseAdvertisedRoutes, canonicalIP, cidrContainsText, cidrSize, decodeCert, fromBase64Url,
  isValidName, parseCidr, parseIP, signCert, signRevocation, toBase64Url, caPublicFromSeed,
  type CertRole, type NodeCert
} from '@wgmesh/core'
import { CaDir } from '../ca-dir.js'
import { ExitError } from '../errors.js'
import { parseDuration } from '../options.js'

const DAY = 86_400_000

function caDirOption (cmd: Command): Command {
  return cmd.addOption(new Option('--ca-dir <dir>', 'the CA directory (ca.key, ca.pub, issued.json, revoked.json)').env('WGMESH_CA_DIR').makeOptionMandatory())
}

function out (json: boolean | undefined, obj: unknown, text: string[]): void {
  process.stdout.write(json === true ? JSON.stringify(obj, null, 2) + '\n' : text.join('\n') + '\n')
}

/** A nodeId as `wgmesh id` prints it (canonical base64url of 32 bytes). */
function checkNodeId (s: string): string {
  const raw = fromBase64Url(s)
  if (raw?.length !== 32 || toBase64Url(raw) !== s) throw new ExitError(`--node-id '${s}' is not a nodeId: run 'wgmesh id --state-dir DIR' on the host (43 characters of base64url)`, 2)
  return s
}

function initCommand (): Command {
  return caDirOption(new Command('init').description('create a mesh CA: DIR/ca.key (secret, 0600, stays here) and DIR/ca.pub (copy it to every host); prints its fingerprint'))
    .option('--json', 'machine-readable output')
    .action((flags: { caDir: string, json?: boolean }) => {
      const dir = new CaDir(flags.caDir)
      const ca = dir.create()
      out(flags.json, { caDir: flags.caDir, fingerprint: `SHA256:${ca.fingerprint}`, caPub: dir.path('ca.pub'), caKey: dir.path('ca.key') }, [
        `wgmesh: created a mesh CA in ${flags.caDir}`,
        `  fingerprint  SHA256:${ca.fingerprint}`,
        `  ${dir.path('ca.key')}  the CA's secret key: keep it here (0600); agents never need it`,
        `  ${dir.path('ca.pub')}  copy it to every host; agents run with --ca /path/to/ca.pub --cert /path/to/node.cert`,
        'Next, for each host: run \'wgmesh id --state-dir /var/lib/wgmesh\' there, then here:',
        `  wgmesh ca sign --ca-dir ${flags.caDir} --node-id <ID> --name <NAME> --out <NAME>.cert`
      ])
    })
}

function signCommand (): Command {
  return caDirOption(new Command('sign').description('issue a node certificate: binds a nodeId to a name, optional overlay IPs and roles, for a validity period'))
    .requiredOption('--node-id <id>', 'the node\'s id, as \'wgmesh id\' or \'wgmesh info\' prints it')
    .requiredOption('--name <name>', 'the only name the node may use ([a-z0-9-], at most 63)')
    .option('--ipv4 <address>', 'the only overlay IPv4 the node may use (inside --cidr); it wins over any other node\'s claim')
    .option('--ipv6 <address>', 'the only overlay IPv6 the node may use (inside the mesh\'s fdXX::/48, as \'wgmesh info\' shows it)')
    .addOption(new Option('--roles <list>', `comma-separated roles: ${CERT_ROLES.join(', ')} (relay: may relay for others)`).default('', 'none'))
    .addOption(new Option('--valid-for <duration>', 'validity from now (e.g. 90d, 12h; at most 3650d)').argParser(parseDuration).default(365 * DAY, '365d'))
    .option('--cidr <cidr>', 'the mesh IPv4 range --ipv4 must be in', DEFAULT_MESH_CIDR)
    .option('--route <cidr>', `a subnet the node may advertise with --advertise-route, or any subnet inside it (repeatable, at most ${MAX_CERT_ROUTES}; 0.0.0.0/0 or ::/0: may be an exit node); adds the gateway role`, (v: string, prev: string[] | undefined) => [...(prev ?? []), v])
    .requiredOption('--out <file>', 'where to write the certificate (copy it to the host; not secret)')
    .option('--json', 'machine-readable output')
    .action((flags: { caDir: string, nodeId: string, name: string, ipv4?: string, ipv6?: string, roles: string, validFor: number, cidr: string, route?: string[], out: string, json?: boolean }) => {
      const nodeId = checkNodeId(flags.nodeId)
      if (!isValidName(flags.name)) throw new ExitError(`--name '${flags.name}' is not a node name: 1..63 of a-z 0-9 and '-', not starting or ending with '-'`, 2)
      const cert: Partial<NodeCert> = {}
      const roles = flags.roles.split(',').map(r => r.trim()).filter(r => r !== '')
      for (const r of roles) if (!(CERT_ROLES as readonly string[]).includes(r)) throw new ExitError(`--roles: unknown role '${r}' (roles: ${CERT_ROLES.join(', ')})`, 2)
      if (flags.route !== undefined) {
        const parsed = parseAdvertisedRoutes(flags.route, [flags.cidr])
        if (!parsed.ok) throw new ExitError(`--route: ${parsed.errors.join('; ')}`, 2)
        if (parsed.routes.length > MAX_CERT_ROUTES) throw new ExitError(`--route: at most ${MAX_CERT_ROUTES} routes in a certificate`, 2)
        cert.routes = parsed.routes
        if (!roles.includes('gateway')) roles.push('gateway')
      }
      if (flags.validFor <= 0 || flags.validFor > MAX_CERT_VALIDITY_MS) throw new ExitError('--valid-for must be more than 0 and at most 3650d', 2)
      if (flags.ipv4 !== undefined) {
        let cidr
        try { cidr = parseCidr(flags.cidr) } catch (err) { throw new ExitError(`--cidr: ${(err as Error).message}`, 2) }
        const p = parseIP(flags.ipv4)
        const last = cidr.base + cidrSize(cidr) - 1n
        if (p?.family !== 4 || !cidrContainsText(cidr, flags.ipv4) || p.value === cidr.base || p.value === last) {
          throw new ExitError(`--ipv4 ${flags.ipv4} is not a host address of the mesh range ${flags.cidr} (pass the mesh's --cidr if it is not the default)`, 2)
        }
        cert.ipv4 = canonicalIP(flags.ipv4)!
      }
      if (flags.ipv6 !== undefined) {
        const p = parseIP(flags.ipv6)
        if (p?.family !== 6 || !cidrContainsText(parseCidr('fd00::/8'), flags.ipv6)) throw new ExitError(`--ipv6 ${flags.ipv6} is not a mesh address (the mesh's IPv6 prefix is fdXX:XXXX:XXXX::/48, shown by 'wgmesh info')`, 2)
        cert.ipv6 = canonicalIP(flags.ipv6)!
      }
      const dir = new CaDir(flags.caDir)
      const seed = dir.seed()
      if (dir.revoked().some(r => r.nodeId === nodeId)) {
        throw new ExitError(`node ${nodeId} was revoked by this CA: a revoked identity is never certified again. Start the host as a new node (move its state directory away; 'wgmesh id' prints the new id) and sign that`, 1)
      }
      const now = Date.now()
      const full: NodeCert = {
        v: 1, ca: caPublicFromSeed(seed).fingerprint, serial: randomBytes(16).toString('hex'), nodeId, name: flags.name,
        roles: roles as CertRole[], notBefore: now, notAfter: now + flags.validFor, ...cert
      }
      const token = signCert(seed, full)
      const clash = dir.issued().filter(e => e.nodeId !== nodeId && e.notAfter > now && ((cert.ipv4 !== undefined && e.ipv4 === cert.ipv4) || (cert.ipv6 !== undefined && e.ipv6 === cert.ipv6)))
      writeFileAtomic(flags.out, token + '\n', 0o644)
      dir.recordIssued(full)
      for (const c of clash) process.stderr.write(`wgmesh: warning: node ${c.name} (${c.nodeId}) holds a certificate for the same address; this newer one wins it. Revoke that node ('wgmesh ca revoke') if it should not keep running\n`)
      out(flags.json, { file: flags.out, ...full }, [
        `wgmesh: signed a certificate for ${full.name} (${nodeId}) → ${flags.out}`,
        `  serial ${full.serial}  valid until ${new Date(full.notAfter).toISOString()}` +
          `${full.ipv4 === undefined ? '' : `  ipv4 ${full.ipv4}`}${full.ipv6 === undefined ? '' : `  ipv6 ${full.ipv6}`}  roles ${roles.join(',') || '-'}` +
          `${full.routes === undefined ? '' : `  routes ${full.routes.join(',')}`}`,
        `Copy ${flags.out} to the host and start its agent with --ca /path/to/ca.pub --cert /path/to/${flags.out.split('/').pop() ?? 'node.cert'}`
      ])
    })
}

function revokeCommand (): Command {
  return caDirOption(new Command('revoke').description('make a CA-signed revocation of a node: hand it to any running agent with \'wgmesh revoke\'; every member then removes the node and refuses it for good'))
    .requiredOption('--node-id <id>', 'the node to revoke')
    .option('--out <file>', 'write the revocation here (default: print it on stdout)')
    .option('--json', 'machine-readable output')
    .action((flags: { caDir: string, nodeId: string, out?: string, json?: boolean }) => {
      const nodeId = checkNodeId(flags.nodeId)
      const dir = new CaDir(flags.caDir)
      const seed = dir.seed()
      const now = Date.now()
      const certs = dir.issued().filter(e => e.nodeId === nodeId)
      // kept by members until every certificate of the node has expired
      const until = certs.length > 0 ? Math.max(...certs.map(c => c.notAfter)) : now + MAX_CERT_VALIDITY_MS
      const token = signRevocation(seed, { v: 1, ca: caPublicFromSeed(seed).fingerprint, nodeId, issuedAt: now, until })
      dir.recordRevoked({ nodeId, issuedAt: now, until })
      if (flags.out !== undefined) {
        try { writeFileSync(flags.out, token + '\n', { mode: 0o644 }) } catch (err) { throw new ExitError(`cannot write ${flags.out}: ${(err as Error).message}`, 1) }
      }
      const name = certs.at(-1)?.name
      const hand = `hand it to any running agent: wgmesh revoke --state-dir /var/lib/wgmesh --file ${flags.out ?? 'FILE'}`
      if (flags.json === true) {
        out(true, { nodeId, name, until, revocation: token, file: flags.out }, [])
      } else if (flags.out === undefined) {
        process.stdout.write(token + '\n')
        process.stderr.write(`wgmesh: revoked ${name ?? nodeId}${certs.length === 0 ? ' (no certificate of it in this CA directory: kept by members for 10 years)' : ''}; save the line above to a FILE and ${hand}\n`)
      } else {
        out(false, {}, [
          `wgmesh: revoked ${name ?? nodeId} (${nodeId}) → ${flags.out}${certs.length === 0 ? ' (no certificate of it in this CA directory: members keep it 10 years)' : `; members keep it until ${new Date(until).toISOString()}`}`,
          `Now ${hand}`
        ])
      }
    })
}

function showCommand (): Command {
  return new Command('show').description('print what a certificate file holds (not checked against a CA)')
    .argument('<file>', 'a certificate from \'wgmesh ca sign\'')
    .option('--json', 'machine-readable output')
    .action((file: string, flags: { json?: boolean }) => {
      let text: string
      try { text = readFileSync(file, 'utf8') } catch (err) { throw new ExitError(`cannot read ${file}: ${(err as Error).message}`, 1) }
      const d = decodeCert(text.trim())
      if (!d.ok) throw new ExitError(`${file} is not a wgmesh certificate: ${d.detail}`, 1)
      const c = d.cert
      out(flags.json, c, [
        `name      ${c.name}`, `node id   ${c.nodeId}`, `serial    ${c.serial}`, `CA        SHA256:${c.ca}`,
        `valid     ${new Date(c.notBefore).toISOString()} … ${new Date(c.notAfter).toISOString()}`,
        `ipv4      ${c.ipv4 ?? '- (hashed, like any member)'}`, `ipv6      ${c.ipv6 ?? '- (hashed, like any member)'}`, `roles     ${c.roles.join(',') || '-'}`,
        `routes    ${c.routes?.join(', ') ?? '-'}`
      ])
    })
}

export function caCommand (): Command {
  return new Command('ca')
    .description('certificate mode: a mesh CA that certifies each member (name, IPs, roles) and can revoke one')
    .addCommand(initCommand())
    .addCommand(signCommand())
    .addCommand(revokeCommand())
    .addCommand(showCommand())
}
