import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { publicKeyFromPrivateKey } from '../src/keys.js'

describe('publicKeyFromPrivateKey', () => {
  it('matches `wg pubkey` (vector from the WireGuard docs)', () => {
    // wg(8) example pair from wireguard-tools' documentation
    assert.equal(publicKeyFromPrivateKey('yAnz5TF+lXXJte14tji3zlMNq+hd2rYUIgJBgB3fBmk='), 'HIgo9xNzJMWLKASShiTqIybxZ0U3wGLiUeJ1PKf8ykw=')
  })

  it('rejects keys that are not 32 bytes of base64', () => {
    assert.throws(() => publicKeyFromPrivateKey('abc'), { name: 'InvalidKeyError' })
    assert.throws(() => publicKeyFromPrivateKey(Buffer.alloc(31).toString('base64')), { name: 'InvalidKeyError' })
  })
})
