/**
 * estimateFeatureChange's tightSamples (issue 15 §2, fewer delta_f^2 samples where the estimate is already tight):
 * a feature of many units stops after one batch; a one-unit feature (heavy relative spread) still draws minSamples;
 * the stop draws the same first samples, so its mean is the longer run's first-batch mean.
 */
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import { selectBackend } from '../src/engine/backend';
import { estimateFeatureChange } from '../src/engine/featureChange';
import { tightSampleCount } from '../src/engine/sid';

before(() => selectBackend('wasm'));

const run = (probe: (x: tf.Tensor4D) => tf.Tensor, tightSamples?: number, minSamples = 32, maxSamples = 4096) => {
  const x = tf.zeros([1, 96, 96, 3]) as tf.Tensor4D;
  const f = probe(x);
  const std = tf.fill([1, 96, 96, 3], 0.1) as tf.Tensor4D;
  return estimateFeatureChange(probe, x, f, std, { batch: 16, seed: 7, targetRelSe: 0.01, minSamples, maxSamples, ...(tightSamples ? { tightSamples } : {}) })
    .finally(() => tf.dispose([x, f, std]));
};

test('a tight estimate (27 648 units) stops after one batch with tightSamples, else at minSamples', async () => {
  const identity = (x: tf.Tensor4D) => tf.mul(x, 2);
  const tight = await run(identity, tightSampleCount(16));
  const plain = await run(identity);
  assert.equal(tight.samples, 16);
  assert.equal(plain.samples, 32);
  assert.ok(tight.relSe <= 0.005, `relSe ${tight.relSe}`);
  const firstBatch = await run(identity, undefined, 16, 16);
  assert.equal(tight.mean, firstBatch.mean, 'same first samples');
});

test('a loose estimate (one unit) is not cut short', async () => {
  const oneUnit = (x: tf.Tensor4D) => tf.slice(x, [0, 0, 0, 0], [-1, 1, 1, 1]);
  const r = await run(oneUnit, tightSampleCount(16), 32, 128);
  assert.ok(r.samples > 32, `drew ${r.samples} samples`);
});
