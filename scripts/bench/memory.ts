/**
 * Footprint benchmark (issue 6, item 4): RSS and idle CPU of one agent process, alone and with
 * 8 and 50 members, and start → serving (the agent's own 'wgmesh agent serving' log line:
 * processMs = from process start, startMs = from Agent.start(), cpuMs = the process's CPU by then).
 *
 *   flock /tmp/wgmesh-lab.lock node --import tsx scripts/bench/memory.ts [RUNS] [lab|fake|all] [--only lone,8,50] [--node-flags "..."]
 *
 * Two ways to run an agent, both the bundled CLI code:
 *   lab   the real bundle (packages/cli/dist/wgmesh.mjs) in netns lab hosts with real
 *         wireguard-go, production timers: lone (1 host) and 8 members (8 public hosts).
 *   fake  a measurement trick for sizes 2 cores cannot run as real processes: the same CLI code
 *         bundled with scripts/bundle.mjs behind a tiny entry that sets a fake WireGuard host
 *         (FakeWireGuardRunner, probes over the underlay) through `agentOverrides`; on
 *         127.0.0.1, no root needed. The other members are in-process agents of ONE extra
 *         process (test/inproc/harness.ts startAgent, production timers), so "50 members" =
 *         2 measured processes + 48 in-process agents. Also lone and 8 (2 measured + 6) to
 *         compare with the lab.
 * RSS = VmRSS of the node process (wireguard-go, a separate daemon, is not counted) after a
 * settle period; CPU = utime+stime over an idle window, % of one core. Median over RUNS.
 * The node process is started as users start it: `node wgmesh.mjs ...` (no flags) unless
 * --node-flags says otherwise. Only one lab at a time: run under the lab lock.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { randomBytes } from 'node:crypto'
import { fileURLToPath } from 'node:url'
import { median, procSample, sleep } from './measure.js'

const ROOT = fileURLToPath(new URL('../..', import.meta.url))
// MEM_BUNDLE: measure another build of the CLI in the lab (e.g. an older one, for before/after)
const BUNDLE = process.env.MEM_BUNDLE ?? join(ROOT, 'packages/cli/dist/wgmesh.mjs')
const SETTLE_MS = Number(process.env.MEM_SETTLE_MS ?? 15_000)
const WINDOW_MS = Number(process.env.MEM_WINDOW_MS ?? 20_000)

let clk = 0
const ticksPerS = (): number => (clk ||= Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout.trim()) || 100)

interface Sample { rssMiB: number, cpuPct: number, processMs: number, startMs: number, startCpuMs: number }
interface Row { label: string, samples: Sample[] }

function serving (log: string): { processMs: number, startMs: number, startCpuMs: number } | undefined {
  const line = log.split('\n').find(l => l.includes('wgmesh agent serving'))
  if (line === undefined) return undefined
  const j = JSON.parse(line) as { processMs: number, startMs: number, cpuMs: number }
  return { processMs: j.processMs, startMs: j.startMs, startCpuMs: j.cpuMs }
}

async function waitFor (what: string, cond: () => boolean | Promise<boolean>, timeoutMs: number): Promise<void> {
  const t0 = Date.now()
  while (!(await cond())) {
    if (Date.now() - t0 > timeoutMs) throw new Error(`timed out after ${timeoutMs} ms: ${what}`)
    await sleep(100)
  }
}

/** settle, then RSS at the end of an idle window and CPU over it, for each PID */
async function idle (pids: number[]): Promise<Array<{ rssMiB: number, cpuPct: number }>> {
  await sleep(SETTLE_MS)
  const a = pids.map(procSample)
  const t = Date.now()
  await sleep(WINDOW_MS)
  const s = (Date.now() - t) / 1000
  return pids.map((pid, i) => {
    const b = procSample(pid)
    return { rssMiB: b.rssKiB / 1024, cpuPct: 100 * (b.ticks - a[i]!.ticks) / ticksPerS() / s }
  })
}

// ---------------------------------------------------------------- lab (real wireguard-go)

async function labRun (members: number, nodeFlags: string[]): Promise<Sample[]> {
  const { Lab } = await import('../../test/lab/lab.js')
  const { WgmeshLab } = await import('../../test/netns/wgmesh-lab.js')
  const { prepareIdentities } = await import('./identities.js')
  const lab = await Lab.up({ public: members, natted: 0 })
  const mesh = new WgmeshLab(lab)
  try {
    const hosts = lab.hosts.map(h => h.name)
    const { keyFile } = prepareIdentities(mesh, hosts)
    const procs = hosts.map(h => lab.spawn(`agent-${h}`, h, [process.execPath, ...nodeFlags, BUNDLE, h === hosts[0] ? 'up' : 'join',
      '--state-dir', mesh.node(h).stateDir, '--interface', mesh.node(h).iface, '--name', h, '--mesh-key-file', keyFile,
      '--log-format', 'json', ...(h === hosts[0] ? [] : ['--peer', lab.host(hosts[0]!).ip])]))
    await waitFor('every agent serving', () => procs.every(p => serving(p.log()) !== undefined || p.exited), 30_000)
    const dead = procs.find(p => p.exited)
    if (dead !== undefined) throw new Error(`${dead.label} exited:\n${dead.log()}`)
    if (members > 1) {
      await waitFor(`${hosts[0]!} sees ${members - 1} alive`, async () => {
        const i = await mesh.tryInfo(hosts[0]!)
        return i !== undefined && i.peers.filter(p => p.status === 'alive').length === members - 1
      }, 60_000)
    }
    const r = await idle(procs.map(p => p.pid))
    return procs.map((p, i) => ({ ...r[i]!, ...serving(p.log())! }))
  } finally {
    await lab.down()
    mesh.cleanup()
  }
}

// ---------------------------------------------------------------- fake (127.0.0.1, fake WireGuard)

/** the CLI bundled behind an entry that installs a fake WireGuard host (same bundle settings) */
function buildFakeBundle (dir: string): string {
  const entry = join(dir, 'fake-entry.ts')
  const out = join(dir, 'wgmesh.cjs')
  const src = (p: string): string => JSON.stringify(join(ROOT, p))
  writeFileSync(entry, [
    `import { FakeWireGuardRunner } from ${src('packages/wireguard/src/index.ts')}`,
    `import { StateStore } from ${src('packages/agent/src/index.ts')}`,
    `import { agentOverrides } from ${src('packages/cli/src/commands/run-agent.ts')}`,
    'const i = process.argv.indexOf(\'--state-dir\')',
    'const store = new StateStore(process.argv[i + 1]!)',
    'store.ensureDir()',
    'agentOverrides.wgRunner = new FakeWireGuardRunner({ privateKeys: { [store.wgKeyPath()]: store.wgPrivateKey() } })',
    'agentOverrides.probeVia = \'underlay\'',
    // SIGUSR2: one JSON line with where the memory is (process.memoryUsage + V8 heap spaces)
    'import * as v8 from \'node:v8\'',
    'const M = (x: number): number => Math.round(x / 104857.6) / 10',
    'process.on(\'SIGUSR2\', () => {',
    '  const m = process.memoryUsage()',
    '  const spaces = Object.fromEntries(v8.getHeapSpaceStatistics().map(s => [s.space_name.replace(/_space$/, \'\'), M(s.space_size)]))',
    '  process.stderr.write(JSON.stringify({ memBreakdown: { rss: M(m.rss), heapTotal: M(m.heapTotal), heapUsed: M(m.heapUsed), external: M(m.external), arrayBuffers: M(m.arrayBuffers), spaces } }) + \'\\n\')',
    // MEM_SNAPSHOT_DIR=DIR: and a V8 heap snapshot there (<pid>.heapsnapshot), to see what holds the heap
    '  const snap = process.env.MEM_SNAPSHOT_DIR',
    '  if (snap !== undefined) v8.writeHeapSnapshot(`${snap}/${process.pid}.heapsnapshot`)',
    '})',
    // after the overrides above (a static import would run first); no top-level await in CommonJS
    `void import(${src('packages/cli/src/main.ts')})`,
    ''
  ].join('\n'))
  const r = spawnSync(process.execPath, [join(ROOT, 'scripts/bundle.mjs'), '--entry', entry, '--outfile', out], { encoding: 'utf8' })
  if (r.status !== 0) throw new Error(`bundling the fake entry failed: ${r.stderr}`)
  // run as users run the CLI: through the loader, from a code cache made for this bundle
  const loader = join(dir, 'wgmesh.mjs')
  copyFileSync(join(ROOT, 'packages/cli/dist/wgmesh.mjs'), loader)
  const c = spawnSync(process.execPath, [loader, '--version', '--state-dir', join(dir, 'cache-run')], { encoding: 'utf8', env: { ...process.env, WGMESH_CODE_CACHE_WRITE: `${out}.cache` } })
  if (c.status !== 0 || !existsSync(`${out}.cache`)) throw new Error(`making the fake bundle's code cache failed: ${c.stderr}`)
  return loader
}

/** child mode: N in-process agents (fake WireGuard) on 127.0.0.1; prints the first one's gossip port */
async function membersChild (n: number, keyB64: string): Promise<void> {
  const { startAgent, cleanupDirs } = await import('../../test/inproc/harness.js')
  const meshKey = new Uint8Array(Buffer.from(keyB64, 'base64'))
  const common = { meshKey, heartbeatMs: 1000, deadAfterMs: 3000, stunPort: 0, lanPort: 0, upnp: false }
  const first = await startAgent({ label: 'm0', ...common, createMesh: true })
  const seed = `127.0.0.1:${/\/tcp\/(\d+)/.exec(first.agent.listenAddrs()[0]!)![1]!}`
  const agents = [first]
  for (let i = 1; i < n; i++) agents.push(await startAgent({ label: `m${i}`, ...common, peers: [seed] }))
  console.log(`seed ${seed}`)
  const stop = (): void => { void Promise.all(agents.map(async a => { await a.agent.stop() })).finally(() => { cleanupDirs(); process.exit(0) }) }
  process.on('SIGTERM', stop)
  process.on('SIGINT', stop)
}

async function fakeRun (members: number, measured: number, nodeFlags: string[], dir: string, fakeBundle: string): Promise<Sample[]> {
  const keyB64 = randomBytes(32).toString('base64')
  const keyFile = join(dir, 'mesh.key')
  writeFileSync(keyFile, keyB64 + '\n', { mode: 0o600 })
  const children: ChildProcess[] = []
  const logs: string[] = []
  const run = (argv: string[], idx: number): ChildProcess => {
    const c = spawn(process.execPath, argv, { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] })
    logs[idx] = ''
    c.stdout!.on('data', (d: Buffer) => { logs[idx] += d.toString() })
    c.stderr!.on('data', (d: Buffer) => { logs[idx] += d.toString() })
    children.push(c)
    return c
  }
  try {
    const others = members - measured
    let seed: string[] = []
    if (others > 0) {
      run(['--conditions=wgmesh-src', '--import', 'tsx', '--import', './scripts/polyfills.mjs', fileURLToPath(import.meta.url), '--members-child', String(others), keyB64], 0)
      await waitFor(`${others} in-process members`, () => /seed (\S+)/.test(logs[0]!) || children[0]!.exitCode !== null, 120_000)
      const m = /seed (\S+)/.exec(logs[0]!)
      if (m === null) throw new Error(`members process failed:\n${logs[0]!}`)
      seed = ['--peer', m[1]!]
    }
    const measuredProcs: Array<{ c: ChildProcess, idx: number, state: string }> = []
    for (let k = 0; k < measured; k++) {
      const state = join(dir, `agent${k}`)
      const idx = logs.length
      const c = run([...nodeFlags, fakeBundle, seed.length === 0 ? 'up' : 'join', '--state-dir', state, '--name', `measured${k}`,
        '--mesh-key-file', keyFile, '--gossip-host', '127.0.0.1', '--gossip-port', '0', '--probe-port', '0', '--stun-port', '0',
        '--lan-port', '0', '--upnp', 'off', '--interface', `wgmmem${k}`, '--log-format', 'json', ...seed], idx)
      measuredProcs.push({ c, idx, state })
      await waitFor(`measured${k} serving`, () => serving(logs[idx]!) !== undefined || c.exitCode !== null, 30_000)
      if (c.exitCode !== null) throw new Error(`measured${k} exited:\n${logs[idx]!}`)
    }
    if (members > 1) {
      for (const p of measuredProcs) {
        let last = ''
        await waitFor(`${p.state} knows ${members - 1} (85 % alive)`, () => {
          const r = spawnSync(process.execPath, [BUNDLE, 'info', '--json', '--state-dir', p.state], { encoding: 'utf8', timeout: 5000 })
          if (r.status !== 0) return false
          const peers = (JSON.parse(r.stdout) as { peers: Array<{ status: string }> }).peers
          last = `${peers.filter(x => x.status === 'alive').length} alive of ${peers.length}`
          // 48 agents in one process on 2 cores lag: a few may be suspected at any moment
          return peers.length === members - 1 && peers.filter(x => x.status === 'alive').length >= Math.floor(0.85 * (members - 1))
        }, 90_000).catch((err: Error) => { throw new Error(`${err.message} (last: ${last})`) })
        console.log(`  measured ${p.state}: ${last}`)
      }
    }
    const r = await idle(measuredProcs.map(p => p.c.pid!))
    for (const p of measuredProcs) p.c.kill('SIGUSR2')
    await sleep(process.env.MEM_SNAPSHOT_DIR === undefined ? 300 : 5000)
    for (const p of measuredProcs) {
      const line = logs[p.idx]!.split('\n').reverse().find(l => l.includes('memBreakdown'))
      if (line !== undefined) console.log(`  breakdown MiB (${members} members): ${JSON.stringify((JSON.parse(line) as { memBreakdown: unknown }).memBreakdown)}`)
    }
    return measuredProcs.map((p, i) => ({ ...r[i]!, ...serving(logs[p.idx]!)! }))
  } finally {
    for (const c of children.reverse()) {
      if (c.exitCode !== null || c.signalCode !== null) continue
      c.kill('SIGTERM')
      const t = setTimeout(() => { c.kill('SIGKILL') }, 5000)
      await new Promise(resolve => c.once('exit', resolve))
      clearTimeout(t)
    }
  }
}

// ---------------------------------------------------------------- main

function fmt (rows: Row[]): void {
  const f = (xs: number[], d = 1): string => `${median(xs).toFixed(d)} (max ${Math.max(...xs).toFixed(d)})`
  console.log('')
  console.log('| scenario | RSS MiB median (max) | idle CPU % median (max) | start→serving from process start, ms | from Agent.start(), ms | CPU to serving, ms | n |')
  console.log('| --- | --- | --- | --- | --- | --- | --- |')
  for (const r of rows) {
    const s = r.samples
    console.log(`| ${r.label} | ${f(s.map(x => x.rssMiB))} | ${f(s.map(x => x.cpuPct), 2)} | ${f(s.map(x => x.processMs), 0)} | ${f(s.map(x => x.startMs), 0)} | ${f(s.map(x => x.startCpuMs), 0)} | ${s.length} |`)
  }
}

async function main (): Promise<void> {
  const args = process.argv.slice(2)
  if (args[0] === '--members-child') { await membersChild(Number(args[1]), args[2]!); return }
  const fi = args.indexOf('--node-flags')
  const nodeFlags = fi >= 0 ? args.splice(fi, 2)[1]!.split(/\s+/).filter(x => x !== '') : []
  const oi = args.indexOf('--only')
  const only = oi >= 0 ? args.splice(oi, 2)[1]!.split(',') : ['lone', '8', '50']
  const runs = Number(args[0] ?? 3)
  const which = args[1] ?? 'all'
  if (!existsSync(BUNDLE)) throw new Error(`${BUNDLE} is missing: npm run build`)
  const rows: Row[] = []
  const add = (label: string, s: Sample[]): void => {
    let row = rows.find(r => r.label === label)
    if (row === undefined) rows.push(row = { label, samples: [] })
    row.samples.push(...s)
    console.log(`${label}: RSS ${s.map(x => x.rssMiB.toFixed(1)).join('/')} MiB, CPU ${s.map(x => x.cpuPct.toFixed(2)).join('/')} %, start→serving ${s.map(x => x.processMs).join('/')} ms (CPU ${s.map(x => x.startCpuMs).join('/')} ms)`)
  }
  const dir = mkdtempSync(join(tmpdir(), 'wgmesh-mem-'))
  try {
    const fakeBundle = which === 'lab' ? '' : buildFakeBundle(dir)
    for (let run = 1; run <= runs; run++) {
      if (which !== 'fake') {
        if (only.includes('lone')) add('lab: lone agent', await labRun(1, nodeFlags))
        if (only.includes('8')) add('lab: 8 members (all 8 agents)', await labRun(8, nodeFlags))
      }
      if (which !== 'lab') {
        const d = (s: string): string => { const x = join(dir, `${s}-${run}`); mkdirSync(x); return x }
        if (only.includes('lone')) add('fake: lone agent', await fakeRun(1, 1, nodeFlags, d('lone'), fakeBundle))
        if (only.includes('8')) add('fake: 8 members (2 measured + 6 in-process)', await fakeRun(8, 2, nodeFlags, d('m8'), fakeBundle))
        if (only.includes('50')) add('fake: 50 members (2 measured + 48 in-process)', await fakeRun(50, 2, nodeFlags, d('m50'), fakeBundle))
      }
    }
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
  console.log(`\nwgmesh footprint (${runs} run(s); settle ${SETTLE_MS / 1000} s, idle window ${WINDOW_MS / 1000} s; node ${process.version}${nodeFlags.length > 0 ? ' ' + nodeFlags.join(' ') : ''}; goals: ≤ 60 MiB, ≤ 1 % CPU, ≤ 350 ms)`)
  fmt(rows)
}

main().catch((err: Error) => { console.error(err.stack ?? err.message); process.exit(1) })
