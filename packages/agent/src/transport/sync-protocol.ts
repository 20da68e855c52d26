// `/wgmesh/sync/2.0.0`: push-pull anti-entropy by digest over one libp2p stream.
//
// Up to three rounds; in each both ends send one message and read the other's:
//
//   message = uvarint(count) || count × ( uvarint(len) || blob[len] )
//
//   1. [table hash]             equal on both ends → both close: done (the steady state)
//   2. digest blobs             (see @wgmesh/core sync-digest.ts)
//   3. the records the other lacks or holds older
//
// Blobs are opaque here (hashes, digests, sealed records); this module only enforces
// the framing and the limits.
// A frame that breaks the limits, a truncated message or trailing bytes after
// the message cause the stream to be aborted and the exchange to be rejected with
// a SyncProtocolError; nothing is handed to the caller in that case.

/** libp2p protocol id of the sync protocol. */
export const SYNC_PROTOCOL = '/wgmesh/sync/2.0.0'

export interface SyncLimits {
  /** Max number of records in one message. */
  maxRecords: number
  /** Max size of one record in bytes. */
  maxRecordBytes: number
  /** Max sum of record sizes in one message in bytes. */
  maxTotalBytes: number
}

export const DEFAULT_SYNC_LIMITS: Readonly<SyncLimits> = Object.freeze({
  maxRecords: 4096,
  maxRecordBytes: 16 * 1024,
  maxTotalBytes: 8 * 1024 * 1024
})

/** Raised for malformed or over-limit sync messages, and sync timeouts. */
export class SyncProtocolError extends Error {
  override name = 'SyncProtocolError'
}

/**
 * The part of a libp2p 3 `Stream` this module uses (a libp2p `Stream` satisfies it).
 * libp2p 3 streams are event-based message streams: `send()` returns false when
 * the caller should wait for `onDrain()`, `close()` half-closes the writable end,
 * and async iteration yields incoming chunks until the remote closes its end.
 */
export interface SyncStream {
  send(data: Uint8Array): boolean
  onDrain(options?: { signal?: AbortSignal }): Promise<void>
  close(options?: { signal?: AbortSignal }): Promise<void>
  abort(err: Error): void
  [Symbol.asyncIterator](): AsyncIterator<Uint8Array | { subarray(): Uint8Array }>
}

const MAX_VARINT_BYTES = 5
const WRITE_BATCH_BYTES = 64 * 1024

function varintLength (n: number): number {
  let len = 1
  while (n >= 0x80) { n = Math.floor(n / 128); len++ }
  return len
}

function writeVarint (n: number, out: Uint8Array, offset: number): number {
  while (n >= 0x80) {
    out[offset++] = (n & 0x7f) | 0x80
    n = Math.floor(n / 128)
  }
  out[offset++] = n
  return offset
}

export interface EncodedSyncMessage {
  /** Wire chunks, each at most ~64 KiB (one oversized record aside, which cannot happen within limits). */
  chunks: Uint8Array[]
  /** Number of records included. */
  sent: number
  /** Records left out: empty, oversized, or beyond the count/total limits. */
  dropped: number
}

/**
 * Encodes records into one sync message, leaving out what the limits forbid:
 * empty or oversized records are skipped, and encoding stops at the count or
 * total-size limit (the caller should order records by priority if that matters).
 */
export function encodeSyncMessage (records: readonly Uint8Array[], limits: SyncLimits = DEFAULT_SYNC_LIMITS): EncodedSyncMessage {
  const selected: Uint8Array[] = []
  let total = 0
  let dropped = 0
  for (const r of records) {
    if (r.byteLength === 0 || r.byteLength > limits.maxRecordBytes ||
        selected.length >= limits.maxRecords || total + r.byteLength > limits.maxTotalBytes) {
      dropped++
      continue
    }
    selected.push(r)
    total += r.byteLength
  }

  const chunks: Uint8Array[] = []
  let buf = new Uint8Array(WRITE_BATCH_BYTES)
  let off = writeVarint(selected.length, buf, 0)
  for (const r of selected) {
    const need = varintLength(r.byteLength) + r.byteLength
    if (off + need > buf.byteLength) {
      chunks.push(buf.subarray(0, off))
      buf = new Uint8Array(Math.max(WRITE_BATCH_BYTES, need))
      off = 0
    }
    off = writeVarint(r.byteLength, buf, off)
    buf.set(r, off)
    off += r.byteLength
  }
  chunks.push(buf.subarray(0, off))
  return { chunks, sent: selected.length, dropped }
}

/** Incremental decoder for one sync message. Throws SyncProtocolError on malformed input. */
export class SyncMessageDecoder {
  readonly records: Uint8Array[] = []
  private count = -1
  private total = 0
  private pending: Uint8Array = new Uint8Array(0)
  private readonly limits: SyncLimits

  constructor (limits: SyncLimits = DEFAULT_SYNC_LIMITS, allowTrailing = false) {
    this.limits = limits
    this.allowTrailing = allowTrailing
  }

  /** True once the header and all announced records have been read. */
  get done (): boolean {
    return this.count >= 0 && this.records.length === this.count
  }

  /** Bytes received after the message (the start of the next round's message). */
  rest: Uint8Array = new Uint8Array(0)
  private readonly allowTrailing: boolean

  push (chunk: Uint8Array): void {
    if (chunk.byteLength === 0) return
    if (this.done) {
      if (!this.allowTrailing) throw new SyncProtocolError('trailing bytes after sync message')
      const r = new Uint8Array(this.rest.byteLength + chunk.byteLength)
      r.set(this.rest, 0)
      r.set(chunk, this.rest.byteLength)
      this.rest = r
      return
    }
    let buf: Uint8Array
    if (this.pending.byteLength === 0) {
      buf = chunk
    } else {
      buf = new Uint8Array(this.pending.byteLength + chunk.byteLength)
      buf.set(this.pending, 0)
      buf.set(chunk, this.pending.byteLength)
    }
    let off = 0
    for (;;) {
      if (this.done) {
        if (off < buf.byteLength) {
          if (!this.allowTrailing) throw new SyncProtocolError('trailing bytes after sync message')
          this.rest = buf.slice(off)
          off = buf.byteLength
        }
        break
      }
      const v = readVarint(buf, off)
      if (v === undefined) break // need more bytes
      if (this.count < 0) {
        if (v.value > this.limits.maxRecords) throw new SyncProtocolError(`too many records announced: ${v.value}`)
        this.count = v.value
        off = v.next
        continue
      }
      const len = v.value
      if (len === 0 || len > this.limits.maxRecordBytes) throw new SyncProtocolError(`bad record length: ${len}`)
      if (this.total + len > this.limits.maxTotalBytes) throw new SyncProtocolError('sync message exceeds total size limit')
      if (v.next + len > buf.byteLength) break // need more bytes
      this.records.push(buf.slice(v.next, v.next + len))
      this.total += len
      off = v.next + len
    }
    this.pending = off === 0 ? buf : buf.slice(off)
  }
}

function readVarint (buf: Uint8Array, offset: number): { value: number, next: number } | undefined {
  let value = 0
  let mul = 1
  for (let i = 0; i < MAX_VARINT_BYTES; i++) {
    const pos = offset + i
    if (pos >= buf.byteLength) return undefined
    const b = buf[pos] as number
    value += (b & 0x7f) * mul
    if ((b & 0x80) === 0) return { value, next: pos + 1 }
    mul *= 128
  }
  throw new SyncProtocolError('varint too long')
}

function toBytes (chunk: Uint8Array | { subarray(): Uint8Array }): Uint8Array {
  return chunk instanceof Uint8Array ? chunk : chunk.subarray()
}

export interface ExchangeOptions {
  limits?: SyncLimits
  /** Aborts the exchange (and the stream). */
  signal?: AbortSignal
}

/**
 * Reads successive messages from one stream (the rounds of an exchange). Create it before the
 * first `await` on a fresh stream (iteration attaches listeners synchronously).
 */
export class MessageReader {
  private readonly it: AsyncIterator<Uint8Array | { subarray(): Uint8Array }>
  private carry: Uint8Array = new Uint8Array(0)
  private readonly limits: SyncLimits

  constructor (stream: SyncStream, limits: SyncLimits = DEFAULT_SYNC_LIMITS) {
    this.it = stream[Symbol.asyncIterator]()
    this.limits = limits
  }

  async next (): Promise<Uint8Array[]> {
    const dec = new SyncMessageDecoder(this.limits, true)
    if (this.carry.byteLength > 0) dec.push(this.carry)
    while (!dec.done) {
      const r = await this.it.next()
      if (r.done === true) throw new SyncProtocolError('sync message truncated')
      dec.push(toBytes(r.value))
    }
    this.carry = dec.rest
    return dec.records
  }

  /** The remote must have closed: nothing may follow its last message. */
  async end (): Promise<void> {
    if (this.carry.byteLength > 0) throw new SyncProtocolError('trailing bytes after sync message')
    const r = await this.it.next()
    if (r.done !== true) throw new SyncProtocolError('trailing bytes after sync message')
  }
}

/** What an exchange needs from the agent: its hash, its digest, and the records the other lacks. */
export interface DigestSyncHandler {
  hash: () => Uint8Array
  digest: () => Uint8Array[]
  /** Records to send given the remote's digest blobs (throw SyncProtocolError if malformed). */
  recordsFor: (remoteDigest: Uint8Array[]) => Uint8Array[]
}

export interface DigestSyncResult {
  /** The remote's digest blobs (empty when the hashes matched). */
  remoteDigest: Uint8Array[]
  received: Uint8Array[]
  sent: number
  dropped: number
  /** Rounds used: 1 when the tables were equal. */
  rounds: number
}

/**
 * Runs one digest exchange (same code on both ends). On any failure the stream is aborted and
 * the promise rejects; nothing is handed to the caller in that case.
 */
export async function exchangeDigest (stream: SyncStream, h: DigestSyncHandler, options: ExchangeOptions = {}): Promise<DigestSyncResult> {
  const limits = options.limits ?? DEFAULT_SYNC_LIMITS
  const signal = options.signal
  const opts = signal === undefined ? {} : { signal }
  let failure: Error | undefined
  const fail = (err: unknown): Error => {
    failure ??= err instanceof Error ? err : new SyncProtocolError(String(err))
    stream.abort(failure)
    return failure
  }
  const onAbort = (): void => {
    const reason: unknown = signal?.reason
    fail(new SyncProtocolError(`sync aborted: ${reason instanceof Error ? reason.message : String(reason)}`))
  }
  if (signal?.aborted === true) throw fail(new SyncProtocolError('sync aborted before start'))
  signal?.addEventListener('abort', onAbort, { once: true })
  const reader = new MessageReader(stream, limits)
  const send = async (blobs: readonly Uint8Array[]): Promise<{ sent: number, dropped: number }> => {
    const enc = encodeSyncMessage(blobs, limits)
    for (const c of enc.chunks) if (!stream.send(c)) await stream.onDrain(opts)
    return enc
  }
  try {
    const ours = h.hash()
    await send([ours])
    const [theirs] = await reader.next()
    if (theirs !== undefined && theirs.byteLength === ours.byteLength && theirs.every((b, i) => b === ours[i])) {
      await stream.close(opts)
      await reader.end()
      return { remoteDigest: [], received: [], sent: 0, dropped: 0, rounds: 1 }
    }
    await send(h.digest())
    const remoteDigest = await reader.next()
    const records = h.recordsFor(remoteDigest)
    const enc = await send(records)
    await stream.close(opts)
    const received = await reader.next()
    await reader.end()
    if (failure !== undefined) throw failure
    return { remoteDigest, received, sent: enc.sent, dropped: enc.dropped, rounds: 3 }
  } catch (err) {
    throw fail(failure ?? err)
  } finally {
    signal?.removeEventListener('abort', onAbort)
  }
}
