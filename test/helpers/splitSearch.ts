/**
 * Shared by the tests that split a search's K noise samples (into passes: test/sample-batch.test.ts; over a team
 * of processes: test/sample-share.test.ts): a small ReLU conv net on a 12x12 image, the search and estimate
 * options both use, and the check that a split search took the steps of the whole one.
 */
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import type { SidResult } from '../../src/engine/sid';
import { reluConvNet } from './fixtures';

export const SIZE = 12;
export const pixels = Float32Array.from({ length: SIZE * SIZE }, (_, i) => ((i * 7) % 13) / 13);
const mapping = { description: 'range 0,1', scale: [1], offset: [0] };
/** learnSid options of these tests: K = 16, up to 40 steps. */
export const SEARCH = { alpha: 1.5, tau: 0.01, samples: 16, maxSteps: 40, sigmaMax: 1, sigmaGrid: null, learningRate: 0.05, seed: 21 };

/** The net (seeded) and learnSid's input for it; dispose `model` at the end. */
export function searchFixture(seed: number) {
  const model = reluConvNet(SIZE, seed);
  const probe = (x: tf.Tensor4D) => model.apply(x) as tf.Tensor;
  return { model, probe, input: { probe, pixels, height: SIZE, width: SIZE, channels: 1, mapping } };
}

/** The feature-change estimate's inputs for a seeded net (x, f = probe(x), std 0.1 everywhere); dispose them after. */
export function estimateFixture(seed: number) {
  const { model, probe } = searchFixture(seed);
  const x = tf.tensor4d(pixels, [1, SIZE, SIZE, 1]);
  const f = probe(x);
  const std = tf.fill([1, SIZE, SIZE, 1], 0.1) as tf.Tensor4D;
  return { model, probe, x, f, std, dispose: () => (tf.dispose([x, f, std]), model.dispose()) };
}

/** A split search took the whole search's steps and found its SID, map and ratio up to summation order. */
export function assertSameSearch(split: SidResult, whole: SidResult, label = ''): void {
  assert.equal(split.steps, whole.steps, `${label}steps`);
  assert.ok(Math.abs(split.sidMean - whole.sidMean) < 1e-4, `${label}${split.sidMean} vs ${whole.sidMean}`);
  const worst = Math.max(...Array.from(whole.map, (h, i) => Math.abs(h - split.map[i])));
  assert.ok(worst < 1e-3, `${label}worst pixel differs by ${worst} nats`);
  assert.ok(Math.abs(split.constraintRatio / whole.constraintRatio - 1) < 1e-4, `${label}ratio`);
}
