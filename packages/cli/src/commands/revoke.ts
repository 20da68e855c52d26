import { readFileSync } from 'node:fs'
import { Command } from 'commander'
import { verifyRevocation } from '@wgmesh/core'
import { control, socketOption } from './info.js'
import { ExitError } from '../errors.js'

export function revokeCommand (): Command {
  return socketOption(new Command('revoke').description('certificate mode: hand a CA revocation (from \'wgmesh ca revoke\') to the running agent; it checks it against its CA and spreads it, and every member removes the node and refuses it for good'))
    .requiredOption('--file <file>', 'the revocation, as \'wgmesh ca revoke\' wrote it')
    .option('--json', 'machine-readable output')
    .action(async (flags: { stateDir: string, socket?: string, file: string, json?: boolean }) => {
      let token: string
      try { token = readFileSync(flags.file, 'utf8').trim() } catch (err) { throw new ExitError(`cannot read ${flags.file}: ${(err as Error).message}`, 1) }
      const shape = verifyRevocation(token)
      if (!shape.ok) throw new ExitError(`${flags.file} is not a wgmesh revocation (${shape.detail}); make one with 'wgmesh ca revoke --ca-dir DIR --node-id ID --out FILE'`, 2)
      const r = await control(flags, { cmd: 'revoke', revocation: token }) as { nodeId: string, name?: string, fresh: boolean }
      const who = r.name === undefined ? r.nodeId : `${r.name} (${r.nodeId})`
      process.stdout.write(flags.json === true
        ? JSON.stringify({ revoked: true, ...r }) + '\n'
        : r.fresh ? `wgmesh: revoked ${who}: removed here, spreading to every member\n` : `wgmesh: ${who} was already revoked here\n`)
    })
}
