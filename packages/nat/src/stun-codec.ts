/**
 * STUN (RFC 5389) binding messages, encoded and decoded by hand. Pure: no sockets, no clock.
 *
 * Only what NAT discovery needs: the Binding request, the Binding success response with
 * XOR-MAPPED-ADDRESS (MAPPED-ADDRESS is accepted as a fallback for RFC 3489-era servers),
 * FINGERPRINT (written on every message we build, checked when present on input), and
 * CHANGE-REQUEST's "change port" flag (RFC 5780 §7.2: answer from the server's other port —
 * how a host whose address is its own tells an open one from a stateful firewall).
 * Every parser returns `undefined` on malformed input and never throws.
 */
import { formatIP, parseIP } from '@wgmesh/core'
import { InvalidArgumentError } from './errors.js'

export const STUN_MAGIC_COOKIE = 0x2112a442
export const STUN_HEADER_LENGTH = 20
export const STUN_TXID_LENGTH = 12

const BINDING_REQUEST = 0x0001
const BINDING_SUCCESS = 0x0101
const ATTR_MAPPED_ADDRESS = 0x0001
const ATTR_CHANGE_REQUEST = 0x0003
const CHANGE_IP = 0x04
const CHANGE_PORT = 0x02
const ATTR_XOR_MAPPED_ADDRESS = 0x0020
/** Pre-RFC 5389 code point some servers still send. */
const ATTR_XOR_MAPPED_ADDRESS_ALT = 0x8020
const ATTR_SOFTWARE = 0x8022
const ATTR_FINGERPRINT = 0x8028
const FINGERPRINT_XOR = 0x5354554e
const SOFTWARE = 'wgmesh'

/** The address a STUN server saw, decoded from a Binding success response. */
export interface BindingResponse {
  txId: Uint8Array
  /** Canonical text (RFC 5952 for IPv6). */
  address: string
  port: number
  family: 4 | 6
}

// --- CRC-32 (IEEE) for FINGERPRINT ---------------------------------------------------------
const CRC_TABLE = (() => {
  const t = new Uint32Array(256)
  for (let n = 0; n < 256; n++) {
    let c = n
    for (let k = 0; k < 8; k++) c = (c & 1) !== 0 ? 0xedb88320 ^ (c >>> 1) : c >>> 1
    t[n] = c >>> 0
  }
  return t
})()

function crc32 (b: Uint8Array): number {
  let c = 0xffffffff
  for (let i = 0; i < b.length; i++) c = (CRC_TABLE[(c ^ (b[i] as number)) & 0xff] as number) ^ (c >>> 8)
  return (c ^ 0xffffffff) >>> 0
}

// --- encoding -------------------------------------------------------------------------------
interface Attr { type: number, value: Uint8Array }

function pad4 (n: number): number {
  return (n + 3) & ~3
}

/** Header + attributes, then (unless `fingerprint` is false) FINGERPRINT computed over everything before it. */
function encode (type: number, txId: Uint8Array, attrs: Attr[], fingerprint = true): Uint8Array {
  if (!(txId instanceof Uint8Array) || txId.length !== STUN_TXID_LENGTH) {
    throw new InvalidArgumentError(`STUN transaction id must be ${STUN_TXID_LENGTH} bytes`)
  }
  const bodyLen = attrs.reduce((n, a) => n + 4 + pad4(a.value.length), 0) + (fingerprint ? 8 : 0)
  const out = new Uint8Array(STUN_HEADER_LENGTH + bodyLen)
  const dv = new DataView(out.buffer)
  dv.setUint16(0, type)
  dv.setUint16(2, bodyLen)
  dv.setUint32(4, STUN_MAGIC_COOKIE)
  out.set(txId, 8)
  let off = STUN_HEADER_LENGTH
  for (const a of attrs) {
    dv.setUint16(off, a.type)
    dv.setUint16(off + 2, a.value.length)
    out.set(a.value, off + 4)
    off += 4 + pad4(a.value.length)
  }
  if (!fingerprint) return out
  dv.setUint16(off, ATTR_FINGERPRINT)
  dv.setUint16(off + 2, 4)
  dv.setUint32(off + 4, (crc32(out.subarray(0, off)) ^ FINGERPRINT_XOR) >>> 0)
  return out
}

/**
 * A Binding request with the given 12-byte transaction id (SOFTWARE + FINGERPRINT; with
 * `changePort`, a CHANGE-REQUEST asking for the answer from the server's other port: 8 bytes more).
 */
export function bindingRequest (txId: Uint8Array, opts: { changePort?: boolean } = {}): Uint8Array {
  const attrs: Attr[] = [{ type: ATTR_SOFTWARE, value: new TextEncoder().encode(SOFTWARE) }]
  if (opts.changePort === true) attrs.push({ type: ATTR_CHANGE_REQUEST, value: new Uint8Array([0, 0, 0, CHANGE_PORT]) })
  return encode(BINDING_REQUEST, txId, attrs)
}

/** 12 random bytes for a transaction id. */
export function newTransactionId (): Uint8Array {
  return crypto.getRandomValues(new Uint8Array(STUN_TXID_LENGTH))
}

/** Normalize "::ffff:1.2.3.4" (what a dual-stack udp6 socket reports) to "1.2.3.4". */
function unmapV4 (address: string): string {
  const m = /^::ffff:(\d{1,3}(?:\.\d{1,3}){3})$/i.exec(address)
  return m?.[1] ?? address
}

/**
 * A Binding success response telling the client it was seen at `address`:`port`
 * (XOR-MAPPED-ADDRESS, then FINGERPRINT unless `fingerprint` is false: a server adds it only
 * when the request carried one, so that its answer is never larger than the request by more
 * than the XOR-MAPPED-ADDRESS: 12 bytes for IPv4, 24 for IPv6).
 * Throws {@link InvalidArgumentError} on a bad address/port.
 */
export function bindingSuccess (txId: Uint8Array, address: string, port: number, fingerprint = true): Uint8Array {
  const ip = parseIP(unmapV4(address))
  if (ip === undefined) throw new InvalidArgumentError(`'${address}' is not an IP address`)
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new InvalidArgumentError(`bad port ${port}`)
  if (!(txId instanceof Uint8Array) || txId.length !== STUN_TXID_LENGTH) {
    throw new InvalidArgumentError(`STUN transaction id must be ${STUN_TXID_LENGTH} bytes`)
  }
  const alen = ip.family === 4 ? 4 : 16
  const value = new Uint8Array(4 + alen)
  const dv = new DataView(value.buffer)
  value[1] = ip.family === 4 ? 0x01 : 0x02
  dv.setUint16(2, port ^ (STUN_MAGIC_COOKIE >>> 16))
  const key = xorKey(txId)
  let v = ip.value
  for (let i = alen - 1; i >= 0; i--) {
    value[4 + i] = Number(v & 0xffn) ^ (key[i] as number)
    v >>= 8n
  }
  return encode(BINDING_SUCCESS, txId, [{ type: ATTR_XOR_MAPPED_ADDRESS, value }], fingerprint)
}

/** magic cookie || transaction id: the XOR key of XOR-MAPPED-ADDRESS. */
function xorKey (txId: Uint8Array): Uint8Array {
  const k = new Uint8Array(16)
  new DataView(k.buffer).setUint32(0, STUN_MAGIC_COOKIE)
  k.set(txId, 4)
  return k
}

// --- decoding -------------------------------------------------------------------------------
interface Parsed { type: number, txId: Uint8Array, attrs: Attr[] }

/** Header and attribute framing checks shared by every parser. */
function parse (b: Uint8Array): Parsed | undefined {
  if (!(b instanceof Uint8Array) || b.length < STUN_HEADER_LENGTH) return undefined
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength)
  const type = dv.getUint16(0)
  const len = dv.getUint16(2)
  if ((type & 0xc000) !== 0) return undefined // first two bits of a STUN message are zero
  if (dv.getUint32(4) !== STUN_MAGIC_COOKIE) return undefined
  if ((len & 3) !== 0 || STUN_HEADER_LENGTH + len !== b.length) return undefined
  const attrs: Attr[] = []
  let off = STUN_HEADER_LENGTH
  while (off < b.length) {
    if (off + 4 > b.length) return undefined
    const at = dv.getUint16(off)
    const alen = dv.getUint16(off + 2)
    if (off + 4 + alen > b.length) return undefined
    const value = b.subarray(off + 4, off + 4 + alen)
    if (at === ATTR_FINGERPRINT) {
      // FINGERPRINT must be last and must match.
      if (alen !== 4 || off + 8 !== b.length) return undefined
      if (dv.getUint32(off + 4) !== ((crc32(b.subarray(0, off)) ^ FINGERPRINT_XOR) >>> 0)) return undefined
    }
    attrs.push({ type: at, value })
    off += 4 + pad4(alen)
  }
  if (off !== b.length) return undefined
  return { type, txId: b.slice(8, 20), attrs }
}

/** Decode a (XOR-)MAPPED-ADDRESS value. */
function decodeAddress (value: Uint8Array, key: Uint8Array | undefined): { address: string, port: number, family: 4 | 6 } | undefined {
  if (value.length < 4) return undefined
  const fam = value[1]
  const family = fam === 0x01 ? 4 : fam === 0x02 ? 6 : undefined
  if (family === undefined) return undefined
  const alen = family === 4 ? 4 : 16
  if (value.length !== 4 + alen) return undefined
  let port = ((value[2] as number) << 8) | (value[3] as number)
  if (key !== undefined) port ^= STUN_MAGIC_COOKIE >>> 16
  let v = 0n
  for (let i = 0; i < alen; i++) {
    const byte = (value[4 + i] as number) ^ (key === undefined ? 0 : key[i] as number)
    v = (v << 8n) | BigInt(byte)
  }
  return { address: formatIP(family, v), port, family }
}

/**
 * Decode a Binding success response: the XOR-MAPPED-ADDRESS (or MAPPED-ADDRESS) it carries.
 * `undefined` for anything else or anything malformed.
 */
export function parseBindingResponse (b: Uint8Array): BindingResponse | undefined {
  const m = parse(b)
  if (m === undefined || m.type !== BINDING_SUCCESS) return undefined
  const key = xorKey(m.txId)
  let fallback: ReturnType<typeof decodeAddress>
  for (const a of m.attrs) {
    if (a.type === ATTR_XOR_MAPPED_ADDRESS || a.type === ATTR_XOR_MAPPED_ADDRESS_ALT) {
      const addr = decodeAddress(a.value, key)
      if (addr !== undefined) return { txId: m.txId, ...addr }
    } else if (a.type === ATTR_MAPPED_ADDRESS && fallback === undefined) {
      fallback = decodeAddress(a.value, undefined)
    }
  }
  return fallback === undefined ? undefined : { txId: m.txId, ...fallback }
}

/**
 * The largest Binding request a server handles: the IPv4 minimum reassembly size (576) less
 * the IPv4 and UDP headers. A Binding request needs 20 bytes (28 with FINGERPRINT); anything
 * bigger than this is dropped unparsed.
 */
export const MAX_STUN_REQUEST_BYTES = 548

/**
 * The transaction id of a well-formed Binding request, whether it carried FINGERPRINT, and
 * whether it asks for the answer from another port (a CHANGE-REQUEST of 4 bytes with the
 * change-port flag and without the change-IP one: a server with one address cannot change it,
 * so such a request gets a plain answer, which its client reads as "not supported"); or undefined.
 */
export function parseBindingRequest (b: Uint8Array): { txId: Uint8Array, fingerprint: boolean, changePort: boolean } | undefined {
  const m = parse(b)
  if (m === undefined || m.type !== BINDING_REQUEST) return undefined
  const change = m.attrs.find(a => a.type === ATTR_CHANGE_REQUEST)
  const flags = change?.value.length === 4 ? change.value[3] as number : 0
  return { txId: m.txId, fingerprint: m.attrs.at(-1)?.type === ATTR_FINGERPRINT, changePort: (flags & CHANGE_PORT) !== 0 && (flags & CHANGE_IP) === 0 }
}

/** Whether `b` is a well-formed STUN Binding request. */
export function isBindingRequest (b: Uint8Array): boolean {
  return parseBindingRequest(b) !== undefined
}

/** Constant-length comparison of two transaction ids. */
export function sameTransactionId (a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false
  let d = 0
  for (let i = 0; i < a.length; i++) d |= (a[i] as number) ^ (b[i] as number)
  return d === 0
}
