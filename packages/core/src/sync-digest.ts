/**
 * Anti-entropy by digest (what `/wgmesh/sync/2` exchanges). Pure.
 *   1. both ends send a 32-byte hash of their table's (nodeId, seq, dead) list; equal → done
 *      (the steady state: a sync costs two hashes, whatever the size of the mesh);
 *   2. else both send their digest (41 bytes a member);
 *   3. each sends only the records the other lacks or holds older, and takes the dead marks
 *      the other holds for records it has at the same seq.
 */
import { createHash } from 'node:crypto'
import { fromBase64Url, toBase64Url } from './keys.js'
import type { DigestEntry } from './membership.js'

const ENTRY_BYTES = 32 + 8 + 1
/** Entries per digest blob (each blob stays below the sync protocol's 16 KiB record cap). */
export const DIGEST_ENTRIES_PER_BLOB = 384

export function tableHash (entries: readonly DigestEntry[]): Uint8Array {
  const h = createHash('sha256')
  for (const e of entries) h.update(`${e.nodeId}:${e.seq}:${e.dead ? 1 : 0};`)
  return new Uint8Array(h.digest())
}

export function encodeDigest (entries: readonly DigestEntry[]): Uint8Array[] {
  const blobs: Uint8Array[] = []
  for (let i = 0; i < entries.length; i += DIGEST_ENTRIES_PER_BLOB) {
    const part = entries.slice(i, i + DIGEST_ENTRIES_PER_BLOB)
    const b = new Uint8Array(part.length * ENTRY_BYTES)
    const dv = new DataView(b.buffer)
    part.forEach((e, j) => {
      const o = j * ENTRY_BYTES
      b.set(fromBase64Url(e.nodeId) ?? new Uint8Array(32), o)
      dv.setBigUint64(o + 32, BigInt(e.seq))
      b[o + 40] = e.dead ? 1 : 0
    })
    blobs.push(b)
  }
  return blobs
}

/** The entries, or undefined when a blob is malformed (wrong length, seq out of range, bad flag). */
export function decodeDigest (blobs: readonly Uint8Array[], maxEntries = 65_536): DigestEntry[] | undefined {
  const out: DigestEntry[] = []
  for (const b of blobs) {
    if (b.length % ENTRY_BYTES !== 0) return undefined
    const dv = new DataView(b.buffer, b.byteOffset, b.byteLength)
    for (let o = 0; o < b.length; o += ENTRY_BYTES) {
      const seq = dv.getBigUint64(o + 32)
      const flag = b[o + 40]
      if (seq < 1n || seq > BigInt(Number.MAX_SAFE_INTEGER) || (flag !== 0 && flag !== 1)) return undefined
      out.push({ nodeId: toBase64Url(b.subarray(o, o + 32)), seq: Number(seq), dead: flag === 1 })
      if (out.length > maxEntries) return undefined
    }
  }
  return out
}

export interface DigestDiff {
  /** Our members whose record the other lacks or holds older: send these. */
  send: string[]
  /** Dead marks the other holds for records we hold alive at the same (or an older) seq. */
  dead: Array<{ nodeId: string, seq: number }>
}

export function diffDigest (ours: readonly DigestEntry[], theirs: readonly DigestEntry[]): DigestDiff {
  const remote = new Map(theirs.map(e => [e.nodeId, e]))
  const send: string[] = []
  const dead: Array<{ nodeId: string, seq: number }> = []
  for (const e of ours) {
    const r = remote.get(e.nodeId)
    if (r === undefined || r.seq < e.seq || (r.seq === e.seq && e.dead && !r.dead)) {
      if (r === undefined || r.seq < e.seq) send.push(e.nodeId)
    }
    if (r !== undefined && r.dead && !e.dead && r.seq >= e.seq) dead.push({ nodeId: e.nodeId, seq: r.seq })
  }
  return { send, dead }
}
