/**
 * RU's search (paper Eq. 12) against closed forms, with exact decoders so only the search is under test:
 *  - identity (and an orthogonal map) with its exact inverse as decoder: the reconstruction error of unit i is
 *    sigma_i^2, so RU and SID share the optimum sigma_i^2 = alpha*tau and Ĥ_i = ½ log(alpha*tau) + C: low RU;
 *  - the paper's toy f = sum_i x_i: every pixel counts (SID as low as the identity's) but the best a decoder
 *    can do from one number is a flat image, so no pixel is reconstructed: high RU.
 */
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import { selectBackend } from '../src/engine/backend';
import { makeInputMapping } from '../src/engine/inputMapping';
import { GAUSSIAN_ENTROPY_CONSTANT } from '../src/engine/report';
import { learnRu } from '../src/engine/ru/learnRu';
import { learnSid } from '../src/engine/sid';
import { Rng } from '../src/engine/rng';
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { analyze } from '../src/engine/analyze';
import { DEFAULT_SETTINGS } from '../src/engine/settings';
import { saveLinearModel, tempDir, writeGrayPng } from './helpers/fixtures';

before(() => selectBackend('wasm'));

const side = 8;
const n = side * side;
const mapping = makeInputMapping({ inputRange: null, normalize: null }, 1);
const checker = Float32Array.from({ length: n }, (_, i) => ((i % side) + Math.floor(i / side)) % 2);
const opts = { alpha: 1.5, tau: 0.01, samples: 16, maxSteps: 200, sigmaMax: 1, sigmaGrid: null, learningRate: 0.05, seed: 3 };
const expectedLow = 0.5 * Math.log(opts.alpha * opts.tau) + GAUSSIAN_ENTROPY_CONSTANT;

function orthogonal(seed: number): tf.Tensor2D {
  return tf.tidy(() => {
    const rng = new Rng(seed);
    const a = tf.tensor2d(Float32Array.from({ length: n * n }, () => rng.normal()), [n, n]);
    // Gram-Schmidt through tfjs's QR.
    return tf.linalg.qr(a)[0] as tf.Tensor2D;
  });
}

test('an invertible layer with its exact inverse as decoder has low RU: ½ log(alpha tau) + C per unit', async () => {
  for (const kind of ['identity', 'orthogonal'] as const) {
    const q = kind === 'orthogonal' ? tf.keep(orthogonal(7)) : null;
    const probe = (x: tf.Tensor4D) => {
      const flat = tf.reshape(x, [x.shape[0], n]);
      return q ? tf.matMul(flat, q) : flat;
    };
    const decoder = (f: tf.Tensor) => tf.reshape(q ? tf.matMul(f as tf.Tensor2D, q, false, true) : f, [-1, side, side, 1]) as tf.Tensor4D;
    const before = tf.memory().numTensors;
    const r = await learnRu({ probe, decoder, pixels: checker, height: side, width: side, channels: 1, mapping }, opts);
    assert.equal(tf.memory().numTensors, before, 'no tensor leaks');
    q?.dispose();
    assert.ok(Math.abs(r.ruMean - expectedLow) < 0.06, `${kind}: RU ${r.ruMean} vs closed form ${expectedLow}`);
    const worst = Math.max(...Array.from(r.map, (h) => Math.abs(h - expectedLow)));
    assert.ok(worst < 0.35, `${kind}: worst pixel off by ${worst}`);
    assert.ok(Math.abs(r.constraintRatio / opts.alpha - 1) < 0.05, `${kind}: constraint ratio ${r.constraintRatio}`);
  }
});

test('the toy f = sum_i x_i keeps every pixel (low SID) but reconstructs none (high RU)', async () => {
  const probe = (x: tf.Tensor4D) => tf.sum(tf.reshape(x, [x.shape[0], n]), 1, true);
  // The best decoder from the sum alone: a flat image at the mean value.
  const decoder = (f: tf.Tensor) => tf.tile(tf.reshape(tf.div(f, n), [-1, 1, 1, 1]), [1, side, side, 1]) as tf.Tensor4D;
  const input = { probe, decoder, pixels: checker, height: side, width: side, channels: 1, mapping };
  const sid = await learnSid(input, opts);
  const ru = await learnRu(input, opts);
  // SID: E(sum sigma_i delta_i)^2 = sum sigma_i^2 = alpha tau n, so sigma_i^2 = alpha tau: the identity's value.
  assert.ok(Math.abs(sid.sidMean - expectedLow) < 0.06, `SID ${sid.sidMean} vs ${expectedLow}`);
  // RU: every checkerboard pixel is 0.5 from the flat reconstruction: Ĥ_i ≈ ½ log(0.25 + noise) + C.
  const floorRu = 0.5 * Math.log(0.25) + GAUSSIAN_ENTROPY_CONSTANT;
  assert.ok(ru.ruMean > floorRu - 0.01, `RU ${ru.ruMean} is at least the bias floor ${floorRu}`);
  assert.ok(ru.ruMean - sid.sidMean > 1.2, `RU ${ru.ruMean} far above SID ${sid.sidMean}`);
  assert.ok(Math.abs(ru.constraintRatio / opts.alpha - 1) < 0.05, `constraint ratio ${ru.constraintRatio}`);
});

test('the whole pipeline (analyze --metrics ru, trained decoders, cache): identity keeps RU low, the sum loses every pixel', async (t) => {
  const dir = tempDir();
  const train = path.join(dir, 'train');
  mkdirSync(train);
  // Smooth, varied 8x8 patterns: enough for a small decoder to learn the identity, impossible to rebuild from a sum.
  const rng = new Rng(21);
  for (let i = 0; i < 160; i++) {
    const [a, b, c, d] = [rng.uniform() * 1.5, rng.uniform() * 1.5, rng.uniform() * 6, rng.uniform() * 0.3];
    writeGrayPng(path.join(train, `t${i}.png`), side, side, (x, y) => 0.5 + 0.3 * Math.sin(a * x + b * y + c) + d * (x / side - 0.5));
  }
  const image = writeGrayPng(path.join(dir, 'x.png'), side, side, (x, y) => 0.5 + 0.45 * Math.sin(0.9 * x + 0.6 * y + 1));
  const identity = await saveLinearModel(path.join(dir, 'identity'), side, Float32Array.from({ length: n * n }, (_, k) => (Math.floor(k / n) === k % n ? 1 : 0)), n);
  const sum = await saveLinearModel(path.join(dir, 'sum'), side, new Float32Array(n).fill(1), 1);
  const settings = {
    ...DEFAULT_SETTINGS,
    backend: 'wasm' as const,
    maxSteps: 80,
    metrics: ['sid' as const, 'ru' as const],
    decoder: { blocks: 1, width: 16, maxEpochs: 60, patience: 8, batchSize: 8, learningRate: 0.003, holdout: 0.2, training: 'noisy' as const },
  };
  const run = (model: string, out: string) => analyze({ modelPath: model, images: [image], trainImages: [train], settings, reportPath: path.join(dir, out) });
  const a = (await run(identity, 'identity.json')).layers[0];
  const b = (await run(sum, 'sum.json')).layers[0];
  assert.ok(a.ru && b.ru, 'RU is in the report');
  t.diagnostic(`identity: SID ${a.sid.mean.toFixed(3)}, RU ${a.ru.mean.toFixed(3)}, decoder ${a.ru.decoder.psnr.toFixed(1)} dB; sum: SID ${b.sid.mean.toFixed(3)}, RU ${b.ru.mean.toFixed(3)}, decoder ${b.ru.decoder.psnr.toFixed(1)} dB`);
  assert.equal(a.ru.decoder.trainImages + a.ru.decoder.heldOutImages, 161, 'trained on --train-images plus the analysed image');
  assert.ok(a.ru.decoder.psnr > b.ru.decoder.psnr + 5, `decoder PSNR: identity ${a.ru.decoder.psnr} dB, sum ${b.ru.decoder.psnr} dB`);
  assert.ok(Math.abs(a.sid.mean - b.sid.mean) < 0.15, `SID alike: identity ${a.sid.mean}, sum ${b.sid.mean}`);
  assert.ok(b.ru.mean - a.ru.mean > 0.7, `RU: identity ${a.ru.mean}, sum ${b.ru.mean}`);
  const p = a.perImage[0];
  assert.equal(p.ruMap!.length, side);
  assert.equal(p.ruMap![0].length, side);
  assert.ok(Math.abs(p.ru!.constraintRatio / settings.alpha - 1) < 0.05, `RU constraint ratio ${p.ru!.constraintRatio}`);
  assert.equal(a.ru.decoder.cached, false);
  // Same model, settings and training images: the decoder comes from decoders/ beside the report, and RU repeats.
  const again = (await run(identity, 'identity-again.json')).layers[0];
  assert.equal(again.ru!.decoder.cached, true);
  assert.equal(again.ru!.decoder.key, a.ru.decoder.key);
  assert.equal(again.ru!.mean, a.ru.mean);
});
