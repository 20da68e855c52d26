/**
 * Reading the link (MTU, UP flag) and its addresses without spawning `ip`: sysfs for the link,
 * `os.networkInterfaces()` (getifaddrs over netlink) for the addresses. Both describe the network
 * namespace of this process (`ip netns exec` mounts that namespace's sysfs), so this is only right
 * when the commands would run in the same namespace: the configurator uses it by default only with
 * its own default runner.
 */
import { readFileSync, statSync } from 'node:fs'
import { networkInterfaces, type NetworkInterfaceInfo } from 'node:os'
import { join } from 'node:path'
import type { LinkInfo } from './addr.js'
import { isLinkLocalV6 } from './cidr.js'

/**
 * - `missing`: the device does not exist.
 * - `present`: the link; `addresses` ("addr/plen", IPv6 link-local excluded) or undefined when they
 *   cannot be read this way (then `ip -o addr show` is used).
 * - `unknown`: cannot tell (no sysfs, odd content): use the commands.
 */
export type LinkRead =
  | { state: 'missing' }
  | { state: 'present', link: LinkInfo, addresses: string[] | undefined }
  | { state: 'unknown' }

/** The seam for link and address reads. Real: {@link sysfsLinkReader}; tests: `FakeLinkReader`. */
export interface LinkReader {
  read: (ifname: string) => Promise<LinkRead>
}

export interface SysfsLinkReaderInit {
  /** Default "/sys/class/net". */
  sysClassNet?: string
  /** Default `os.networkInterfaces`. */
  networkInterfaces?: () => NodeJS.Dict<NetworkInterfaceInfo[]>
}

const FLAG_NAMES: Array<[number, string]> = [[0x1, 'UP'], [0x2, 'BROADCAST'], [0x8, 'LOOPBACK'], [0x10, 'POINTOPOINT'], [0x80, 'NOARP'], [0x1000, 'MULTICAST']]

/** A {@link LinkReader} on sysfs and getifaddrs: no process is spawned. */
export function sysfsLinkReader (init: SysfsLinkReaderInit = {}): LinkReader {
  const base = init.sysClassNet ?? '/sys/class/net'
  const ifaces = init.networkInterfaces ?? networkInterfaces
  return {
    read: async (ifname) => {
      if (!/^[A-Za-z0-9_.=+-]{1,15}$/.test(ifname)) return { state: 'unknown' }
      const dir = join(base, ifname)
      let texts: string[]
      try {
        // synchronous: sysfs attributes are answered by the kernel at once, and three async
        // reads are twelve thread-pool round trips, each waiting for a turn of a busy event loop
        texts = ['mtu', 'flags', 'operstate'].map(f => readFileSync(join(dir, f), 'utf8'))
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'ENOENT') return { state: 'unknown' }
        try { statSync(base) } catch { return { state: 'unknown' } } // no sysfs at all
        return { state: 'missing' }
      }
      const [mtu = '', flags = '', operText = ''] = texts.map(t => t.trim())
      if (!/^\d+$/.test(mtu) || !/^0x[0-9a-f]+$/i.test(flags)) return { state: 'unknown' }
      const bits = Number.parseInt(flags, 16)
      const operState = operText.toUpperCase()
      const up = (bits & 1) !== 0
      const names = FLAG_NAMES.filter(([b]) => (bits & b) !== 0).map(([, n]) => n)
      if (up && (operState === 'UP' || operState === 'UNKNOWN')) names.push('LOWER_UP')
      const link: LinkInfo = { name: ifname, flags: names, mtu: Number(mtu), up, operState }
      // libuv lists only interfaces that are UP and RUNNING (operstate up/unknown): otherwise ask `ip`
      if (!up || (operState !== 'UP' && operState !== 'UNKNOWN')) return { state: 'present', link, addresses: undefined }
      const infos = ifaces()[ifname] ?? []
      const addresses = infos
        .filter(a => !(a.family === 'IPv6' && (a.scopeid !== 0 || isLinkLocalV6(a.address))))
        .map(a => a.cidr ?? `${a.address}/${a.family === 'IPv4' ? 32 : 128}`)
      return { state: 'present', link, addresses }
    }
  }
}
