/** WireGuard (X25519) key helpers on node:crypto. */
import { wgPublicKeyFromPrivate } from '@wgmesh/core'
import { InvalidKeyError } from './errors.js'

/** Decodes a base64 WireGuard key, insisting on exactly 32 bytes. */
export function decodeWireGuardKey (b64: string): Buffer {
  const s = b64.trim()
  if (!/^[A-Za-z0-9+/]{43}=$/.test(s)) throw new InvalidKeyError('WireGuard key must be 32 bytes of base64 (44 characters)')
  return Buffer.from(s, 'base64')
}

/**
 * The base64 public key of a base64 private key, as `wg pubkey` prints it.
 * Pass the result as `expectedPublicKey` so the configurator notices a wrong key on the interface.
 */
export function publicKeyFromPrivateKey (privateKeyB64: string): string {
  decodeWireGuardKey(privateKeyB64)
  return wgPublicKeyFromPrivate(privateKeyB64.trim())
}
