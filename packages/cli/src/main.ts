#!/usr/bin/env node
/** Composition root of the `wgmesh` command. One top-level catch: ExitError → message + code; anything else is a bug. */
import type { Command } from 'commander'
import { buildProgram } from './program.js'
import { ExitError } from './errors.js'

/** Commander's usage errors (unknown option, invalid choice, missing argument) are thrown, not exited on: exit 2 below. */
function throwOnUsageErrors (cmd: Command): Command {
  cmd.exitOverride()
  for (const c of cmd.commands) throwOnUsageErrors(c)
  return cmd
}

async function main (): Promise<void> {
  try {
    await throwOnUsageErrors(buildProgram()).parseAsync(process.argv)
    process.exit(0)
  } catch (err) {
    if (err instanceof ExitError) {
      process.stderr.write(`wgmesh: ${err.message}\n`)
      process.exit(err.code)
    }
    const code = (err as { code?: string }).code
    // help and --version exit 0; every usage error (commander printed it already) is bad usage: 2
    if (typeof code === 'string' && code.startsWith('commander.')) process.exit((err as { exitCode?: number }).exitCode === 0 ? 0 : 2)
    process.stderr.write(`wgmesh: unexpected error (this is a bug, please report it): ${(err as Error).stack ?? String(err)}\n`)
    process.exit(70)
  }
}

void main()
