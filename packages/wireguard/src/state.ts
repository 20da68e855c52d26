/** Reading what is on the host: link, WireGuard dump, addresses. */
import { parseAddrShow, parseLinkShow } from './addr.js'
import type { CommandRunner } from './command-runner.js'
import { parseDump } from './dump.js'
import { CommandFailedError } from './errors.js'
import type { CurrentState } from './plan.js'

const NO_DEVICE = /does not exist|Cannot find device|No such device/i

/** The read-only commands {@link readCurrentState} issues, in order (only the first when the link is missing). */
export function readSteps (ifname: string): string[][] {
  return [
    ['ip', '-o', 'link', 'show', 'dev', ifname],
    ['wg', 'show', ifname, 'dump'],
    ['ip', '-o', 'addr', 'show', 'dev', ifname]
  ]
}

/** The interface's current state, or undefined if `ip link show` says the device does not exist. */
export async function readCurrentState (runner: CommandRunner, ifname: string): Promise<CurrentState | undefined> {
  const [linkCmd, dumpCmd, addrCmd] = readSteps(ifname) as [string[], string[], string[]]
  const link = await runner.run(linkCmd, { allowFail: true })
  if (link.code !== 0) {
    if (NO_DEVICE.test(link.stderr)) return undefined
    throw new CommandFailedError(linkCmd, link.code, link.stderr, link.stdout)
  }
  const dump = await runner.run(dumpCmd)
  const addr = await runner.run(addrCmd)
  return { link: parseLinkShow(link.stdout), dump: parseDump(dump.stdout), addresses: parseAddrShow(addr.stdout) }
}
