/**
 * Quality verdicts (schema 3): the rules on synthetic results, and through the real analyze(): a layer whose change
 * is bounded saturates and is flagged as a bound; a sharp softmax output is analysed at its logits by default (and
 * says so), and when its probabilities are asked for, the ratio either meets alpha within 5 % or is flagged.
 */
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { analyze } from '../src/engine/analyze';
import { selectBackend } from '../src/engine/backend';
import { saveLayersModel } from '../src/engine/loaders/saveTfjs';
import { formatWithQuality, isBound, layerQuality, RATIO_TOLERANCE, ruQuality, SATURATION_SHARE, sidQuality } from '../src/engine/quality';
import { GAUSSIAN_ENTROPY_CONSTANT, type PerImageResult } from '../src/engine/report';
import { DEFAULT_SETTINGS } from '../src/engine/settings';
import { mergeLayerParts } from '../src/engine/reportMerge';
import { progressPrinter } from '../src/cli/progress';
import { parseCli } from '../src/cli/args';
import { aggregateReport } from '../scripts/repro/summarise';
import { epochChartData } from '../webview/report/epochData';
import { randomArray, tempDir, writeGrayPng } from './helpers/fixtures';
import { FUSED_CNN, referenceForward, writeGraphModel } from './fixtures/graphModel';
import { onnxLoader } from '../src/engine/loaders/onnx';
import { tfjsGraphLoader } from '../src/engine/loaders/tfjsGraph';

before(() => selectBackend('wasm'));

const SETTINGS = { alpha: 1.5, sigmaMax: 1, maxSteps: 200 };

/** A 10 x 10 result with `saturated` pixels at sigma_max. */
function result(over: Partial<PerImageResult>): PerImageResult {
  return {
    image: 0,
    sidMean: 0.1,
    map: Array.from({ length: 10 }, () => new Array(10).fill(0)),
    constraintRatio: 1.5,
    constraintRatioSe: 0.01,
    lambda: 0.1,
    steps: 80,
    saturated: 0,
    seconds: 1,
    deltaF2: 1,
    deltaF2RelSe: 0.01,
    stopReason: 'converged',
    ...over,
  };
}

test('verdict rules: ok, ratio-off beyond the standard error, saturated bound, not-converged, preview', () => {
  assert.deepEqual(sidQuality(result({}), SETTINGS), { verdict: 'ok' });
  // The band is ±5 % of alpha plus one standard error.
  assert.equal(sidQuality(result({ constraintRatio: 1.5 * 1.06, constraintRatioSe: 0.001 }), SETTINGS).verdict, 'ratio-off');
  assert.equal(sidQuality(result({ constraintRatio: 1.5 * 1.06, constraintRatioSe: 0.02 }), SETTINGS).verdict, 'ok');
  // A standard error wider than the band itself cannot confirm the constraint, whatever the ratio.
  assert.equal(sidQuality(result({ constraintRatio: 1.5, constraintRatioSe: 0.1 }), SETTINGS).verdict, 'ratio-off');
  assert.match(sidQuality(result({ constraintRatio: 1.6, constraintRatioSe: 0.19 }), SETTINGS).reason!, /cannot be confirmed/);
  assert.equal(sidQuality(result({ constraintRatio: 1.5 * 0.94, constraintRatioSe: 0.001 }), SETTINGS).verdict, 'ratio-off');
  const offReason = sidQuality(result({ constraintRatio: 2.844 }), SETTINGS).reason!;
  assert.match(offReason, /2\.844/);

  // Saturated: more than SATURATION_SHARE of the pixels at sigma_max and the ratio short of alpha: a lower bound.
  const many = Math.floor(100 * SATURATION_SHARE) + 1;
  const sat = sidQuality(result({ saturated: many, constraintRatio: 1.21 }), SETTINGS);
  assert.equal(sat.verdict, 'saturated');
  assert.equal(sat.bound, true);
  assert.match(sat.reason!, /lower bound/);
  assert.match(sat.reason!, /--sigma-max/);
  // Half or fewer at the bound: an unmet ratio is ratio-off, not a bound.
  assert.equal(sidQuality(result({ saturated: 50, constraintRatio: 1.21 }), SETTINGS).verdict, 'ratio-off');
  // Many at the bound but the constraint holds (pixels the layer cannot see): a measurement.
  assert.equal(sidQuality(result({ saturated: 90, constraintRatio: 1.49 }), SETTINGS).verdict, 'ok');
  // Too large a ratio is never a bound, however many sigma sit at sigma_max.
  assert.equal(sidQuality(result({ saturated: 100, constraintRatio: 1.7 }), SETTINGS).verdict, 'ratio-off');

  // Not converged: all steps used while early stopping was possible; a fixed-length run is not flagged.
  assert.equal(sidQuality(result({ stopReason: 'maxSteps', steps: 200 }), SETTINGS).verdict, 'not-converged');
  assert.equal(sidQuality(result({ stopReason: 'maxSteps', steps: 200 }), { ...SETTINGS, minSteps: 200 }).verdict, 'ok');
  assert.equal(sidQuality(result({ stopReason: 'maxSteps', steps: 10 }), { ...SETTINGS, maxSteps: 10 }).verdict, 'ok');
  // The ratio outranks the steps.
  assert.equal(sidQuality(result({ stopReason: 'maxSteps', constraintRatio: 3 }), SETTINGS).verdict, 'ratio-off');

  // A preview: judged on its ratio and saturation, never not-converged, and always says it is an approximation.
  const preview = sidQuality(result({ stopReason: 'preview', steps: 0 }), SETTINGS);
  assert.equal(preview.verdict, 'ok');
  assert.match(preview.reason!, /first-order preview/);
  assert.equal(sidQuality(result({ stopReason: 'preview', constraintRatio: 1.2 }), SETTINGS).verdict, 'ratio-off');
});

test('RU verdicts and the layer roll-up: worst verdict, counts, the reason with its count', () => {
  const ru = { constraintRatio: 1.3, constraintRatioSe: 0.01, stopReason: 'converged' as const };
  assert.equal(ruQuality(ru, 0.8, SETTINGS).verdict, 'at-bound');
  assert.equal(ruQuality(ru, 0.8, SETTINGS).bound, true);
  assert.equal(ruQuality(ru, 0.2, SETTINGS).verdict, 'ratio-off');
  assert.equal(ruQuality({ ...ru, constraintRatio: 1.5 }, 0.8, SETTINGS).verdict, 'ok');

  const ok = sidQuality(result({}), SETTINGS);
  const sat = sidQuality(result({ saturated: 100, constraintRatio: 1.2 }), SETTINGS);
  const off = sidQuality(result({ constraintRatio: 2 }), SETTINGS);
  const roll = layerQuality([ok, off, sat, sat])!;
  assert.equal(roll.verdict, 'saturated');
  assert.deepEqual(roll.counts, { ok: 1, 'ratio-off': 1, saturated: 2 });
  assert.match(roll.reason!, /^2 of 4 images: /);
  assert.ok(isBound(roll));
  assert.equal(formatWithQuality(1.4189, roll), '≥1.419');
  assert.deepEqual(layerQuality([ok, ok]), { verdict: 'ok', counts: { ok: 2 } });
  assert.equal(layerQuality([undefined]), undefined, 'old reports carry no quality: no roll-up');
});

test('merging a layer split over workers rolls the quality up over all its images', () => {
  const q = (ratio: number) => ({ ...result({ constraintRatio: ratio }), quality: sidQuality(result({ constraintRatio: ratio }), SETTINGS) });
  const part = (images: PerImageResult[]) => ({
    name: 'l', kind: 'Dense', outputShape: [3], sid: { mean: 0, total: 0, std: 0 }, perImage: images, quality: layerQuality(images.map((p) => p.quality)),
  });
  const merged = mergeLayerParts([part([{ ...q(1.5), image: 1 }]), part([{ ...q(2.5), image: 0 }])], 100);
  assert.equal(merged.quality!.verdict, 'ratio-off');
  assert.deepEqual(merged.quality!.counts, { ok: 1, 'ratio-off': 1 });
});

test('the CLI prints a warning line with the reason for every flagged image and "≥" before a bound', () => {
  let out = '';
  const stream = { isTTY: false, write: (s: string) => ((out += s), true) } as unknown as NodeJS.WriteStream;
  const print = progressPrinter(stream, false);
  const sat = { ...result({ saturated: 100, constraintRatio: 1.21, sidMean: 1.4189 }), image: 1 };
  sat.quality = sidQuality(sat, SETTINGS);
  const good = { ...result({}), quality: sidQuality(result({}), SETTINGS) };
  const perImage = [good, sat];
  print({
    type: 'layerDone', layer: 'out_relu', index: 0, total: 1,
    result: { name: 'out_relu', kind: 'ReLU', outputShape: [7, 7, 1280], sid: { mean: 0.76, total: 0, std: 0.9 }, perImage, quality: layerQuality(perImage.map((p) => p.quality)) },
  });
  assert.match(out, /out_relu\s+SID ≥0\.760/);
  const warnings = out.split('\n').filter((l) => l.includes('⚠'));
  assert.equal(warnings.length, 1, out);
  assert.match(warnings[0], /image 2 SID ≥1\.419 saturated: .*lower bound.*--sigma-max/);
});

/** model.json of a flat 4x4x1 input -> dense(1) -> ReLU6: a layer that moves at most 6 whatever the noise. */
async function clippedModel(dir: string): Promise<string> {
  const model = tfl.sequential({
    layers: [
      tfl.layers.flatten({ inputShape: [4, 4, 1], name: 'flat' }),
      // z = 1000 * mean(x) - 497: at a mid-grey image (x = 127/255) z = 1.0, so the smallest noise (tau) already
      // swings the clipped output across [0, 6], and no noise can move it further: its change is bounded.
      tfl.layers.dense({ units: 1, name: 'dense', kernelInitializer: tfl.initializers.constant({ value: 1000 / 16 }), biasInitializer: tfl.initializers.constant({ value: -497 }) }),
      tfl.layers.reLU({ maxValue: 6, name: 'relu6' }),
    ],
  });
  return saveLayersModel(model, path.join(dir, 'clipped'));
}

test('a clipped activation whose change is bounded saturates and is reported as a bound, not a measurement', async () => {
  const dir = tempDir('infodiscard-quality-');
  const file = await clippedModel(dir);
  const image = writeGrayPng(path.join(dir, 'grey.png'), 4, 4, () => 127 / 255);
  const settings = { ...DEFAULT_SETTINGS, backend: 'wasm' as const, samples: 8, maxSteps: 40, seed: 1 };
  const report = await analyze({ modelPath: file, images: [image], layers: ['relu6'], settings });
  const layer = report.layers[0];
  const p = layer.perImage[0];
  const hMax = Math.log(settings.sigmaMax) + GAUSSIAN_ENTROPY_CONSTANT;
  assert.equal(p.saturated, 16, 'every pixel at sigma_max');
  assert.ok(Math.abs(p.sidMean - hMax) < 1e-3, `the constant log sigma_max + C: ${p.sidMean}`);
  assert.ok(p.constraintRatio < settings.alpha * (1 - RATIO_TOLERANCE), `ratio ${p.constraintRatio} short of alpha`);
  assert.equal(p.quality?.verdict, 'saturated');
  assert.equal(p.quality?.bound, true);
  assert.equal(layer.quality?.verdict, 'saturated');
  assert.deepEqual(layer.quality?.counts, { saturated: 1 });
  assert.equal(layer.feature, undefined, 'not an output softmax: nothing else was analysed');
});

/** A sharp 10-class softmax classifier on 4x4x1 inputs: large weights, so probabilities flip under noise. */
async function sharpSoftmax(dir: string, separate: boolean): Promise<string> {
  const kernel = tf.tidy(() => tf.mul(tf.randomNormal([16, 10], 0, 1, 'float32', 7), 25));
  const dense = tfl.layers.dense({ units: 10, name: 'scores', activation: separate ? 'linear' : 'softmax', weights: [kernel, tf.zeros([10])] });
  const model = tfl.sequential({
    layers: [tfl.layers.flatten({ inputShape: [4, 4, 1], name: 'flat' }), dense, ...(separate ? [tfl.layers.activation({ activation: 'softmax', name: 'probs' })] : [])],
  });
  kernel.dispose();
  return saveLayersModel(model, path.join(dir, separate ? 'sharp-separate' : 'sharp'));
}

test('a sharp softmax output: its logits are analysed by default and meet alpha; its probabilities meet it or are flagged', async () => {
  const dir = tempDir('infodiscard-quality-');
  const image = writeGrayPng(path.join(dir, 'x.png'), 4, 4, (x, y) => ((x * 5 + y * 3) % 7) / 7);
  const settings = { ...DEFAULT_SETTINGS, backend: 'wasm' as const, samples: 8, maxSteps: 60, seed: 3 };

  const fused = await sharpSoftmax(dir, false);
  const logits = (await analyze({ modelPath: fused, images: [image], layers: ['scores'], settings })).layers[0];
  assert.equal(logits.feature?.kind, 'logits');
  assert.match(logits.feature!.note!, /before its softmax/);
  const pl = logits.perImage[0];
  assert.ok(Math.abs(pl.constraintRatio / settings.alpha - 1) <= RATIO_TOLERANCE, `logits ratio ${pl.constraintRatio}`);
  assert.equal(pl.quality?.verdict, 'ok');

  // A separate Softmax/Activation layer: the scores are its input layer's output.
  const separate = await sharpSoftmax(dir, true);
  const both = await analyze({ modelPath: separate, images: [image], layers: ['scores', 'probs'], settings });
  assert.equal(both.layers[0].feature, undefined);
  assert.equal(both.layers[1].feature?.kind, 'logits');
  assert.match(both.layers[1].feature!.note!, /"scores"/);
  // The same feature (seeds follow the layer's place in the model, so the two searches' noise differs).
  assert.ok(Math.abs(both.layers[1].perImage[0].sidMean - both.layers[0].perImage[0].sidMean) < 0.05, 'probs analysed as the scores');

  // Asked for the probabilities: recorded as such, and the ratio meets alpha within 5 % or the result says it does not.
  const probs = await analyze({ modelPath: fused, images: [image], layers: ['scores'], settings: { ...settings, outputSoftmax: true } });
  assert.equal(probs.settings.outputSoftmax, true);
  const layer = probs.layers[0];
  assert.equal(layer.feature, undefined);
  const p = layer.perImage[0];
  const inBand = Math.abs(p.constraintRatio - settings.alpha) <= RATIO_TOLERANCE * settings.alpha + p.constraintRatioSe && p.constraintRatioSe <= RATIO_TOLERANCE * settings.alpha;
  assert.ok(p.quality, 'a verdict is recorded');
  console.log(`sharp softmax probabilities: ratio ${p.constraintRatio.toFixed(3)} ± ${p.constraintRatioSe.toFixed(3)}, verdict ${p.quality!.verdict}; logits ${pl.constraintRatio.toFixed(3)}`);
  if (!inBand) assert.notEqual(p.quality!.verdict, 'ok', `ratio ${p.constraintRatio} ± ${p.constraintRatioSe} must be flagged`);
  else assert.notEqual(p.quality!.verdict, 'ratio-off');
  assert.notEqual(p.sidMean, pl.sidMean, 'probabilities and logits are different features');
});

test('the repro summariser leaves ratio-off and bound values out of its statistics and counts them', () => {
  const images = ['a.png', 'b.png', 'c.png'];
  const sat = result({ saturated: 100, constraintRatio: 1.2, sidMean: 1.419 });
  const per = [result({ image: 0, sidMean: 0.1 }), { ...sat, image: 1 }, result({ image: 2, sidMean: 0.3, stopReason: 'maxSteps' })].map((p) => ({ ...p, quality: sidQuality(p, SETTINGS) }));
  const report = {
    schemaVersion: 3, tool: { name: 'infodiscard' as const, version: 't' }, createdAt: '', status: 'complete' as const,
    model: { path: 'm.onnx', format: 'onnx' as const, sha256: '', inputShape: [10, 10, 1] },
    settings: { alpha: 1.5, tau: 0.01, samples: 16, maxSteps: 200, seed: 1, backend: 'wasm' as const, inputRange: null, normalize: null, sigmaGrid: null, sigmaMax: 1, learningRate: 0.05 },
    images: images.map((p) => ({ path: p, width: 10, height: 10, pixels: [], channels: 1 })),
    layers: [{ name: 'l', kind: 'Dense', outputShape: [3], sid: { mean: 0, total: 0, std: 0 }, perImage: per }],
    requestedLayers: ['l'], seconds: 1,
  };
  const agg = aggregateReport(report, ['l']).l;
  // The saturated image is out; the not-converged one (constraint still met) stays in.
  assert.deepEqual(Object.keys(agg.sid!.perImage).sort(), ['a.png', 'c.png']);
  assert.ok(Math.abs(agg.sid!.mean - 0.2) < 1e-12);
  assert.deepEqual(agg.flagged, { sid: 1, ru: 0 });
  // A report without verdicts (schema 2) is aggregated as before.
  const old = { ...report, layers: [{ ...report.layers[0], perImage: per.map(({ quality: _q, ...p }) => p) }] };
  assert.equal(aggregateReport(old, ['l']).l.sid!.n, 3);
  assert.equal(aggregateReport(old, ['l']).l.flagged, undefined);
});

test('--output-softmax reaches the settings only when given', () => {
  const base = ['analyze', 'm.json', '--images', 'x.png'];
  const on = parseCli([...base, '--output-softmax']);
  const off = parseCli(base);
  assert.equal(on.command === 'analyze' && on.settings.outputSoftmax, true);
  assert.ok(off.command === 'analyze' && !('outputSoftmax' in off.settings));
});

test('logitsOf in graph and ONNX models: the Softmax input for the output (or the softmax itself), null elsewhere', async () => {
  const dir = tempDir('infodiscard-quality-');
  const written = writeGraphModel(path.join(dir, 'fused'), FUSED_CNN);
  const graph = await tfjsGraphLoader.load(written.file, written.json);
  const x = tf.tensor4d(randomArray(64, 22), [1, 8, 8, 1]);
  try {
    const ref = referenceForward(written, x);
    const want = ref['StatefulPartitionedCall/sequential/dense_1/BiasAdd'].dataSync();
    for (const name of ['Identity', 'StatefulPartitionedCall/sequential/dense_2/Softmax']) {
      const logits = graph.logitsOf!(name);
      assert.ok(logits, name);
      assert.match(logits.note, /before the softmax \(node "StatefulPartitionedCall\/sequential\/dense_1\/BiasAdd"\)/);
      const got = tf.tidy(() => logits.probe(x).dataSync());
      got.forEach((v, i) => assert.ok(Math.abs(v - want[i]) < 1e-4, `${name}: logit ${i} ${v} vs ${want[i]}`));
    }
    assert.equal(graph.logitsOf!('StatefulPartitionedCall/sequential/conv2d_1/Relu'), null);
    tf.dispose(Object.values(ref));
  } finally {
    x.dispose();
    graph.dispose();
  }

  const onnxModel = await onnxLoader.load(path.join(__dirname, 'fixtures', 'onnx', 'tiny_vgg.onnx'), undefined);
  const xi = tf.tensor4d(randomArray(32 * 32 * 3, 6), [1, 32, 32, 3]);
  try {
    const logits = onnxModel.logitsOf!('logits'); // the graph's output, a Softmax despite its name
    assert.ok(logits);
    const [got, want] = tf.tidy(() => [logits.probe(xi).dataSync(), onnxModel.probe('/classifier/classifier.3/Gemm_output_0')(xi).dataSync()]);
    want.forEach((v, i) => assert.ok(Math.abs(got[i] - v) < 1e-5, `logit ${i}`));
    assert.equal(onnxModel.logitsOf!('/features/features.8/Relu_output_0'), null);
  } finally {
    xi.dispose();
    onnxModel.dispose();
  }
});

test('epoch chart data: a flagged checkpoint value carries its reason and, for a bound, the "≥" flag', () => {
  const reportWith = (quality: ReturnType<typeof layerQuality>) => ({
    schemaVersion: 3, tool: { name: 'infodiscard' as const, version: 't' }, createdAt: '', status: 'complete' as const,
    model: { path: 'm.h5', format: 'keras-h5' as const, sha256: '', inputShape: [10, 10, 1] },
    settings: { alpha: 1.5, tau: 0.01, samples: 16, maxSteps: 200, seed: 1, backend: 'wasm' as const, inputRange: null, normalize: null, sigmaGrid: null, sigmaMax: 1, learningRate: 0.05 },
    images: [], requestedLayers: ['l'], seconds: 1,
    layers: [{ name: 'l', kind: 'Dense', outputShape: [3], sid: { mean: 1.419, total: 0, std: 0 }, perImage: [], ...(quality ? { quality } : {}) }],
  });
  const sat = layerQuality([sidQuality(result({ saturated: 100, constraintRatio: 1.2 }), SETTINGS)]);
  const data = epochChartData([
    { epoch: 1, label: 'e1', report: reportWith(undefined) },
    { epoch: 2, label: 'e2', report: reportWith(sat) },
  ]);
  const [p1, p2] = data.lines[0].points;
  assert.equal(p1.warning, undefined, 'an older report without verdicts is not flagged');
  assert.equal(p1.bound, undefined);
  assert.match(p2.warning!, /^⚠ saturated: 1 of 1 image: .*lower bound/);
  assert.equal(p2.bound, true);
});
