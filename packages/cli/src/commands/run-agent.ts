/** Run the agent in the foreground until `leave`, SIGTERM or SIGINT. Shared by `up` and `join`. */
import { Agent, createLogger, type AgentInit } from '@wgmesh/agent'
import { InvalidConfigError } from '@wgmesh/core'
import { agentInit, readMeshKey, type AgentFlags } from '../options.js'
import { ExitError } from '../errors.js'

export async function runAgent (flags: AgentFlags, extra: Partial<AgentInit>, onServing?: (agent: Agent) => void): Promise<void> {
  const logger = createLogger({ level: flags.logLevel, json: flags.logFormat === 'auto' ? undefined : flags.logFormat === 'json' })
  const agent = new Agent({ ...agentInit(flags), meshKey: readMeshKey(flags), ...extra, logger })
  let signalled = false
  const onSignal = (sig: string): void => {
    if (signalled) return
    signalled = true
    logger.info(`received ${sig}, stopping (the WireGuard interface stays up; 'wgmesh leave' removes it)`)
    void agent.stop()
  }
  process.on('SIGTERM', () => { onSignal('SIGTERM') })
  process.on('SIGINT', () => { onSignal('SIGINT') })
  try {
    await agent.start()
  } catch (err) {
    await agent.stop().catch(() => {})
    const e = err as Error
    if (['MeshKeyError', 'StateError', 'ControlError', 'InvalidConfigError', 'InterfaceMissingError', 'CommandFailedError'].includes(e.name) || e instanceof InvalidConfigError) {
      throw new ExitError(e.message, 1)
    }
    if ((e as NodeJS.ErrnoException).code === 'EADDRINUSE' || /EADDRINUSE/.test(e.message)) {
      throw new ExitError(`the gossip port is in use (${e.message}); is another agent running? Use --gossip-port`, 1)
    }
    throw err
  }
  onServing?.(agent)
  await agent.stoppedPromise()
}
