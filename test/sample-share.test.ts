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
import { assertSameSearch, estimateFixture, SEARCH, searchFixture } from './helpers/splitSearch';

before(() => selectBackend('wasm'));

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
  const { probe, x, f, std, dispose } = estimateFixture(4);
  const opts = { batch: 16, seed: 9, targetRelSe: 0.02, minSamples: 32, maxSamples: 4096 };
  const whole = await estimateFeatureChange(probe, x, f, std, opts);
  const members = await Promise.all(localTeam(3).map((share) => estimateFeatureChange(probe, x, f, std, { ...opts, passBatch: 4, share })));
  for (const m of members) {
    assert.equal(m.samples, whole.samples);
    assert.ok(Math.abs(m.mean / whole.mean - 1) < 1e-6, `${m.mean} vs ${whole.mean}`);
    assert.equal(m.mean, members[0].mean, 'every member the same number');
    assert.equal(m.relSe, members[0].relSe);
  }
  dispose();
});

test('learnSid split over a team of 2 (and of 3) takes the steps of one process; every member the same result', async () => {
  const { model, input } = searchFixture(5);
  const tensors = tf.memory().numTensors;
  const whole = await learnSid(input, SEARCH);
  for (const size of [2, 3]) {
    const team = await Promise.all(localTeam(size).map((share) => learnSid(input, { ...SEARCH, share })));
    assert.equal(tf.memory().numTensors, tensors, 'no tensors leak from the shared passes');
    for (const m of team) {
      assertSameSearch(m, whole, `team of ${size}: `);
      assert.deepEqual([...m.map], [...team[0].map], 'members agree exactly');
      assert.equal(m.deltaF2, team[0].deltaF2);
    }
  }
  model.dispose();
});

test('the RU search refuses a share (its entropy sees the whole batch)', async () => {
  const { model, input } = searchFixture(6);
  const [share] = localTeam(2);
  await assert.rejects(learnSid(input, { ...SEARCH, maxSteps: 3, share, entropy: (noisy) => tf.mean(noisy) as tf.Scalar }), /cannot be split/);
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
