/**
 * `wgmesh info`: the compact table fits 100 columns with realistic (and overlong) names, a
 * relayed peer and every status; `--wide` has every column uncut; `status` is an alias of
 * `info`; the JSON carries `schema: 1`, the version and each peer's RTT.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { formatInfo, type AgentInfo, type PeerInfo } from '@wgmesh/agent'
import { buildProgram } from '../src/program.js'
import { VERSION } from '../src/options.js'

const peer = (over: Partial<PeerInfo>): PeerInfo => ({
  name: 'db-replica-eu-west-1a', nodeId: 'f'.repeat(64), ipv4: '100.96.213.247', ipv6: 'fd3c:1a2b:3c4d:5e6f:7a8b:9c0d:1e2f:3a4b',
  status: 'alive', lastSeenS: 3, endpoint: '[2001:db8:ffff:ffff:ffff:ffff:ffff:ffff]:51820', latestHandshake: 1_700_000_000, handshakeAgeS: 97,
  rxBytes: 123_456_789_012, txBytes: 98_765_432, tags: [], gossip: true, path: 'direct', nat: 'symmetric', rttMs: 12.3456, rttAgeS: 4, ...over
})

const info: AgentInfo = {
  schema: 1,
  version: VERSION,
  name: 'gateway-frankfurt-primary-01',
  nodeId: 'a'.repeat(64),
  interface: 'wgmesh0',
  ipv4: '100.96.12.34',
  ipv6: 'fd3c:1a2b:3c4d:5e6f:7a8b:9c0d:1e2f:3a4b',
  wgPublicKey: 'k'.repeat(44),
  listenPort: 51820,
  endpoints: ['203.0.113.10:51820', '192.168.178.23:51820', '10.10.0.5:51820', '[2001:db8::10]:51820', '[2001:db8:1234:5678::abcd]:51820', '172.17.0.1:51820'],
  gossipAddrs: [],
  meshCidr4: '100.96.0.0/16',
  meshUla: 'fd3c:1a2b:3c4d:5e6f::/64',
  nat: 'cone',
  relay: true,
  peers: [
    peer({}),
    peer({ name: 'kubernetes-worker-node-prod-eu-central-17', ipv4: '100.96.1.2', path: 'relay', via: 'edge-relay-amsterdam-public-02', rttMs: 184.2, handshakeAgeS: 4000 }),
    peer({ name: 'laptop', status: 'dead', path: 'down', rttMs: undefined, rttAgeS: undefined, handshakeAgeS: undefined, latestHandshake: undefined }),
    peer({ name: 'build-ci-runner-3', status: 'conflict', path: 'punching', rttMs: 0.4123 }),
    peer({ name: 'nas', path: 'lan', rttMs: 1234.5, handshakeAgeS: 200_000 })
  ],
  rejected: { decrypt: 12, signature: 3, replay: 1, 'clock-skew': 7, 'ip-conflict': 2, 'node-id-mismatch': 5, malformed: 9, oversize: 4 },
  cert: { ca: 'c'.repeat(64), serial: 'e'.repeat(32), notAfter: Date.UTC(2030, 0, 1), roles: ['relay'], revocations: 2 }
}

test('the compact table fits 100 columns and has NAME IPV4 STATUS PATH RTT HANDSHAKE', () => {
  const out = formatInfo(info)
  const lines = out.split('\n')
  const widest = Math.max(...lines.map(l => [...l].length))
  assert.ok(widest <= 100, `widest line ${widest} columns:\n${out}`)
  const header = lines.find(l => l.startsWith('NAME'))!
  assert.deepEqual(header.split(/\s+/), ['NAME', 'IPV4', 'STATUS', 'PATH', 'RTT', 'HANDSHAKE'])
  const row = (name: string): string => lines.find(l => l.startsWith(name))!
  assert.match(row('db-replica-eu-west-1a'), /100\.96\.213\.247\s+alive\s+direct\s+12\.3ms\s+1m37s$/)
  assert.match(row('kubernetes-worker-node-…'), /^kubernetes-worker-node-…\s+100\.96\.1\.2\s+alive\s+relay:edge-relay-amsterda…\s+184ms\s+1h06m$/)
  assert.match(row('laptop'), /dead\s+down\s+-\s+never$/)
  assert.match(row('build-ci-runner-3'), /conflict\s+punching\s+0\.41ms/)
  assert.match(row('nas'), /lan\s+1\.23s\s+2d$/)
  assert.match(out, /^node {6}gateway-frankfurt-primary-01 {2}\(aaaaaaaaaaaa…\) {2}wgmesh 0\.1\.0$/m)
  // wrapped, not cut: every endpoint and every rejection reason is still there
  for (const e of info.endpoints) assert.ok(out.includes(e), e)
  for (const [k, v] of Object.entries(info.rejected)) assert.ok(out.includes(`${k}=${v}`), k)
  console.log(`# compact: ${widest} columns at most, ${lines.length} lines`)
})

test('--wide has every column, nothing cut', () => {
  const out = formatInfo(info, { wide: true })
  const header = out.split('\n').find(l => l.startsWith('NAME'))!
  assert.deepEqual(header.split(/\s+/), ['NAME', 'IPV4', 'IPV6', 'STATUS', 'PATH', 'ENDPOINT', 'RTT', 'HANDSHAKE', 'RX', 'TX', 'NAT', 'GOSSIP'])
  assert.ok(out.includes('kubernetes-worker-node-prod-eu-central-17'))
  assert.ok(out.includes('relay:edge-relay-amsterdam-public-02'))
  assert.ok(out.includes('[2001:db8:ffff:ffff:ffff:ffff:ffff:ffff]:51820'))
  assert.match(out, /115\.0 GiB\s+94\.2 MiB\s+symmetric\s+yes/)
  assert.ok(Math.max(...out.split('\n').map(l => l.length)) > 100, 'wide is wider')
})

test('IPv6 underlay (issue 11): a path over IPv6 shows its family (direct/v6); IPv4 paths show as before; `family` documented', async () => {
  const v6 = { ...info, peers: [peer({ name: 'v6-peer', family: 6 }), peer({ name: 'v4-peer', endpoint: '198.18.1.2:51820', family: 4 }), peer({ name: 'v6-relayed', path: 'relay', via: 'r1', family: 6 })] }
  const lines = formatInfo(v6).split('\n')
  assert.match(lines.find(l => l.startsWith('v6-peer'))!, /alive\s+direct\/v6\s+12\.3ms/)
  assert.match(lines.find(l => l.startsWith('v4-peer'))!, /alive\s+direct\s+12\.3ms/)
  assert.match(lines.find(l => l.startsWith('v6-relayed'))!, /alive\s+relay:r1\/v6\s/)
  const { readFileSync } = await import('node:fs')
  const doc = readFileSync(new URL('../../../docs/CONFIGURATION.md', import.meta.url), 'utf8')
  assert.match(doc.slice(doc.indexOf('## `wgmesh info --json`')), /\| `family` \| number, optional \|/)
})

test('`status` is an alias of `info`, which takes --json and --wide', () => {
  const info = buildProgram().commands.find(c => c.name() === 'info')!
  assert.deepEqual(info.aliases(), ['status'])
  const flags = info.options.map(o => o.long)
  for (const f of ['--json', '--wide', '--state-dir', '--socket']) assert.ok(flags.includes(f), f)
})

test('the JSON layout: schema 1, version, RTT fields documented in CONFIGURATION.md', async () => {
  const { readFileSync } = await import('node:fs')
  const doc = readFileSync(new URL('../../../docs/CONFIGURATION.md', import.meta.url), 'utf8')
  const section = doc.slice(doc.indexOf('## `wgmesh info --json`'))
  assert.ok(section.length > 100, 'CONFIGURATION.md has a `wgmesh info --json` section')
  // every field of the example is documented
  for (const k of [...Object.keys(info), ...Object.keys(info.peers[0]!), 'rxTotal', 'txTotal', 'via', 'cert']) {
    assert.ok(section.includes(`\`${k}\``), `field ${k} documented`)
  }
  const parsed = JSON.parse(JSON.stringify(info)) as AgentInfo
  assert.equal(parsed.schema, 1)
})

test('while nobody was reached, the text says so before the table (wrong mesh key? unreachable seed?)', () => {
  const line = 'no member reached since 12:00:00: 198.18.1.1:51821 answered but refused the connection: a different mesh key?'
  const out = formatInfo({ ...info, join: { line } })
  assert.ok(out.includes(`joining   ${line}`), out)
  assert.ok(out.indexOf('joining') < out.indexOf('NAME'), 'before the peer table')
  assert.ok(!formatInfo(info).includes('joining'), 'nothing once a member was reached')
})
