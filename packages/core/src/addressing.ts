/**
 * Overlay addresses derived from keys, so that a node's addresses are stable across restarts
 * and need no coordinator:
 *   IPv4 = mesh CIDR base + 1 + H("ipv4", wgPublicKey, salt) mod (size − 2)   (never network/broadcast)
 *   IPv6 = ULA /48 from H(meshKey) + low 80 bits of H("ipv6", wgPublicKey, salt)
 * A collision is resolved by the membership table (holdings.ts): whoever a table accepted on
 * an address first keeps it; a joiner that finds its fresh address held bumps its salt.
 */
import { createHash } from 'node:crypto'
import { AddressSpaceExhaustedError } from './errors.js'
import { cidrSize, formatIPv4, formatIPv6, type Cidr } from './ip.js'

function h (...parts: Array<string | Uint8Array>): Buffer {
  const hash = createHash('sha256')
  for (const p of parts) {
    hash.update(typeof p === 'string' ? Buffer.from(p) : p)
    hash.update('\0')
  }
  return hash.digest()
}

function toBigInt (b: Uint8Array): bigint {
  return BigInt('0x' + Buffer.from(b).toString('hex'))
}

/** The mesh's IPv6 ULA /48 (fdXX:XXXX:XXXX::/48), derived from the mesh key. */
export function ulaPrefix (meshKey: Uint8Array): Cidr {
  const d = h('wgmesh-ula', meshKey)
  const global40 = toBigInt(d.subarray(0, 5))
  return { family: 6, base: ((0xfdn << 40n) | global40) << 80n, prefix: 48 }
}

export function overlayIPv4 (cidr: Cidr, wgPublicKey: string, salt: number): string {
  const hosts = cidrSize(cidr) - 2n
  if (hosts < 1n) throw new AddressSpaceExhaustedError(`mesh CIDR /${cidr.prefix} has no host addresses`)
  const off = toBigInt(h('wgmesh-ipv4', wgPublicKey, String(salt)).subarray(0, 16)) % hosts
  return formatIPv4(cidr.base + 1n + off)
}

export function overlayIPv6 (ula: Cidr, wgPublicKey: string, salt: number): string {
  let low = toBigInt(h('wgmesh-ipv6', wgPublicKey, String(salt)).subarray(0, 10))
  if (low === 0n) low = 1n
  return formatIPv6(ula.base | low)
}

/**
 * Pick the first salt ≥ `fromSalt` whose IPv4 is not in `taken`. Used by the node itself when it
 * starts (to skip addresses it already knows are held) and after its address was found held.
 */
export function allocate (cidr: Cidr, ula: Cidr, wgPublicKey: string, taken: ReadonlySet<string>, fromSalt = 0):
{ ipv4: string, ipv6: string, salt: number } {
  const limit = fromSalt + 4096
  for (let salt = fromSalt; salt < limit; salt++) {
    const ipv4 = overlayIPv4(cidr, wgPublicKey, salt)
    if (!taken.has(ipv4)) return { ipv4, ipv6: overlayIPv6(ula, wgPublicKey, salt), salt }
  }
  throw new AddressSpaceExhaustedError(`no free address in the mesh range after ${limit - fromSalt} tries: use a larger --cidr`)
}
