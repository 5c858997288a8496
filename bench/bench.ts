/**
 * Timing reference: the CLI on a ResNet-20 fixture, per backend, next to the plain PyTorch implementation of
 * the same algorithm (bench/sid_reference.py). No timed assertions: it prints tables and exits 0 unless
 * something crashed.
 *
 *   npm run bench:backends [-- --steps 200 --cpu-steps 5 --cpu-layers stem,stage1_block1
 *                     --backends wasm,cpu,tensorflow,webgpu --torch-threads 2 --no-marginal --keep]
 *
 * webgpu is timed on a hardware adapter only: on a machine whose only WebGPU adapter is a software one (llvmpipe,
 * lavapipe, SwiftShader; ~20x slower than wasm) its row says so instead of a speed (docs/performance.md).
 *
 * Two per-step figures, because the CLI spends a fixed amount per layer outside the optimisation loop
 * (adaptive delta_f^2 estimate, level calibration, final ratio check: thousands of forward samples):
 *  - ms/step = report seconds / steps, as asked of every run (torch too). At few steps it is mostly that
 *    fixed cost, so each backend is compared with a torch run of the same step count.
 *  - marginal ms/step = (seconds at N steps - seconds at SHORT steps) / (step difference), from a second,
 *    short CLI run: the cost of one more optimisation step, compared with torch's loop-only ms/step.
 * Run it on an idle machine: torch's 2 OpenMP threads spin-wait and slow down many-fold when the CPUs are shared.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { CLI, fmt, printMachine, ROOT, runInTempDir, runTorchReference, show, torchMissing, type TorchLayer } from './reference';
import { makeFixture } from './resnet20';
import { stepMilliseconds } from './stepTime';
import { arg, table } from './util';

const LAYERS = ['stem', 'stage1_block1', 'stage2_block1', 'stage3_block3'];
const SAMPLES = 16;
const SEED = 1;
const SHORT = 10; // steps of the extra run used for the marginal cost

type LayerTiming = TorchLayer;
interface Run { label: string; steps: number; wallSeconds: number; layers: Map<string, LayerTiming> }

/** The webgpu runs never use a software adapter, whatever the caller's environment says. */
function hardwareOnlyEnv(): NodeJS.ProcessEnv {
  const env = { ...process.env };
  delete env.INFODISCARD_WEBGPU_ALLOW_SOFTWARE;
  return env;
}

/** Null when a hardware WebGPU adapter is there (the CLI takes --backend webgpu), else why not, in one line. */
function webgpuRefusal(modelPath: string): string | null {
  const r = spawnSync(process.execPath, [CLI, 'layers', modelPath, '--backend', 'webgpu'], { cwd: ROOT, encoding: 'utf8', env: hardwareOnlyEnv() });
  if (r.status === 0) return null;
  const line = (r.stderr || '').trim().split('\n').pop() ?? '';
  // The bench times hardware only: the CLI's hints (the software escape hatch, --backend wasm) do not apply here.
  const why = line.replace(/^infodiscard: (--backend: )?/, '').replace(/; INFODISCARD_WEBGPU_ALLOW_SOFTWARE=1 allows a software one/, '').replace(/; use --backend wasm$/, '');
  return why || `exit ${r.status ?? r.signal}`;
}

/** tfjs-node is an optional dependency with a native binary; probe it in a child so a broken install cannot take the bench down. */
function tfjsNodeLoads(): boolean {
  return spawnSync(process.execPath, ['-e', "require('@tensorflow/tfjs-node')"], { cwd: ROOT, stdio: 'ignore' }).status === 0;
}

function runCli(backend: string, steps: number, layers: string[], fx: { modelPath: string; imagePath: string }, tmp: string): Run {
  const out = path.join(tmp, `report-${backend}-${steps}.json`);
  const args = [CLI, 'analyze', fx.modelPath, '--images', fx.imagePath, '--layers', layers.join(','), '--samples', String(SAMPLES),
    // --force: random-weight fixtures have near-uniform outputs, which the pre-run preprocessing check refuses.
    '--max-steps', String(steps), '--backend', backend, '--seed', String(SEED), '--no-resume', '--force', '--out', out];
  console.log(`\n$ node ${show(args)}`);
  const t0 = performance.now();
  const r = spawnSync(process.execPath, args, { cwd: ROOT, encoding: 'utf8', maxBuffer: 64 << 20, ...(backend === 'webgpu' ? { env: hardwareOnlyEnv() } : {}) });
  const wallSeconds = (performance.now() - t0) / 1000;
  if (r.status !== 0) {
    throw new Error(`CLI (${backend}) exited with ${r.status ?? r.signal}:\n${(r.stderr || r.stdout || '').split('\n').slice(-20).join('\n')}`);
  }
  const report = JSON.parse(readFileSync(out, 'utf8')) as {
    layers: { name: string; perImage: { seconds: number; steps: number; sidMean: number; constraintRatio: number }[] }[];
    run?: { gpu?: { software: boolean; description: string; device: string } };
  };
  if (backend === 'webgpu' && (!report.run?.gpu || report.run.gpu.software)) {
    throw new Error(`webgpu: not timed: it ran on ${report.run?.gpu ? `a software adapter (${report.run.gpu.device || report.run.gpu.description})` : 'no GPU'}; its speed says nothing about a GPU`);
  }
  const timings = new Map<string, LayerTiming>();
  for (const l of report.layers) {
    const p = l.perImage[0];
    if (p) timings.set(l.name, { seconds: p.seconds, steps: p.steps, sidMean: p.sidMean, ratio: p.constraintRatio });
  }
  console.log(`  ${backend}, ${steps} max steps: ${wallSeconds.toFixed(1)} s end to end`);
  return { label: backend, steps, wallSeconds, layers: timings };
}

const msPerStep = (t: LayerTiming | undefined) => (t && t.steps > 0 ? (1000 * t.seconds) / t.steps : NaN);
const marginal = (long: LayerTiming | undefined, short: LayerTiming | undefined) =>
  long && short && long.steps > short.steps ? (1000 * (long.seconds - short.seconds)) / (long.steps - short.steps) : NaN;

async function main(tmp: string): Promise<number> {
  const steps = Number(arg('--steps', '200'));
  const cpuSteps = Number(arg('--cpu-steps', '5'));
  // The cpu backend is ~100x slower and the CLI's fixed per-layer estimates dominate at few steps:
  // the deep layers alone take tens of minutes there, so only the shallow ones run by default.
  const cpuLayers = arg('--cpu-layers', 'stem,stage1_block1').split(',');
  const wanted = arg('--backends', 'wasm,cpu,tensorflow,webgpu').split(',');
  const withMarginal = !process.argv.includes('--no-marginal');
  let backends = wanted.filter((b) => b !== 'tensorflow' || tfjsNodeLoads());
  if (wanted.includes('tensorflow') && !backends.includes('tensorflow')) console.log('tensorflow backend skipped: @tensorflow/tfjs-node does not load');

  printMachine();
  let crashed = false;
  const attempt = <T>(f: () => T): T | null => {
    try {
      return f();
    } catch (e) {
      crashed = true;
      console.log(`  ${(e as Error).message}`);
      return null;
    }
  };
  const fx = await makeFixture(path.join(tmp, 'resnet20'), 3, SEED);
  console.log(`fixture: ${fx.modelPath} (ResNet-20, seed ${SEED}), image ${fx.imagePath}`);
  let webgpuRow: string | null = null;
  if (backends.includes('webgpu') && existsSync(CLI)) {
    webgpuRow = webgpuRefusal(fx.modelPath);
    if (webgpuRow) {
      console.log(`webgpu: not timed: ${webgpuRow}`);
      backends = backends.filter((b) => b !== 'webgpu');
    }
  }

  const runs: Run[] = [];
  const shortRuns = new Map<string, Run>();
  if (!existsSync(CLI)) console.log(`\nCLI runs skipped: ${path.relative(ROOT, CLI)} not found (run npm run build)`);
  else {
    for (const b of backends) {
      const run = attempt(() => runCli(b, b === 'cpu' ? cpuSteps : steps, b === 'cpu' ? cpuLayers : LAYERS, fx, tmp));
      if (run) runs.push(run);
      if (run && withMarginal && b !== 'cpu' && steps > SHORT) {
        const short = attempt(() => runCli(b, SHORT, LAYERS, fx, tmp));
        if (short) shortRuns.set(b, short);
      }
    }
  }

  // One torch run per distinct step count, so each backend has a like-for-like partner.
  const torch = new Map<number, Run>();
  const missing = torchMissing();
  if (missing) console.log(`\nPyTorch reference skipped: ${missing}`);
  else {
    for (const n of new Set([steps, ...runs.map((r) => r.steps)])) {
      const layers = n === steps ? LAYERS : LAYERS.filter((l) => runs.some((r) => r.steps === n && r.layers.has(l)));
      const t = attempt(() => runTorchReference(fx.dir, layers, n, SAMPLES, SEED));
      if (t) torch.set(n, t);
    }
  }

  const ref = torch.get(steps);
  console.log(`\nms per step = report seconds / steps (K=${SAMPLES}); ratio = backend / torch at the same step count`);
  table(
    ['layer', `torch@${steps}`, ...runs.flatMap((r) => [`${r.label}@${r.steps}`, 'ratio'])],
    LAYERS.map((l) => [
      l,
      fmt(msPerStep(ref?.layers.get(l))),
      ...runs.flatMap((r) => {
        const own = msPerStep(r.layers.get(l));
        return [fmt(own), fmt(own / msPerStep(torch.get(r.steps)?.layers.get(l)), 2)];
      }),
    ]),
  );

  if (shortRuns.size > 0) {
    const marginalRuns = runs.filter((r) => shortRuns.has(r.label));
    console.log(`\nmarginal ms per step: CLI (seconds@${steps} - seconds@${SHORT}) / step difference; torch: optimisation loop only`);
    table(
      ['layer', 'torch loop', ...marginalRuns.flatMap((r) => [r.label, 'ratio'])],
      LAYERS.map((l) => {
        const t = ref?.layers.get(l)?.loopMsPerStep ?? NaN;
        return [l, fmt(t), ...marginalRuns.flatMap((r) => {
          const m = marginal(r.layers.get(l), shortRuns.get(r.label)?.layers.get(l));
          return [fmt(m), fmt(m / t, 2)];
        })];
      }),
    );
  }

  // The step alone, in this process, against torch's loop-only step: the per-step ratio that compares kernels.
  const stepSteps = Number(arg('--step-steps', '40'));
  // In-process: wasm and tensorflow (webgpu is timed end to end only).
  for (const b of backends.filter((x) => x !== 'cpu' && x !== 'webgpu')) {
    const own = await stepMilliseconds(b as 'wasm' | 'tensorflow', fx.modelPath, fx.imagePath, LAYERS, stepSteps, SAMPLES);
    console.log(`\noptimisation step only (median of ${stepSteps - 5} steps, K=${SAMPLES}): ${b} in-process vs torch loop`);
    table(['layer', 'torch loop ms', `${b} ms`, 'ratio'], LAYERS.map((l) => {
      const t = ref?.layers.get(l)?.loopMsPerStep ?? NaN;
      const m = own.get(l) ?? NaN;
      return [l, fmt(t), fmt(m), fmt(m / t, 2)];
    }));
  }

  for (const r of runs) {
    const t = torch.get(r.steps);
    console.log(`\n${r.label} vs torch, ${r.steps} max steps: seconds per layer and mean pixel SID (nats per pixel)`);
    table(
      ['layer', 'steps t/' + r.label, 'torch s', `${r.label} s`, 'torch SID', `${r.label} SID`, 'diff', 'torch ratio', `${r.label} ratio`],
      LAYERS.filter((l) => r.layers.has(l) || t?.layers.has(l)).map((l) => {
        const a = t?.layers.get(l);
        const b = r.layers.get(l);
        return [l, `${a?.steps ?? '-'}/${b?.steps ?? '-'}`, fmt(a?.seconds, 2), fmt(b?.seconds, 2), fmt(a?.sidMean, 3), fmt(b?.sidMean, 3),
          fmt(b && a ? b.sidMean - a.sidMean : NaN, 3), fmt(a?.ratio, 2), fmt(b?.ratio, 2)];
      }),
    );
  }
  if (runs.length === 0 && ref) {
    console.log(`\ntorch only, ${steps} steps`);
    table(['layer', 'seconds', 'ms/step', 'loop ms/step', 'SID', 'ratio'], LAYERS.map((l) => {
      const a = ref.layers.get(l);
      return [l, fmt(a?.seconds, 2), fmt(msPerStep(a)), fmt(a?.loopMsPerStep), fmt(a?.sidMean, 3), fmt(a?.ratio, 2)];
    }));
  }

  if (webgpuRow) console.log(`\nwebgpu: no speed reported (${webgpuRow})`);
  console.log('\nend-to-end wall time');
  for (const r of [...runs, ...shortRuns.values(), ...torch.values()]) {
    console.log(`  ${`${r.label}@${r.steps}`.padEnd(16)} ${r.wallSeconds.toFixed(1)} s`);
  }
  return crashed ? 1 : 0;
}

runInTempDir('infodiscard-bench-', main);
