import { Command } from 'commander'
import { StateStore } from '@wgmesh/agent'
import { agentOptions, readMeshKey, validateAgentFlags, type AgentFlags } from '../options.js'
import { ExitError } from '../errors.js'
import { runAgent } from './run-agent.js'

export function upCommand (): Command {
  return agentOptions(new Command('up')
    .description('start this node; creates a new mesh (and its key) when the state directory has none, and prints the command for others to join')
  ).action(async (flags: AgentFlags) => {
    validateAgentFlags(flags) // every flag and combination, before anything is written or started
    // `up --peer X` with no key would silently start a second, separate mesh
    if ((flags.peer ?? []).length > 0 && readMeshKey(flags) === undefined && new StateStore(flags.stateDir).meshKey() === undefined) {
      throw new ExitError('--peer joins an existing mesh, which needs its key: pass --mesh-key-file FILE or WGMESH_MESH_KEY (or use \'wgmesh join\'); without --peer, \'up\' creates a new mesh', 2)
    }
    await runAgent(flags, { createMesh: true }, (agent) => {
      const addr = agent.record.gossipAddrs.map(a => /^\/ip[46]\/([^/]+)\/tcp\/([0-9]+)/.exec(a)).find(m => m !== null)
      const target = addr != null ? `${addr[1]!.includes(':') ? `[${addr[1]!}]` : addr[1]!}:${addr[2]!}` : '<this-host>'
      process.stdout.write([
        `wgmesh: ${agent.record.name} is up: ${agent.record.ipv4} ${agent.record.ipv6}`,
        `To add a host, copy ${agent.store.path('mesh.key')} to it (keep it mode 0600), then run there:`,
        `  wgmesh join --peer ${target} --mesh-key-file /path/to/mesh.key` + (flags.ca === undefined ? '' : ' --ca /path/to/ca.pub --cert /path/to/host.cert'),
        ...(flags.ca === undefined ? [] : ['(certificate mode: first run \'wgmesh id\' there, and sign its id with \'wgmesh ca sign\' where the CA directory is)']),
        ''
      ].join('\n'))
    })
  })
}
