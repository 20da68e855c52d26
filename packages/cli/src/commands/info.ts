import { join } from 'node:path'
import { Command, Option } from 'commander'
import { callControl, formatInfo, type AgentInfo, type ControlRequest } from '@wgmesh/agent'
import { sharedOptions } from '../options.js'
import { ExitError } from '../errors.js'

export function socketOption (cmd: Command): Command {
  return sharedOptions(cmd).addOption(new Option('--socket <path>', 'control socket of the agent').env('WGMESH_SOCKET').default(undefined, '<state-dir>/wgmesh.sock'))
}

export async function control (flags: { stateDir: string, socket?: string }, req: 'info' | 'leave' | 'metrics' | ControlRequest): Promise<unknown> {
  try {
    return await callControl(flags.socket ?? join(flags.stateDir, 'wgmesh.sock'), typeof req === 'string' ? { cmd: req } : req)
  } catch (err) {
    throw new ExitError((err as Error).message, 1)
  }
}

export function infoCommand (): Command {
  return socketOption(new Command('info').alias('status').description('show this node and every peer: overlay IP, status, path, round-trip time, latest handshake (--wide: also IPv6, endpoint, traffic, NAT, gossip); alias: status'))
    .option('--json', 'machine-readable output (schema: docs/CONFIGURATION.md#wgmesh-info---json)')
    .option('--wide', 'every column (wider than 100 columns)')
    .action(async (flags: { stateDir: string, socket?: string, json?: boolean, wide?: boolean }) => {
      const info = await control(flags, 'info') as AgentInfo
      process.stdout.write(flags.json === true ? JSON.stringify(info, null, 2) + '\n' : formatInfo(info, { wide: flags.wide === true }) + '\n')
    })
}

export function metricsCommand (): Command {
  return socketOption(new Command('metrics').description('print the agent\'s Prometheus metrics'))
    .action(async (flags: { stateDir: string, socket?: string }) => {
      process.stdout.write(String(await control(flags, 'metrics')))
    })
}
