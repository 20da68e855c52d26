/**
 * winston logger: JSON lines when stdout is not a TTY (journald, files), text otherwise.
 * Stable field names: level, message, ts (ISO 8601), node (when named) and the event's own
 * fields (peer, nodeId, reason, error, ...).
 * Secrets never reach it: nothing that holds a key is ever passed as a field, and `redact`
 * masks any field named like one, as a second line of defence.
 */
import winston from 'winston'

export interface Logger {
  debug: (msg: string, meta?: Record<string, unknown>) => void
  info: (msg: string, meta?: Record<string, unknown>) => void
  warn: (msg: string, meta?: Record<string, unknown>) => void
  error: (msg: string, meta?: Record<string, unknown>) => void
}

const SECRET_FIELD = /key|secret|psk|seed/i
const PUBLIC_OK = new Set(['wgPublicKey', 'publicKey'])

const redact = winston.format((info) => {
  for (const k of Object.keys(info)) {
    if (SECRET_FIELD.test(k) && !PUBLIC_OK.has(k)) info[k] = '[redacted]'
  }
  return info
})

const stamp = winston.format((info) => {
  info.ts = new Date().toISOString()
  return info
})

export type LogLevel = 'error' | 'warn' | 'info' | 'debug'

export function createLogger (opts: { level?: LogLevel, json?: boolean, name?: string } = {}): Logger {
  const json = opts.json ?? !process.stdout.isTTY
  const format = json
    ? winston.format.combine(redact(), stamp(), winston.format.json())
    : winston.format.combine(redact(), winston.format.timestamp({ format: 'HH:mm:ss.SSS' }), winston.format.printf((i) => {
      const { level, message, timestamp, ...rest } = i
      const extra = Object.keys(rest).length > 0 ? ' ' + Object.entries(rest).map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`).join(' ') : ''
      return `${String(timestamp)} ${level} ${String(message)}${extra}`
    }))
  const w = winston.createLogger({
    level: opts.level ?? 'info',
    defaultMeta: opts.name !== undefined ? { node: opts.name } : undefined,
    format,
    transports: [new winston.transports.Console({ stderrLevels: [] })]
  })
  return {
    debug: (m, meta) => { w.debug(m, meta) },
    info: (m, meta) => { w.info(m, meta) },
    warn: (m, meta) => { w.warn(m, meta) },
    error: (m, meta) => { w.error(m, meta) }
  }
}

export const silentLogger: Logger = { debug () {}, info () {}, warn () {}, error () {} }
