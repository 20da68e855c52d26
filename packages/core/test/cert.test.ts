/**
 * Certificate mode, the pure parts (issue 7 item 4): certificates and revocations (encode,
 * decode, verify, every refusal) and the table's rules in certificate mode (a record must carry
 * a valid certificate naming its name and addresses; a certificate's address wins over a claim;
 * `relay` counts only with the role; revoked nodes are refused; expired certificates leave).
 * The same rules against running agents: test/netns/cert-mode.test.ts.
 */
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { caPublicFromSeed, decodeCaPublic, decodeCaSeed, encodeCaPublic, encodeCaSeed, signToken } from '../src/ca.js'
import { certGrantsRoute, certRoles, decodeCert, signCert, verifyCert, type NodeCert } from '../src/cert.js'
import {
  RevocationSet, revocationMessage, revocationOfMessage, signRevocation, verifyRevocation, type Revocation
} from '../src/revocation.js'
import { CertTrust } from '../src/cert-trust.js'
import { Membership, type MemberChange } from '../src/membership.js'
import { validateMessage, validateSealed } from '../src/validate.js'
import { chooseRelay, relayEligible } from '../src/relay.js'
import { seal } from '../src/envelope.js'
import { decodeRecord, encodeRecord, MAX_CERT_CHARS } from '../src/record.js'
import type { NodeRecord } from '../src/types.js'
import { MESH_KEY, T0, nonce, recordOf, sealRecord, settings, testNode, ula, type TestNode } from './fixtures.js'

const DAY = 86_400_000
const SKEW = settings.maxClockSkewMs
const caSeed = new Uint8Array(createHash('sha256').update('ca').digest())
const otherCaSeed = new Uint8Array(createHash('sha256').update('other ca').digest())
const CA = caPublicFromSeed(caSeed)
const OTHER_CA = caPublicFromSeed(otherCaSeed)

function certFor (n: TestNode, over: Partial<NodeCert> = {}, seed = caSeed): string {
  return signCert(seed, {
    v: 1, ca: caPublicFromSeed(seed).fingerprint, serial: createHash('md5').update(n.label + JSON.stringify(over)).digest('hex'),
    nodeId: n.signer.nodeId, name: n.label, roles: [], notBefore: T0 - DAY, notAfter: T0 + 365 * DAY, ...over
  })
}

/** A record of `n` carrying a certificate (its own hashed addresses unless `over` says otherwise). */
function certRecord (n: TestNode, certOver: Partial<NodeCert> = {}, over: Partial<NodeRecord> = {}): NodeRecord {
  return recordOf(n, { cert: certFor(n, certOver), ...over })
}

function certTable (self: TestNode, selfRec: NodeRecord = certRecord(self)): { t: Membership, trust: CertTrust } {
  const trust = new CertTrust(CA)
  const t = new Membership({ selfId: self.signer.nodeId, settings, ula, certs: trust })
  t.accept(selfRec, sealRecord(self, selfRec), T0, 'self')
  return { t, trust }
}

function offer (t: Membership, n: TestNode, r: NodeRecord, now = T0 + 1): string | MemberChange[] {
  const sealed = sealRecord(n, r)
  const v = validateSealed(MESH_KEY, sealed, t, now)
  if (v.verdict !== 'accept') return v.verdict === 'reject' ? v.reason : v.verdict
  return t.accept(v.record, sealed, now, 'gossip')
}

/** Replace the payload of a token and keep its signature (a forgery). */
function tamper (token: string, edit: (p: Record<string, unknown>) => void): string {
  const [prefix, body, sig] = token.split('.') as [string, string, string]
  const p = JSON.parse(Buffer.from(body, 'base64url').toString()) as Record<string, unknown>
  edit(p)
  return `${prefix}.${Buffer.from(JSON.stringify(p)).toString('base64url')}.${sig}`
}

test('CA files: ca.pub and ca.key round-trip; junk is refused with a reason', () => {
  const pub = encodeCaPublic(CA)
  const back = decodeCaPublic(pub + '\n')
  assert.ok(back.ok)
  assert.equal(back.ca.fingerprint, CA.fingerprint)
  assert.equal(CA.fingerprint.length, 43)
  assert.deepEqual(decodeCaSeed(encodeCaSeed(caSeed)), caSeed)
  assert.equal(decodeCaSeed(pub), undefined, 'a public key is not a CA key')
  for (const bad of ['', 'wgmca1.', 'wgmca1.abc', 'ssh-ed25519 AAAA', encodeCaSeed(caSeed)]) assert.equal(decodeCaPublic(bad).ok, false, bad)
})

test('a certificate round-trips and verifies; every refusal has its reason', () => {
  const n = testNode('alpha')
  const token = certFor(n, { ipv4: '100.96.7.7', ipv6: 'fd00::7', roles: ['relay'] })
  assert.ok(token.length < 600, `${token.length} characters`)
  const ok = verifyCert(token, CA, n.signer.nodeId, T0, SKEW)
  assert.ok(ok.ok)
  assert.equal(ok.cert.ipv4, '100.96.7.7')
  assert.deepEqual(certRoles(token), ['relay'])
  const reason = (t: string, nodeId = n.signer.nodeId, now = T0): string => { const v = verifyCert(t, CA, nodeId, now, SKEW); return v.ok ? 'ok' : v.reason }
  // bad signature: a field changed under the old signature; a signature of another token
  assert.equal(reason(tamper(token, p => { p.roles = ['relay', 'gateway'] })), 'signature')
  assert.equal(reason(tamper(token, p => { p.ipv4 = '100.96.7.8' })), 'signature')
  const other = certFor(testNode('beta'))
  assert.equal(reason(`${token.split('.').slice(0, 2).join('.')}.${other.split('.')[2]!}`), 'signature')
  // a token signed for records, or signed by the CA under another domain, is no certificate
  const body = JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString()) as object
  assert.equal(reason(signToken(caSeed, 'wgmc1', 'wgmesh-revocation-v1\0', body)), 'signature')
  // wrong CA: names another CA; or names ours but is signed by another
  assert.equal(reason(certFor(n, {}, otherCaSeed)), 'wrong-ca')
  assert.equal(reason(signCert(otherCaSeed, { ...ok.cert, ca: CA.fingerprint })), 'signature')
  // wrong node, expired, not yet valid (with the records' skew tolerance either side)
  assert.equal(reason(token, testNode('beta').signer.nodeId), 'node-id')
  const short = certFor(n, { notBefore: T0, notAfter: T0 + 10_000 })
  assert.equal(reason(short, n.signer.nodeId, T0 + 10_000 + SKEW), 'ok', 'within the skew tolerance')
  assert.equal(reason(short, n.signer.nodeId, T0 + 10_001 + SKEW), 'expired')
  assert.equal(reason(short, n.signer.nodeId, T0 - SKEW - 1), 'not-yet-valid')
  // oversized
  assert.equal(reason(token.slice(0, 6) + 'A'.repeat(MAX_CERT_CHARS) + token.slice(6)), 'oversize')
  // malformed: not a token, bad base64, unknown field, bad values (each signed by the right CA)
  for (const bad of ['', 'wgmc1', 'wgmc1..', 'wgmr1.' + token.slice(6), token + '.x', token.replace('.', '.!')]) assert.equal(reason(bad), 'malformed', bad)
  const signed = (p: Record<string, unknown>): string => signToken(caSeed, 'wgmc1', 'wgmesh-cert-v1\0', { ...ok.cert, ...p })
  for (const [what, p] of Object.entries({
    unknownField: { admin: true },
    unknownRole: { roles: ['root'] },
    dupRole: { roles: ['relay', 'relay'] },
    badName: { name: 'Not A Name' },
    badIPv4: { ipv4: '100.96.7' },
    nonCanonicalIPv4: { ipv4: '100.96.07.7' },
    nonCanonicalIPv6: { ipv6: 'fd00:0::7' },
    badSerial: { serial: 'xyz' },
    badNodeId: { nodeId: 'abc' },
    backwards: { notBefore: T0, notAfter: T0 - 1 },
    tooLong: { notBefore: 0, notAfter: 11 * 365 * DAY },
    v2: { v: 2 }
  })) assert.equal(reason(signed(p)), 'malformed', what)
  assert.equal(decodeCert('nonsense').ok, false)
  assert.throws(() => signCert(caSeed, { ...ok.cert, roles: ['root' as 'relay'] }), /roles/)
})

test('revocations: verified against the CA; the set is bounded and drops what no longer matters', () => {
  const n = testNode('gone')
  const rev: Revocation = { v: 1, ca: CA.fingerprint, nodeId: n.signer.nodeId, issuedAt: T0, until: T0 + 30 * DAY }
  const token = signRevocation(caSeed, rev)
  const v = verifyRevocation(token, CA)
  assert.ok(v.ok)
  assert.equal(v.revocation.nodeId, n.signer.nodeId)
  const why = (t: string): string => { const x = verifyRevocation(t, CA); return x.ok ? 'ok' : x.reason }
  assert.equal(why(tamper(token, p => { p.nodeId = testNode('victim').signer.nodeId })), 'signature')
  assert.equal(why(signRevocation(otherCaSeed, { ...rev, ca: OTHER_CA.fingerprint })), 'wrong-ca')
  assert.equal(why(signRevocation(otherCaSeed, rev)), 'signature')
  assert.equal(why(tamper(token, p => { p.extra = 1 })), 'malformed')
  assert.equal(why(certFor(n)), 'malformed', 'a certificate is not a revocation')
  assert.equal(why(token + 'A'.repeat(600)), 'oversize')
  // carried in a sealed message beside records; a record is not mistaken for one
  assert.equal(revocationOfMessage(revocationMessage(token)), token)
  assert.equal(revocationOfMessage(encodeRecord(recordOf(n))), undefined)
  // the set: fresh once, bounded, the shortest-lived goes first, pruned after `until`
  const set = new RevocationSet(CA, 2)
  const add = (id: string, until: number): string => { const r = set.add(signRevocation(caSeed, { ...rev, nodeId: testNode(id).signer.nodeId, until }), T0, SKEW); return r.ok ? (r.fresh ? 'fresh' : 'known') : r.reason }
  assert.equal(add('a', T0 + 10 * DAY), 'fresh')
  assert.equal(add('a', T0 + 10 * DAY), 'known')
  assert.equal(add('b', T0 + 20 * DAY), 'fresh')
  assert.equal(add('c', T0 + 5 * DAY), 'full', 'shorter-lived than all held')
  assert.equal(add('d', T0 + 30 * DAY), 'fresh', 'evicts the shortest-lived')
  assert.equal(set.has(testNode('a').signer.nodeId), false)
  assert.equal(set.size, 2)
  assert.equal(add('e', T0 - SKEW - 1), 'expired')
  assert.deepEqual(set.prune(T0 + 20 * DAY + SKEW + 1, SKEW), [testNode('b').signer.nodeId])
  assert.equal(set.add(signRevocation(otherCaSeed, rev), T0, SKEW).ok, false)
})

test('cert mode: a record needs a valid certificate of this CA for its own nodeId, name and addresses', () => {
  const [self, a] = [testNode('self'), testNode('peer-a')]
  const { t, trust } = certTable(self)
  const base = recordOf(a)
  assert.equal(offer(t, a, base), 'cert-missing')
  assert.equal(offer(t, a, { ...base, cert: certFor(a, {}, otherCaSeed) }), 'cert-invalid')
  assert.equal(offer(t, a, { ...base, cert: certFor(testNode('someone')) }), 'cert-invalid', 'another node\'s certificate')
  assert.equal(offer(t, a, { ...base, cert: tamper(certFor(a), p => { p.roles = ['relay'] }) }), 'cert-invalid')
  assert.equal(offer(t, a, { ...base, cert: certFor(a, { notBefore: T0 - 2 * DAY, notAfter: T0 - DAY }) }), 'cert-expired')
  assert.equal(offer(t, a, { ...base, cert: certFor(a, { notBefore: T0 + DAY, notAfter: T0 + 2 * DAY }) }), 'cert-expired')
  assert.equal(offer(t, a, { ...base, cert: certFor(a, { name: 'other-name' }) }), 'cert-mismatch')
  // IPs must be the certificate's, each family where it names one
  assert.equal(offer(t, a, { ...base, cert: certFor(a, { ipv4: '100.96.9.9' }) }), 'cert-mismatch')
  assert.equal(offer(t, a, { ...base, cert: certFor(a, { ipv6: 'fd00::9' }) }), 'cert-mismatch')
  assert.ok(trust.lastDetail.includes('ipv6'), trust.lastDetail)
  assert.ok(Array.isArray(offer(t, a, { ...base, ipv4: '100.96.9.9', cert: certFor(a, { ipv4: '100.96.9.9' }) })))
  assert.equal(t.get(a.signer.nodeId)?.record.ipv4, '100.96.9.9')
  // shared-key mode is unchanged: the same record without a certificate is taken
  const plain = new Membership({ selfId: self.signer.nodeId, settings, ula })
  assert.ok(Array.isArray(offer(plain, a, base)))
})

test('cert mode: a certificate\'s address wins over a claim; the claimant moves, or stays out of the plan', () => {
  const [self, holder, certified, third] = ['self', 'holder', 'certified', 'third'].map(testNode) as [TestNode, TestNode, TestNode, TestNode]
  const held = certRecord(holder) // holds its hashed address by claim (its certificate names none)
  const { t } = certTable(self)
  assert.ok(Array.isArray(offer(t, holder, held)))
  // another claim on it is refused, as in shared-key mode
  assert.equal(offer(t, third, certRecord(third, {}, { ipv4: held.ipv4 })), 'ip-conflict')
  // a certificate naming it takes it; the holder loses it and leaves the plan until it moves
  const certRec = certRecord(certified, { ipv4: held.ipv4 }, { ipv4: held.ipv4 })
  const changes = offer(t, certified, certRec)
  assert.ok(Array.isArray(changes))
  assert.ok(changes.some(c => c.kind === 'conflict-lost' && c.nodeId === holder.signer.nodeId && c.winner === certified.signer.nodeId))
  assert.equal(t.ipv4Holder(held.ipv4), certified.signer.nodeId)
  assert.equal(t.get(holder.signer.nodeId)?.conflict, 'ip')
  assert.equal(offer(t, holder, { ...held, seq: 2 }), 'ip-conflict', 'the holder cannot keep it')
  assert.ok(Array.isArray(offer(t, holder, { ...certRecord(holder, {}, { ipSalt: 1, ipv4: '100.96.200.1' }), seq: 3 })), 'it moves')
  assert.equal(t.get(holder.signer.nodeId)?.conflict, undefined)
  // on the holder itself, its own address (restored, long settled) gives way too: it must move
  const own = certTable(holder, held).t
  assert.ok(Array.isArray(offer(own, third, certRecord(third), T0 + 60_000)), 'settled')
  const lost = offer(own, certified, certRec, T0 + 120_000)
  assert.ok(Array.isArray(lost) && lost.some(c => c.kind === 'conflict-lost' && c.nodeId === holder.signer.nodeId))
  // an address a certificate names is never taken by a claim, even a provisional own one's rule
  const pinned = certTable(certified, certRec).t
  assert.equal(offer(pinned, holder, { ...held, ipSince: 0 }, T0 + 1), 'ip-conflict')
  // between two certificates naming one address, the one issued later wins
  const newer = certRecord(third, { ipv4: held.ipv4, notBefore: T0 - DAY + 1 }, { ipv4: held.ipv4 })
  assert.ok(Array.isArray(offer(t, third, { ...newer, seq: 5 })))
  assert.equal(t.ipv4Holder(held.ipv4), third.signer.nodeId)
  assert.equal(offer(t, certified, { ...certRec, seq: 6 }), 'ip-conflict', 'the older certificate loses')
})

test('cert mode: relay counts only with the relay role', () => {
  const [a, b, withRole, without] = ['a', 'b', 'with-role', 'without'].map(testNode) as [TestNode, TestNode, TestNode, TestNode]
  const r1 = certRecord(withRole, { roles: ['relay'] }, { relay: true, nat: 'public' })
  const r2 = certRecord(without, { roles: ['gateway'] }, { relay: true, nat: 'public' })
  assert.equal(relayEligible(r1), true)
  assert.equal(relayEligible(r2), false)
  assert.equal(relayEligible(recordOf(without, { relay: true, nat: 'public' })), true, 'shared-key mode: no certificate, no gate')
  // whatever the hash order, the pair goes through the role holder only
  for (let i = 0; i < 20; i++) {
    const x = testNode(`x${i}`); const y = testNode(`y${i}`)
    assert.equal(chooseRelay(x.signer.nodeId, y.signer.nodeId, [r2, r1])?.nodeId, withRole.signer.nodeId)
  }
  assert.equal(chooseRelay(a.signer.nodeId, b.signer.nodeId, [r2]), undefined)
})

test('cert mode: a revoked node is forgotten at once and its records, even newer ones, are refused', () => {
  const [self, bad] = [testNode('self'), testNode('bad')]
  const { t, trust } = certTable(self)
  const rec = certRecord(bad)
  assert.ok(Array.isArray(offer(t, bad, rec)))
  const token = signRevocation(caSeed, { v: 1, ca: CA.fingerprint, nodeId: bad.signer.nodeId, issuedAt: T0, until: T0 + 365 * DAY })
  assert.ok(trust.revocations.add(token, T0, SKEW).ok)
  assert.deepEqual(t.revoke(bad.signer.nodeId), [{ kind: 'revoked', nodeId: bad.signer.nodeId }])
  assert.equal(t.get(bad.signer.nodeId), undefined)
  assert.equal(t.ipv4Holder(rec.ipv4), undefined, 'its address is free')
  assert.equal(offer(t, bad, { ...rec, seq: 1_000_000, issuedAt: T0 + 5 }), 'revoked')
  assert.equal(offer(t, bad, { ...rec, seq: 1_000_001, leaving: true }), 'revoked')
  // a sealed revocation travels on the records channel and comes out as such
  const sealed = seal(MESH_KEY, self.signer, revocationMessage(token), nonce())
  const v = validateMessage(MESH_KEY, sealed, t, T0)
  assert.equal(v.verdict, 'revocation')
  assert.equal(validateSealed(MESH_KEY, sealed, t, T0).verdict, 'reject')
})

test('cert mode: a member whose certificate expires leaves the table; its later records are refused', () => {
  const [self, brief] = [testNode('self'), testNode('brief')]
  const { t } = certTable(self)
  const rec = certRecord(brief, { notBefore: T0 - 1000, notAfter: T0 + 5000 })
  assert.ok(Array.isArray(offer(t, brief, rec)))
  assert.deepEqual(t.tick(T0 + 5000 + SKEW), [])
  assert.deepEqual(t.tick(T0 + 5001 + SKEW), [{ kind: 'expired', nodeId: brief.signer.nodeId }])
  assert.equal(t.get(brief.signer.nodeId), undefined)
  assert.equal(offer(t, brief, { ...rec, seq: 2 }, T0 + 5001 + SKEW), 'cert-expired')
})

test('records: the cert field is bounded and shaped', () => {
  const n = testNode('n')
  const ok = certRecord(n)
  assert.ok(decodeRecord(encodeRecord(ok)).ok)
  for (const cert of ['x', 'wgmc1.a.b', `wgmc1.${'A'.repeat(MAX_CERT_CHARS)}.${'A'.repeat(86)}`, 7]) {
    const d = decodeRecord(encodeRecord({ ...ok, cert } as unknown as NodeRecord))
    assert.equal(d.ok, false)
  }
})

test('route grants: routes need the gateway role and canonical CIDRs; a grant covers its subnets, an exit only where named', () => {
  const a = testNode('gw')
  assert.throws(() => certFor(a, { routes: ['10.1.0.0/24'] }), /routes need the gateway role/)
  assert.throws(() => certFor(a, { roles: ['gateway'], routes: ['10.1.0.5/24'] }), /canonical/)
  assert.throws(() => certFor(a, { roles: ['gateway'], routes: [] }), /routes must be 1\.\./)
  const d = decodeCert(certFor(a, { roles: ['gateway'], routes: ['10.1.0.0/16', '2001:db8:1::/48'] }))
  assert.ok(d.ok)
  const c = d.cert
  assert.deepEqual(c.routes, ['10.1.0.0/16', '2001:db8:1::/48'])
  assert.equal(certGrantsRoute(c, '10.1.0.0/16'), true)
  assert.equal(certGrantsRoute(c, '10.1.7.0/24'), true, 'a subnet inside the grant')
  assert.equal(certGrantsRoute(c, '10.0.0.0/8'), false, 'wider than the grant')
  assert.equal(certGrantsRoute(c, '10.2.0.0/24'), false)
  assert.equal(certGrantsRoute(c, '2001:db8:1:5::/64'), true)
  assert.equal(certGrantsRoute(c, '0.0.0.0/0'), false, 'no exit unless granted')
  assert.equal(certGrantsRoute({ ...c, roles: [] }, '10.1.0.0/16'), false, 'no gateway role, no routes')
  const exit = decodeCert(certFor(a, { roles: ['gateway'], routes: ['0.0.0.0/0'] }))
  assert.ok(exit.ok && certGrantsRoute(exit.cert, '0.0.0.0/0') && certGrantsRoute(exit.cert, '10.9.0.0/24'))
})
