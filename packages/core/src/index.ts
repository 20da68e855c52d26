/**
 * @packageDocumentation
 * The pure core of wgmesh: record format and validation, the membership table, overlay
 * addressing, and the planner from membership to desired WireGuard state. No sockets, no files,
 * no child processes, no `Date.now()`: callers pass the time in.
 *
 * @example
 * ```ts
 * import { Membership, meshSettings, ulaPrefix, validateSealed } from '@wgmesh/core'
 * const settings = meshSettings({ cidr4: '100.96.0.0/16' })
 * const table = new Membership({ selfId, settings, ula: ulaPrefix(meshKey) })
 * const v = validateSealed(meshKey, bytes, table, Date.now())
 * if (v.verdict === 'accept') table.accept(v.record, bytes, Date.now(), 'gossip')
 * ```
 */
export type * from './types.js'
export * from './errors.js'
export * from './ip.js'
export * from './settings.js'
export * from './keys.js'
export * from './envelope.js'
export * from './record.js'
export * from './addressing.js'
export * from './membership.js'
export * from './holdings.js'
export * from './admission.js'
export * from './gossip-addr.js'
export * from './underlay.js'
export * from './validate.js'
export * from './planner.js'
export * from './candidates.js'
export * from './paths.js'
export * from './relay.js'
export * from './probe-wire.js'
export * from './failure-detector.js'
export * from './notice.js'
export * from './sync-digest.js'
export * from './ca.js'
export * from './cert.js'
export * from './revocation.js'
export * from './cert-trust.js'
export * from './routes.js'
export * from './gateway.js'
export { deadline } from './deadline.js'
