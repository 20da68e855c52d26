// The gate every gossip connection passes before noise, in the place of libp2p's pnet: both
// ends send 24 random bytes, then every byte either way is ChaCha20 under a key only holders of
// the mesh key can derive (gate-key.ts). A dialer without the mesh key sees random bytes and
// cannot get a noise handshake through: the agent never does a Diffie-Hellman for it, nor shows
// it a static key or a protocol name.
//
// Why not @libp2p/pnet: its XSalsa20 is JavaScript (the `xsalsa20` package; its WASM build is
// kept out of the bundle, see scripts/bundle.mjs), and the agent runs JavaScript unoptimized:
// 17 µs for a 40-byte chunk, 258 µs for 1400 bytes. OpenSSL's ChaCha20 takes 0.6–1.8 µs. The
// construction is pnet's (a nonce per direction, a stream cipher with no MAC: noise authenticates
// what comes through), with HKDF in place of HSalsa20 and a key per direction. The two do not
// interoperate: every agent of a mesh must run a version with the same gate.
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto'
import type { Cipher, Decipher } from 'node:crypto'
import { AbstractMultiaddrConnection, byteStream } from '@libp2p/utils'
import type { SendResult } from '@libp2p/utils'
import type { AbortOptions, ConnectionProtector, MultiaddrConnection } from '@libp2p/interface'
import { GATE_NONCE_LENGTH, gateKeyFromMeshKey, gateStreamKeys } from './gate-key.js'

/** Time for the nonce exchange when libp2p gives no signal, ms. */
export const GATE_HANDSHAKE_TIMEOUT_MS = 1000

// OpenSSL's 16-byte ChaCha20 IV is a 32-bit block counter then the nonce; it carries the counter
// into the nonce's first word, so a zero IV gives 2^64 blocks. Every stream key is used once.
const ZERO_IV = new Uint8Array(16)

export class GateRefusedError extends Error {
  override name = 'GateRefusedError'
}

interface GatedInit {
  maConn: MultiaddrConnection
  send: Cipher
  receive: Decipher
  log: MultiaddrConnection['log']
}

class GatedConnection extends AbstractMultiaddrConnection {
  private readonly maConn: MultiaddrConnection
  private readonly cipher: Cipher

  constructor (init: GatedInit) {
    super({ log: init.log, remoteAddr: init.maConn.remoteAddr, direction: init.maConn.direction })
    this.maConn = init.maConn
    this.cipher = init.send
    const receive = init.receive
    this.maConn.addEventListener('message', (evt) => {
      const data = evt.data
      if (data instanceof Uint8Array) this.onData(receive.update(data))
      else for (const buf of data) this.onData(receive.update(buf))
    })
    this.maConn.addEventListener('drain', () => { this.onMuxerDrain() })
    this.maConn.addEventListener('close', (evt) => {
      if (evt.error == null) this.onTransportClosed()
      else if (evt.local) this.abort(evt.error)
      else this.onRemoteReset()
    })
  }

  async sendClose (options?: AbortOptions): Promise<void> {
    await this.maConn.close(options)
  }

  sendData (data: { subarray: () => Uint8Array }): SendResult {
    const plain = data.subarray()
    return { sentBytes: plain.byteLength, canSendMore: this.maConn.send(this.cipher.update(plain)) }
  }

  sendReset (err: Error): void { this.maConn.abort(err) }
  sendPause (): void { this.maConn.pause() }
  sendResume (): void { this.maConn.resume() }
}

class MeshGate implements ConnectionProtector {
  readonly [Symbol.toStringTag] = '@wgmesh/mesh-gate'
  private readonly gateKey: Uint8Array

  constructor (meshKey: Uint8Array) {
    this.gateKey = gateKeyFromMeshKey(meshKey)
  }

  async protect (connection: MultiaddrConnection, options?: AbortOptions): Promise<MultiaddrConnection> {
    const log = connection.log.newScope('gate')
    const localNonce = randomBytes(GATE_NONCE_LENGTH)
    const opts = options ?? { signal: AbortSignal.timeout(GATE_HANDSHAKE_TIMEOUT_MS) }
    const bytes = byteStream(connection)
    const [remote] = await Promise.all([
      bytes.read({ bytes: GATE_NONCE_LENGTH, ...opts }),
      bytes.write(localNonce, opts)
    ])
    const remoteNonce = remote.subarray()
    // a reflected nonce is harmless (keys are per direction) but never honest
    if (Buffer.compare(remoteNonce, localNonce) === 0) throw new GateRefusedError('gate: the remote end sent our own nonce')
    const keys = gateStreamKeys(this.gateKey, localNonce, remoteNonce, connection.direction)
    log('nonces exchanged')
    return new GatedConnection({
      maConn: bytes.unwrap(),
      send: createCipheriv('chacha20', keys.send, ZERO_IV),
      receive: createDecipheriv('chacha20', keys.receive, ZERO_IV),
      log
    })
  }
}

/** libp2p's `connectionProtector` for a mesh. */
export function meshGate (meshKey: Uint8Array): () => ConnectionProtector {
  const gate = new MeshGate(meshKey)
  return () => gate
}
