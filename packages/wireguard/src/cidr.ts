/**
 * Text canonicalization of IPs and CIDRs, so desired and observed state compare
 * equal whatever spelling each side used ("FD00:0::1" vs "fd00::1").
 */

/** Parses dotted-quad IPv4 or RFC 4291 IPv6 text into bytes; undefined if invalid. */
export function parseIpBytes (s: string): Uint8Array | undefined {
  return s.includes(':') ? parseV6(s) : parseV4(s)
}

function parseV4 (s: string): Uint8Array | undefined {
  const parts = s.split('.')
  if (parts.length !== 4) return undefined
  const out = new Uint8Array(4)
  for (let i = 0; i < 4; i++) {
    const p = parts[i] ?? ''
    if (!/^\d{1,3}$/.test(p)) return undefined
    const n = Number(p)
    if (n > 255) return undefined
    out[i] = n
  }
  return out
}

function parseV6 (s: string): Uint8Array | undefined {
  const halves = s.split('::')
  if (halves.length > 2) return undefined
  const groups = (h: string | undefined): number[] | undefined => {
    if (h === undefined || h === '') return []
    const words: number[] = []
    const parts = h.split(':')
    for (let i = 0; i < parts.length; i++) {
      const p = parts[i] ?? ''
      if (i === parts.length - 1 && p.includes('.')) {
        const v4 = parseV4(p)
        if (v4 === undefined) return undefined
        words.push(((v4[0] ?? 0) << 8) | (v4[1] ?? 0), ((v4[2] ?? 0) << 8) | (v4[3] ?? 0))
      } else {
        if (!/^[0-9a-fA-F]{1,4}$/.test(p)) return undefined
        words.push(parseInt(p, 16))
      }
    }
    return words
  }
  const head = groups(halves[0])
  const tail = groups(halves[1])
  if (head === undefined || tail === undefined) return undefined
  let words: number[]
  if (halves.length === 2) {
    const fill = 8 - head.length - tail.length
    if (fill < 1) return undefined
    words = [...head, ...new Array<number>(fill).fill(0), ...tail]
  } else {
    words = head
  }
  if (words.length !== 8) return undefined
  const out = new Uint8Array(16)
  words.forEach((w, i) => { out[2 * i] = w >> 8; out[2 * i + 1] = w & 0xff })
  return out
}

/** Formats 4 or 16 bytes as IPv4 or RFC 5952 IPv6 text. */
export function formatIpBytes (b: Uint8Array): string {
  if (b.length === 4) return Array.from(b).join('.')
  const words: number[] = []
  for (let i = 0; i < 16; i += 2) words.push(((b[i] ?? 0) << 8) | (b[i + 1] ?? 0))
  let bestStart = -1
  let bestLen = 0
  for (let i = 0; i < 8;) {
    if (words[i] !== 0) { i++; continue }
    let j = i
    while (j < 8 && words[j] === 0) j++
    if (j - i > bestLen) { bestStart = i; bestLen = j - i }
    i = j
  }
  const hex = (ws: number[]): string => ws.map(w => w.toString(16)).join(':')
  if (bestLen < 2) return hex(words)
  return `${hex(words.slice(0, bestStart))}::${hex(words.slice(bestStart + bestLen))}`
}

/** Canonical text of an IP; the input lowercased if it does not parse. */
export function canonicalIp (s: string): string {
  const b = parseIpBytes(s)
  return b === undefined ? s.toLowerCase() : formatIpBytes(b)
}

/**
 * Canonical "ip/plen". A missing prefix length means a host route (/32, /128).
 * With `mask`, host bits are cleared, as the kernel does for WireGuard allowed-ips
 * ("10.1.2.3/24" → "10.1.2.0/24"); without, the address is kept (interface addresses).
 * Unparseable input comes back lowercased, unchanged otherwise.
 */
export function canonicalCidr (s: string, mask: boolean): string {
  const slash = s.indexOf('/')
  const ipText = slash === -1 ? s : s.slice(0, slash)
  const b = parseIpBytes(ipText)
  if (b === undefined) return s.toLowerCase()
  const bits = b.length * 8
  const plenText = slash === -1 ? String(bits) : s.slice(slash + 1)
  if (!/^\d{1,3}$/.test(plenText) || Number(plenText) > bits) return s.toLowerCase()
  const plen = Number(plenText)
  if (mask) {
    for (let i = 0; i < b.length; i++) {
      const keep = Math.max(0, Math.min(8, plen - 8 * i))
      b[i] = (b[i] ?? 0) & ((0xff << (8 - keep)) & 0xff)
    }
  }
  return `${formatIpBytes(b)}/${plen}`
}

/** True for IPv6 link-local fe80::/10. */
export function isLinkLocalV6 (ip: string): boolean {
  const b = parseIpBytes(ip.split('/')[0] ?? '')
  return b !== undefined && b.length === 16 && b[0] === 0xfe && ((b[1] ?? 0) & 0xc0) === 0x80
}
