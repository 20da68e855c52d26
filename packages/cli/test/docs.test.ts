/**
 * The man page and bash completion that ship in the npm package (scripts/gen-docs.mjs) are
 * generated from buildProgram(): every command and flag the CLI has is documented and
 * completed, choices complete to exactly the allowed values, the page formats without a
 * groff warning. Runs the generator as the packer does (on the sources, no build needed).
 */
import { before, test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, readFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { spawnSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import type { Command } from 'commander'
import { buildProgram } from '../src/program.js'

const ROOT = fileURLToPath(new URL('../../../', import.meta.url))
let completion: string
let manText: string

function commands (cmd: Command, path: string[] = []): Array<{ cmd: Command, path: string[] }> {
  return [{ cmd, path }, ...cmd.commands.flatMap(c => commands(c, [...path, c.name()]))]
}

/** COMPREPLY for the command line `words` with the cursor on the last word. */
function complete (words: string[]): string[] {
  const arr = words.map(w => `'${w}'`).join(' ')
  const r = spawnSync('bash', ['-c', `source "$1"; COMP_WORDS=(${arr}); COMP_CWORD=${words.length - 1}; _wgmesh; printf '%s\\n' "\${COMPREPLY[@]}"`, 'bash', completion], { encoding: 'utf8' })
  assert.equal(r.status, 0, r.stderr)
  assert.equal(r.stderr, '')
  return r.stdout.split('\n').filter(x => x !== '').sort()
}

before(() => {
  const out = mkdtempSync(join(tmpdir(), 'wgmesh-docs-'))
  const r = spawnSync(process.execPath, ['--conditions=wgmesh-src', '--import', 'tsx', '--import', join(ROOT, 'scripts/polyfills.mjs'), join(ROOT, 'scripts/gen-docs.mjs'), out], { cwd: ROOT, encoding: 'utf8' })
  assert.equal(r.status, 0, r.stderr)
  completion = join(out, 'bash-completion/completions/wgmesh')
  const man = join(out, 'man/man1/wgmesh.1')
  const g = spawnSync('groff', ['-man', '-ww', '-Tutf8', '-P', '-cbou', man], { encoding: 'utf8', env: { ...process.env, GROFF_NO_SGR: '1' } })
  assert.equal(g.status, 0, g.stderr)
  assert.equal(g.stderr, '', 'groff: no warnings')
  // rendered text with hyphens as typed (groff renders \- as U+2212 in utf8)
  manText = g.stdout.replace(/\u2212/g, '-').replace(/\u2010/g, '-')
})

test('every command is completed and documented', () => {
  const program = buildProgram()
  for (const { cmd, path } of commands(program)) {
    const subs = cmd.commands.map(c => c.name())
    if (subs.length > 0) {
      const got = complete(['wgmesh', ...path, ''])
      for (const s of subs) assert.ok(got.includes(s), `'wgmesh ${path.join(' ')} <TAB>' offers ${s}: ${got.join(' ')}`)
    }
    if (path.length > 0) assert.ok(manText.includes(`wgmesh ${path.join(' ')}`), `man page has a section for wgmesh ${path.join(' ')}`)
  }
  assert.deepEqual(complete(['wgmesh', 'jo']), ['join'])
  assert.deepEqual(complete(['wgmesh', 'help', 'le']), ['leave'])
})

test('every flag is completed for its command, and documented with its variable and default', () => {
  for (const { cmd, path } of commands(buildProgram())) {
    const longs = cmd.options.filter(o => !o.hidden).map(o => o.long!).filter(l => l !== undefined)
    if (longs.length === 0) continue
    const got = complete(['wgmesh', ...path, '--'])
    for (const l of longs) {
      assert.ok(got.includes(l), `'wgmesh ${path.join(' ')} --<TAB>' offers ${l}`)
      assert.ok(manText.includes(l), `man page documents ${l}`)
    }
    for (const o of cmd.options) {
      if (o.envVar !== undefined) assert.ok(manText.includes(o.envVar), `man page names ${o.envVar}`)
    }
    // a flag's value is not taken for a subcommand: `wgmesh up --name info --<TAB>` still completes up's flags
    if (path.length === 1 && cmd.options.some(o => o.long === '--name')) {
      assert.ok(complete(['wgmesh', ...path, '--name', 'info', '--st']).includes('--state-dir'))
    }
  }
})

test('a flag with choices completes to exactly its choices; a directory flag to directories', () => {
  let checked = 0
  for (const { cmd, path } of commands(buildProgram())) {
    for (const o of cmd.options) {
      if (o.argChoices === undefined || o.long === undefined) continue
      assert.deepEqual(complete(['wgmesh', ...path, o.long, '']), [...o.argChoices].sort(), `${path.join(' ')} ${o.long}`)
      checked++
    }
  }
  assert.ok(checked >= 4, `choices checked: ${checked}`)
  const dirs = complete(['wgmesh', 'info', '--state-dir', join(ROOT, 'pack')])
  assert.deepEqual(dirs, [join(ROOT, 'packages'), join(ROOT, 'packaging')].sort())
})

test('the man page carries the version and the exit codes', () => {
  assert.match(readFileSync(join(ROOT, 'packaging/npm/package.json'), 'utf8'), new RegExp(`"version": "${buildProgram().version()!.replace(/\./g, '\\.')}"`), 'package version = CLI VERSION')
  assert.match(manText, new RegExp(`wgmesh ${buildProgram().version()!.replace(/\./g, '\\.')}`))
  assert.match(manText, /EXIT STATUS[\s\S]*70/)
})
