import { Command } from 'commander'
import { control, socketOption } from './info.js'

export function leaveCommand (): Command {
  return socketOption(new Command('leave').description('announce departure to the mesh, remove the WireGuard interface and stop the agent'))
    .option('--json', 'machine-readable output')
    .action(async (flags: { stateDir: string, socket?: string, json?: boolean }) => {
      const r = await control(flags, 'leave') as { name: string }
      process.stdout.write(flags.json === true ? JSON.stringify({ left: true, name: r.name }) + '\n' : `wgmesh: ${r.name} is leaving the mesh\n`)
    })
}
