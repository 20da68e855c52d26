import { test } from 'node:test'
import assert from 'node:assert/strict'
import { AgentTimers } from '../src/timers.js'
import type { Logger } from '../src/logger.js'

const sleep = async (ms: number): Promise<void> => { await new Promise(resolve => setTimeout(resolve, ms)) }

function recordingLogger (): { log: Logger, errors: string[] } {
  const errors: string[] = []
  const none = (): void => {}
  return { log: { debug: none, info: none, warn: none, error: (msg: string, meta?: object) => { errors.push(`${msg} ${JSON.stringify(meta)}`) } }, errors }
}

test('later() runs once and is forgotten; clear() cancels what has not run, periodic and one-shot', async () => {
  const { log } = recordingLogger()
  const t = new AgentTimers(log)
  const ran: string[] = []
  t.later(10, () => { ran.push('soon') })
  t.later(-5, () => { ran.push('negative is now') })
  t.later(500, () => { ran.push('never') })
  t.every(15, () => { ran.push('tick') })
  assert.equal(t.size, 4)
  await sleep(60)
  assert.deepEqual(ran.filter(r => r !== 'tick'), ['negative is now', 'soon'])
  assert.ok(ran.filter(r => r === 'tick').length >= 2, 'the periodic one ran')
  assert.equal(t.size, 2, 'the two one-shots that ran are gone')
  t.clear()
  assert.equal(t.size, 0)
  const n = ran.length
  await sleep(550)
  assert.equal(ran.length, n, 'nothing runs after clear()')
})

test('a callback that throws is logged and its periodic timer keeps running', async () => {
  const { log, errors } = recordingLogger()
  const t = new AgentTimers(log)
  let calls = 0
  t.every(10, () => { calls++; throw new Error('boom') })
  t.later(5, () => { throw new Error('once') })
  await sleep(60)
  t.clear()
  assert.ok(calls >= 3, `kept running (${calls})`)
  assert.ok(errors.some(e => e.includes('boom')) && errors.some(e => e.includes('once')), errors.join('\n'))
})
