/** In-process agents on 127.0.0.1 with the fake WireGuard host. */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { generateKeyPairSync, randomBytes, sign as cryptoSign } from 'node:crypto'
import { Agent, StateStore, meshTopic, silentLogger, type AgentInit } from '@wgmesh/agent'
import { createSigner, encodeRecord, meshSettings, overlayIPv4, overlayIPv6, seal, ulaPrefix, type NodeRecord, type RecordSigner } from '@wgmesh/core'
import { createGossipNode, type GossipNode } from '../../packages/agent/src/transport/index.js'
import { FakeWireGuardRunner } from '@wgmesh/wireguard'

export interface TestAgent { agent: Agent, runner: FakeWireGuardRunner, dir: string, iface: string }

const dirs: string[] = []
export function tempDir (label: string): string {
  const d = mkdtempSync(join(tmpdir(), `wgmesh-${label}-`))
  dirs.push(d)
  return d
}
export function cleanupDirs (): void {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true })
}

let counter = 0
export async function startAgent (opts: Partial<AgentInit> & { label: string }): Promise<TestAgent> {
  const dir = opts.stateDir ?? tempDir(opts.label)
  const store = new StateStore(dir)
  store.ensureDir()
  const iface = opts.interface ?? `wgmi${process.pid % 1000}x${counter++}`
  const runner = new FakeWireGuardRunner({ privateKeys: { [store.wgKeyPath()]: store.wgPrivateKey() } })
  const agent = new Agent({
    gossipHost: '127.0.0.1',
    gossipPort: 0,
    probePort: 0,
    probeVia: 'underlay',
    // the fake WireGuard host never completes a handshake, so with relays on, every pair would
    // go to a relay after the punching timeout; relays are tested in netns with real WireGuard
    relay: 'off',
    heartbeatMs: 200,
    deadAfterMs: 1000,
    logger: silentLogger,
    ...opts,
    name: opts.name ?? opts.label,
    stateDir: dir,
    interface: iface,
    wgRunner: runner
  })
  await agent.start()
  return { agent, runner, dir, iface }
}

export async function waitFor (what: string, cond: () => boolean | Promise<boolean>, timeoutMs = 15_000, stepMs = 25): Promise<number> {
  const t0 = Date.now()
  for (;;) {
    if (await cond()) return Date.now() - t0
    if (Date.now() - t0 > timeoutMs) throw new Error(`timed out after ${timeoutMs} ms waiting for: ${what}`)
    await new Promise(resolve => setTimeout(resolve, stepMs))
  }
}

/** A comparable text of an agent's view: every active member's id, addresses and key. */
export function viewOf (a: Agent): string {
  return a.members.active()
    .filter(m => m.conflict === undefined)
    .map(m => `${m.record.nodeId} ${m.record.ipv4} ${m.record.ipv6} ${m.record.wgPublicKey} ${m.status}`)
    .sort().join('\n')
}

/**
 * A rogue member: a libp2p node holding the mesh key (it gets past pnet, as a compromised member
 * would) that hands running agents whatever sealed records it is given, over sync.
 */
export interface Rogue {
  node: GossipNode
  /** Push `records` to each agent in one sync exchange (dialing it first if needed). */
  push: (records: Uint8Array[], to: Agent[]) => Promise<void>
  stop: () => Promise<void>
}

export async function startRogue (meshKey: Uint8Array): Promise<Rogue> {
  let batch: Uint8Array[] = []
  const node = await createGossipNode({
    identitySeed: new Uint8Array(randomBytes(32)),
    meshKey,
    listen: ['/ip4/127.0.0.1/tcp/0'],
    topic: meshTopic(ulaPrefix(meshKey)),
    validate: () => 'accept',
    onMessage: () => {},
    // claims a different table every time and sends its batch whatever it is asked for
    sync: { hash: () => new Uint8Array(randomBytes(32)), digest: () => [], recordsFor: () => batch },
    onSyncResult: () => {}
  })
  return {
    node,
    push: async (records, to) => {
      batch = records
      for (const a of to) {
        if (!node.connectedPeers().includes(a.peerId)) await node.dial(a.listenAddrs()[0]!)
        await node.sync(a.peerId)
      }
      batch = []
    },
    stop: async () => { await node.stop() }
  }
}

/** A well-formed record of `signer` (its own hashed addresses), sealed with the mesh key. */
const { cidr4 } = meshSettings({})
export function sealedRecord (meshKey: Uint8Array, signer: RecordSigner, over: Partial<NodeRecord> = {}): { record: NodeRecord, sealed: Uint8Array } {
  const k = over.wgPublicKey ?? randomBytes(32).toString('base64')
  const now = Date.now()
  const record: NodeRecord = {
    v: 1, nodeId: signer.nodeId, seq: now, issuedAt: now, name: 'rogue', wgPublicKey: k,
    ipv4: overlayIPv4(cidr4, k, 0), ipv6: overlayIPv6(ulaPrefix(meshKey), k, 0), ipSince: now, ipSalt: 0, wgPort: 51820,
    endpoints: ['198.51.100.9:51820'], gossipAddrs: [], routes: [], tags: [], ...over
  }
  return { record, sealed: seal(meshKey, signer, encodeRecord(record), new Uint8Array(randomBytes(24))) }
}

/**
 * A fresh node identity, fast (a flood needs thousands): the envelope's signer (see core's
 * envelope.ts: 0x01 ‖ public key ‖ Ed25519 signature over the domain tag and the payload ‖ payload)
 * over a key pair from node:crypto, instead of createSigner's derivation from a seed (~2 ms each).
 */
export function newSigner (): RecordSigner {
  const { publicKey, privateKey } = generateKeyPairSync('ed25519')
  const pub = Buffer.from(publicKey.export({ format: 'jwk' }).x!, 'base64url')
  return {
    nodeId: pub.toString('base64url'),
    sign: (payload) => {
      const sig = cryptoSign(null, Buffer.concat([Buffer.from('wgmesh-record-v1\0'), payload]), privateKey)
      return new Uint8Array(Buffer.concat([Buffer.from([0x01]), pub, sig, payload]))
    }
  }
}

/** The slow, product way (createSigner from a seed): for checks that the fast one agrees. */
export const seededSigner = (): RecordSigner => createSigner(new Uint8Array(randomBytes(32)))
