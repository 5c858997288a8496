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
import { assertSameSearch, estimateFixture, SEARCH, searchFixture, SIZE } from './helpers/splitSearch';

before(() => selectBackend('wasm'));


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
  const { probe, x, f, std, dispose } = estimateFixture(4);
  const opts = { batch: 16, seed: 9, targetRelSe: 0, minSamples: 48, maxSamples: 48 };
  const whole = await estimateFeatureChange(probe, x, f, std, opts);
  const split = await estimateFeatureChange(probe, x, f, std, { ...opts, passBatch: 3 });
  assert.equal(split.samples, whole.samples);
  assert.ok(Math.abs(split.mean / whole.mean - 1) < 1e-6, `${split.mean} vs ${whole.mean}`);
  dispose();
});

test('learnSid with sampleBatch 5 (16 = 5 + 5 + 5 + 1) finds the same map, steps and ratio as one pass', async () => {
  const { model, input } = searchFixture(5);
  const tensors = tf.memory().numTensors;
  const whole = await learnSid(input, SEARCH);
  const split = await learnSid(input, { ...SEARCH, sampleBatch: 5 });
  assert.equal(tf.memory().numTensors, tensors, 'no tensors leak from the passes');
  assertSameSearch(split, whole);
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
