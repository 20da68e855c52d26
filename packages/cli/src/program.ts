import { Command } from 'commander'
import { upCommand } from './commands/up.js'
import { joinCommand } from './commands/join.js'
import { infoCommand, metricsCommand } from './commands/info.js'
import { leaveCommand } from './commands/leave.js'
import { caCommand } from './commands/ca.js'
import { idCommand } from './commands/id.js'
import { revokeCommand } from './commands/revoke.js'

import { VERSION } from './options.js'

/** Defined in options.ts (the agent reports it too); bump it there. */
export { VERSION }

export function buildProgram (): Command {
  return new Command('wgmesh')
    .description('gossip-based full-mesh WireGuard: every host reaches every other, no central server')
    .version(VERSION)
    .showHelpAfterError()
    // commands listed by their name alone ('info', not 'info|status'); an alias is in its description
    .configureHelp({ subcommandTerm: (cmd) => `${cmd.name()}${cmd.options.length > 0 ? ' [options]' : ''}${cmd.registeredArguments.map(a => ` ${a.required ? '<' : '['}${a.name()}${a.variadic ? '...' : ''}${a.required ? '>' : ']'}`).join('')}` })
    .addCommand(upCommand())
    .addCommand(joinCommand())
    .addCommand(infoCommand())
    .addCommand(leaveCommand())
    .addCommand(metricsCommand())
    .addCommand(idCommand())
    .addCommand(revokeCommand())
    .addCommand(caCommand())
}
