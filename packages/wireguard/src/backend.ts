/**
 * How the WireGuard interface comes to exist, and goes away.
 *
 * - 'kernel':    `ip link add <if> type wireguard` (the in-kernel module).
 * - 'userspace': `wireguard-go <if>` (or $WG_QUICK_USERSPACE_IMPLEMENTATION, or an explicit binary).
 *                wireguard-go creates the TUN device and its UAPI socket
 *                (/var/run/wireguard/<if>.sock), then daemonizes: the command returns once the
 *                interface exists and `wg` can talk to it — what wg-quick relies on.
 * - 'existing':  someone else made the interface; it is never created or deleted.
 * - 'auto':      like wg-quick: try kernel, fall back to userspace if `ip link add` fails.
 *
 * Deleting is `ip link del <if>` for both kernel and userspace (wireguard-go exits when its TUN goes away).
 */
import { existsSync, readFileSync } from 'node:fs'
import { release as osRelease } from 'node:os'
import { join } from 'node:path'
import type { CommandRunner } from './command-runner.js'
import { CommandFailedError, InterfaceMissingError } from './errors.js'
import type { Step } from './plan.js'

export type BackendKind = 'kernel' | 'userspace' | 'existing'

export interface BackendOptions {
  /** Userspace implementation binary; beats the environment variable. */
  userspaceBinary?: string
  /** Environment to read WG_QUICK_USERSPACE_IMPLEMENTATION from; default process.env. */
  env?: Record<string, string | undefined>
  /**
   * 'auto' only: true when the kernel surely has no WireGuard ({@link kernelLacksWireGuard}):
   * userspace is then tried first, sparing a process that is sure to fail (each one spawned
   * while 8 agents start on 2 cores costs 100-400 ms); the kernel is still tried if it fails.
   */
  kernelLacksWireGuard?: () => boolean
}

/**
 * Whether this kernel surely cannot make a WireGuard link: no /sys/module/wireguard (a loaded
 * module, or a built-in one: it has a version), and no module to load — /lib/modules/<release>
 * missing, or its modules.dep and modules.builtin without wireguard. Reads a few files; false
 * when in doubt (anything unreadable other than missing).
 */
export function kernelLacksWireGuard (release = osRelease(), root = '/'): boolean {
  if (existsSync(join(root, 'sys/module/wireguard'))) return false
  const dir = join(root, 'lib/modules', release)
  if (!existsSync(dir)) return true
  try {
    for (const f of ['modules.dep', 'modules.builtin']) {
      if (/(^|\/)wireguard\.ko/m.test(readFileSync(join(dir, f), 'utf8'))) return false
    }
  } catch {
    return false
  }
  return true
}

/** Which backend created the interface, and the command that did it. */
export interface CreatedInterface {
  kind: 'kernel' | 'userspace'
  step: Step
}

/** The userspace binary: explicit option, else $WG_QUICK_USERSPACE_IMPLEMENTATION, else "wireguard-go". */
export function userspaceBinary (opts: BackendOptions = {}): string {
  const fromEnv = (opts.env ?? process.env).WG_QUICK_USERSPACE_IMPLEMENTATION
  if (opts.userspaceBinary !== undefined && opts.userspaceBinary !== '') return opts.userspaceBinary
  return fromEnv !== undefined && fromEnv !== '' ? fromEnv : 'wireguard-go'
}

export function kernelCreateStep (ifname: string): Step {
  return ['ip', 'link', 'add', ifname, 'type', 'wireguard']
}

export function userspaceCreateStep (ifname: string, opts: BackendOptions = {}): Step {
  return [userspaceBinary(opts), ifname]
}

/**
 * Creates the interface the wg-quick way: kernel first, userspace if `ip link add` fails
 * (no module, no permission for that link type, ...). Throws if userspace fails too.
 */
export async function detectBackend (runner: CommandRunner, ifname: string, opts: BackendOptions = {}): Promise<CreatedInterface> {
  if (opts.kernelLacksWireGuard?.() === true) {
    const step = userspaceCreateStep(ifname, opts)
    if ((await runner.run(step, { allowFail: true })).code === 0) return { kind: 'userspace', step }
    // and if that failed, the usual order, with its usual error
  }
  const kernel = kernelCreateStep(ifname)
  const r = await runner.run(kernel, { allowFail: true })
  if (r.code === 0) return { kind: 'kernel', step: kernel }
  const step = userspaceCreateStep(ifname, opts)
  try {
    await runner.run(step)
  } catch (e) {
    if (!(e instanceof CommandFailedError)) throw e
    const why = `${causeFirst(e.stderr)}\n(tried first: ${kernel.join(' ')}: ${r.stderr.trim()})`
    throw new CommandFailedError(step, e.code, why, e.stdout, { cause: e })
  }
  return { kind: 'userspace', step }
}

/**
 * wireguard-go's stderr with the line that says what went wrong first (its first lines are a
 * banner about the kernel module, which is all an error message showing one line would say).
 */
export function causeFirst (stderr: string): string {
  const lines = stderr.trim().split('\n')
  const i = lines.findIndex(l => /error|fail|denied|not permitted|invalid|too long|no such|exists/i.test(l))
  return i <= 0 ? lines.join('\n') : [lines[i]!, ...lines.slice(0, i), ...lines.slice(i + 1)].join('\n')
}

/** Creates a missing interface with the given backend. 'existing' throws {@link InterfaceMissingError}. */
export async function createInterface (runner: CommandRunner, ifname: string, backend: BackendKind | 'auto', opts: BackendOptions = {}): Promise<CreatedInterface> {
  switch (backend) {
    case 'existing':
      throw new InterfaceMissingError(`WireGuard interface '${ifname}' does not exist, and backend 'existing' never creates it: create it first (e.g. \`ip link add ${ifname} type wireguard\` or \`wireguard-go ${ifname}\`), or use backend 'auto'`)
    case 'kernel': {
      const step = kernelCreateStep(ifname)
      await runner.run(step)
      return { kind: 'kernel', step }
    }
    case 'userspace': {
      const step = userspaceCreateStep(ifname, opts)
      try {
        await runner.run(step)
      } catch (e) {
        if (!(e instanceof CommandFailedError)) throw e
        throw new CommandFailedError(step, e.code, causeFirst(e.stderr), e.stdout, { cause: e })
      }
      return { kind: 'userspace', step }
    }
    case 'auto':
      return await detectBackend(runner, ifname, opts)
  }
}

export function deleteStep (ifname: string): Step {
  return ['ip', 'link', 'del', ifname]
}
