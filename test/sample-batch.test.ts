/**
 * Splitting a step's K noise samples into smaller passes (src/engine/sampleBatch.ts, SidOptions.sampleBatch) bounds
 * memory without changing the answer: the same noise, the same ratio and gradient summed over passes. Checked on a
 * ReLU conv net through learnSid and the whole analyze(), with an uneven split (16 = 5 + 5 + 5 + 1).
 */
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { analyze } from '../src/engine/analyze';
import { selectBackend } from '../src/engine/backend';
import { estimateFeatureChange } from '../src/engine/featureChange';
import { bytesPerSample, passSize, PASS_BUDGET_MB } from '../src/engine/sampleBatch';
import { DEFAULT_SETTINGS, validateSettings } from '../src/engine/settings';
import { learnSid } from '../src/engine/sid';
import { saveLayersModel } from '../src/engine/loaders/saveTfjs';
import { reluConvNet, tempDir, writeGrayPng } from './helpers/fixtures';

before(() => selectBackend('wasm'));

const SIZE = 12;
const pixels = Float32Array.from({ length: SIZE * SIZE }, (_, i) => ((i * 7) % 13) / 13);
const mapping = { description: 'range 0,1', scale: [1], offset: [0] };

test('passSize: all samples when they fit, else as many as fit, at least one', () => {
  const MB = 2 ** 20;
  assert.equal(passSize(16, 10 * MB), 16);
  assert.equal(passSize(16, 245 * MB), Math.floor(PASS_BUDGET_MB / 245));
  assert.equal(passSize(16, 4096 * MB), 1);
  assert.equal(passSize(16, 0), 16, 'nothing measured: no split');
  assert.equal(passSize(16, 100, 350), 3);
});

test('bytesPerSample grows with the input and leaves no tensors behind', async () => {
  const model = reluConvNet(SIZE, 3);
  const probe = (x: tf.Tensor4D) => model.apply(x) as tf.Tensor;
  const tensors = tf.memory().numTensors;
  const small = await bytesPerSample(probe, SIZE, SIZE, 1);
  const large = await bytesPerSample(probe, 4 * SIZE, 4 * SIZE, 1);
  assert.equal(tf.memory().numTensors, tensors);
  assert.ok(small > 0, `measured ${small} bytes`);
  assert.ok(large > 8 * small && large < 32 * small, `16x the pixels: ${small} -> ${large} bytes`);
  model.dispose();
});

test('estimateFeatureChange: passes of 3 give the same samples and mean as one pass of 16', async () => {
  const model = reluConvNet(SIZE, 4);
  const probe = (x: tf.Tensor4D) => model.apply(x) as tf.Tensor;
  const x = tf.tensor4d(pixels, [1, SIZE, SIZE, 1]);
  const f = probe(x);
  const std = tf.fill([1, SIZE, SIZE, 1], 0.1) as tf.Tensor4D;
  const opts = { batch: 16, seed: 9, targetRelSe: 0, minSamples: 48, maxSamples: 48 };
  const whole = await estimateFeatureChange(probe, x, f, std, opts);
  const split = await estimateFeatureChange(probe, x, f, std, { ...opts, passBatch: 3 });
  assert.equal(split.samples, whole.samples);
  assert.ok(Math.abs(split.mean / whole.mean - 1) < 1e-6, `${split.mean} vs ${whole.mean}`);
  tf.dispose([x, f, std]);
  model.dispose();
});

test('learnSid with sampleBatch 5 (16 = 5 + 5 + 5 + 1) finds the same map, steps and ratio as one pass', async () => {
  const model = reluConvNet(SIZE, 5);
  const probe = (x: tf.Tensor4D) => model.apply(x) as tf.Tensor;
  const input = { probe, pixels, height: SIZE, width: SIZE, channels: 1, mapping };
  const opts = { alpha: 1.5, tau: 0.01, samples: 16, maxSteps: 40, sigmaMax: 1, sigmaGrid: null, learningRate: 0.05, seed: 21 };
  const tensors = tf.memory().numTensors;
  const whole = await learnSid(input, opts);
  const split = await learnSid(input, { ...opts, sampleBatch: 5 });
  assert.equal(tf.memory().numTensors, tensors, 'no tensors leak from the passes');
  assert.equal(split.steps, whole.steps);
  assert.ok(Math.abs(split.sidMean - whole.sidMean) < 1e-4, `${split.sidMean} vs ${whole.sidMean}`);
  const worst = Math.max(...Array.from(whole.map, (h, i) => Math.abs(h - split.map[i])));
  assert.ok(worst < 1e-3, `worst pixel differs by ${worst} nats`);
  assert.ok(Math.abs(split.constraintRatio / whole.constraintRatio - 1) < 1e-4);
  model.dispose();
});

test('analyze(): --sample-batch 4 gives the report of the default; it is checked against --samples', async () => {
  const dir = tempDir();
  const modelPath = await saveLayersModel(reluConvNet(SIZE, 6), path.join(dir, 'net'));
  const image = writeGrayPng(path.join(dir, 'x.png'), SIZE, SIZE, (x, y) => ((x * 3 + y) % 11) / 11);
  const settings = { ...DEFAULT_SETTINGS, backend: 'wasm' as const, maxSteps: 30, samples: 8 };
  const a = await analyze({ modelPath, images: [image], settings, layers: ['conv2'] });
  const b = await analyze({ modelPath, images: [image], settings: { ...settings, sampleBatch: 4 }, layers: ['conv2'] });
  const [pa, pb] = [a.layers[0].perImage[0], b.layers[0].perImage[0]];
  assert.equal(pb.steps, pa.steps);
  assert.ok(Math.abs(pb.sidMean - pa.sidMean) < 1e-4);
  assert.equal(b.settings.sampleBatch, 4, 'recorded in the report');
  assert.throws(() => validateSettings({ ...settings, sampleBatch: 9 }), /--sample-batch.*from 1 to --samples \(8\), got 9/);
  assert.throws(() => validateSettings({ ...settings, sampleBatch: 0 }), /--sample-batch/);
});
