/**
 * O3 — forged NAT-PMP answers, with the real @achingbrain/nat-port-mapper client and real UDP
 * sockets on 127.0.0.1: the "gateway" is 127.0.0.1:5351 and answers after 300 ms; before that
 * an attacker at 127.0.0.2:5351 (another host, the right port) and one at 127.0.0.1 (the right
 * host, another port) send well-formed forged answers, and a truncated one. The mapping must
 * be the gateway's, and nothing may throw. (Uses the fixed NAT-PMP ports 5350/5351 on 127.0.0.1.)
 */
import assert from 'node:assert/strict'
import dgram from 'node:dgram'
import { test } from 'node:test'
import { createPortMapper } from '../src/port-mapping.js'

async function bind (port: number, host: string): Promise<dgram.Socket> {
  const s = dgram.createSocket('udp4')
  s.on('error', () => {})
  await new Promise<void>((resolve, reject) => { s.once('error', reject); s.bind(port, host, () => { s.off('error', reject); resolve() }) })
  return s
}

/** A NAT-PMP answer: opcode 128 (external address) or 128 + op (mapping). */
function answer (op: number, fields: { ip?: number[], internal?: number, external?: number }): Buffer {
  if (op === 0) {
    const b = Buffer.alloc(12)
    b.writeUInt8(0, 0); b.writeUInt8(128, 1); b.writeUInt16BE(0, 2); b.writeUInt32BE(1000, 4)
    Buffer.from(fields.ip ?? [0, 0, 0, 0]).copy(b, 8)
    return b
  }
  const b = Buffer.alloc(16)
  b.writeUInt8(0, 0); b.writeUInt8(128 + op, 1); b.writeUInt16BE(0, 2); b.writeUInt32BE(1000, 4)
  b.writeUInt16BE(fields.internal ?? 0, 8); b.writeUInt16BE(fields.external ?? 0, 10); b.writeUInt32BE(600, 12)
  return b
}

test('O3: NAT-PMP answers from anyone but the gateway (or truncated ones) are not believed and crash nothing', async (t) => {
  let gateway: dgram.Socket
  try {
    gateway = await bind(5351, '127.0.0.1')
  } catch (err) {
    t.skip(`UDP 127.0.0.1:5351 is taken: ${(err as Error).message}`)
    return
  }
  const forgerOtherHost = await bind(5351, '127.0.0.2')
  const forgerOtherPort = await bind(0, '127.0.0.1')
  const uncaught: Error[] = []
  const onUncaught = (err: Error): void => { uncaught.push(err) }
  process.on('uncaughtException', onUncaught)
  let forging = true
  // forge answers for both opcodes, again and again, until the test ends
  const forge = async (): Promise<void> => {
    while (forging) {
      for (const s of [forgerOtherHost, forgerOtherPort]) {
        s.send(answer(0, { ip: [6, 6, 6, 6] }), 5350, '127.0.0.1')
        s.send(answer(1, { internal: 40000, external: 1234 }), 5350, '127.0.0.1')
        s.send(answer(1, {}).subarray(0, 4), 5350, '127.0.0.1') // truncated: the library read past its end
      }
      await new Promise(resolve => setTimeout(resolve, 5))
    }
  }
  const forging$ = forge()
  const timers: NodeJS.Timeout[] = []
  gateway.on('message', (msg: Buffer, rinfo: dgram.RemoteInfo) => {
    const op = msg.readUInt8(1)
    const reply = op === 0 ? answer(0, { ip: [198, 51, 100, 20] }) : answer(op, { internal: msg.readUInt16BE(4), external: msg.readUInt16BE(6) })
    timers.push(setTimeout(() => { gateway.send(reply, rinfo.port, rinfo.address) }, 300))
  })
  try {
    const mapper = createPortMapper({ defaultGateway: async () => '127.0.0.1' })
    const lease = await mapper.map({ localPort: 40000, protocol: 'UDP', ttlS: 600, methods: ['pmp'], internalAddress: '127.0.0.1', pmpTimeoutMs: 3000 })
    assert.equal(lease.method, 'pmp')
    assert.equal(lease.externalAddress, '198.51.100.20', 'a forged external address was believed')
    assert.equal(lease.externalPort, 40000, 'a forged external port was believed')
    assert.deepEqual(uncaught, [], 'a truncated answer threw in the socket handler')
  } finally {
    forging = false
    await forging$
    process.off('uncaughtException', onUncaught)
    for (const tm of timers) clearTimeout(tm)
    gateway.close(); forgerOtherHost.close(); forgerOtherPort.close()
  }
})
