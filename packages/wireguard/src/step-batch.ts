/**
 * Which planned steps run together (pure). An apply's steps each cost a round trip — a UAPI
 * request to wireguard-go, or a process spawned from the agent — and 8 agents starting at once on
 * 2 cores wait up to a few hundred ms for each (the reply or the child's exit is handled only when
 * the event loop gets to it). So consecutive steps run as one where the tools allow it, in the
 * planned order:
 * - `wg set` steps that UAPI can express → one UAPI `set` request (wg(8) sends many peers in one
 *   request too; wireguard-go applies the lines in order, so a `remove` and the same peer's
 *   re-creation stay in order). Device keys (private key, port, fwmark) must precede the first
 *   peer in a request, so a step with device keys starts a new group once peers are in one;
 * - `ip` steps → one `ip -batch -` process, which stops at the first command that fails, as
 *   running them one by one would. Only words without white space, quotes, `\` or `#` (the batch
 *   syntax's), which is every step the planner makes.
 */
import type { Step } from './plan.js'
import { wgSetStepToUapi, type UapiSetRequest, type WgSetAsUapi } from './uapi-set.js'

export type StepGroup =
  | { kind: 'uapi', steps: Step[], set: WgSetAsUapi }
  | { kind: 'ip', steps: Step[] }
  | { kind: 'one', steps: [Step] }

export interface BatchOptions {
  /** The interface answers over UAPI: its `wg set` steps may be merged. */
  uapi: boolean
  /** The runner can run `ip -batch -`. */
  ipBatch: boolean
}

const BATCH_SAFE = /^[^\s"'\\#]+$/

/** Whether a step can go into an `ip -batch` script unchanged. */
export function ipBatchable (step: Step): boolean {
  return step[0] === 'ip' && step.length > 1 && step.slice(1).every(w => BATCH_SAFE.test(w))
}

/** `ip -batch -` input for `ip` steps (their argv without the leading "ip"). */
export function ipBatchScript (steps: Step[]): string {
  return steps.map(s => s.slice(1).join(' ')).join('\n') + '\n'
}

/** The 0-based index of the step `ip -batch -` reports as failed ("Command failed -:3"), if it says. */
export function failedBatchIndex (stderr: string, count: number): number | undefined {
  const m = /Command failed -:(\d+)/.exec(stderr)
  if (m === null) return undefined
  const i = Number(m[1]) - 1
  return i >= 0 && i < count ? i : undefined
}

function hasDeviceKeys (r: UapiSetRequest, file: string | undefined): boolean {
  return file !== undefined || r.privateKey !== undefined || r.listenPort !== undefined || r.fwmark !== undefined
}

function merge (into: WgSetAsUapi, next: WgSetAsUapi): WgSetAsUapi {
  const request: UapiSetRequest = { ...into.request }
  const n = next.request
  if (n.privateKey !== undefined) request.privateKey = n.privateKey
  if (n.listenPort !== undefined) request.listenPort = n.listenPort
  if (n.fwmark !== undefined) request.fwmark = n.fwmark
  const peers = [...(into.request.peers ?? []), ...(n.peers ?? [])]
  if (peers.length > 0) request.peers = peers
  const file = next.privateKeyFile ?? into.privateKeyFile
  return file === undefined ? { request } : { request, privateKeyFile: file }
}

/** Groups `steps` (in order) into the runs described above. */
export function batchSteps (steps: Step[], ifname: string, opts: BatchOptions): StepGroup[] {
  const out: StepGroup[] = []
  for (const step of steps) {
    const last = out[out.length - 1]
    const u = opts.uapi ? wgSetStepToUapi(step, ifname) : undefined
    if (u !== undefined) {
      const joinable = last?.kind === 'uapi' && !((last.set.request.peers ?? []).length > 0 && hasDeviceKeys(u.request, u.privateKeyFile))
      if (joinable && last.kind === 'uapi') {
        last.steps.push(step)
        last.set = merge(last.set, u)
      } else {
        out.push({ kind: 'uapi', steps: [step], set: u })
      }
      continue
    }
    if (opts.ipBatch && ipBatchable(step)) {
      if (last?.kind === 'ip') last.steps.push(step)
      else out.push({ kind: 'ip', steps: [step] })
      continue
    }
    out.push({ kind: 'one', steps: [step] })
  }
  return out
}
