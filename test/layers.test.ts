/**
 * Which layers, resume and progress (issue 13 §2-3): the recommended layer set on real models of every format and on
 * a MobileNet-like network built here; a cancelled run resumed gives the same maps as an uninterrupted one; the
 * duration formatter; the progress estimate.
 */
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { analyze } from '../src/engine/analyze';
import { selectBackend } from '../src/engine/backend';
import { CancelledError } from '../src/engine/errors';
import type { AnalysisEvent } from '../src/engine/events';
import { loadModel } from '../src/engine/loaders';
import { saveLayersModel } from '../src/engine/loaders/saveTfjs';
import { recommendedFor, recommendLayers } from '../src/engine/recommendedLayers';
import type { Report } from '../src/engine/report';
import { resolveLayers } from '../src/engine/resolveLayers';
import { planResume } from '../src/engine/resume';
import { analyzeParams, parseCli, type AnalyzeArgs } from '../src/cli/args';
import { DEFAULT_SETTINGS } from '../src/engine/settings';
import { formatDuration } from '../src/engine/duration';
import { estimateProgress, measureLayer, progressText, ProgressTracker } from '../src/engine/progressEstimate';
import { reluConvNet, tempDir, writeGrayPng } from './helpers/fixtures';
import { sampleReport } from './fixtures/sample-report';
import { DEPTHWISE_CNN, FUSED_CNN, writeGraphModel } from './fixtures/graphModel';
import { layerRows } from '../webview/report/table';
import { normalizeReport } from '../webview/report/data';

before(() => selectBackend('wasm'));

const dir = tempDir('infodiscard-layers-');
const KERAS = path.resolve('../shared/data/keras-mnist-dnn-repair');

async function recommended(file: string): Promise<{ names: string[]; all: string[]; reasons: Map<string, string> }> {
  const m = await loadModel(file);
  try {
    const r = recommendedFor(m);
    return { names: r.names, all: m.layers.map((l) => l.name), reasons: r.reasons };
  } finally {
    m.dispose();
  }
}

test('recommended layers: the sample Fashion-MNIST CNN (tfjs layers): each stage\'s conv, the global pool, the output', async () => {
  const r = await recommended('media/sample/fashion-cnn/model.json');
  assert.deepEqual(r.names, ['block1_conv', 'block2_conv', 'block3_conv', 'gap', 'predictions']);
  assert.equal(r.reasons.get('block2_conv'), 'end of the 14x14 stage');
  assert.equal(r.reasons.get('gap'), 'global-pool feature');
  assert.equal(r.reasons.get('predictions'), 'output');
});

test('recommended layers: an ONNX ResNet-8 and ResNet-14: after every residual merge, the global pool, the logits', async () => {
  const r8 = await recommended('media/families/depth-resnet/resnet8.onnx');
  assert.deepEqual(r8.names, ['stage1', 'stage2', 'stage3', 'gap', 'logits']);
  assert.equal(r8.reasons.get('stage2'), 'residual merge', 'the ReLU after the Add stands for the merge');
  assert.ok(!r8.names.includes('stage1.0.Add') && !r8.names.includes('flatten'), 'the Add joins its ReLU; Flatten is passive');
  const r14 = await recommended('media/families/depth-resnet/resnet14.onnx');
  assert.deepEqual(r14.names, ['stage1.0', 'stage1', 'stage2.0', 'stage2', 'stage3.0', 'stage3', 'gap', 'logits']);
});

test('recommended layers: third-party Keras checkpoints (HDF5)', { skip: !existsSync(KERAS) && 'no ../shared/data/keras-mnist-dnn-repair' }, async () => {
  // conv -> pool -> valid conv (13 -> 11 is the same stage) -> pool -> flatten -> dense -> dense.
  const cnn = await recommended(path.join(KERAS, 'mnist1.h5'));
  assert.deepEqual(cnn.names, ['conv2d_1', 'conv2d_2', 'max_pooling2d_2', 'dense_1', 'dense_2']);
  // Separate Activation layers: the activation after each conv or dense stands for it.
  const epoch = await recommended(path.join(KERAS, 'saved-model-01-0.96.hdf5'));
  assert.deepEqual(epoch.names, ['activation_2', 'max_pooling2d_1', 'activation_3', 'activation_4']);
  const fc = await recommended(path.join(KERAS, 'mnist2_fc.h5'));
  assert.deepEqual(fc.names, ['dense_1', 'dense_2', 'dense_3'], 'an MLP: every dense layer');
});

test('recommended layers: tfjs graph models: BiasAdd and activations join their conv, Identity outputs are passive', async () => {
  const short = (names: string[]) => names.map((n) => n.replace('StatefulPartitionedCall/sequential/', ''));
  const fused = await recommended(writeGraphModel(path.join(dir, 'graph-fused'), FUSED_CNN).file);
  assert.deepEqual(short(fused.names), ['conv2d/Relu', 'conv2d_2/BiasAdd', 'dense/Relu', 'dense_2/Softmax']);
  const dw = await recommended(writeGraphModel(path.join(dir, 'graph-dw'), DEPTHWISE_CNN).file);
  assert.deepEqual(short(dw.names), ['conv2d/Relu6', 'conv2d_1/Relu', 'global_average_pooling2d/Mean']);
  assert.equal(dw.all.length, 11, 'Conv2D, BiasAdd, Relu ... and the Identity output are all listed');
});

/** A MobileNet-like network: padding, a strided stem, depthwise-separable blocks with linear bottlenecks, residual adds. */
function mobileNetLike(): tfl.LayersModel {
  const input = tfl.input({ shape: [32, 32, 3] });
  const apply = (layer: tfl.layers.Layer, x: tfl.SymbolicTensor | tfl.SymbolicTensor[]) => layer.apply(x) as tfl.SymbolicTensor;
  let x = apply(tfl.layers.zeroPadding2d({ padding: 1, name: 'stem_pad' }), input);
  x = apply(tfl.layers.conv2d({ filters: 8, kernelSize: 3, strides: 2, name: 'stem_conv' }), x);
  x = apply(tfl.layers.batchNormalization({ name: 'stem_bn' }), x);
  x = apply(tfl.layers.reLU({ maxValue: 6, name: 'stem_relu' }), x);
  const block = (name: string, inp: tfl.SymbolicTensor, stride: number, residual: boolean): tfl.SymbolicTensor => {
    let y = apply(tfl.layers.conv2d({ filters: 16, kernelSize: 1, name: `${name}_expand` }), inp);
    y = apply(tfl.layers.batchNormalization({ name: `${name}_expand_bn` }), y);
    y = apply(tfl.layers.reLU({ maxValue: 6, name: `${name}_expand_relu` }), y);
    y = apply(tfl.layers.depthwiseConv2d({ kernelSize: 3, strides: stride, padding: 'same', name: `${name}_dw` }), y);
    y = apply(tfl.layers.batchNormalization({ name: `${name}_dw_bn` }), y);
    y = apply(tfl.layers.reLU({ maxValue: 6, name: `${name}_dw_relu` }), y);
    y = apply(tfl.layers.conv2d({ filters: 8, kernelSize: 1, name: `${name}_project` }), y);
    y = apply(tfl.layers.batchNormalization({ name: `${name}_project_bn` }), y);
    return residual ? apply(tfl.layers.add({ name: `${name}_add` }), [inp, y]) : y;
  };
  x = block('block1', x, 1, true);
  x = block('block2', x, 2, false);
  x = block('block3', x, 1, true);
  x = apply(tfl.layers.globalAveragePooling2d({ name: 'gap' }), x);
  x = apply(tfl.layers.dropout({ rate: 0.2, name: 'dropout' }), x);
  x = apply(tfl.layers.dense({ units: 4, activation: 'softmax', name: 'predictions' }), x);
  return tfl.model({ inputs: input, outputs: x });
}

test('recommended layers: a MobileNet-like tfjs model: the residual adds, the stage ends, the pool and the output', async () => {
  const model = mobileNetLike();
  const file = await saveLayersModel(model, path.join(dir, 'mobilenet-like'));
  tf.dispose(model.getWeights());
  const r = await recommended(file);
  assert.equal(r.all.length, 33);
  // The 16x16 stage's last activation is the expansion of the strided block that leaves it (as in MobileNetV2).
  assert.deepEqual(r.names, ['block1_add', 'block2_expand_relu', 'block3_add', 'gap', 'predictions']);
  assert.equal(r.reasons.get('block2_expand_relu'), 'end of the 16x16 stage');
  assert.equal(r.reasons.get('block3_add'), 'residual merge');
  for (const never of ['stem_pad', 'stem_bn', 'dropout', 'block2_project_bn']) assert.ok(!r.names.includes(never), never);
  // The same rule without connectivity (a chain) and through resolveLayers' set names.
  const m = await loadModel(file);
  try {
    assert.deepEqual(resolveLayers(m, ['recommended']), r.names);
    assert.deepEqual(resolveLayers(m, ['all']), r.all);
    assert.deepEqual(resolveLayers(m, undefined), r.all, 'the engine default stays every layer');
    const blocks = recommendedFor(m).blocks;
    assert.deepEqual(blocks.map((b) => b.name), r.names);
    assert.deepEqual(blocks.flatMap((b) => b.layers), r.all, 'every layer in exactly one block, in model order');
  } finally {
    m.dispose();
  }
});

test('recommended layers: a plain chain without connectivity is read in order; 1x1 maps are not spatial', () => {
  const layers = [
    { name: 'c1', kind: 'Conv2D', outputShape: [16, 16, 4] },
    { name: 'r1', kind: 'Relu', outputShape: [16, 16, 4] },
    { name: 'c2', kind: 'Conv2D', outputShape: [8, 8, 4] },
    { name: 'r2', kind: 'Relu', outputShape: [8, 8, 4] },
    { name: 'pool', kind: 'AvgPool', outputShape: [1, 1, 4] },
    { name: 'id', kind: 'Identity', outputShape: [1, 1, 4] },
  ];
  assert.deepEqual(recommendLayers(layers).names, ['r1', 'r2', 'pool']);
  const nchw = [{ name: 'c', kind: 'Conv', outputShape: [64, 2, 2], inputs: [] }, { name: 'g', kind: 'GlobalAveragePool', outputShape: [64, 1, 1], inputs: ['c'] }];
  assert.deepEqual([...recommendLayers(nchw, () => 'nchw').reasons], [['c', 'end of the 2x2 stage'], ['g', 'output']]);
});

// ---------------------------------------------------------------------------------------------------------------
// Resume

const images = [
  writeGrayPng(path.join(dir, 'a.png'), 8, 8, (x, y) => (x + 2 * y) / 21),
  writeGrayPng(path.join(dir, 'b.png'), 8, 8, (x, y) => ((x * y) % 7) / 6),
];
const settings = { ...DEFAULT_SETTINGS, backend: 'wasm' as const, maxSteps: 30, samples: 8, seed: 5 };

function sameMaps(a: Report, b: Report): void {
  assert.deepEqual(b.layers.map((l) => l.name), a.layers.map((l) => l.name));
  for (const [i, l] of a.layers.entries()) {
    const o = b.layers[i];
    assert.deepEqual(o.perImage.map((p) => p.map), l.perImage.map((p) => p.map), `${l.name}: the same maps, bitwise`);
    assert.deepEqual(o.perImage.map((p) => [p.sidMean, p.steps, p.constraintRatio]), l.perImage.map((p) => [p.sidMean, p.steps, p.constraintRatio]));
    assert.deepEqual(o.sid, l.sid);
  }
}

test('resume: a run cancelled after its first layer, run again, equals an uninterrupted run (maps bitwise)', async () => {
  const model = await saveLayersModel(reluConvNet(8, 2), path.join(dir, 'resume-model'));
  const whole = await analyze({ modelPath: model, images, layers: ['all'], settings, reportPath: path.join(dir, 'whole.json') });
  const out = path.join(dir, 'resumed.json');
  const controller = new AbortController();
  await assert.rejects(
    analyze({ modelPath: model, images, layers: ['all'], settings, reportPath: out, signal: controller.signal, onEvent: (e) => e.type === 'layerDone' && controller.abort() }),
    CancelledError,
  );
  const partial = JSON.parse(readFileSync(out, 'utf8')) as Report;
  assert.equal(partial.status, 'cancelled');
  assert.deepEqual(partial.layers.map((l) => l.name), ['conv1']);

  const events: AnalysisEvent[] = [];
  const resumed = await analyze({ modelPath: model, images, layers: ['all'], settings, reportPath: out, onEvent: (e) => events.push(e) });
  assert.equal(resumed.status, 'complete');
  assert.deepEqual(resumed.layers.map((l) => [l.name, l.reused === true]), [['conv1', true], ['conv2', false], ['conv3', false]]);
  assert.deepEqual(events.filter((e) => e.type === 'layerStarted').map((e) => (e as { layer: string }).layer), ['conv2', 'conv3'], 'only the rest is computed');
  sameMaps(whole, resumed);
  sameMaps(whole, JSON.parse(readFileSync(out, 'utf8')) as Report);

  // A complete run over fewer layers is extended the same way.
  const fewer = path.join(dir, 'fewer.json');
  await analyze({ modelPath: model, images, layers: ['conv3'], settings, reportPath: fewer });
  const more = await analyze({ modelPath: model, images, layers: ['conv1', 'conv3'], settings, reportPath: fewer });
  assert.deepEqual(more.layers.map((l) => [l.name, l.reused === true]), [['conv1', false], ['conv3', true]]);
  sameMaps({ ...whole, layers: whole.layers.filter((l) => l.name !== 'conv2') }, more);

  // resume: false (CLI --no-resume) recomputes, to the same maps.
  const fresh = await analyze({ modelPath: model, images, layers: ['all'], settings, reportPath: out, resume: false });
  assert.ok(fresh.layers.every((l) => !l.reused));
  sameMaps(whole, fresh);

  // Other settings: nothing reused, and one line says why.
  const warnings: string[] = [];
  const other = await analyze({ modelPath: model, images, layers: ['all'], settings: { ...settings, seed: 6 }, reportPath: out, onEvent: (e) => e.type === 'warning' && warnings.push(e.message) });
  assert.ok(other.layers.every((l) => !l.reused));
  assert.deepEqual(warnings, ['recomputing every layer, not resuming the earlier report: its settings differ (seed)']);
});

test('skip, not fail: a layer TensorFlow.js cannot differentiate is skipped with its reason; the run ends complete', async () => {
  const model = await saveLayersModel(reluConvNet(8, 2), path.join(dir, 'no-grad-model'));
  const events: AnalysisEvent[] = [];
  const report = await analyze({
    modelPath: model,
    images: images.slice(0, 1),
    layers: ['all'],
    settings,
    // conv2's feature goes through Cumprod, which has no gradient in TensorFlow.js.
    prepareModel: (m) => {
      const probe = m.probe.bind(m);
      m.probe = (name) => (name === 'conv2' ? (x) => tf.cumprod(probe(name)(x), 3) : probe(name));
    },
    onEvent: (e) => events.push(e),
  });
  assert.equal(report.status, 'complete');
  assert.deepEqual(report.layers.map((l) => l.name), ['conv1', 'conv3']);
  assert.deepEqual(report.skippedLayers, [{ name: 'conv2', reason: 'it uses the op Cumprod, which TensorFlow.js cannot differentiate' }]);
  assert.ok(events.some((e) => e.type === 'layerSkipped' && e.layer === 'conv2' && e.index === 1 && e.total === 3));
  assert.ok(events.some((e) => e.type === 'warning' && e.layer === 'conv2' && /^skipped: /.test(e.message)));
});

test('resume plan: the model, every setting and every image must match exactly', () => {
  const layer = { name: 'l', kind: 'Conv2D', outputShape: [2], sid: { mean: 0, std: 0, total: 0 }, perImage: [0, 1].map((image) => ({ image, sidMean: image }) as Report['layers'][0]['perImage'][0]) };
  const image = (p: string) => ({ path: p, width: 2, height: 2, channels: 1, pixels: [0, 0.5, 1, 0.25] });
  const s = { ...settings, backend: 'wasm' as const };
  const previous = { model: { sha256: 'abc' }, settings: s, images: [image('a'), image('b')], layers: [layer] } as unknown as Report;
  const target = { sha256: 'abc', settings: { ...s }, images: [image('a'), image('b')], layers: ['l'], imageIndices: [0, 1] };
  assert.equal(planResume(previous, target).reuse.get('l')?.reused, true);
  assert.deepEqual(planResume(previous, { ...target, imageIndices: [1] }).reuse.get('l')?.perImage.map((p) => p.image), [1], 'an image group takes its images');
  assert.match(planResume(previous, { ...target, sha256: 'def' }).reason!, /the model file changed/);
  assert.match(planResume(previous, { ...target, images: [image('a'), { ...image('b'), pixels: [0, 0.5, 1, 0.26] }] }).reason!, /image 2 \(b\) differs/);
  assert.match(planResume(previous, { ...target, settings: { ...s, alpha: 2, tau: 0.02 } }).reason!, /settings differ \(alpha, tau\)/);
  assert.deepEqual(planResume(previous, { ...target, layers: ['other'] }), { reuse: new Map() }, 'no overlap: nothing to say');
});

test('the panel\'s table shows a skipped layer as skipped, with its reason, not as pending or running', () => {
  const r = sampleReport({ finishedLayers: 2, status: 'running' });
  r.skippedLayers = [{ name: r.requestedLayers[1], reason: 'its output does not change when the input changes (delta_f^2 = 0)' }];
  r.layers = r.layers.filter((l) => l.name !== r.requestedLayers[1]);
  const rows = layerRows(normalizeReport(JSON.parse(JSON.stringify(r)))!);
  assert.deepEqual(rows.map((x) => x.state), ['done', 'skipped', 'running']);
  assert.match(rows[1].reason!, /delta_f\^2 = 0/);
  // Schema-2 reports (no skippedLayers) read as before.
  const old = sampleReport({ finishedLayers: 1, status: 'cancelled' });
  assert.deepEqual(layerRows(normalizeReport(JSON.parse(JSON.stringify(old)))!).map((x) => x.state), ['done', 'pending', 'pending']);
});

test('CLI options: the recommended set by default, --layers all, --no-resume', () => {
  const parse = (...extra: string[]) => parseCli(['analyze', 'm.json', '--images', 'x.png', ...extra]) as AnalyzeArgs;
  assert.deepEqual(analyzeParams(parse()).layers, ['recommended']);
  assert.equal(analyzeParams(parse()).resume, undefined, 'resume is the default');
  assert.deepEqual(analyzeParams(parse('--layers', 'all')).layers, ['all']);
  assert.deepEqual(analyzeParams(parse('--layers', 'a,b')).layers, ['a', 'b']);
  assert.equal(analyzeParams(parse('--no-resume')).resume, false);
});

// ---------------------------------------------------------------------------------------------------------------
// Durations and progress

test('formatDuration rounds once, then splits: never "3 min 60 s"', () => {
  assert.equal(formatDuration(42.34), '42.3 s');
  assert.equal(formatDuration(59.97), '1 min 00 s');
  assert.equal(formatDuration(239.6), '4 min 00 s');
  assert.equal(formatDuration(185), '3 min 05 s');
  assert.equal(formatDuration(3599.7), '1 h 00 min');
  assert.equal(formatDuration(3 * 3600 + 59.6 * 60), '4 h 00 min');
  assert.equal(formatDuration(Number.NaN), '—');
});

test('progress estimate: the bound before any layer finished, then measured steps; a total once two layers finished', () => {
  const base = { maxSteps: 200, images: 4, layersAfter: 3, imagesDone: 1, step: 10, elapsedMs: 500 };
  const first = estimateProgress({ ...base, finished: [] });
  assert.deepEqual(first, { expectedSteps: 200, measured: false, layerSeconds: ((190 + 2 * 200) * 50) / 1000, totalSeconds: null });
  assert.equal(progressText(first, 10, 200, formatDuration), 'step 10 (at most 200) · layer ~29.5 s left');
  const one = measureLayer([{ steps: 30, seconds: 1.5 }, { steps: 50, seconds: 2.5 }])!;
  assert.deepEqual(one, { stepsPerImage: 40, msPerStep: 50 });
  const second = estimateProgress({ ...base, finished: [one] });
  assert.equal(second.expectedSteps, 40);
  assert.equal(second.totalSeconds, null, 'no total from one layer');
  const third = estimateProgress({ ...base, finished: [one, { stepsPerImage: 60, msPerStep: 20 }] });
  assert.equal(third.expectedSteps, 50);
  // This layer: 40 steps left on this image, 2 images of 50; 50 ms a step. Then 3 layers x 4 images x 50 steps.
  assert.equal(third.layerSeconds, ((40 + 100) * 50) / 1000);
  assert.equal(third.totalSeconds, ((40 + 100) * 50 + 3 * 4 * 50 * 50) / 1000);
  assert.equal(progressText(third, 10, 200, formatDuration), 'step 10 of ~50 (at most 200) · layer ~7.0 s left · run ~37.0 s left');
  // Two workers: the 3 layers after this one are shared between 2 lanes (not counted one after another).
  const both = [one, { stepsPerImage: 60, msPerStep: 20 }];
  assert.equal(estimateProgress({ ...base, finished: both, concurrent: 2 }).totalSeconds, ((40 + 100) * 50 + (3 * 4 * 50 * 50) / 2) / 1000);
  assert.equal(estimateProgress({ ...base, layersAfter: 0, finished: both, concurrent: 2 }).totalSeconds, third.layerSeconds, 'nothing after: this layer only');
  assert.equal(estimateProgress({ ...base, step: 70, finished: [one] }).expectedSteps, 70, 'never below the steps already taken');
  assert.equal(measureLayer([{ steps: 0, seconds: 0.1 }]), undefined, 'a preview layer measures no steps');
});

test('progress tracker: no time per step from the first steps alone; finished images of the layer time it', () => {
  const t = new ProgressTracker();
  t.started(3, 2);
  t.layerStarted();
  // The first step carries the delta_f^2 estimate: 2 s for step 1 would say ~400 s left.
  assert.equal(t.step({ image: 0, step: 1, maxSteps: 200, elapsedMs: 2000 }).layerSeconds, null);
  assert.equal(t.step({ image: 0, step: 40, maxSteps: 200, elapsedMs: 2390 }).layerSeconds, ((160 + 200) * (2390 / 40)) / 1000);
  // Image 1 starts: image 0's 40 steps in 2.39 s time the first steps of image 1.
  const next = t.step({ image: 1, step: 2, maxSteps: 200, elapsedMs: 300 });
  assert.equal(next.layerSeconds, (198 * (2690 / 42)) / 1000);
  t.layerEnded([{ steps: 40, seconds: 2.39 }, { steps: 60, seconds: 3 }]);
  t.layerStarted();
  const second = t.step({ image: 0, step: 10, maxSteps: 200, elapsedMs: 500 });
  assert.equal(second.expectedSteps, 50);
  assert.equal(second.totalSeconds, null);
  t.layerEnded([{ steps: 30, seconds: 1 }, { steps: 30, seconds: 1 }]);
  t.layerStarted();
  const third = t.step({ image: 0, step: 10, maxSteps: 200, elapsedMs: 500 });
  assert.equal(third.expectedSteps, 40);
  assert.equal(third.totalSeconds, third.layerSeconds, 'the last layer: nothing after it');
  assert.notEqual(third.totalSeconds, null);
});
