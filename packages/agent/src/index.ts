/**
 * @packageDocumentation
 * The wgmesh daemon: libp2p gossip of signed, encrypted records; the membership table from
 * @wgmesh/core; WireGuard through @wgmesh/wireguard; a root-only control socket; state dir.
 *
 * @example
 * ```ts
 * import { Agent } from '@wgmesh/agent'
 * const agent = new Agent({ stateDir: '/var/lib/wgmesh', createMesh: true })
 * await agent.start()
 * console.log((await agent.info()).ipv4)
 * await agent.stoppedPromise()
 * ```
 */
export { Agent, DEFAULT_STATE_DIR, meshTopic, type AgentInit } from './agent.js'
export { checkRouteInit } from './agent-init.js'
export type { GroupInfo } from './gateways.js'
export { StateStore, parseMeshKey, writeFileAtomic, type PersistedState, type KnownMember } from './state-store.js'
export { StateError, MeshKeyError, ControlError } from './errors.js'
export { callControl, serveControl, type ControlRequest } from './control-socket.js'
export { createLogger, silentLogger, type Logger, type LogLevel } from './logger.js'
export { formatInfo, buildInfo, type AgentInfo, type PeerInfo, type CertInfo } from './info.js'
export { seedToMultiaddr, DialPolicy } from './dial-policy.js'
