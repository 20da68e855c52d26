/**
 * Pre-creates a mesh key file and every host's identity (state dir with node and WireGuard
 * keys), so benchmarks know each overlay address before the agents start and can ping from t0.
 */
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { randomBytes } from 'node:crypto'
import { allocate, meshSettings, ulaPrefix, wgPublicKeyFromPrivate } from '@wgmesh/core'
import { StateStore } from '@wgmesh/agent'
import type { WgmeshLab } from '../../test/netns/wgmesh-lab.js'

export function prepareIdentities (mesh: WgmeshLab, hosts: string[]): { keyFile: string, ip: Map<string, string> } {
  const meshKey = new Uint8Array(randomBytes(32))
  const keyFile = join(mesh.root, 'mesh.key')
  writeFileSync(keyFile, Buffer.from(meshKey).toString('base64') + '\n', { mode: 0o600 })
  const settings = meshSettings({})
  const ula = ulaPrefix(meshKey)
  const ip = new Map<string, string>()
  for (const h of hosts) {
    const store = new StateStore(mesh.node(h).stateDir)
    store.ensureDir()
    store.nodeSeed()
    ip.set(h, allocate(settings.cidr4, ula, wgPublicKeyFromPrivate(store.wgPrivateKey()), new Set()).ipv4)
  }
  return { keyFile, ip }
}
