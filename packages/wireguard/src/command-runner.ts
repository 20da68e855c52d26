/**
 * The seam every OS command goes through. The real implementation spawns the
 * program directly (argv, never a shell); tests use {@link FakeWireGuardRunner}.
 */
import { spawn } from 'node:child_process'
import { CommandFailedError } from './errors.js'
import type { Step } from './plan.js'
import { failedBatchIndex, ipBatchScript } from './step-batch.js'

export interface RunOptions {
  /** Written to the command's stdin, which is then closed. Without it stdin is /dev/null. */
  stdin?: string
  /** Return a non-zero exit as a result instead of throwing {@link CommandFailedError}. */
  allowFail?: boolean
}

export interface RunResult {
  stdout: string
  stderr: string
  /** Exit code; 127 = could not be started, 124 = timed out. */
  code: number
}

export interface CommandRunner {
  /** Runs `argv[0]` with `argv.slice(1)`. Throws {@link CommandFailedError} on non-zero exit unless `opts.allowFail`. */
  run: (argv: string[], opts?: RunOptions) => Promise<RunResult>
  /**
   * Runs several `ip` steps in one process (`ip -batch -`), stopping at the first that fails, and
   * throws {@link CommandFailedError} naming that step (see step-batch.ts). Optional: without it
   * the configurator runs them one by one.
   */
  runIpBatch?: (steps: Step[]) => Promise<void>
}

export interface ExecRunnerInit {
  /** Kill the command (SIGKILL) after this long; default 30 000 ms. */
  timeoutMs?: number
  /**
   * After the process exits, wait at most this long for its stdout/stderr to
   * close (a daemonizing child such as wireguard-go may inherit them); default 250 ms.
   */
  closeGraceMs?: number
}

/**
 * Environment variables never handed to a child: the mesh key (`WGMESH_MESH_KEY`), anything
 * else of ours (`WGMESH_*`), and any name that says it holds a secret. `wg`, `ip` and
 * wireguard-go need none of them, and a child's environment is readable by whoever can read
 * its /proc/<pid>/environ (and by whatever it spawns in turn).
 */
export const SECRET_ENV = /^WGMESH_|KEY|SECRET|PSK|SEED|TOKEN|PASSW|CREDENTIAL/i

/** `env` without the variables matching {@link SECRET_ENV}, plus LC_ALL=C. Pure. */
export function childEnv (env: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
  const out: NodeJS.ProcessEnv = {}
  for (const [k, v] of Object.entries(env)) if (!SECRET_ENV.test(k)) out[k] = v
  out.LC_ALL = 'C'
  return out
}

/**
 * A {@link CommandRunner} that really runs programs (node:child_process.spawn, no shell, LC_ALL=C,
 * secrets removed from the environment: {@link childEnv}).
 */
export function execRunner (init: ExecRunnerInit = {}): CommandRunner {
  const timeoutMs = init.timeoutMs ?? 30_000
  const closeGraceMs = init.closeGraceMs ?? 250
  // the children's environment, made at this runner's first spawn: process.env is read through
  // C++ interceptors (~1 ms per spawn here, more on a busy start), and the agent does not
  // change its environment while it runs (a runner made after a change sees it)
  let env: NodeJS.ProcessEnv | undefined
  const spawnOnce = async (argv: string[], stdin: string | undefined): Promise<RunResult & { error?: unknown }> =>
    await spawnWith(argv, stdin, timeoutMs, closeGraceMs, env ??= childEnv(process.env))
  return {
    run: async (argv, opts = {}) => {
      const r = await spawnOnce(argv, opts.stdin)
      if (r.code !== 0 && opts.allowFail !== true) {
        throw new CommandFailedError(argv, r.code, r.stderr, r.stdout, r.error === undefined ? undefined : { cause: r.error })
      }
      return { stdout: r.stdout, stderr: r.stderr, code: r.code }
    },
    runIpBatch: async (steps) => {
      const argv = ['ip', '-batch', '-']
      const r = await spawnOnce(argv, ipBatchScript(steps))
      if (r.code === 0) return
      // name the step that failed, as running it alone would have; its error without ip's batch note
      const i = failedBatchIndex(r.stderr, steps.length)
      const failed = i === undefined ? undefined : steps[i]
      const stderr = r.stderr.split('\n').filter(l => !/^Command failed -:\d+/.test(l)).join('\n')
      throw new CommandFailedError(failed ?? argv, r.code, failed === undefined ? r.stderr : stderr, r.stdout, r.error === undefined ? undefined : { cause: r.error })
    }
  }
}

async function spawnWith (argv: string[], stdin: string | undefined, timeoutMs: number, closeGraceMs: number, env: NodeJS.ProcessEnv): Promise<RunResult & { error?: unknown }> {
  const [file, ...args] = argv
  if (file === undefined) return { stdout: '', stderr: 'empty argv', code: 127 }
  return await new Promise(resolve => {
    const out: Buffer[] = []
    const err: Buffer[] = []
    let settled = false
    let timedOut = false
    let exitCode: number | undefined
    const child = spawn(file, args, {
      shell: false,
      stdio: [stdin === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
      env
    })
    const timer = setTimeout(() => { timedOut = true; child.kill('SIGKILL') }, timeoutMs)
    const finish = (code: number, error?: unknown): void => {
      if (settled) return
      settled = true
      clearTimeout(timer)
      let stderr = Buffer.concat(err).toString('utf8')
      if (timedOut) stderr += `${stderr === '' ? '' : '\n'}timed out after ${timeoutMs} ms`
      const r: RunResult & { error?: unknown } = { stdout: Buffer.concat(out).toString('utf8'), stderr, code: timedOut ? 124 : code }
      if (error !== undefined) r.error = error
      resolve(r)
    }
    child.stdout?.on('data', (b: Buffer) => out.push(b))
    child.stderr?.on('data', (b: Buffer) => err.push(b))
    child.on('error', e => {
      err.push(Buffer.from(e.message))
      finish(127, e)
    })
    child.on('exit', (code, signal) => {
      exitCode = code ?? (signal !== null ? 128 : 1)
      // Streams normally close right after; if a daemonized grandchild holds them, stop waiting.
      setTimeout(() => {
        child.stdout?.destroy()
        child.stderr?.destroy()
        finish(exitCode ?? 1)
      }, closeGraceMs)
    })
    child.on('close', (code, signal) => finish(exitCode ?? code ?? (signal !== null ? 128 : 1)))
    if (stdin !== undefined) {
      child.stdin?.on('error', () => {})
      child.stdin?.end(stdin)
    }
  })
}
