/**
 * @packageDocumentation
 * The `wgmesh` command line (commander). Composition root only: parses flags and their
 * WGMESH_* twins, then hands over to @wgmesh/agent.
 */
export { buildProgram, VERSION } from './program.js'
export { parseDuration, readMeshKey } from './options.js'
export { ExitError } from './errors.js'
