/**
 * @packageDocumentation
 *
 * NAT traversal helpers of wgmesh: a hand-rolled STUN codec (RFC 5389), a small rate-limited
 * STUN server that mesh nodes run for each other, a STUN client that probes several servers
 * from one socket, NAT type classification, LAN discovery beacons, and UPnP/NAT-PMP port
 * mapping of the WireGuard port. No public STUN servers are built in: the agent passes the
 * mesh's own.
 *
 * @example
 * ```ts
 * import { startStunServer, probeNat, classifyNat, mapWireGuardPort } from '@wgmesh/nat'
 *
 * const server = await startStunServer({ host: '0.0.0.0', port: 3478 })
 * const probe = await probeNat([{ host: '198.51.100.7', port: 3478 }, { host: '203.0.113.9', port: 3478 }])
 * const type = classifyNat(['192.0.2.7'], probe.localPort, probe.mappings) // 'cone'
 * const lease = await mapWireGuardPort({ localPort: 51820, protocol: 'UDP', ttlS: 3600, signal: AbortSignal.timeout(10_000) })
 * // lease.externalAddress:lease.externalPort is a candidate endpoint; lease.refresh() before ttlS runs out
 * ```
 */
export {
  StunTimeoutError, StunQueryError, InvalidArgumentError, GatewayNotFoundError, PortMappingError
} from './errors.js'
export type { HostPort, SocketFactory } from './socket.js'
export type { BindingResponse } from './stun-codec.js'
export {
  STUN_MAGIC_COOKIE, MAX_STUN_REQUEST_BYTES, bindingRequest, bindingSuccess, parseBindingResponse, parseBindingRequest, isBindingRequest,
  newTransactionId, sameTransactionId
} from './stun-codec.js'
export type { RateLimiterInit } from './rate-limit.js'
export type { ReplayCacheInit, ReplayVerdict } from './replay-cache.js'
export { ReplayCache } from './replay-cache.js'
export { RateLimiter } from './rate-limit.js'
export type { StunServer, StunServerInit, StunServerStats } from './stun-server.js'
export { startStunServer } from './stun-server.js'
export type { StunAnswer, StunMapping, NatProbe, ProbeNatOptions } from './stun-client.js'
export { queryStun, probeNat, probeFiltering, pickProbeServers } from './stun-client.js'
export type { NatType, RecordNatType, FilteringResult, ObservedMapping } from './nat-type.js'
export { classifyNat, portPreserved, underlayNatType, recordNatType, withFiltering } from './nat-type.js'
export type { BeaconTarget, LanSubnet, LanLink6, LanBeaconInit, LanBeacon, LanBeaconStats } from './lan-beacon.js'
export { MAX_BEACON_BYTES, LAN_BEACON_GROUP6, broadcastAddress, lanBroadcastTargets, lanMulticastLinks6, startLanBeacon, withoutZone } from './lan-beacon.js'
export type {
  PortMappingMethod, MapPortRequest, PortMappingLease, PortMapper, NatPortMapperClient, PortMapperInit
} from './port-mapping.js'
export { createPortMapper, mapWireGuardPort, parseProcNetRoute, localAddressFor, onlyFromGateway } from './port-mapping.js'
