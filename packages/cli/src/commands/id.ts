import { Command } from 'commander'
import { StateStore } from '@wgmesh/agent'
import { nodeIdFromSeed } from '@wgmesh/core'
import { sharedOptions } from '../options.js'
import { ExitError } from '../errors.js'

export function idCommand (): Command {
  return sharedOptions(new Command('id').description('print this node\'s id (its Ed25519 identity, what \'wgmesh ca sign --node-id\' takes); creates the node key in the state directory if there is none'))
    .option('--json', 'machine-readable output')
    .action((flags: { stateDir: string, json?: boolean }) => {
      const store = new StateStore(flags.stateDir)
      let nodeId: string
      let created: boolean
      try {
        store.ensureDir()
        created = !store.exists()
        nodeId = nodeIdFromSeed(store.nodeSeed())
      } catch (err) {
        throw new ExitError((err as Error).message, 1)
      }
      process.stdout.write(flags.json === true ? JSON.stringify({ nodeId, stateDir: flags.stateDir, created }) + '\n' : nodeId + '\n')
    })
}
