/**
 * The managed block of a hosts file (`--hosts-file`, e.g. /etc/hosts). Pure: the current file
 * text and the members in, the new file text out. Only the lines between
 *   # BEGIN wgmesh <interface>
 *   # END wgmesh <interface>
 * are ours; every other byte of the file is kept as it is. Each name becomes two names on the
 * member's overlay IPv4 and IPv6 lines: `name` and `name.<domain>`.
 *
 * Names come from the network: a name that is not one hostname label ([a-z0-9-], 1..63, no
 * leading or trailing '-'), a reserved one (`localhost`…), or one claimed by two members is
 * left out and counted; an address that is not an IP literal likewise. Nothing a member sends
 * can put a newline, a comment or another host's line into the file.
 */

export interface HostsMember {
  name: string
  ipv4?: string
  ipv6?: string
  /** This node: its name is never given up to another member that claims it too. */
  self?: boolean
}

export interface HostsDropped {
  /** Not a hostname label. */
  invalid: number
  /** A name several members claim (none of them gets it; this node keeps its own). */
  duplicate: number
  /** localhost and friends. */
  reserved: number
  /** An address that is not an IPv4 / IPv6 literal. */
  badAddress: number
}

export interface HostsResult {
  /** The whole new file. */
  text: string
  /** Whether `text` differs from the current file. */
  changed: boolean
  /** Names written. */
  names: string[]
  dropped: HostsDropped
  /** Set when the file is left alone: a BEGIN marker without its END. */
  error?: string
}

const LABEL_RE = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/
const RESERVED = new Set(['localhost', 'localdomain', 'broadcasthost', 'ip6-localhost', 'ip6-loopback', 'ip6-localnet', 'ip6-mcastprefix', 'ip6-allnodes', 'ip6-allrouters'])
const IPV4_RE = /^(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])(\.(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])){3}$/
const IPV6_RE = /^[0-9a-f:]{2,39}$/

/** A hostname label: what a member's name must be to get a line. */
export function isHostsLabel (s: string): boolean {
  return LABEL_RE.test(s)
}

/** A mesh domain: one or more labels separated by dots, at most 200 characters. */
export function isMeshDomain (s: string): boolean {
  return s.length <= 200 && s.split('.').every(l => LABEL_RE.test(l))
}

/** Interface names that may appear in a marker line (what Linux accepts, without spaces). */
export function isMarkerInterface (s: string): boolean {
  return /^[A-Za-z0-9_.=+-]{1,15}$/.test(s) && s !== '.' && s !== '..'
}

function isIPv6Literal (s: string): boolean {
  if (!IPV6_RE.test(s) || !s.includes(':')) return false
  const double = s.split('::').length - 1
  if (double > 1) return false
  const groups = s.split(':').filter(g => g !== '')
  if (groups.some(g => g.length > 4)) return false
  return double === 1 ? groups.length <= 7 : groups.length === 8
}

export function beginMarker (iface: string): string { return `# BEGIN wgmesh ${iface}` }
export function endMarker (iface: string): string { return `# END wgmesh ${iface}` }

/** `lastNoNewline`: the block's END marker is the file's last line, without a newline (the file had none at its end before the block was appended). */
interface Split { before: string, after: string, found: boolean, lastNoNewline?: boolean, error?: string }

/**
 * Cut every complete block of `iface` out of `text`: what comes before the first one, and
 * everything after it with any further blocks of the same interface removed.
 */
function cut (text: string, iface: string): Split {
  const lines = text.split(/(?<=\n)/) // each line keeps its own '\n' (the last may have none)
  const bare = (l: string): string => l.replace(/\r?\n$/, '')
  const begin = beginMarker(iface)
  const end = endMarker(iface)
  const kept: string[] = []
  let at = -1
  let found = false
  let lastNoNewline = false
  for (let i = 0; i < lines.length; i++) {
    if (bare(lines[i]!) !== begin) { kept.push(lines[i]!); continue }
    let j = i + 1
    while (j < lines.length && bare(lines[j]!) !== end) j++
    if (j >= lines.length) return { before: text, after: '', found: false, error: `'${begin}' has no '${end}' after it; the file is left alone (fix or remove the marker by hand)` }
    if (at < 0) at = kept.length
    found = true
    lastNoNewline = j === lines.length - 1 && !lines[j]!.endsWith('\n')
    i = j
  }
  if (at < 0) return { before: text, after: '', found: false }
  return { before: kept.slice(0, at).join(''), after: kept.slice(at).join(''), found, lastNoNewline }
}

/** The block's lines for these members (sorted by name, IPv4 lines first). */
export function renderBlock (iface: string, domain: string, members: HostsMember[]): { lines: string[], names: string[], dropped: HostsDropped } {
  const dropped: HostsDropped = { invalid: 0, duplicate: 0, reserved: 0, badAddress: 0 }
  const byName = new Map<string, HostsMember[]>()
  for (const m of members) {
    if (typeof m.name !== 'string' || !LABEL_RE.test(m.name)) { dropped.invalid++; continue }
    if (RESERVED.has(m.name)) { dropped.reserved++; continue }
    byName.set(m.name, [...(byName.get(m.name) ?? []), m])
  }
  const chosen: HostsMember[] = []
  for (const [, ms] of byName) {
    if (ms.length === 1) { chosen.push(ms[0]!); continue }
    const self = ms.find(m => m.self === true)
    dropped.duplicate += ms.length - (self === undefined ? 0 : 1)
    if (self !== undefined) chosen.push(self)
  }
  chosen.sort((a, b) => a.name < b.name ? -1 : a.name > b.name ? 1 : 0)
  const v4: string[] = []
  const v6: string[] = []
  const names: string[] = []
  for (const m of chosen) {
    const aliases = `${m.name} ${m.name}.${domain}`
    let any = false
    if (m.ipv4 !== undefined) {
      if (IPV4_RE.test(m.ipv4)) { v4.push(`${m.ipv4}\t${aliases}`); any = true } else dropped.badAddress++
    }
    if (m.ipv6 !== undefined) {
      if (isIPv6Literal(m.ipv6)) { v6.push(`${m.ipv6}\t${aliases}`); any = true } else dropped.badAddress++
    }
    if (any) names.push(m.name)
  }
  return { lines: [beginMarker(iface), ...v4, ...v6, endMarker(iface)], names, dropped }
}

/**
 * The hosts file with our block for `iface` set to `members`: replaced where it was, else
 * appended at the end. Lines outside the block are kept byte for byte.
 */
export function updateHostsText (current: string, iface: string, domain: string, members: HostsMember[]): HostsResult {
  if (!isMarkerInterface(iface)) throw new Error(`'${iface}' is not an interface name`)
  if (!isMeshDomain(domain)) throw new Error(`'${domain}' is not a domain name`)
  const { lines, names, dropped } = renderBlock(iface, domain, members)
  const s = cut(current, iface)
  if (s.error !== undefined) return { text: current, changed: false, names: [], dropped, error: s.error }
  const body = lines.join('\n')
  let text: string
  // a file without a final newline gets one before our block, and our block then ends without
  // one: removing the block gives back the file exactly
  if (s.found) text = s.before + body + (s.lastNoNewline === true && s.after === '' ? '' : '\n') + s.after
  else if (current === '' || current.endsWith('\n')) text = current + body + '\n'
  else text = current + '\n' + body
  return { text, changed: text !== current, names, dropped }
}

/** The hosts file without our block for `iface` (unchanged when there is none). */
export function removeHostsBlock (current: string, iface: string): { text: string, changed: boolean, error?: string } {
  const s = cut(current, iface)
  if (s.error !== undefined) return { text: current, changed: false, error: s.error }
  if (!s.found) return { text: current, changed: false }
  // the newline put before a block appended to a file without a final one goes with the block
  const text = (s.lastNoNewline === true && s.after === '' ? s.before.replace(/\n$/, '') : s.before) + s.after
  return { text, changed: text !== current }
}
