// Port-mapping client for the lab's miniupnpd (test/lab/upnp): runs @wgmesh/nat's
// createPortMapper().map() inside a lab host and keeps the lease, driven by signals.
//
//   node --conditions=wgmesh-src --import tsx --import /work/main/scripts/polyfills.mjs \
//     test/lab/upnp/map-port.ts --gateway 192.0.2.1 [--port 51820] [--ttl 120]
//     [--methods pmp,upnp] [--timeout-ms 5000]
//
// stdout, one JSON object per line:
//   {"event":"mapped","lease":{method,externalAddress,externalPort,internalAddress,internalPort},"ms":N}
//   {"event":"refreshed","ms":N}      after SIGUSR1 (lease.refresh())
//   {"event":"unmapped","ms":N}       after SIGUSR2 (lease.unmap())
//   {"event":"error","op":"map|refresh|unmap","name":...,"message":...,"cause":...}
// SIGTERM: exit (without unmapping). Exit code 1 when map() fails.
import { createPortMapper, type PortMappingLease, type PortMappingMethod } from '@wgmesh/nat'

function arg (name: string, def?: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`)
  return i >= 0 ? process.argv[i + 1] : def
}

const gateway = arg('gateway')
const localPort = Number(arg('port', '51820'))
const ttlS = Number(arg('ttl', '120'))
const methods = (arg('methods', 'pmp,upnp') as string).split(',') as PortMappingMethod[]
const timeoutMs = Number(arg('timeout-ms', '5000'))

function out (o: Record<string, unknown>): void { process.stdout.write(`${JSON.stringify(o)}\n`) }

function errInfo (op: string, e: unknown): Record<string, unknown> {
  const err = e instanceof Error ? e : new Error(String(e))
  const cause = (err as { cause?: unknown }).cause
  const causes = cause instanceof AggregateError ? cause.errors.map(x => String(x?.message ?? x)) : cause !== undefined ? [String((cause as Error)?.message ?? cause)] : []
  return { event: 'error', op, name: err.name, message: err.message, cause: causes }
}

let lease: PortMappingLease | undefined
let busy = Promise.resolve()
function onSignal (op: 'refresh' | 'unmap'): void {
  busy = busy.then(async () => {
    const t0 = Date.now()
    if (lease === undefined) { out({ event: 'error', op, message: 'no lease' }); return }
    try {
      if (op === 'refresh') await lease.refresh(AbortSignal.timeout(timeoutMs))
      else await lease.unmap(AbortSignal.timeout(timeoutMs))
      out({ event: op === 'refresh' ? 'refreshed' : 'unmapped', ms: Date.now() - t0 })
    } catch (e) { out(errInfo(op, e)) }
  })
}
process.on('SIGUSR1', () => { onSignal('refresh') })
process.on('SIGUSR2', () => { onSignal('unmap') })
process.on('SIGTERM', () => { process.exit(0) })
// keep the process alive while waiting for signals
const keepAlive = setInterval(() => {}, 1 << 30)

const t0 = Date.now()
try {
  lease = await createPortMapper().map({
    localPort,
    protocol: 'UDP',
    ttlS,
    gateway,
    methods,
    pmpTimeoutMs: timeoutMs,
    upnpTimeoutMs: timeoutMs,
    description: 'wgmesh-lab'
  })
  const { method, externalAddress, externalPort, internalAddress, internalPort } = lease
  out({ event: 'mapped', lease: { method, externalAddress, externalPort, internalAddress, internalPort }, ms: Date.now() - t0 })
} catch (e) {
  out(errInfo('map', e))
  clearInterval(keepAlive)
  process.exitCode = 1
}
