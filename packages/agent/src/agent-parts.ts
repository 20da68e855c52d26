/**
 * The agent's options mapped to its parts' settings (pure): which ports, timers and modes the
 * failure detector and the NAT traversal run with, from `AgentInit` and the mesh settings.
 */
import { InvalidConfigError, detectorTimings, formatCidr, parseAdvertisedRoutes, type Cidr, type MeshSettings, type RecordSigner } from '@wgmesh/core'
import { execRunner, type CommandRunner } from '@wgmesh/wireguard'
import { seedToMultiaddr } from './dial-policy.js'
import type { AgentInit } from './agent-init.js'
import type { LivenessInit } from './liveness.js'
import type { TraversalInit } from './traversal.js'
import type { Logger } from './logger.js'
import type { GatewaysInit } from './gateways.js'

/** The gossip TCP port; the LAN beacon, probe and relay-control ports are counted from it. */
export function gossipPortOf (init: AgentInit): number {
  return init.gossipPort ?? 51821
}

export function livenessInit (init: AgentInit, settings: MeshSettings, meshKey: Uint8Array, signer: RecordSigner, log: Logger): LivenessInit {
  const gossipPort = gossipPortOf(init)
  return {
    selfId: signer.nodeId,
    detector: detectorTimings(settings.heartbeatMs, settings.deadAfterMs).detector,
    meshKey,
    signer,
    port: init.probePort ?? (gossipPort === 0 ? 0 : gossipPort + 2),
    via: init.probeVia ?? 'overlay',
    log
  }
}

export function traversalInit (init: AgentInit, settings: MeshSettings, ula: Cidr, wgPort: number, meshKey: Uint8Array, signer: RecordSigner, log: Logger): TraversalInit {
  const gossipPort = gossipPortOf(init)
  return {
    iface: init.interface ?? 'wgmesh0',
    overlay: [settings.cidr4, ula],
    wgPort,
    keepaliveS: settings.keepaliveS,
    stunPort: init.stunPort ?? 3478,
    stunServers: init.stunServers ?? [],
    relay: init.relay ?? 'auto',
    upnp: init.upnp ?? true,
    lanPort: init.lanPort ?? (gossipPort === 0 ? 0 : gossipPort + 1),
    gossipPort,
    seedHosts: (init.peers ?? []).map(p => /^\/(?:ip4|ip6|dns4|dns6|dns)\/([^/]+)/.exec(seedToMultiaddr(p, gossipPort || 51821))?.[1] ?? ''),
    meshKey,
    signer,
    runner: init.wgRunner ?? execRunner(),
    probeVia: init.probeVia ?? 'overlay',
    selfId: signer.nodeId,
    log
  }
}

/** Advertised routes checked against the mesh's ranges (a clear error at start), and the group's settings. */
export function gatewaysInit (init: AgentInit, settings: MeshSettings, ula: Cidr, name: string): GatewaysInit {
  const meshRanges = [formatCidr(settings.cidr4), formatCidr(ula)]
  const parsed = parseAdvertisedRoutes(init.advertiseRoutes ?? [], meshRanges)
  if (!parsed.ok) throw new InvalidConfigError(`--advertise-route: ${parsed.errors.join('; ')}`)
  return {
    routes: parsed.routes,
    group: init.routeGroup ?? name,
    priority: init.routePriority ?? 100,
    policy: init.routeReturn ?? 'preferred',
    preemptDelayMs: init.preemptDelayMs ?? 5000,
    masquerade: init.routeMasquerade ?? true,
    meshRanges,
    ...(init.exitNode === undefined ? {} : { exitGroup: init.exitNode }),
    ...(init.gatewayHook === undefined ? {} : { hook: init.gatewayHook })
  }
}

/**
 * What runs the route commands: the given seam, the real commands — or, when the agent runs on
 * a fake WireGuard host (in-process tests), a recorder that runs nothing: such an agent shares
 * the test machine's real network namespace, whose routing it must never touch.
 */
export function routeRunner (init: AgentInit): CommandRunner {
  if (init.routeRunner !== undefined) return init.routeRunner
  if (init.wgRunner !== undefined) return { run: async () => ({ stdout: '', stderr: '', code: 0 }) }
  return execRunner()
}

/** The CPU this process has used so far (user + system), in ms (the serving line's `cpuMs`). */
export function processCpuMs (): number {
  const cpu = process.cpuUsage()
  return Math.round((cpu.user + cpu.system) / 1000)
}
