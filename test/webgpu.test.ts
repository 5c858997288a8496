/**
 * The webgpu backend (issue 15 §1), on whatever adapter Dawn offers here: in CI a software one (Mesa's llvmpipe
 * through Dawn's OpenGL ES backend), allowed by INFODISCARD_WEBGPU_ALLOW_SOFTWARE=1. Every kernel the engine uses
 * against the cpu backend, a full SID of a small 8x8 model against wasm, no tensor leak over repeated steps, cancel
 * and a clean exit of a webgpu worker, a worker pool with one GPU worker beside a wasm one, and the fallback when
 * there is no (hardware) adapter. Skipped, with the reason, when no adapter can be created at all.
 */
import { after, before, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { pearson } from '../bench/util';
import { analyze } from '../src/engine/analyze';
import { ALLOW_SOFTWARE_ENV, currentAdapter, describeAdapter, selectBackend } from '../src/engine/backend';
import type { AnalysisEvent } from '../src/engine/events';
import { loadModel } from '../src/engine/loaders';
import { saveLayersModel } from '../src/engine/loaders/saveTfjs';
import { backendSummary, type GpuAdapter, type Report } from '../src/engine/report';
import { DEFAULT_SETTINGS } from '../src/engine/settings';
import { AnalysisPool } from '../src/worker/client';
import { runLayersInPool } from '../src/worker/parallel';
import { randomArray, reluConvNet, tempDir, writeGrayPng } from './helpers/fixtures';

// Before anything starts a worker: they inherit it.
process.env[ALLOW_SOFTWARE_ENV] = '1';

const WORKER = path.resolve('dist/worker.js');
const CLI = path.resolve('dist/cli.js');
const dir = tempDir('infodiscard-webgpu-');
let unavailable: string | undefined;
let adapter: GpuAdapter | undefined;
let model: string;
let image: string;

before(async () => {
  // The model and image are made on wasm, so they do not depend on the backend under test.
  await selectBackend('wasm');
  model = await saveLayersModel(reluConvNet(8, 1), path.join(dir, 'model'));
  image = writeGrayPng(path.join(dir, 'x.png'), 8, 8, (x, y) => ((x + 2 * y) % 11) / 11);
  try {
    await selectBackend('webgpu');
    adapter = currentAdapter();
    // Every kernel on the GPU: no forwarding of small ops to the CPU, so each check below is the GPU kernel's.
    tf.env().set('WEBGPU_CPU_FORWARD', false);
  } catch (e) {
    unavailable = (e as Error).message;
  }
});

const pools: AnalysisPool[] = [];
after(() => Promise.all(pools.map((p) => p.dispose())));

function needsAdapter(t: TestContext): boolean {
  if (unavailable === undefined) return true;
  t.skip(`no WebGPU adapter can be created here: ${unavailable}`);
  return false;
}

const T = (shape: number[], seed: number) => tf.tensor(randomArray(shape.reduce((a, b) => a * b, 1), seed), shape);

/** f's outputs on `backend`, read back; f makes its tensors itself, so each backend computes from scratch. */
async function on(backend: 'cpu' | 'webgpu', f: () => tf.Tensor | tf.Tensor[]): Promise<{ values: Float32Array[]; kernels: string[] }> {
  await tf.setBackend(backend);
  try {
    let out: tf.Tensor[] = [];
    const info = await tf.profile(() => {
      const r = tf.tidy(f);
      out = Array.isArray(r) ? r : [r];
      return out;
    });
    const values = await Promise.all(out.map(async (t) => Float32Array.from((await t.data()) as Float32Array)));
    tf.dispose(out);
    return { values, kernels: info.kernels.map((k) => k.name) };
  } finally {
    await tf.setBackend('webgpu');
  }
}

function relError(actual: Float32Array, expected: Float32Array): number {
  assert.equal(actual.length, expected.length);
  let diff = 0;
  let ref = 0;
  for (let i = 0; i < expected.length; i++) {
    const d = Math.abs(actual[i] - expected[i]);
    diff = Number.isNaN(d) ? Infinity : Math.max(diff, d);
    ref = Math.max(ref, Math.abs(expected[i]));
  }
  return diff / (ref + 1e-6);
}

const g = (f: (x: tf.Tensor) => tf.Tensor) => (x: tf.Tensor) => tf.grad((y: tf.Tensor) => tf.sum(tf.mul(f(y), T(f(y).shape, 99))))(x);

/** Each case: what it computes, and the webgpu kernels that must have run for it. */
const CASES: { name: string; kernels: string[]; f: () => tf.Tensor }[] = [
  { name: 'conv2d same', kernels: ['Conv2D'], f: () => tf.conv2d(T([2, 9, 9, 3], 1) as tf.Tensor4D, T([3, 3, 3, 5], 2) as tf.Tensor4D, 1, 'same') },
  { name: 'conv2d strided valid', kernels: ['Conv2D'], f: () => tf.conv2d(T([2, 9, 9, 3], 3) as tf.Tensor4D, T([3, 3, 3, 4], 4) as tf.Tensor4D, 2, 'valid') },
  { name: 'conv2d dilated', kernels: ['Conv2D'], f: () => tf.conv2d(T([1, 10, 10, 2], 5) as tf.Tensor4D, T([3, 3, 2, 3], 6) as tf.Tensor4D, 1, 'same', 'NHWC', 2) },
  { name: 'Conv2DBackpropInput (conv input gradient)', kernels: ['Conv2DBackpropInput'], f: () => g((x) => tf.conv2d(x as tf.Tensor4D, T([3, 3, 3, 4], 7) as tf.Tensor4D, 2, 'same'))(T([2, 9, 9, 3], 8)) },
  { name: 'Conv2DBackpropFilter (conv filter gradient)', kernels: ['Conv2DBackpropFilter'], f: () => g((w) => tf.conv2d(T([2, 9, 9, 3], 9) as tf.Tensor4D, w as tf.Tensor4D, 1, 'same'))(T([3, 3, 3, 4], 10)) },
  { name: 'depthwise conv', kernels: ['DepthwiseConv2dNative'], f: () => tf.depthwiseConv2d(T([2, 9, 9, 3], 11) as tf.Tensor4D, T([3, 3, 3, 2], 12) as tf.Tensor4D, 1, 'same') },
  { name: 'depthwise input gradient', kernels: ['DepthwiseConv2dNativeBackpropInput'], f: () => g((x) => tf.depthwiseConv2d(x as tf.Tensor4D, T([3, 3, 3, 2], 13) as tf.Tensor4D, 2, 'same'))(T([2, 9, 9, 3], 14)) },
  { name: 'depthwise filter gradient', kernels: ['DepthwiseConv2dNativeBackpropFilter'], f: () => g((w) => tf.depthwiseConv2d(T([2, 9, 9, 3], 15) as tf.Tensor4D, w as tf.Tensor4D, 1, 'same'))(T([3, 3, 3, 2], 16)) },
  { name: 'max pool', kernels: ['MaxPool'], f: () => tf.maxPool(T([2, 9, 9, 3], 17) as tf.Tensor4D, 3, 2, 'same') },
  // Values in [-1, 1): windows whose maximum is negative are covered.
  { name: 'max pool gradient', kernels: ['MaxPoolGrad'], f: () => g((x) => tf.maxPool(x as tf.Tensor4D, 2, 2, 'valid'))(T([2, 8, 8, 3], 18)) },
  { name: 'avg pool', kernels: ['AvgPool'], f: () => tf.avgPool(T([2, 9, 9, 3], 19) as tf.Tensor4D, 3, 2, 'same') },
  { name: 'avg pool gradient', kernels: ['AvgPoolGrad'], f: () => g((x) => tf.avgPool(x as tf.Tensor4D, 3, 2, 'same'))(T([2, 9, 9, 3], 20)) },
  {
    name: 'fused batch norm and its input gradient',
    kernels: ['FusedBatchNorm'],
    f: () => {
      const bn = (x: tf.Tensor) => tf.batchNorm(x as tf.Tensor4D, T([3], 21), tf.add(tf.abs(T([3], 22)), 0.5), T([3], 23), T([3], 24), 1e-3);
      return tf.concat([tf.reshape(bn(T([2, 5, 5, 3], 25)), [-1]), tf.reshape(g(bn)(T([2, 5, 5, 3], 26)), [-1])]);
    },
  },
  { name: 'fused conv2d (bias, relu)', kernels: ['FusedConv2D'], f: () => tf.fused.conv2d({ x: T([2, 9, 9, 3], 27) as tf.Tensor4D, filter: T([3, 3, 3, 4], 28) as tf.Tensor4D, strides: 1, pad: 'same', bias: T([4], 29), activation: 'relu' }) },
  { name: 'fused depthwise conv2d (bias, relu6)', kernels: ['FusedDepthwiseConv2D'], f: () => tf.fused.depthwiseConv2d({ x: T([2, 9, 9, 3], 30) as tf.Tensor4D, filter: T([3, 3, 3, 1], 31) as tf.Tensor4D, strides: 1, pad: 'same', bias: T([3], 32), activation: 'relu6' }) },
  { name: 'fused matmul (bias, relu, transposed b)', kernels: ['_FusedMatMul'], f: () => tf.fused.matMul({ a: T([6, 20], 33) as tf.Tensor2D, b: T([7, 20], 34) as tf.Tensor2D, transposeB: true, bias: T([7], 35), activation: 'relu' }) },
  { name: 'matmul input gradient', kernels: ['BatchMatMul'], f: () => g((x) => tf.matMul(x as tf.Tensor2D, T([20, 7], 36) as tf.Tensor2D))(T([6, 20], 37)) },
  { name: 'sum over all', kernels: ['Sum'], f: () => tf.sum(tf.square(T([4, 33, 17], 38))) },
  { name: 'sum over axes 1,2', kernels: ['Sum'], f: () => tf.sum(T([4, 33, 17, 3], 39), [1, 2]) },
  { name: 'mean, max, min', kernels: ['Mean', 'Max', 'Min'], f: () => tf.concat([tf.mean(T([5, 40], 40), 1), tf.max(T([5, 40], 41), 1), tf.min(T([5, 40], 42), 1)]) },
  { name: 'resize bilinear (sigma grid) and its gradient', kernels: ['ResizeBilinear', 'ResizeBilinearGrad'], f: () => g((x) => tf.image.resizeBilinear(x as tf.Tensor4D, [12, 12], true))(T([1, 4, 4, 1], 43)) },
];

test('every kernel the engine uses runs on webgpu and matches cpu (relative 1e-4)', async (t) => {
  if (!needsAdapter(t)) return;
  let worst = 0;
  for (const c of CASES) {
    const cpu = await on('cpu', c.f);
    const gpu = await on('webgpu', c.f);
    for (const k of c.kernels) assert.ok(gpu.kernels.includes(k), `${c.name}: kernel ${k} did not run on webgpu (ran: ${[...new Set(gpu.kernels)].join(', ')})`);
    for (const k of c.kernels) assert.ok(tf.getKernel(k, 'webgpu'), `${c.name}: ${k} is registered for webgpu`);
    const err = relError(gpu.values[0], cpu.values[0]);
    assert.ok(err <= 1e-4, `${c.name}: relative error ${err.toExponential(2)}`);
    worst = Math.max(worst, err);
  }
  t.diagnostic(`${CASES.length} cases on ${adapter ? JSON.stringify(adapter) : '?'}: worst relative error ${worst.toExponential(2)}`);
});

test('the adapter is described in the report and a software one is flagged', (t) => {
  if (!needsAdapter(t)) return;
  assert.ok(adapter, 'currentAdapter() on webgpu');
  assert.equal(typeof adapter!.description, 'string');
  // What a software adapter looks like, whatever ran here.
  assert.equal(describeAdapter({ info: { vendor: 'mesa', architecture: '', device: 'llvmpipe (LLVM 15.0.6, 256 bits)', description: '' } }).software, true);
  assert.equal(describeAdapter({ info: { vendor: 'google', architecture: 'swiftshader', device: '', description: 'SwiftShader Device' } }).software, true);
  assert.equal(describeAdapter({ info: { vendor: 'intel', architecture: 'gen-12lp', device: '', description: '' }, isFallbackAdapter: true }).software, true);
  assert.equal(describeAdapter({ info: { vendor: 'nvidia', architecture: 'ampere', device: 'NVIDIA GeForce RTX 3080', description: 'NVIDIA: 550.54' } }).software, false);
});

const sidSettings = { ...DEFAULT_SETTINGS, samples: 8, maxSteps: 60, seed: 5 };

async function sidOn(backend: 'webgpu' | 'wasm', seed = sidSettings.seed): Promise<Report> {
  return analyze({ modelPath: model, images: [image], layers: ['conv2'], settings: { ...sidSettings, seed, backend } });
}

test('a full SID of an 8x8 model on webgpu equals wasm within the search\'s own noise', async (t) => {
  if (!needsAdapter(t)) return;
  const gpu = await sidOn('webgpu');
  assert.equal(gpu.settings.backend, 'webgpu');
  assert.deepEqual(gpu.run?.gpu, adapter);
  assert.equal(gpu.run?.processes[0].backend, 'webgpu');
  const wasm = await sidOn('wasm');
  const otherSeed = await sidOn('wasm', sidSettings.seed + 1);
  assert.equal(wasm.run?.gpu, undefined);
  await selectBackend('webgpu');
  const [a, b, c] = [gpu, wasm, otherSeed].map((r) => r.layers[0].perImage[0]);
  // Same seed, same noise draws: only float rounding differs, so the gap must stay inside the seed-to-seed spread.
  const noise = Math.abs(b.sidMean - c.sidMean);
  assert.ok(Math.abs(a.sidMean - b.sidMean) <= Math.max(noise, 0.02), `SID webgpu ${a.sidMean} vs wasm ${b.sidMean} (seed-to-seed ${noise})`);
  assert.ok(Math.abs(a.constraintRatio - b.constraintRatio) / sidSettings.alpha < 0.05, `ratio ${a.constraintRatio} vs ${b.constraintRatio}`);
  const r = pearson(a.map.flat(), b.map.flat());
  t.diagnostic(`SID webgpu ${a.sidMean.toFixed(4)}, wasm ${b.sidMean.toFixed(4)}, wasm other seed ${c.sidMean.toFixed(4)}; map r ${r.toFixed(4)}`);
  assert.ok(r >= Math.min(0.9, pearson(b.map.flat(), c.map.flat())), `map agreement ${r}`);
  // The same report structure whichever backend ran.
  assert.deepEqual(Object.keys(a).sort(), Object.keys(b).sort());
  assert.deepEqual(Object.keys(gpu.layers[0]).sort(), Object.keys(wasm.layers[0]).sort());
});

test('no tensor or GPU memory grows over repeated search steps', async (t) => {
  if (!needsAdapter(t)) return;
  const m = await loadModel(model);
  try {
    const probe = m.probe('conv2');
    const x = T([1, 8, 8, 1], 50) as tf.Tensor4D;
    const f = tf.tidy(() => probe(x));
    const step = async (i: number) => {
      const r = tf.tidy(() =>
        tf.valueAndGrad((v: tf.Tensor) => tf.mean(tf.sum(tf.square(tf.sub(probe(tf.add(x, tf.mul(tf.exp(v), T([4, 8, 8, 1], 100 + i))) as tf.Tensor4D), f)), [1, 2, 3])))(tf.fill([1, 8, 8, 1], -2)),
      );
      await r.value.data();
      await r.grad.data();
      tf.dispose([r.value, r.grad]);
    };
    for (let i = 0; i < 5; i++) await step(i);
    const before = tf.memory() as tf.MemoryInfo & { numBytesInGPU?: number };
    for (let i = 0; i < 100; i++) await step(i);
    const now = tf.memory() as tf.MemoryInfo & { numBytesInGPU?: number };
    assert.equal(now.numTensors, before.numTensors, 'tensors');
    assert.equal(now.numBytes, before.numBytes, 'bytes');
    if (before.numBytesInGPU !== undefined) assert.ok(now.numBytesInGPU! <= before.numBytesInGPU, `GPU bytes ${before.numBytesInGPU} -> ${now.numBytesInGPU}`);
    tf.dispose([x, f]);
  } finally {
    m.dispose();
  }
});

function pool(size: number, logs: string[]): AnalysisPool {
  const p = new AnalysisPool(WORKER, { size, log: (line) => logs.push(line) });
  pools.push(p);
  return p;
}

test('a webgpu worker cancels mid-search, keeps its report, and exits cleanly', async (t) => {
  if (!needsAdapter(t)) return;
  const logs: string[] = [];
  const p = pool(1, logs);
  const controller = new AbortController();
  const events: AnalysisEvent[] = [];
  const reportPath = path.join(dir, 'cancel.json');
  const result = await p.run(
    { modelPath: model, images: [image], layers: ['conv1', 'conv2'], settings: { ...sidSettings, maxSteps: 5000, minSteps: 5000, backend: 'webgpu' }, reportPath },
    {
      signal: controller.signal,
      onEvent: (e) => {
        events.push(e);
        if (e.type === 'step' && e.step >= 3) controller.abort();
      },
    },
  );
  assert.equal(result.status, 'cancelled');
  const started = events.find((e) => e.type === 'started');
  assert.match(String(started && 'backend' in started ? started.backend : ''), /^webgpu \(/);
  const report = JSON.parse(readFileSync(reportPath, 'utf8')) as Report;
  assert.equal(report.status, 'cancelled');
  assert.equal(report.settings.backend, 'webgpu');
  const [pid] = p.pids;
  await p.dispose();
  assert.ok(logs.some((l) => l === `worker ${pid}: exited (exit code 0)`), `clean exit:\n${logs.join('\n')}`);
});

test('a worker pool runs layers on one GPU worker and a wasm worker together; the report is the same in structure', async (t) => {
  if (!needsAdapter(t)) return;
  const run = async (backend: 'webgpu' | 'wasm', name: string) => {
    const logs: string[] = [];
    const p = pool(2, logs);
    const reportPath = path.join(dir, name);
    const settings = { ...sidSettings, maxSteps: 20, backend };
    await runLayersInPool(p, { modelPath: model, images: [image], layers: ['conv1', 'conv2', 'conv3'], settings, reportPath }, 2);
    const gpuPid = p.gpuPid;
    await p.dispose();
    return { report: JSON.parse(readFileSync(reportPath, 'utf8')) as Report, gpuPid };
  };
  const mixed = await run('webgpu', 'mixed.json');
  const plain = await run('wasm', 'plain.json');
  const backends = mixed.report.run!.processes.map((p) => p.backend).sort();
  assert.deepEqual(backends, ['wasm', 'webgpu'], `one GPU worker, one wasm worker: ${JSON.stringify(mixed.report.run)}`);
  assert.equal(mixed.report.run!.processes.find((p) => p.backend === 'webgpu')!.pid, mixed.gpuPid);
  assert.equal(mixed.report.settings.backend, 'webgpu');
  assert.deepEqual(mixed.report.run!.gpu, mixed.report.run!.processes.find((p) => p.backend === 'webgpu')!.adapter);
  assert.equal(mixed.report.status, 'complete');
  assert.deepEqual(mixed.report.layers.map((l) => l.name), plain.report.layers.map((l) => l.name));
  mixed.report.layers.forEach((l, i) => {
    const w = plain.report.layers[i];
    assert.deepEqual(Object.keys(l).sort(), Object.keys(w).sort(), `${l.name}: fields`);
    assert.deepEqual(Object.keys(l.perImage[0]).sort(), Object.keys(w.perImage[0]).sort(), `${l.name}: per-image fields`);
    // Seeds follow the layer: the same search on either backend, up to rounding.
    assert.ok(Math.abs(l.sid.mean - w.sid.mean) < 0.05, `${l.name}: SID ${l.sid.mean} vs ${w.sid.mean}`);
  });
});

/** The CLI without the software escape hatch: on a machine without a GPU, no adapter is usable. */
function cliWithoutSoftware(args: string[]) {
  const env = { ...process.env };
  delete env[ALLOW_SOFTWARE_ENV];
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', env });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

test('without a (hardware) adapter: auto runs on wasm, --backend webgpu is one clear error line', (t) => {
  const probe = cliWithoutSoftware(['layers', model, '--backend', 'webgpu']);
  if (probe.code === 0) {
    t.skip('a hardware WebGPU adapter is present here, so the no-adapter path cannot be exercised');
    return;
  }
  assert.equal(probe.code, 2, probe.stderr);
  const lines = probe.stderr.trim().split('\n');
  assert.equal(lines.length, 1, `one line expected, got:\n${probe.stderr}`);
  assert.match(lines[0], /^infodiscard: --backend: webgpu is not available: no hardware WebGPU adapter .*; use --backend wasm$/);
  const out = path.join(dir, 'auto.json');
  const auto = cliWithoutSoftware(['analyze', model, '--images', image, '--layers', 'conv1', '--max-steps', '2', '--backend', 'auto', '--out', out, '--quiet']);
  assert.equal(auto.code, 0, auto.stderr);
  const report = JSON.parse(readFileSync(out, 'utf8')) as Report;
  assert.ok(report.settings.backend === 'wasm' || report.settings.backend === 'tensorflow', `auto fell back to ${report.settings.backend}`);
  assert.equal(report.run?.gpu, undefined);
});

test('a webgpu backend that fails to initialise: auto falls back to wasm and tf.getBackend() says so; explicit webgpu is a clear error', (t) => {
  if (!needsAdapter(t)) return;
  const run = (choice: string) => {
    const r = spawnSync(process.execPath, ['--import', 'tsx', path.resolve('test/helpers/webgpu-failing-device.ts'), choice], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    return JSON.parse(r.stdout) as { chose?: string; error?: string; current: string };
  };
  assert.deepEqual(run('auto'), { chose: 'wasm', current: 'wasm' });
  const explicit = run('webgpu');
  assert.equal(explicit.current, 'wasm', 'tfjs would still say webgpu had the fallback not been set');
  assert.match(explicit.error ?? '', /^(--backend: )?webgpu: .*: the backend did not initialise; use --backend wasm$/);
});

test('the panel header\'s backend and GPU facts: old reports, a GPU run, a mixed pool', () => {
  const gpu: GpuAdapter = { vendor: 'nvidia', architecture: 'ampere', device: 'NVIDIA GeForce RTX 3080', description: '', software: false };
  const settings = { ...DEFAULT_SETTINGS, backend: 'wasm' } as Report['settings'];
  assert.deepEqual(backendSummary({ settings }), { backend: 'wasm', adapter: null }, 'schema 1-2: no run, or no backend per process');
  assert.deepEqual(backendSummary({ settings, run: { processes: [{ pid: 1, peakRssMB: 100 }] } }), { backend: 'wasm', adapter: null });
  const one = backendSummary({ settings: { ...settings, backend: 'webgpu' }, run: { processes: [{ pid: 1, peakRssMB: 100, backend: 'webgpu', adapter: gpu }], gpu } });
  assert.deepEqual(one, { backend: 'webgpu', adapter: 'nvidia ampere (NVIDIA GeForce RTX 3080)' });
  const mixed = backendSummary({
    settings: { ...settings, backend: 'webgpu' },
    run: { processes: [{ pid: 2, peakRssMB: 90, backend: 'wasm' }, { pid: 1, peakRssMB: 100, backend: 'webgpu', adapter: gpu }], gpu },
  });
  assert.equal(mixed.backend, 'webgpu + wasm');
  assert.equal(backendSummary({ settings, run: { processes: [], gpu: { ...gpu, software: true } } }).adapter, 'software: nvidia ampere (NVIDIA GeForce RTX 3080)');
});
