/**
 * The speed target (issue 7): a full-model SID analysis of a ResNet-20 (32x32x3, one image, the stem and every
 * residual block's output) with `infodiscard analyze` as a user runs it, against the plain PyTorch script
 * (bench/sid_reference.py: Debian python3-torch, 2 threads, Adam, 200 steps, K=16), both in this invocation.
 * Prints: end-to-end wall times and their ratio; the answer against a 200-step run of our own engine (mean SID
 * within 0.1 nats, map Pearson >= 0.9, constraint ratio within 5 % of alpha); time to the first finished layer;
 * peak memory per worker and in all; achieved GFLOP/s per layer against one matmul's; and scaling tables over
 * input size (with --sigma-grid) and depth. No assertions and no timed limits: it prints, and exits 1 only if
 * something crashed.
 *
 *   npm run bench [-- --variants "default;--warm-start" --cli-args "..." --workers auto --steps 200
 *                    --sizes 32,64,128,224 --depths 1,2,3 --scaling-layers last|all --no-scaling --no-torch --keep]
 * --ref-report FILE: reuse the fixed-step reference report of an earlier run (kept with --keep) instead of running it.
 * --ref-seeds 2 (or --ref2-report FILE): a second reference with seed 2; prints how far the two references' maps are
 * apart (the noise floor of the map criterion) and each variant's map r against the mean of both.
 * --scaling-args: options of the scaling runs (default a fixed 20 steps, so rows compare cost, not convergence).
 * --variants: CLI option sets to time, ';'-separated ('default' = no options; NAME=value words set environment
 * variables, e.g. "INFODISCARD_NO_FOLD=1" or "--workers 1"); --cli-args: added to every run.
 *
 * --fixture resnet18-224: the real-scale target of issue 15 instead (bench/resnet18_224.ts: torchvision's ResNet-18
 * exported to ONNX with seeded random weights, one 224x224 photo, ImageNet normalisation, the four stage outputs
 * layer1..layer4; the PyTorch script runs the same ONNX graph op by op). Same tables, without the GFLOP/s and
 * scaling ones (they read the Keras fixture); default variants "default" only. --layers 1,4 picks stages.
 *
 * Run it on an idle machine: torch's OpenMP threads spin-wait and slow down many-fold when the CPUs are shared.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import { selectBackend } from '../src/engine/backend';
import type { Report } from '../src/engine/report';
import { CLI, fmt, printMachine, PYTHON, ROOT, runInTempDir, runTorchReference, show, torchMissing, type TorchRun } from './reference';
import { buildResNet, makeFixture, type FixtureInfo } from './resnet20';
import { makeResNet18Fixture, stageLabel } from './resnet18_224';
import { arg, pearson, table } from './util';

const SAMPLES = 16;
const SEED = 1;
const ALPHA = 1.5;

interface CliRun {
  label: string;
  wallSeconds: number;
  report: Report;
  /** The CLI process's own peak (MB), from its "Done" line; the workers' are in report.run. */
  selfPeakMB: number;
  /** No worker processes: the CLI analysed in its own process (report.run has that one process). */
  inProcess: boolean;
}

const shellWords = (s: string) => s.split(/\s+/).filter((w) => w.length > 0);

/** Runs the CLI; words of `extra` of the form NAME=value are environment variables (INFODISCARD_NO_FOLD=1). */
function runCli(label: string, fx: Pick<FixtureInfo, 'modelPath' | 'imagePath'>, layers: string[], extra: string[], tmp: string): CliRun {
  const out = path.join(tmp, `${label.replace(/\W+/g, '-')}.json`);
  const env = Object.fromEntries(extra.filter((w) => /^[A-Z_]+=/.test(w)).map((w) => w.split('=') as [string, string]));
  const options = extra.filter((w) => !/^[A-Z_]+=/.test(w));
  const args = [CLI, 'analyze', fx.modelPath, '--images', fx.imagePath, '--layers', layers.join(','), '--samples', String(SAMPLES),
    // --force: the ResNet-20 fixture's weights are random, so its outputs are near-uniform at any preprocessing and
    // the pre-run check (issue 13) would stop the run; the bench times the search, not the model's predictions.
    '--seed', String(SEED), '--backend', 'wasm', '--workers', arg('--workers', 'auto'), ...options, '--no-resume', '--force', '--out', out];
  console.log(`\n$ ${Object.entries(env).map(([k, v]) => `${k}=${v} `).join('')}node ${show(args)}`);
  const t0 = performance.now();
  const r = spawnSync(process.execPath, args, { cwd: ROOT, encoding: 'utf8', maxBuffer: 64 << 20, env: { ...process.env, ...env } });
  const wallSeconds = (performance.now() - t0) / 1000;
  if (r.status !== 0) throw new Error(`CLI (${label}) exited with ${r.status ?? r.signal}:\n${(r.stderr || '').split('\n').slice(-15).join('\n')}`);
  const done = r.stderr.split('\n').find((l) => l.startsWith('Done in')) ?? '';
  console.log(`  ${done}`);
  const self = /this process (\d+) MB/.exec(done) ?? /peak memory (\d+) MB/.exec(done);
  const inProcess = !/this process/.test(done);
  return { label, wallSeconds, report: JSON.parse(readFileSync(out, 'utf8')) as Report, selfPeakMB: self ? Number(self[1]) : NaN, inProcess };
}

/** A report of an earlier run (kept with --keep), standing in for a CLI run: no wall time or peak of this run. */
function reusedRun(label: string, file: string): CliRun {
  return { label: `${label} (${path.basename(file)})`, wallSeconds: NaN, report: JSON.parse(readFileSync(file, 'utf8')) as Report, selfPeakMB: NaN, inProcess: false };
}

/** The one image's result at `name`. */
const imageAt = (r: Report, name: string) => r.layers.find((l) => l.name === name)!.perImage[0];

/** The PyTorch reference, or why it did not run. */
function runTorch(fx: Pick<FixtureInfo, 'dir'>, layers: string[], steps: number): TorchRun | string {
  return torchMissing() ?? runTorchReference(fx.dir, layers, steps, SAMPLES, SEED);
}

/** GFLOP/s of one square float32 matmul on the wasm backend in this process (median of `reps`), and its size. */
async function wasmMatmulPeak(n: number, reps = 12): Promise<number> {
  await selectBackend('wasm');
  const a = tf.randomNormal([n, n], 0, 1, 'float32', 1);
  const b = tf.randomNormal([n, n], 0, 1, 'float32', 2);
  const times: number[] = [];
  for (let i = 0; i < reps + 3; i++) {
    const t0 = performance.now();
    const c = tf.matMul(a, b);
    await c.data();
    c.dispose();
    if (i >= 3) times.push(performance.now() - t0);
  }
  tf.dispose([a, b]);
  times.sort((x, y) => x - y);
  return (2 * n ** 3) / (times[Math.floor(times.length / 2)] / 1000) / 1e9;
}

function torchMatmulPeak(n: number): number {
  const code = `import torch,time\ntorch.set_num_threads(${arg('--torch-threads', '2')})\na=torch.randn(${n},${n});b=torch.randn(${n},${n})\nts=[]\nfor i in range(15):\n t=time.perf_counter();c=a@b;ts.append(time.perf_counter()-t)\nts=sorted(ts[3:]);print(2*${n}**3/ts[len(ts)//2]/1e9)`;
  const r = spawnSync(PYTHON, ['-c', code], { encoding: 'utf8' });
  return r.status === 0 ? Number(r.stdout.trim()) : NaN;
}

/**
 * Multiply-add FLOPs (x2) of the conv and dense layers up to and including `layer`, for one forward pass of one
 * image. The fixture is a chain of blocks, so every layer listed before `layer` is one of its ancestors.
 */
function forwardFlops(model: tfl.LayersModel, layer: string): number {
  let flops = 0;
  for (const l of model.layers) {
    const cfg = l.getConfig() as { kernelSize?: number[]; units?: number };
    const outShape = l.outputShape as number[];
    const inShape = (Array.isArray(l.input) ? l.input[0] : l.input).shape as number[];
    if (l.getClassName() === 'Conv2D') {
      const [kh, kw] = cfg.kernelSize!;
      flops += 2 * outShape[1] * outShape[2] * outShape[3] * kh * kw * inShape[3];
    } else if (l.getClassName() === 'Dense') {
      flops += 2 * inShape[inShape.length - 1] * cfg.units!;
    }
    if (l.name === layer) break;
  }
  return flops;
}

/** Peak memory of each analysing process, the largest, and all processes together (the CLI's own included). */
const peakLine = (r: CliRun) => {
  const workers = (r.report.run?.processes ?? []).map((p) => p.peakRssMB);
  const total = workers.reduce((a, b) => a + b, 0) + (r.inProcess ? 0 : r.selfPeakMB);
  return { each: workers.join(' + '), max: Math.max(...workers), total };
};

async function main(tmp: string): Promise<number> {
  const steps = Number(arg('--steps', '200'));
  const extra = shellWords(arg('--cli-args', ''));
  printMachine();
  const matmulN = 512;
  const wasmPeak = await wasmMatmulPeak(matmulN);
  const torchPeak = torchMatmulPeak(matmulN);
  console.log(`matmul ${matmulN}x${matmulN} float32: wasm (one thread, this process) ${wasmPeak.toFixed(1)} GFLOP/s; torch (${arg('--torch-threads', '2')} threads) ${fmt(torchPeak)} GFLOP/s`);

  const fixture = arg('--fixture', 'resnet20');
  if (fixture !== 'resnet20' && fixture !== 'resnet18-224') throw new Error(`--fixture ${fixture}: choose resnet20 (the 32x32 target) or resnet18-224 (the real-scale one)`);
  const real = fixture === 'resnet18-224';
  const fx = real ? await makeResNet18Fixture(path.join(tmp, 'resnet18-224')) : { ...(await makeFixture(path.join(tmp, 'resnet20'), 3, SEED)), cliArgs: [] as string[] };
  const stages = arg('--layers', '');
  const layers = real && stages ? stages.split(',').map((i) => fx.blockNames[Number(i) - 1]) : fx.blockNames;
  extra.unshift(...fx.cliArgs);
  const modelName = real ? 'ResNet-18 (torchvision, random init)' : 'ResNet-20';
  console.log(real
    ? `fixture: torchvision ResNet-18 (ONNX export, seeded random weights), one 224x224 photo (skimage chelsea), ImageNet normalisation, ${layers.length} layers: ${layers.map(stageLabel).join(', ')}`
    : `fixture: ResNet-20 (seed ${SEED}), one 32x32 image, ${layers.length} layers: ${layers.join(', ')}`);

  // Each variant is the CLI as a user runs it, with these extra options; all share the references below.
  const variants = arg('--variants', real ? 'default' : 'default;--warm-start').split(';').map((v) => shellWords(v === 'default' ? '' : v));
  const runs = variants.map((v) => runCli(`infodiscard ${v.join(' ') || '(defaults)'}`, fx, layers, [...v, ...extra], tmp));
  const torch = process.argv.includes('--no-torch') ? 'skipped (--no-torch)' : runTorch(fx, layers, steps);
  // --ref-report: an earlier fixed-step report of this fixture (same seed, same model) instead of a new run.
  const fixedSteps = ['--min-steps', String(steps), '--max-steps', String(steps), ...fx.cliArgs];
  const refFile = arg('--ref-report', '');
  const ref: CliRun = refFile ? reusedRun(`engine ${steps} steps`, refFile) : runCli(`engine ${steps} steps`, fx, layers, fixedSteps, tmp);
  // --ref-seeds 2 (or --ref2-report FILE): a second fixed-step run with another seed. How far two references are
  // apart is the noise floor of the map criterion; the variants are also scored against the mean of the two maps.
  const ref2File = arg('--ref2-report', '');
  const ref2Label = `engine ${steps} steps, seed ${SEED + 1}`;
  const ref2: CliRun | null = ref2File
    ? reusedRun(ref2Label, ref2File)
    : Number(arg('--ref-seeds', '1')) >= 2
      ? runCli(ref2Label, fx, layers, [...fixedSteps, '--seed', String(SEED + 1)], tmp)
      : null;

  // The target, per variant.
  console.log(`\n== Target: ${modelName}, ${layers.length} layers, one image, K=${SAMPLES}; PyTorch ${typeof torch === 'string' ? torch : `${torch.wallSeconds.toFixed(1)} s`} ==`);
  const answers = runs.map((run) => {
    let worstDiff = 0;
    let worstR = 1;
    let worstRatio = 0;
    const rows = layers.map((name) => {
      const a = imageAt(run.report, name);
      const b = imageAt(ref.report, name);
      const r = pearson(a.map.flat(), b.map.flat());
      const diff = a.sidMean - b.sidMean;
      const ratioOff = a.constraintRatio / ALPHA - 1;
      worstDiff = Math.max(worstDiff, Math.abs(diff));
      worstR = Math.min(worstR, r);
      worstRatio = Math.max(worstRatio, Math.abs(ratioOff));
      const t = typeof torch === 'string' ? undefined : torch.layers.get(name);
      return [stageLabel(name), `${a.steps}/${b.steps}`, fmt(a.seconds, 2), fmt(b.seconds, 2), b.sidMean.toFixed(3), a.sidMean.toFixed(3), diff.toFixed(3), r.toFixed(3),
        a.constraintRatio.toFixed(3), `${(100 * ratioOff).toFixed(1)} %`, fmt(t?.sidMean, 3), fmt(t?.seconds, 2)];
    });
    return { run, rows, worstDiff, worstR, worstRatio };
  });
  table(['variant', 'wall s', 'vs PyTorch', 'first layer s', 'peak MB per worker', 'MB in all', 'worst |SID diff|', 'worst map r', 'worst ratio off alpha'], [
    ...answers.map(({ run, worstDiff, worstR, worstRatio }) => {
      const mem = peakLine(run);
      return [run.label, run.wallSeconds.toFixed(1), typeof torch === 'string' ? '-' : `${(run.wallSeconds / torch.wallSeconds).toFixed(2)}x`,
        fmt(run.report.run?.firstLayerSeconds), mem.each, String(mem.total), worstDiff.toFixed(3), worstR.toFixed(3), `${(100 * worstRatio).toFixed(1)} %`];
    }),
    real ? ['target', '', '<= 0.5x', '<= 60', '<= 1000', '', '<= 0.1', '>= 0.9', '<= 5 %'] : ['target', '', '<= 1.0x', '', '<= 600', '', '<= 0.1', '>= 0.9', '<= 5 %'],
    // A reused reference (--ref-report) has no wall time or CLI peak of this run.
    [ref.label, fmt(ref.wallSeconds), typeof torch === 'string' || !Number.isFinite(ref.wallSeconds) ? '-' : `${(ref.wallSeconds / torch.wallSeconds).toFixed(2)}x`, fmt(ref.report.run?.firstLayerSeconds), peakLine(ref).each, Number.isFinite(peakLine(ref).total) ? String(peakLine(ref).total) : '-', '', '', ''],
  ]);
  for (const { run, rows } of answers) {
    console.log(`\n== Same answer: ${run.label} against our engine at ${steps} fixed steps (and the PyTorch script's SID) ==`);
    table(['layer', 'steps ours/ref', 'ours s', 'ref s', `ref SID`, 'ours SID', 'diff', 'map r', 'ours ratio', 'vs alpha', 'torch SID', 'torch s'], rows);
  }
  if (ref2) {
    const mapOf = (r: Report, name: string) => imageAt(r, name).map.flat();
    console.log(`\n== Noise floor: two ${steps}-step references (seeds ${SEED} and ${SEED + 1}); map r of each variant against their mean map ==`);
    table(['layer', 'ref vs ref r', 'ref vs ref SID diff', ...runs.map((r) => `${r.label} vs mean`)], layers.map((name) => {
      const a = mapOf(ref.report, name);
      const b = mapOf(ref2.report, name);
      const mean = a.map((v, i) => (v + b[i]) / 2);
      return [stageLabel(name), pearson(a, b).toFixed(3), (imageAt(ref2.report, name).sidMean - imageAt(ref.report, name).sidMean).toFixed(3), ...runs.map((r) => pearson(mapOf(r.report, name), mean).toFixed(3))];
    }));
  }

  if (real) return 0; // the GFLOP/s and scaling tables below read the Keras ResNet-20 fixture
  // How close to the machine's limit each layer's step runs: conv FLOPs of K forward + K input-gradient passes.
  const model = buildResNet(3, SEED);
  console.log(`\n== Achieved GFLOP/s in the ${steps}-step run (conv and dense FLOPs of ${SAMPLES} forward + ${SAMPLES} input-gradient passes per step; wasm matmul peak ${wasmPeak.toFixed(1)}) ==${refFile ? `\n(timings from ${path.basename(refFile)}, the peak from this run: compare them only if both ran on an idle machine)` : ''}`);
  table(['layer', 'GFLOP/step', 'ms/step', 'GFLOP/s', '% of matmul'], layers.map((name) => {
    const p = imageAt(ref.report, name);
    const gflop = (2 * SAMPLES * forwardFlops(model, name)) / 1e9;
    const ms = (1000 * p.seconds) / p.steps;
    const rate = gflop / (ms / 1000);
    return [name, gflop.toFixed(3), ms.toFixed(1), rate.toFixed(2), `${((100 * rate) / wasmPeak).toFixed(0)} %`];
  }));
  model.dispose();

  if (!process.argv.includes('--no-scaling')) {
    const lastOnly = arg('--scaling-layers', 'last') === 'last';
    const scaleRows: string[][] = [];
    const scale = async (label: string, n: number, size: number, grid: string[]) => {
      const f = await makeFixture(path.join(tmp, `scale-${n}-${size}`), n, SEED, size);
      const ls = lastOnly ? [f.blockNames[f.blockNames.length - 1]] : f.blockNames;
      const run = runCli(label, f, ls, [...grid, ...shellWords(arg('--scaling-args', '--min-steps 20 --max-steps 20')), ...extra], tmp);
      const mem = peakLine(run);
      const net = buildResNet(n, SEED, size);
      const last = run.report.layers[run.report.layers.length - 1];
      const p = last.perImage[0];
      const rate = (2 * SAMPLES * forwardFlops(net, last.name)) / 1e9 / (p.seconds / p.steps);
      net.dispose();
      const steps = run.report.layers.map((l) => l.perImage[0].steps).join('/');
      scaleRows.push([label, `${size}x${size}`, grid.join(' ') || 'per pixel', `${ls.length}`, steps, run.wallSeconds.toFixed(1), fmt(run.report.run?.firstLayerSeconds),
        ((1000 * p.seconds) / p.steps).toFixed(0), rate.toFixed(2), `${mem.max}`, `${mem.total}`]);
    };
    for (const size of arg('--sizes', '32,64,128,224').split(',').map(Number)) {
      await scale(`ResNet-20`, 3, size, ['--sigma-grid', String(Math.min(16, size / 4))]);
    }
    for (const n of arg('--depths', '1,2,3').split(',').map(Number)) await scale(`ResNet-${6 * n + 2}`, n, 32, []);
    console.log(`\n== Scaling (${lastOnly ? 'the last block only' : 'every block'}, ${arg('--scaling-args', '--min-steps 20 --max-steps 20')}; ms/step and GFLOP/s of the last layer) ==`);
    table(['model', 'input', 'sigma', 'layers', 'steps', 'wall s', 'first layer s', 'ms/step', 'GFLOP/s', 'peak MB/worker', 'MB in all'], scaleRows);
  }
  return 0;
}

runInTempDir('infodiscard-target-', main);
