/**
 * @packageDocumentation
 *
 * WireGuard configurator of wgmesh: makes one WireGuard interface match a
 * {@link DesiredWireGuard} state, idempotently and add-before-remove, with every OS
 * command going through a {@link CommandRunner} seam (no shell, ever).
 *
 * @example
 * ```ts
 * import { createConfigurator, publicKeyFromPrivateKey } from '@wgmesh/wireguard'
 *
 * const wg = createConfigurator({
 *   interface: 'wgmesh0',
 *   backend: 'auto', // kernel module, else wireguard-go (like wg-quick)
 *   expectedPublicKey: publicKeyFromPrivateKey(privateKeyB64)
 * })
 * const { steps } = await wg.apply({
 *   interface: 'wgmesh0',
 *   privateKeyFile: '/var/lib/wgmesh/wg.key',
 *   listenPort: 51820,
 *   addresses: ['100.96.3.4/16', 'fdab:cdef:1234::5/48'],
 *   mtu: 1420,
 *   peers: [{ publicKey: 'xTIB...=', endpoint: '198.51.100.7:51820', allowedIps: ['100.96.1.2/32'], persistentKeepalive: 25 }]
 * })
 * // steps: the `wg set` / `ip` argv that ran; [] when already in sync
 * const dump = await wg.show() // per-peer endpoint, latestHandshake, transferRx/Tx
 * await wg.destroy()
 * ```
 *
 * Tests use {@link FakeWireGuardRunner}, an in-memory host that records every command as text.
 */
export type { DesiredWireGuard, DesiredPeer } from '@wgmesh/core'
export type { CommandRunner, RunOptions, RunResult, ExecRunnerInit } from './command-runner.js'
export { execRunner } from './command-runner.js'
export {
  CommandFailedError, DumpParseError, IpOutputParseError, InterfaceMissingError, InterfaceMismatchError, InvalidKeyError
} from './errors.js'
export type { Dump, DumpInterface, DumpPeer } from './dump.js'
export { parseDump } from './dump.js'
export type { LinkInfo } from './addr.js'
export { parseAddrShow, parseLinkShow } from './addr.js'
export { canonicalCidr, canonicalIp } from './cidr.js'
export { publicKeyFromPrivateKey } from './keys.js'
export type { Step, CurrentState, PlanOptions } from './plan.js'
export { planWireGuard, canonicalEndpoint } from './plan.js'
export type { BackendKind, BackendOptions, CreatedInterface } from './backend.js'
export { detectBackend, kernelLacksWireGuard, createInterface, userspaceBinary, kernelCreateStep, userspaceCreateStep, deleteStep } from './backend.js'
export { readCurrentState, readSteps } from './state.js'
export type { ConfiguratorInit, ApplyResult } from './configurator.js'
export { WireGuardConfigurator, createConfigurator } from './configurator.js'
export type { FakeWireGuardRunnerInit, FakeInterface, FakePeer } from './fake-runner.js'
export { FakeWireGuardRunner } from './fake-runner.js'
export { UapiParseError, UapiEncodeError, UapiError, UapiConnectionError } from './errors.js'
export type { ParsedEndpoint, ParseUapiOptions } from './uapi-parse.js'
export { parseUapiGet, parseUapiSetResponse, parseEndpoint, formatEndpoint, UAPI_MAX_RESPONSE_BYTES } from './uapi-parse.js'
export type { UapiSetRequest, UapiPeerChange, WgSetAsUapi } from './uapi-set.js'
export { encodeUapiSet, wgSetStepToUapi } from './uapi-set.js'
export type { UapiTransport, UnixUapiInit } from './uapi.js'
export { unixUapi, uapiGet, uapiSet, runWgSetOverUapi, runUapiSet, readPrivateKeyFile } from './uapi.js'
export type { StepGroup, BatchOptions } from './step-batch.js'
export { batchSteps, ipBatchable, ipBatchScript, failedBatchIndex } from './step-batch.js'
export type { LinkReader, LinkRead, SysfsLinkReaderInit } from './link-reader.js'
export { sysfsLinkReader } from './link-reader.js'
export type { ReadOptions, HostRead } from './state.js'
export { readHost, readDump } from './state.js'
export { FakeUapi, FakeLinkReader } from './fake-uapi.js'
