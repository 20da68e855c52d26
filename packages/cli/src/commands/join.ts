import { Command } from 'commander'
import { agentOptions, readMeshKey, validateAgentFlags, type AgentFlags } from '../options.js'
import { ExitError } from '../errors.js'
import { StateStore } from '@wgmesh/agent'
import { runAgent } from './run-agent.js'

export function joinCommand (): Command {
  return agentOptions(new Command('join')
    .description('join an existing mesh through any member (--peer); a node that joined before needs neither --peer nor the key again')
  ).action(async (flags: AgentFlags) => {
    validateAgentFlags(flags) // every flag and combination, before anything is written or started
    const store = new StateStore(flags.stateDir)
    const hasState = store.exists() && store.meshKey() !== undefined
    if (!hasState) {
      if ((flags.peer ?? []).length === 0) throw new ExitError('join needs --peer <host[:port]> of a member (or WGMESH_PEERS), since this node has no saved mesh state', 2)
      if (readMeshKey(flags) === undefined) throw new ExitError('join needs the mesh key: --mesh-key-file FILE or WGMESH_MESH_KEY (copy mesh.key from a member\'s state directory)', 2)
    }
    await runAgent(flags, { createMesh: false })
  })
}
