/** Reading what is on the host: link, WireGuard dump, addresses. */
import { parseAddrShow, parseLinkShow, type LinkInfo } from './addr.js'
import type { CommandRunner } from './command-runner.js'
import { parseDump, type Dump } from './dump.js'
import { CommandFailedError } from './errors.js'
import type { LinkReader } from './link-reader.js'
import type { CurrentState } from './plan.js'
import { uapiGet, type UapiTransport } from './uapi.js'

const NO_DEVICE = /does not exist|Cannot find device|No such device/i

/** The read-only commands {@link readCurrentState} issues, in order (only the first when the link is missing). */
export function readSteps (ifname: string): string[][] {
  return [
    ['ip', '-o', 'link', 'show', 'dev', ifname],
    ['wg', 'show', ifname, 'dump'],
    ['ip', '-o', 'addr', 'show', 'dev', ifname]
  ]
}

export interface ReadOptions {
  /** Read the dump over UAPI when the interface is a userspace one (its socket answers). */
  uapi?: UapiTransport
  /** Read link and addresses without `ip` (see {@link LinkReader}); the commands remain the fallback. */
  linkReader?: LinkReader
}

/** The current state plus whether the interface answered over UAPI (then `wg set` can go there too). */
export interface HostRead {
  current: CurrentState | undefined
  viaUapi: boolean
}

/**
 * The interface's current state, or undefined if the device does not exist. Without options it runs
 * {@link readSteps}; with `uapi` and `linkReader` a userspace interface is read without spawning anything.
 */
export async function readCurrentState (runner: CommandRunner, ifname: string, opts: ReadOptions = {}): Promise<CurrentState | undefined> {
  return (await readHost(runner, ifname, opts)).current
}

/** {@link readCurrentState}, telling whether the dump came over UAPI. */
export async function readHost (runner: CommandRunner, ifname: string, opts: ReadOptions = {}): Promise<HostRead> {
  const [linkCmd, , addrCmd] = readSteps(ifname) as [string[], string[], string[]]
  const native = await opts.linkReader?.read(ifname)
  let link: LinkInfo
  let addresses: string[] | undefined
  if (native?.state === 'missing') return { current: undefined, viaUapi: false }
  if (native?.state === 'present') {
    link = native.link
    addresses = native.addresses
  } else {
    const r = await runner.run(linkCmd, { allowFail: true })
    if (r.code !== 0) {
      if (NO_DEVICE.test(r.stderr)) return { current: undefined, viaUapi: false }
      throw new CommandFailedError(linkCmd, r.code, r.stderr, r.stdout)
    }
    link = parseLinkShow(r.stdout)
  }
  const { dump, viaUapi } = await readDump(runner, ifname, opts.uapi)
  if (addresses === undefined) addresses = parseAddrShow((await runner.run(addrCmd)).stdout)
  return { current: { link, dump, addresses }, viaUapi }
}

/** The dump over UAPI when a userspace implementation answers for `ifname`, else `wg show <if> dump`. */
export async function readDump (runner: CommandRunner, ifname: string, uapi?: UapiTransport): Promise<{ dump: Dump, viaUapi: boolean }> {
  if (uapi !== undefined && await uapi.available(ifname)) return { dump: await uapiGet(uapi, ifname), viaUapi: true }
  const [, dumpCmd] = readSteps(ifname) as [string[], string[]]
  return { dump: parseDump((await runner.run(dumpCmd)).stdout), viaUapi: false }
}
