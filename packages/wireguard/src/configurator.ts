/**
 * The stateful front: reads the host, plans, runs the plan, remembers what it applied.
 */
import type { DesiredWireGuard } from '@wgmesh/core'
import { createInterface, deleteStep, kernelLacksWireGuard, type BackendKind } from './backend.js'
import { execRunner, type CommandRunner } from './command-runner.js'
import type { Dump } from './dump.js'
import { InterfaceMismatchError } from './errors.js'
import { sysfsLinkReader, type LinkReader } from './link-reader.js'
import { planWireGuard, type Step } from './plan.js'
import { readDump, readHost, type ReadOptions } from './state.js'
import { batchSteps } from './step-batch.js'
import { runUapiSet, runWgSetOverUapi, unixUapi, type UapiTransport } from './uapi.js'

export interface ConfiguratorInit {
  /** Interface name, e.g. "wgmesh0"; every `apply()` must name the same one. */
  interface: string
  /** Default 'auto' (kernel, falling back to userspace, like wg-quick). */
  backend?: BackendKind | 'auto'
  /** Default {@link execRunner}(). */
  runner?: CommandRunner
  /** Userspace binary; default $WG_QUICK_USERSPACE_IMPLEMENTATION or "wireguard-go". */
  userspaceBinary?: string
  /** base64 public key matching `privateKeyFile`; lets apply() repair a wrong key on the interface. */
  expectedPublicKey?: string
  /**
   * The UAPI seam: when the interface is a userspace one (its socket under /var/run/wireguard answers),
   * `show()` and every `wg set` step go over it instead of spawning `wg`; kernel interfaces keep the commands.
   * Default: {@link unixUapi}() when `runner` is not given, else `false` (a caller's runner may be a fake,
   * and the fake must not reach real sockets). `false` = always `wg` commands.
   */
  uapi?: UapiTransport | false
  /**
   * Reads link and addresses without `ip` (sysfs, getifaddrs). Default: {@link sysfsLinkReader}() when
   * `runner` is not given, else `false` (a caller's runner may run in another network namespace).
   */
  linkReader?: LinkReader | false
}

export interface ApplyResult {
  /** The mutating commands that ran, in order (interface creation included); [] = already in sync. */
  steps: Step[]
}

interface Deferred<T> {
  promise: Promise<T>
  resolve: (v: T) => void
  reject: (e: unknown) => void
}

function deferred<T> (): Deferred<T> {
  let resolve!: (v: T) => void
  let reject!: (e: unknown) => void
  const promise = new Promise<T>((res, rej) => { resolve = res; reject = rej })
  return { promise, resolve, reject }
}

export class WireGuardConfigurator {
  /** The interface this configurator manages. */
  readonly interface: string
  readonly backend: BackendKind | 'auto'
  private readonly runner: CommandRunner
  private readonly userspaceBinary: string | undefined
  private readonly expectedPublicKey: string | undefined
  private readonly uapi: UapiTransport | undefined
  private readonly linkReader: LinkReader | undefined
  /** The real host (no runner given): 'auto' may look at the kernel's modules first. */
  private readonly probeKernel: boolean
  private lastApplied: DesiredWireGuard | undefined
  private readonly addedPeers = new Set<string>()
  private createdBy: 'kernel' | 'userspace' | undefined
  private tail: Promise<void> = Promise.resolve()
  private pending: { desired: DesiredWireGuard, result: Deferred<ApplyResult> } | undefined

  constructor (init: ConfiguratorInit) {
    this.interface = init.interface
    this.backend = init.backend ?? 'auto'
    this.runner = init.runner ?? execRunner()
    this.userspaceBinary = init.userspaceBinary
    this.expectedPublicKey = init.expectedPublicKey
    const native = init.runner === undefined
    this.probeKernel = native
    const uapi = init.uapi ?? (native ? unixUapi() : false)
    const linkReader = init.linkReader ?? (native ? sysfsLinkReader() : false)
    this.uapi = uapi === false ? undefined : uapi
    this.linkReader = linkReader === false ? undefined : linkReader
  }

  private get readOptions (): ReadOptions {
    return { ...(this.uapi === undefined ? {} : { uapi: this.uapi }), ...(this.linkReader === undefined ? {} : { linkReader: this.linkReader }) }
  }

  /** Runs a planned step: a `wg set` over UAPI when the interface answers there, anything else as a command. */
  private async runStep (step: Step, viaUapi: boolean): Promise<void> {
    if (viaUapi && this.uapi !== undefined && await runWgSetOverUapi(this.uapi, this.interface, step)) return
    await this.runner.run(step)
  }

  /** How this configurator created the interface; undefined if it did not create it (yet). */
  get createdWith (): 'kernel' | 'userspace' | undefined {
    return this.createdBy
  }

  /**
   * Makes the host match `desired`. Calls are serialized: a call made while another runs
   * waits for it, then applies the latest desired state handed in meanwhile (calls that
   * queued together share one apply and its result).
   */
  async apply (desired: DesiredWireGuard): Promise<ApplyResult> {
    if (desired.interface !== this.interface) {
      throw new InterfaceMismatchError(`desired state is for '${desired.interface}', this configurator manages '${this.interface}'`)
    }
    if (this.pending !== undefined) {
      this.pending.desired = desired
      return await this.pending.result.promise
    }
    const job = { desired, result: deferred<ApplyResult>() }
    this.pending = job
    this.enqueue(async () => {
      this.pending = undefined
      try {
        job.result.resolve(await this.applyNow(job.desired))
      } catch (e) {
        job.result.reject(e)
      }
    })
    return await job.result.promise
  }

  /**
   * The interface's live state, private key redacted: per-peer endpoint, handshake, rx/tx. Over UAPI for a
   * userspace interface (no process spawned), else `wg show <if> dump`.
   */
  async show (): Promise<Dump> {
    const { dump } = await readDump(this.runner, this.interface, this.uapi)
    delete dump.interface.privateKey
    return dump
  }

  /**
   * Tears down: deletes the interface (`ip link del`), or with backend 'existing' only
   * removes the peers this configurator added. Waits for a running apply first.
   */
  async destroy (): Promise<ApplyResult> {
    const result = deferred<ApplyResult>()
    this.enqueue(async () => {
      try {
        result.resolve(await this.destroyNow())
      } catch (e) {
        result.reject(e)
      }
    })
    return await result.promise
  }

  private enqueue (fn: () => Promise<void>): void {
    this.tail = this.tail.then(fn)
  }

  private async applyNow (desired: DesiredWireGuard): Promise<ApplyResult> {
    const ran: Step[] = []
    const { current, viaUapi: readViaUapi } = await readHost(this.runner, this.interface, this.readOptions)
    let viaUapi = readViaUapi
    if (current === undefined) {
      const opts = { ...(this.userspaceBinary === undefined ? {} : { userspaceBinary: this.userspaceBinary }), ...(this.probeKernel ? { kernelLacksWireGuard } : {}) }
      const created = await createInterface(this.runner, this.interface, this.backend, opts)
      this.createdBy = created.kind
      this.lastApplied = undefined
      ran.push(created.step) // current stays undefined: plan the full configuration
      viaUapi = this.uapi !== undefined && await this.uapi.available(this.interface)
    }
    const planOpts = { manageInterface: this.backend !== 'existing', ...(this.expectedPublicKey === undefined ? {} : { expectedPublicKey: this.expectedPublicKey }) }
    const steps = planWireGuard(current, desired, this.lastApplied, planOpts)
    const present = new Set(current?.dump.peers.map(p => p.publicKey) ?? [])
    const wanted = new Set(desired.peers.map(p => p.publicKey))
    for (const pk of wanted) if (!present.has(pk)) this.addedPeers.add(pk)
    for (const pk of [...this.addedPeers]) if (!wanted.has(pk)) this.addedPeers.delete(pk)
    // consecutive steps as one UAPI request / one `ip -batch` (step-batch.ts): each round trip
    // waits for an event-loop turn, and a starting agent's loop is busy
    const groups = batchSteps(steps, this.interface, { uapi: viaUapi && this.uapi !== undefined, ipBatch: this.runner.runIpBatch !== undefined })
    for (const g of groups) {
      if (g.kind === 'uapi' && this.uapi !== undefined) await runUapiSet(this.uapi, this.interface, g.set)
      else if (g.kind === 'ip' && g.steps.length > 1 && this.runner.runIpBatch !== undefined) await this.runner.runIpBatch(g.steps)
      else for (const step of g.steps) await this.runStep(step, viaUapi)
      ran.push(...g.steps)
    }
    this.lastApplied = structuredClone(desired)
    return { steps: ran }
  }

  private async destroyNow (): Promise<ApplyResult> {
    const ran: Step[] = []
    const { current, viaUapi } = await readHost(this.runner, this.interface, this.readOptions)
    if (current !== undefined) {
      if (this.backend === 'existing') {
        const present = new Set(current.dump.peers.map(p => p.publicKey))
        for (const pk of [...this.addedPeers].sort()) {
          if (!present.has(pk)) continue
          const step = ['wg', 'set', this.interface, 'peer', pk, 'remove']
          await this.runStep(step, viaUapi)
          ran.push(step)
        }
      } else {
        const step = deleteStep(this.interface)
        this.uapi?.close?.(this.interface) // wireguard-go exits with its TUN; do not hold its socket
        await this.runner.run(step)
        ran.push(step)
      }
    }
    this.addedPeers.clear()
    this.lastApplied = undefined
    this.createdBy = undefined
    return { steps: ran }
  }
}

/** Creates a {@link WireGuardConfigurator}. */
export function createConfigurator (init: ConfiguratorInit): WireGuardConfigurator {
  return new WireGuardConfigurator(init)
}
