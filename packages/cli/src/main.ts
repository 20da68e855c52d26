#!/usr/bin/env node
/** Composition root of the `wgmesh` command. One top-level catch: ExitError → message + code; anything else is a bug. */
import { buildProgram } from './program.js'
import { ExitError } from './errors.js'

async function main (): Promise<void> {
  try {
    await buildProgram().parseAsync(process.argv)
    process.exit(0)
  } catch (err) {
    if (err instanceof ExitError) {
      process.stderr.write(`wgmesh: ${err.message}\n`)
      process.exit(err.code)
    }
    const code = (err as { code?: string }).code
    if (typeof code === 'string' && code.startsWith('commander.')) process.exit((err as { exitCode?: number }).exitCode ?? 2)
    process.stderr.write(`wgmesh: unexpected error (this is a bug, please report it): ${(err as Error).stack ?? String(err)}\n`)
    process.exit(70)
  }
}

void main()
