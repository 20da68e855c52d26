/** Run the agent in the foreground until `leave`, SIGTERM or SIGINT (SIGHUP is logged and ignored). Shared by `up` and `join`. */
import { Agent, createLogger, type AgentInit } from '@wgmesh/agent'
import { agentInit, readMeshKey, type AgentFlags } from '../options.js'
import { ExitError } from '../errors.js'

/** Errors whose message tells the user what to do: printed as they are, exit 1. */
const USER_ERRORS = new Set(['MeshKeyError', 'StateError', 'ControlError', 'InvalidConfigError', 'InterfaceMissingError', 'CommandFailedError', 'InterfaceMismatchError'])

function asExitError (err: unknown): unknown {
  const e = err as Error & { code?: string }
  if (USER_ERRORS.has(e.name)) return new ExitError(e.message, 1)
  if (e.code === 'EADDRINUSE' || /EADDRINUSE/.test(e.message)) {
    return new ExitError(`the gossip port is in use (${e.message}); is another agent running? Use --gossip-port`, 1)
  }
  return err
}

/**
 * Options merged over every agent this process runs. Empty in the CLI; a measurement entry
 * that wraps the CLI (scripts/bench/memory.ts) sets a fake WireGuard host here before the
 * CLI parses its argv, so the same bundled code runs without root or a network namespace.
 */
export const agentOverrides: Partial<AgentInit> = {}

export async function runAgent (flags: AgentFlags, extra: Partial<AgentInit>, onServing?: (agent: Agent) => void): Promise<void> {
  const logger = createLogger({ level: flags.logLevel, json: flags.logFormat === 'auto' ? undefined : flags.logFormat === 'json' })
  let agent: Agent
  try {
    agent = new Agent({ ...agentInit(flags), meshKey: readMeshKey(flags), ...extra, ...agentOverrides, logger })
  } catch (err) {
    throw asExitError(err)
  }
  let signalled = false
  const onSignal = (sig: string): void => {
    if (signalled) return
    signalled = true
    logger.info(`received ${sig}, stopping (the WireGuard interface stays up; 'wgmesh leave' removes it)`)
    void agent.stop()
  }
  process.on('SIGTERM', () => { onSignal('SIGTERM') })
  process.on('SIGINT', () => { onSignal('SIGINT') })
  // a closed terminal or a `systemctl reload` must not kill the agent silently: nothing here
  // can be reloaded in place, so say so and keep serving
  process.on('SIGHUP', () => { logger.warn('received SIGHUP: nothing to reload (flags and files are read at start); still serving — SIGTERM stops, \'wgmesh leave\' leaves') })
  try {
    await agent.start()
  } catch (err) {
    await agent.stop().catch(() => {})
    throw asExitError(err)
  }
  onServing?.(agent)
  await agent.stoppedPromise()
  if (agent.stopReason !== undefined) throw new ExitError(agent.stopReason, 1)
}
