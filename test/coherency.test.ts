/**
 * The paper's coherency check (Sec. 4): rescaling conv L by 1/k (kernel and bias) and conv L+1 by k (kernel) leaves
 * the network output unchanged, SID unchanged at every layer (the delta_f^2 normalisation absorbs the scale), and
 * gradient magnitudes scaled by k where the feature shrank. Invalid pairs are refused with one-line UserErrors.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { selectBackend } from '../src/engine/backend';
import { checkCoherency, compareReports, formatCoherencyTable, writeCoherencyResult, type CoherencyResult, type MetricComparison } from '../src/engine/coherency';
import { UserError } from '../src/engine/errors';
import { loadModel } from '../src/engine/loaders';
import { saveLayersModel } from '../src/engine/loaders/saveTfjs';
import { wrapLayersModel } from '../src/engine/loaders/tfjsLayers';
import type { RescaledPair } from '../src/engine/loaders/types';
import { DEFAULT_SETTINGS } from '../src/engine/settings';
import { parseCoherencyArgs } from '../src/cli/coherency';
import { randomArray, tempDir, writeGrayPng } from './helpers/fixtures';
import { mkdirSync, readFileSync } from 'node:fs';
import type { LayerResult, Report } from '../src/engine/report';
import { FUSED_CNN, PLAIN_CNN, writeGraphModel } from './fixtures/graphModel';

const dir = tempDir('infodiscard-coherency-');
const images = [
  writeGrayPng(path.join(dir, 'a.png'), 8, 8, (x, y) => 0.5 + 0.4 * Math.sin(x + 2 * y)),
  writeGrayPng(path.join(dir, 'b.png'), 8, 8, (x, y) => ((x * 3 + y * 5) % 7) / 7),
];
const settings = { ...DEFAULT_SETTINGS, backend: 'wasm' as const, seed: 7, maxSteps: 40, samples: 8, metrics: ['sid' as const, 'baselines' as const] };

type Sym = tfl.SymbolicTensor;

/** conv1 -> relu1 -> conv2 -> relu2 -> flatten -> dense on 8 x 8 x 1, seeded weights (biases non-zero). */
function tinyNet(seed = 5): tfl.LayersModel {
  const input = tfl.input({ shape: [8, 8, 1] });
  let y = tfl.layers.conv2d({ filters: 4, kernelSize: 3, padding: 'same', name: 'conv1' }).apply(input) as Sym;
  y = tfl.layers.reLU({ name: 'relu1' }).apply(y) as Sym;
  y = tfl.layers.conv2d({ filters: 4, kernelSize: 3, strides: 2, padding: 'same', name: 'conv2' }).apply(y) as Sym;
  y = tfl.layers.reLU({ name: 'relu2' }).apply(y) as Sym;
  y = tfl.layers.flatten({ name: 'flatten' }).apply(y) as Sym;
  y = tfl.layers.dense({ units: 3, name: 'dense' }).apply(y) as Sym;
  return seeded(tfl.model({ inputs: input, outputs: y }), seed);
}

function seeded(model: tfl.LayersModel, seed: number): tfl.LayersModel {
  let s = seed;
  for (const layer of model.layers) {
    const ws = layer.getWeights();
    if (ws.length === 0) continue;
    layer.setWeights(ws.map((w) => tf.tensor(randomArray(w.size, s++, w.rank > 1 ? 0.5 : 0.2), w.shape)));
  }
  return model;
}

/** A small functional net from a builder over the 8 x 8 x 1 input. */
function net(build: (x: Sym) => Sym): tfl.LayersModel {
  const input = tfl.input({ shape: [8, 8, 1] });
  return seeded(tfl.model({ inputs: input, outputs: build(input) }), 9);
}
const conv = (name: string, extra: Partial<Parameters<typeof tfl.layers.conv2d>[0]> = {}) =>
  tfl.layers.conv2d({ filters: 3, kernelSize: 3, padding: 'same', name, ...extra });

const snapshot = (model: tfl.LayersModel, layer: string) => model.getLayer(layer).getWeights().map((w) => (w.dataSync() as Float32Array).slice());

function expectRescaleError(model: tfl.LayersModel, first: string, pattern: RegExp): void {
  const wrapped = wrapLayersModel(model, 'mem/model.json', 'tfjs-layers', '');
  try {
    assert.throws(
      () => wrapped.rescaleConvPair!(first, 4),
      (e: unknown) => {
        assert.ok(e instanceof UserError, `UserError expected, got ${String(e)}`);
        assert.equal(e.message.split('\n').length, 1, 'one line');
        assert.match(e.message, /^mem\/model\.json: /, 'names the model file');
        assert.ok(e.message.includes(`"${first}"`), `names the layer: ${e.message}`);
        assert.match(e.message, pattern);
        return true;
      },
    );
  } finally {
    wrapped.dispose();
  }
}

test('rescaleConvPair divides conv1 (kernel, bias) by k, multiplies conv2 kernel by k, and keeps the output', async () => {
  await selectBackend('wasm');
  const factor = 3; // not a power of two, so the output check is not trivially exact
  const model = tinyNet();
  const before = Object.fromEntries(['conv1', 'conv2', 'dense'].map((n) => [n, snapshot(model, n)]));
  const wrapped = wrapLayersModel(model, 'mem/model.json', 'tfjs-layers', '');
  const x = tf.tensor4d(randomArray(3 * 64, 11, 1), [3, 8, 8, 1]);
  const run = (layer: string) => tf.tidy(() => (wrapped.probe(layer)(x).dataSync() as Float32Array).slice());
  const out0 = run('dense');
  const f0 = { conv1: run('conv1'), relu1: run('relu1'), conv2: run('conv2') };
  const pair = wrapped.rescaleConvPair!('conv1', factor);
  assert.deepEqual(pair, { first: 'conv1', second: 'conv2', between: ['relu1'] } satisfies RescaledPair);

  const after = Object.fromEntries(['conv1', 'conv2', 'dense'].map((n) => [n, snapshot(model, n)]));
  const close = (a: Float32Array, b: Float32Array, s: number, what: string) =>
    a.forEach((v, i) => assert.ok(Math.abs(b[i] - v * s) <= 1e-6 * (1 + Math.abs(v * s)), `${what}[${i}]: ${b[i]} vs ${v * s}`));
  close(before.conv1[0], after.conv1[0], 1 / factor, 'conv1 kernel');
  close(before.conv1[1], after.conv1[1], 1 / factor, 'conv1 bias');
  close(before.conv2[0], after.conv2[0], factor, 'conv2 kernel');
  assert.deepEqual(after.conv2[1], before.conv2[1], 'conv2 bias unchanged');
  assert.deepEqual(after.dense, before.dense, 'dense unchanged');

  const out1 = run('dense');
  const maxAbs = Math.max(...out0.map(Math.abs));
  const maxDiff = Math.max(...out0.map((v, i) => Math.abs(v - out1[i])));
  assert.ok(maxAbs > 0.1, 'the output is not trivially zero');
  assert.ok(maxDiff / maxAbs < 1e-5, `output changed: max diff ${maxDiff} of ${maxAbs}`);
  close(f0.conv1, run('conv1'), 1 / factor, 'conv1 output');
  close(f0.relu1, run('relu1'), 1 / factor, 'relu1 output');
  const c2 = run('conv2');
  f0.conv2.forEach((v, i) => assert.ok(Math.abs(c2[i] - v) <= 1e-5 * (1 + Math.abs(v)), `conv2 output[${i}]`));
  x.dispose();
  wrapped.dispose();
});

test('rescaleConvPair works on a saved model loaded from disk (conv2 -> flatten -> dense pair)', async () => {
  await selectBackend('wasm');
  const file = await saveLayersModel(tinyNet(), path.join(dir, 'saved'));
  const m = await loadModel(file);
  try {
    const x = tf.tensor4d(randomArray(2 * 64, 12, 1), [2, 8, 8, 1]);
    const out0 = tf.tidy(() => m.probe('dense')(x).dataSync().slice());
    const pair = m.rescaleConvPair!('conv2', 4);
    assert.deepEqual(pair, { first: 'conv2', second: 'dense', between: ['relu2', 'flatten'] });
    const out1 = tf.tidy(() => m.probe('dense')(x).dataSync().slice());
    const maxAbs = Math.max(...out0.map(Math.abs));
    out0.forEach((v, i) => assert.ok(Math.abs(v - out1[i]) <= 1e-5 * maxAbs, `output[${i}] ${v} vs ${out1[i]}`));
    x.dispose();
  } finally {
    m.dispose();
  }
});

test('invalid first layers are refused with a one-line UserError naming the layer and the reason', async () => {
  await selectBackend('wasm');
  expectRescaleError(tinyNet(), 'relu1', /is a ReLU layer, not a convolution/);
  expectRescaleError(tinyNet(), 'dense', /is a Dense layer, not a convolution/);
  expectRescaleError(tinyNet(), 'nope', /no layer named/);
  // conv -> BatchNorm -> relu -> conv: BN adds an offset after normalising.
  expectRescaleError(
    net((x) => conv('c2').apply(tfl.layers.reLU().apply(tfl.layers.batchNormalization({ name: 'bn' }).apply(conv('c1').apply(x)))) as Sym),
    'c1',
    /"bn" \(BatchNormalization\).*not positively homogeneous/,
  );
  // A conv with a fused sigmoid.
  expectRescaleError(net((x) => conv('c2').apply(conv('c1', { activation: 'sigmoid' }).apply(x)) as Sym), 'c1', /sigmoid activation, which is not positively homogeneous/);
  // relu6 caps the output.
  expectRescaleError(net((x) => conv('c2').apply(tfl.layers.reLU({ maxValue: 6, name: 'r6' }).apply(conv('c1').apply(x))) as Sym), 'c1', /"r6".*caps its output/);
  // A branch: c1 feeds c2 and c3.
  expectRescaleError(
    net((x) => {
      const a = conv('c1').apply(x) as Sym;
      return tfl.layers.add().apply([conv('c2').apply(a) as Sym, conv('c3').apply(a) as Sym]) as Sym;
    }),
    'c1',
    /also feeds "c2", "c3" \(a branch\)/,
  );
  // The last conv: nothing follows.
  expectRescaleError(net((x) => conv('c2').apply(conv('c1').apply(x)) as Sym), 'c2', /model output/);
  // Bad factor.
  const wrapped = wrapLayersModel(tinyNet(), 'mem/model.json', 'tfjs-layers', '');
  assert.throws(() => wrapped.rescaleConvPair!('conv1', 0), /--factor: must be a positive number/);
  wrapped.dispose();
});

test('checkCoherency refuses a non-conv --first before analysing, in one line', async () => {
  const file = await saveLayersModel(tinyNet(), path.join(dir, 'bad-first'));
  await assert.rejects(
    checkCoherency({ modelPath: file, images, settings, first: 'dense' }),
    (e: unknown) => e instanceof UserError && /^--first: "dense" is a Dense layer, not a convolution; conv layers: conv1, conv2$/.test(e.message),
  );
  await assert.rejects(
    checkCoherency({ modelPath: file, images, settings, first: 'conv2', factor: -1 }),
    (e: unknown) => e instanceof UserError && /^--factor: /.test(e.message),
  );
});

/** Rescales `first` by `factor` in a loaded model; returns the pair and the relative output change / feature ratio. */
async function rescaleLoaded(file: string, first: string, factor: number) {
  const m = await loadModel(file);
  try {
    const { height, width, channels } = m.input;
    const x = tf.tensor4d(randomArray(2 * height! * width! * channels, 21, 1), [2, height!, width!, channels]);
    const last = m.layers[m.layers.length - 1].name;
    const grab = () => tf.tidy(() => [last, first].map((n) => (m.probe(n)(x).dataSync() as Float32Array).slice()));
    const [out0, f0] = grab();
    const pair = m.rescaleConvPair!(first, factor);
    const [out1, f1] = grab();
    x.dispose();
    const maxAbs = Math.max(...out0.map(Math.abs));
    const norm = (a: Float32Array) => Math.sqrt(a.reduce((s, v) => s + v * v, 0));
    return { pair, outputChange: Math.max(...out0.map((v, i) => Math.abs(v - out1[i]))) / maxAbs, featureRatio: norm(f1) / norm(f0) };
  } finally {
    m.dispose();
  }
}

test('graph models and ONNX graphs rescale too (output unchanged, feature scaled, invalid pairs refused)', async () => {
  await selectBackend('wasm');
  for (const [name, spec] of [['plain', PLAIN_CNN], ['fused', FUSED_CNN]] as const) {
    const g = writeGraphModel(path.join(dir, `graph-${name}`), spec);
    const first = g.nodes.find((n) => /Conv2D/.test(n.op))!.name;
    const r = await rescaleLoaded(g.file, first, 3);
    assert.ok(r.outputChange < 1e-5, `${name}: output changed by ${r.outputChange}`);
    assert.ok(Math.abs(r.featureRatio - 1 / 3) < 1e-5, `${name}: feature ratio ${r.featureRatio}`);
    assert.ok(/conv2d_1/.test(r.pair.second), `${name}: second ${r.pair.second}`);
  }
  const vgg = path.join(__dirname, 'fixtures', 'onnx', 'tiny_vgg.onnx');
  const r = await rescaleLoaded(vgg, '/features/features.3/Conv_output_0', 3);
  assert.deepEqual(r.pair, {
    first: '/features/features.3/Conv_output_0',
    second: '/features/features.6/Conv_output_0',
    between: ['/features/features.4/Relu_output_0', '/features/features.5/MaxPool_output_0'],
  });
  assert.ok(r.outputChange < 1e-5 && Math.abs(r.featureRatio - 1 / 3) < 1e-5, JSON.stringify(r));
  await assert.rejects(rescaleLoaded(vgg, '/features/features.0/Conv_output_0', 4), /tiny_vgg\.onnx: cannot rescale .*\(BatchNormalization\) normalises its input/);
  const resnet = path.join(__dirname, 'fixtures', 'onnx', 'tiny_resnet.onnx');
  await assert.rejects(rescaleLoaded(resnet, '/layer1/conv2/Conv_output_0', 4), /\(Add\) adds another tensor \(a skip connection or merge\)/);
});

test('compareReports: the verdict rule and the expected scaling of baseline magnitudes', () => {
  const per = (image: number, sid: number, grad: number, cam: number) => ({
    image, sidMean: sid, map: [], constraintRatio: 1.5, constraintRatioSe: 0.015, lambda: 1, steps: 10, saturated: 0, seconds: 0,
    deltaF2: 1, deltaF2RelSe: 0.01, stopReason: 'converged' as const,
    baselines: { targetClass: 0, gradNorm: [], gradCam: null, cam: null, magnitude: { gradNorm: grad, gradCam: 1, cam } },
  });
  const layer = (name: string, sids: number[], grads: number[], cams: number[]): LayerResult => ({
    name, kind: 'Conv2D', outputShape: [4, 4, 2],
    sid: { mean: sids.reduce((a, b) => a + b) / sids.length, std: 0, total: 0 },
    baselines: {
      gradNorm: { mean: grads.reduce((a, b) => a + b) / grads.length, std: 0 },
      gradCam: { mean: 1, std: 0 },
      cam: { mean: cams.reduce((a, b) => a + b) / cams.length, std: 0 },
    },
    perImage: sids.map((s, i) => per(i, s, grads[i], cams[i])),
  });
  const report = (layers: LayerResult[]) => ({ layers }) as unknown as Report;
  const a = report([layer('c1', [1.0, 1.2], [1, 2], [2, 2]), layer('c2', [0.5, 0.7], [3, 3], [1, 1])]);
  const b = report([layer('c1', [1.03, 1.21], [4, 8], [0.5, 0.5]), layer('c2', [0.9, 1.1], [3.2, 3.2], [1, 1])]);
  const cs = compareReports(a, b, { first: 'c1', second: 'c2', between: [] }, 4);
  const get = (l: string, m: string) => cs.find((c) => c.layer === l && c.metric === m)!;
  // SID: c1 moved 0.02 (< 0.05 floor) -> unchanged; c2 moved 0.4 -> changed.
  assert.equal(get('c1', 'sid').verdict, 'unchanged');
  assert.ok(Math.abs(get('c1', 'sid').difference - 0.02) < 1e-12);
  assert.equal(get('c2', 'sid').verdict, 'changed');
  // noise: optimiser-based 0.5 * hypot(0.01, 0.01) per image -> sqrt(2) * that / 2 per run -> x sqrt(2) for the difference.
  const se = 0.5 * Math.hypot(0.01, 0.01);
  assert.ok(Math.abs(get('c2', 'sid').noise - se) < 1e-9, `noise ${get('c2', 'sid').noise}`);
  // gradNorm x4 at the first layer (expected), +6.7 % at c2 (within 10 %): both as expected.
  assert.equal(get('c1', 'gradNorm').verdict, 'changed');
  assert.equal(get('c1', 'gradNorm').expected, 'changed');
  assert.equal(get('c1', 'gradNorm').expectedRatio, 4);
  assert.equal(get('c2', 'gradNorm').verdict, 'unchanged');
  assert.equal(get('c1', 'cam').expectedRatio, 0.25);
  assert.equal(get('c1', 'cam').verdict, 'changed');
  assert.equal(get('c1', 'gradCam').verdict, 'unchanged');
  assert.equal(get('c1', 'gradCam').expected, 'unchanged');
});

// ---- the comparison, computed once for the tests below ----

let outcome: Promise<CoherencyResult> | undefined;
function compare(): Promise<CoherencyResult> {
  outcome ??= (async () => {
    await selectBackend('wasm');
    const file = await saveLayersModel(tinyNet(), path.join(dir, 'orig'));
    return checkCoherency({ modelPath: file, images, settings, first: 'conv1' });
  })();
  return outcome;
}

test('SID is unchanged by the rescale at every layer (the verdict rule)', async () => {
  const { comparisons } = await compare();
  const sid = comparisons.filter((c) => c.metric === 'sid');
  assert.deepEqual(sid.map((c) => c.layer), ['conv1', 'relu1', 'conv2', 'relu2', 'flatten', 'dense']);
  for (const c of sid) {
    assert.equal(c.verdict, 'unchanged', `${c.layer}: SID ${c.original} -> ${c.rescaled} (threshold ${c.threshold})`);
    assert.ok(c.threshold >= 0.05 && Number.isFinite(c.noise) && c.noise >= 0);
    assert.equal(c.expected, 'unchanged');
  }
});

test('checkCoherency end to end: output check, feature scales, table and JSON', async () => {
  const result = await compare();
  assert.deepEqual({ ...result.rescale }, { first: 'conv1', second: 'conv2', between: ['relu1'], factor: 4 });
  assert.equal(result.outputCheck.layer, 'dense');
  assert.equal(result.outputCheck.images, 2);
  assert.ok(result.outputCheck.passed && result.outputCheck.relativeDiff < 1e-5, JSON.stringify(result.outputCheck));
  const scale = Object.fromEntries(result.featureScales.map((f) => [f.layer, f]));
  for (const name of ['conv1', 'relu1']) assert.ok(Math.abs(scale[name].measured! - 0.25) < 1e-5, `${name} scale ${scale[name].measured}`);
  for (const name of ['conv2', 'relu2', 'flatten', 'dense']) assert.ok(Math.abs(scale[name].measured! - 1) < 1e-5, `${name} scale ${scale[name].measured}`);
  assert.ok(result.coherent);
  assert.equal(result.original.settings.seed, result.rescaled.settings.seed);
  const text = formatCoherencyTable(result);
  assert.match(text, /Rescaled: "conv1" kernel and bias \/ 4, "conv2" kernel x 4; between them: "relu1"/);
  assert.match(text, /SID: unchanged at 6\/6 layers - coherent/);
  const out = path.join(dir, 'out', 'coherency.json');
  writeCoherencyResult(out, result);
  const back = JSON.parse(readFileSync(out, 'utf8')) as CoherencyResult;
  assert.equal(back.kind, 'infodiscard-coherency');
  assert.equal(back.comparisons.length, result.comparisons.length);
});

test('gradient magnitudes scale with the weights where the feature shrank (baselines)', async () => {
  const { comparisons } = await compare();
  const grad = comparisons.filter((c) => c.metric === 'gradNorm');
  assert.ok(grad.length > 0, 'the reports have baselines');
  const by = Object.fromEntries(grad.map((c) => [c.layer, c]));
  for (const name of ['conv1', 'relu1']) {
    const ratio = by[name].rescaled / by[name].original;
    assert.ok(Math.abs(ratio - 4) < 0.04, `${name}: gradNorm ratio ${ratio}, expected 4`);
    assert.equal(by[name].verdict, 'changed');
  }
  for (const name of ['conv2', 'relu2', 'flatten']) {
    if (!by[name]) continue;
    const ratio = by[name].rescaled / by[name].original;
    assert.ok(Math.abs(ratio - 1) < 0.01, `${name}: gradNorm ratio ${ratio}, expected 1`);
    assert.equal(by[name].verdict, 'unchanged');
  }
  for (const c of comparisons.filter((x) => x.unit === 'magnitude')) assert.equal(c.verdict, c.expected, `${c.layer} ${c.metric}`);
});

test('coherency command line: own options, analyze options passed through, one-line errors', () => {
  const ok = parseCoherencyArgs(['m.json', '--images', 'a.png', '--first', 'conv1', '--factor=2', '--max-steps', '10', '--out', 'c.json', '--layers', 'conv1,relu1']);
  assert.equal(ok.command, 'coherency');
  if (ok.command !== 'coherency') return;
  assert.equal(ok.first, 'conv1');
  assert.equal(ok.factor, 2);
  assert.equal(ok.out, 'c.json');
  assert.equal(ok.analyze.model, 'm.json');
  assert.deepEqual(ok.analyze.layers, ['conv1', 'relu1']);
  assert.equal(ok.analyze.settings.maxSteps, 10);
  assert.deepEqual(parseCoherencyArgs(['--help']), { command: 'help' });
  const bad = (argv: string[], pattern: RegExp) =>
    assert.throws(() => parseCoherencyArgs(argv), (e: unknown) => e instanceof UserError && e.message.split('\n').length === 1 && pattern.test(e.message));
  bad(['m.json', '--images', 'a.png'], /^--first: is required/);
  bad(['m.json', '--images', 'a.png', '--first'], /^--first: expects a layer name/);
  bad(['m.json', '--images', 'a.png', '--first', 'c', '--factor', 'x'], /^--factor: expects a positive number, got "x"/);
  bad(['m.json', '--images', 'a.png', '--first', 'c', '--factor', '-2'], /^--factor: expects a positive number/);
  bad(['m.json', '--first', 'c'], /^--images: is required/);
  bad(['--images', 'a.png', '--first', 'c'], /^coherency needs a model file: infodiscard coherency/);
  bad(['m.json', '--images', 'a.png', '--first', 'c', '--max-steps', 'many'], /^--max-steps: expects a number/);
  bad(['m.json', '--images', 'a.png', '--first', 'c', '--html', 'x.html'], /^--html: is not available for coherency/);
  bad(['m.json', '--images', 'a.png', '--first', 'c', '--bogus'], /Unknown option '--bogus'/);
});

test('RU is unchanged by the rescale too: the decoder standardises its input, so it learns the same map', async () => {
  await selectBackend('wasm');
  const file = await saveLayersModel(tinyNet(), path.join(dir, 'orig-ru'));
  const trainDir = path.join(dir, 'train');
  mkdirSync(trainDir, { recursive: true });
  for (let i = 0; i < 12; i++) writeGrayPng(path.join(trainDir, `t${i}.png`), 8, 8, (x, y) => 0.5 + 0.45 * Math.sin((i + 1) * 0.3 * x + (i % 5) * 0.4 * y + i));
  const result = await checkCoherency({
    modelPath: file,
    images,
    trainImages: [trainDir],
    layers: ['conv1', 'relu1', 'conv2'],
    settings: { ...settings, metrics: ['sid', 'ru'], decoder: { blocks: 1, width: 8, maxEpochs: 6, patience: 3, batchSize: 8, learningRate: 0.003, holdout: 0.25 } },
    first: 'conv1',
  });
  const ru = result.comparisons.filter((c) => c.metric === 'ru');
  assert.deepEqual(ru.map((c) => c.layer), ['conv1', 'relu1', 'conv2']);
  for (const c of ru) {
    assert.equal(c.verdict, 'unchanged', `${c.layer}: RU ${c.original} -> ${c.rescaled} (threshold ${c.threshold})`);
    assert.ok(Math.abs(c.difference) < 0.02, `${c.layer}: RU moved by ${c.difference}`);
  }
  for (const layer of result.rescaled.layers) assert.equal(layer.ru?.decoder.cached, false, 'the rescaled model trains its own decoders');
});
