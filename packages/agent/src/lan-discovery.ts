/**
 * LAN discovery: a sealed, signed beacon broadcast on each LAN subnet (TTL 1, never routed),
 * so that two members behind the same NAT find each other's LAN address and go direct over
 * the LAN even when the router does not hairpin. Beacons are sealed like records (mesh key +
 * node key): outsiders on the LAN learn nothing and cannot inject candidates.
 */
import { randomBytes } from 'node:crypto'
import { open, seal, type RecordSigner } from '@wgmesh/core'
import { startLanBeacon, type LanBeacon } from '@wgmesh/nat'
import type { Logger } from './logger.js'

export interface LanDiscoveryInit {
  port: number
  meshKey: Uint8Array
  signer: RecordSigner
  wgPort: number
  /** Our gossip TCP port, announced so that LAN neighbours can dial it (0/undefined: not announced). */
  gossipPort?: number
  excludeInterfaces: string[]
  intervalMs: number
  log: Logger
  onFound: (nodeId: string, endpoint: string) => void
  /** A LAN neighbour's gossip address (a multiaddr without /p2p), when its beacon names one. */
  onGossip?: (nodeId: string, addr: string) => void
}

const MAX_AGE_MS = 60_000

export async function startLanDiscovery (init: LanDiscoveryInit): Promise<LanBeacon> {
  return await startLanBeacon({
    port: init.port,
    excludeInterfaces: init.excludeInterfaces,
    intervalMs: init.intervalMs,
    payload: () => seal(init.meshKey, init.signer, new TextEncoder().encode(JSON.stringify({
      t: 'lan', wgPort: init.wgPort, at: Date.now(), ...(init.gossipPort !== undefined && init.gossipPort > 0 ? { gossipPort: init.gossipPort } : {})
    })), new Uint8Array(randomBytes(24))),
    onBeacon: (data, from) => {
      const o = open(init.meshKey, data, 1200)
      if (!o.ok || o.signerId === init.signer.nodeId) return
      try {
        const b = JSON.parse(new TextDecoder().decode(o.payload)) as { t?: unknown, wgPort?: unknown, at?: unknown, gossipPort?: unknown }
        if (b.t !== 'lan' || !Number.isInteger(b.wgPort) || (b.wgPort as number) < 1 || (b.wgPort as number) > 65535) return
        if (typeof b.at !== 'number' || Math.abs(Date.now() - b.at) > MAX_AGE_MS) return // replayed
        init.onFound(o.signerId, `${from.address}:${b.wgPort as number}`)
        const gp = b.gossipPort
        if (Number.isInteger(gp) && (gp as number) >= 1 && (gp as number) <= 65535 && /^[0-9.]+$/.test(from.address)) {
          init.onGossip?.(o.signerId, `/ip4/${from.address}/tcp/${gp as number}`)
        }
      } catch {}
    },
    onError: (err) => { init.log.debug('LAN beacon error', { error: err.message }) }
  })
}
