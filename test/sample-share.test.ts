/**
 * A layer's K noise samples split over a team (src/engine/sampleShare.ts): each member runs its share of every
 * batch and the sums are added up over the team, so the members take the same steps as one process would and
 * agree with each other exactly. Checked in one process with localTeam (the worker pool's teams are in
 * test/parallel.test.ts), on the feature-change estimate and the whole search, with an uneven split.
 */
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import { selectBackend } from '../src/engine/backend';
import { estimateFeatureChange } from '../src/engine/featureChange';
import { localTeam, shareRange, sumInOrder } from '../src/engine/sampleShare';
import { learnSid } from '../src/engine/sid';
import { Rng } from '../src/engine/rng';
import { reluConvNet } from './helpers/fixtures';

before(() => selectBackend('wasm'));

const SIZE = 12;
const pixels = Float32Array.from({ length: SIZE * SIZE }, (_, i) => ((i * 7) % 13) / 13);
const mapping = { description: 'range 0,1', scale: [1], offset: [0] };

test('shareRange: contiguous shares that cover the batch once, all of it without a team', () => {
  assert.deepEqual(shareRange(16, undefined), { from: 0, to: 16 });
  const team = localTeam(3);
  const ranges = team.map((m) => shareRange(16, m));
  assert.deepEqual(ranges, [{ from: 0, to: 5 }, { from: 5, to: 10 }, { from: 10, to: 16 }]);
  assert.deepEqual(shareRange(16, localTeam(1)[0]), { from: 0, to: 16 });
});

test('localTeam: each round resolves every member to the sum in member order; lengths must agree', async () => {
  const [a, b] = localTeam(2);
  const [ra, rb] = await Promise.all([a.allReduce(Float64Array.of(1, 2)), b.allReduce(Float64Array.of(10, 20))]);
  assert.deepEqual([...ra], [11, 22]);
  assert.equal(ra, rb, 'one array for the whole team');
  const [rc, rd] = await Promise.all([b.allReduce(Float64Array.of(5)), a.allReduce(Float64Array.of(0.5))]);
  assert.deepEqual([...rc], [5.5]);
  assert.equal(rc, rd);
  assert.throws(() => sumInOrder([Float64Array.of(1), Float64Array.of(1, 2)]), /1 and 2 values/);
});

test('estimateFeatureChange split over a team of 3 gives every member the samples and mean of one process', async () => {
  const model = reluConvNet(SIZE, 4);
  const probe = (x: tf.Tensor4D) => model.apply(x) as tf.Tensor;
  const x = tf.tensor4d(pixels, [1, SIZE, SIZE, 1]);
  const f = probe(x);
  const std = tf.fill([1, SIZE, SIZE, 1], 0.1) as tf.Tensor4D;
  const opts = { batch: 16, seed: 9, targetRelSe: 0.02, minSamples: 32, maxSamples: 4096 };
  const whole = await estimateFeatureChange(probe, x, f, std, opts);
  const members = await Promise.all(localTeam(3).map((share) => estimateFeatureChange(probe, x, f, std, { ...opts, passBatch: 4, share })));
  for (const m of members) {
    assert.equal(m.samples, whole.samples);
    assert.ok(Math.abs(m.mean / whole.mean - 1) < 1e-6, `${m.mean} vs ${whole.mean}`);
    assert.equal(m.mean, members[0].mean, 'every member the same number');
    assert.equal(m.relSe, members[0].relSe);
  }
  tf.dispose([x, f, std]);
  model.dispose();
});

test('learnSid split over a team of 2 (and of 3) takes the steps of one process; every member the same result', async () => {
  const model = reluConvNet(SIZE, 5);
  const probe = (x: tf.Tensor4D) => model.apply(x) as tf.Tensor;
  const input = { probe, pixels, height: SIZE, width: SIZE, channels: 1, mapping };
  const opts = { alpha: 1.5, tau: 0.01, samples: 16, maxSteps: 40, sigmaMax: 1, sigmaGrid: null, learningRate: 0.05, seed: 21 };
  const tensors = tf.memory().numTensors;
  const whole = await learnSid(input, opts);
  for (const size of [2, 3]) {
    const team = await Promise.all(localTeam(size).map((share) => learnSid(input, { ...opts, share })));
    assert.equal(tf.memory().numTensors, tensors, 'no tensors leak from the shared passes');
    for (const m of team) {
      assert.equal(m.steps, whole.steps, `team of ${size}: steps`);
      assert.ok(Math.abs(m.sidMean - whole.sidMean) < 1e-4, `team of ${size}: ${m.sidMean} vs ${whole.sidMean}`);
      const worst = Math.max(...Array.from(whole.map, (h, i) => Math.abs(h - m.map[i])));
      assert.ok(worst < 1e-3, `team of ${size}: worst pixel differs by ${worst} nats`);
      assert.ok(Math.abs(m.constraintRatio / whole.constraintRatio - 1) < 1e-4);
      assert.deepEqual([...m.map], [...team[0].map], 'members agree exactly');
      assert.equal(m.deltaF2, team[0].deltaF2);
    }
  }
  model.dispose();
});

test('the RU search refuses a share (its entropy sees the whole batch)', async () => {
  const model = reluConvNet(SIZE, 6);
  const probe = (x: tf.Tensor4D) => model.apply(x) as tf.Tensor;
  const input = { probe, pixels, height: SIZE, width: SIZE, channels: 1, mapping };
  const opts = { alpha: 1.5, tau: 0.01, samples: 16, maxSteps: 3, sigmaMax: 1, sigmaGrid: null, learningRate: 0.05, seed: 21 };
  const [share] = localTeam(2);
  await assert.rejects(learnSid(input, { ...opts, share, entropy: (noisy) => tf.mean(noisy) as tf.Scalar }), /cannot be split/);
  model.dispose();
});

test('Rng.fillNormalRange: the values of fillNormal in its range, and the stream goes on as after fillNormal', () => {
  for (const [n, from, to] of [[16, 0, 16], [16, 5, 11], [15, 3, 15], [15, 0, 0], [10, 9, 10]]) {
    const a = new Rng(7);
    const b = new Rng(7);
    const full = a.fillNormal(new Float32Array(n));
    const part = b.fillNormalRange(new Float32Array(n).fill(99), from, to);
    assert.deepEqual([...part.subarray(from, to)], [...full.subarray(from, to)], `${n} values, [${from}, ${to})`);
    if (from > 1) assert.equal(part[0], 99, 'outside the range: untouched');
    assert.deepEqual([...b.fillNormal(new Float32Array(6))], [...a.fillNormal(new Float32Array(6))], 'the next draw is the same');
  }
});
