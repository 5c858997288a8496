/** RU decoder g: shapes for every layer geometry, training quality against the mean-image baseline, the cache, cancellation, leaks. */
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync, existsSync, readdirSync } from 'node:fs';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { selectBackend } from '../src/engine/backend';
import { CancelledError, UserError } from '../src/engine/errors';
import { makeInputMapping } from '../src/engine/inputMapping';
import type { DecoderSettings } from '../src/engine/report';
import { Rng } from '../src/engine/rng';
import { buildDecoder, decoderGeometry, resizeMatrix } from '../src/engine/ru/decoder';
import { decoderKey, hashImages, loadDecoder, saveDecoder } from '../src/engine/ru/decoderCache';
import { splitImages, trainDecoder, type TrainDecoderOptions } from '../src/engine/ru/trainDecoder';
import { DEFAULT_DECODER } from '../src/engine/settings';
import { tempDir } from './helpers/fixtures';

before(() => selectBackend('wasm'));

const SMALL: DecoderSettings = { blocks: 2, width: 8, maxEpochs: 25, patience: 4, batchSize: 8, learningRate: 0.003, holdout: 0.2 };
const mapping = makeInputMapping({ inputRange: [0, 1] }, 1);

/** n gray H x W images of three Gaussian blobs each: structured, so a decoder can beat the mean image. */
function blobImages(n: number, H: number, W: number, seed: number): Float32Array[] {
  const rng = new Rng(seed);
  return Array.from({ length: n }, () => {
    const a = new Float32Array(H * W);
    for (let b = 0; b < 3; b++) {
      const cy = rng.uniform() * H;
      const cx = rng.uniform() * W;
      const r = 1.5 + 3 * rng.uniform();
      const amp = 0.3 + 0.4 * rng.uniform();
      for (let y = 0; y < H; y++) for (let x = 0; x < W; x++) a[y * W + x] += amp * Math.exp(-((y - cy) ** 2 + (x - cx) ** 2) / (2 * r * r));
    }
    return a.map((v) => Math.min(1, v));
  });
}

/** Held-out PSNR of the constant predictor "mean training image", on trainDecoder's own split. */
function meanImagePsnr(images: Float32Array[], holdout: number, seed: number): number {
  const { train, heldOut } = splitImages(images.length, holdout, seed);
  const n = images[0].length;
  const mean = new Float64Array(n);
  for (const k of train) for (let i = 0; i < n; i++) mean[i] += images[k][i] / train.length;
  let psnr = 0;
  for (const k of heldOut) {
    let mse = 0;
    for (let i = 0; i < n; i++) mse += (images[k][i] - mean[i]) ** 2 / n;
    psnr += 10 * Math.log10(1 / mse) / heldOut.length;
  }
  return psnr;
}

const images16 = blobImages(40, 16, 16, 7);

function options(probe: TrainDecoderOptions['probe'], featureShape: number[], extra: Partial<TrainDecoderOptions> = {}): TrainDecoderOptions {
  return { probe, mapping, images: images16, height: 16, width: 16, channels: 1, layerName: 'test', featureShape, settings: SMALL, seed: 3, ...extra };
}

test('decoder output is H x W x C for strides 1, 2, 4, 7x7 -> 28x28, odd sizes and vectors', () => {
  const cases: { feature: number[]; image: [number, number, number]; fit: string; up: number }[] = [
    { feature: [28, 28, 4], image: [28, 28, 1], fit: 'none', up: 0 },
    { feature: [14, 14, 4], image: [28, 28, 1], fit: 'none', up: 1 },
    { feature: [7, 7, 32], image: [28, 28, 1], fit: 'none', up: 2 },
    { feature: [8, 8, 2], image: [32, 32, 3], fit: 'none', up: 2 },
    { feature: [4, 4, 2], image: [28, 28, 1], fit: 'crop', up: 3 }, // 28 -> 14 -> 7 -> 4 ('same' padding)
    { feature: [5, 5, 3], image: [28, 28, 1], fit: 'resize', up: 3 }, // 40x40 resized: a crop would misplace content
    { feature: [13, 13, 2], image: [28, 28, 1], fit: 'resize', up: 2 }, // 'valid' padding
    { feature: [6, 3, 2], image: [20, 12, 3], fit: 'resize', up: 2 }, // not square, rows resized
    { feature: [5, 3, 2], image: [20, 11, 3], fit: 'crop', up: 2 },
    { feature: [40, 40, 2], image: [28, 28, 1], fit: 'resize', up: 0 }, // larger than the image
    { feature: [10], image: [28, 28, 1], fit: 'crop', up: 3 },
    { feature: [7], image: [16, 16, 3], fit: 'none', up: 3 },
  ];
  const s = { ...DEFAULT_DECODER, blocks: 3, width: 8 };
  for (const c of cases) {
    const [H, W, C] = c.image;
    const geo = decoderGeometry(c.feature, { height: H, width: W, channels: C }, s.blocks);
    assert.equal(geo.fit, c.fit, `fit for ${c.feature}`);
    assert.equal(geo.upsamplingBlocks, c.up, `upsampling blocks for ${c.feature}`);
    assert.equal(geo.upsamplingBlocks + geo.plainBlocks, Math.max(s.blocks, c.up));
    const model = buildDecoder(c.feature, { height: H, width: W, channels: C }, s, 1);
    const y = tf.tidy(() => model.apply(tf.ones([2, ...c.feature])) as tf.Tensor);
    assert.deepEqual(y.shape, [2, H, W, C], `output for ${c.feature} -> ${H}x${W}x${C}`);
    assert.ok((y.dataSync() as Float32Array).every(Number.isFinite));
    y.dispose();
    model.dispose();
  }
});

test('more x2 stages than blocks adds upsampling blocks', () => {
  const geo = decoderGeometry([1, 1, 4], { height: 64, width: 64, channels: 1 }, 3);
  assert.equal(geo.upsamplingBlocks, 6);
  assert.equal(geo.plainBlocks, 0);
});

test('rank 2 or rank 4 outputs are a UserError naming the shape', () => {
  const image = { height: 28, width: 28, channels: 1 };
  for (const shape of [[7, 32], [2, 7, 7, 4]]) {
    assert.throws(
      () => buildDecoder(shape, image, DEFAULT_DECODER, 0),
      (e: unknown) => e instanceof UserError && /RU needs a feature map or a vector/.test(e.message) && e.message.includes(`[${shape.join(', ')}]`),
    );
  }
  assert.throws(() => buildDecoder([null, 7, 4] as unknown as number[], image, DEFAULT_DECODER, 0), UserError);
});

test('the resize matrix is linear interpolation with half-pixel centres, keeps constants and skips no input row', () => {
  const up = resizeMatrix(2, 4); // [from, to]: output i at source (i + 0.5) / 2 - 0.5
  assert.deepEqual(Array.from(up), [1, 0.75, 0.25, 0, 0, 0.25, 0.75, 1]);
  assert.deepEqual(Array.from(resizeMatrix(3, 3)), [1, 0, 0, 0, 1, 0, 0, 0, 1]);
  for (const [from, to] of [[40, 28], [8, 2], [52, 28]]) {
    const m = resizeMatrix(from, to);
    for (let i = 0; i < to; i++) {
      let sum = 0;
      for (let j = 0; j < from; j++) sum += m[j * to + i];
      assert.ok(Math.abs(sum - 1) < 1e-6, `column ${i} of ${from}->${to} sums to ${sum}`);
    }
    for (let j = 0; j < from; j++) {
      let row = 0;
      for (let i = 0; i < to; i++) row += m[j * to + i];
      assert.ok(row > 0, `input row ${j} of ${from}->${to} unused`);
    }
  }
});

test('a decoder of an informative layer beats the mean image; a constant layer does not', async (t) => {
  const baseline = meanImagePsnr(images16, SMALL.holdout, 3);
  // Stride 2 (avg-pool), at a scale far from 1 (x 40 + 7): the frozen standardisation must absorb it.
  const probe = (x: tf.Tensor4D) => tf.add(tf.mul(tf.avgPool(x, 2, 2, 'same'), 40), 7);
  const pooled = await trainDecoder(options(probe, [8, 8, 1]));
  assert.equal(pooled.info.trainImages, 32);
  assert.equal(pooled.info.heldOutImages, 8);
  assert.ok(pooled.info.epochs >= 1 && pooled.info.epochs <= SMALL.maxEpochs);
  assert.ok(
    pooled.info.psnr > baseline + 6,
    `pooled layer: held-out PSNR ${pooled.info.psnr.toFixed(2)} dB, mean-image baseline ${baseline.toFixed(2)} dB`,
  );
  // The weights kept are those of the best held-out epoch: re-measuring gives info.heldOutLoss.
  const { heldOut } = splitImages(images16.length, SMALL.holdout, 3);
  const mse = tf.tidy(() => {
    const x = tf.tensor4d(Float32Array.from(heldOut.flatMap((k) => Array.from(images16[k]))), [heldOut.length, 16, 16, 1]);
    return tf.mean(tf.squaredDifference(pooled.decoder(probe(x)), x)).dataSync()[0];
  });
  assert.ok(Math.abs(mse - pooled.info.heldOutLoss) <= 1e-4 * pooled.info.heldOutLoss, `held-out MSE ${mse} vs info ${pooled.info.heldOutLoss}`);
  t.diagnostic(`pooled: ${pooled.info.psnr.toFixed(2)} dB after ${pooled.info.epochs} epochs; mean image: ${baseline.toFixed(2)} dB`);
  pooled.dispose();

  const constant = await trainDecoder(options((x) => tf.add(tf.mul(tf.avgPool(x, 4, 4, 'same'), 0), 3), [4, 4, 1]));
  assert.ok(
    Math.abs(constant.info.psnr - baseline) < 1.5,
    `constant layer: held-out PSNR ${constant.info.psnr.toFixed(2)} dB, mean-image baseline ${baseline.toFixed(2)} dB`,
  );
  t.diagnostic(`constant: ${constant.info.psnr.toFixed(2)} dB after ${constant.info.epochs} epochs`);
  constant.dispose();
});

test('vector features train, and the decoder is differentiable w.r.t. the feature', async () => {
  const t = await trainDecoder(
    options((x) => tf.reshape(tf.avgPool(x, 4, 4, 'same'), [x.shape[0], 16]), [16], { settings: { ...SMALL, maxEpochs: 3 } }),
  );
  assert.ok(Number.isFinite(t.info.psnr));
  const f = tf.randomNormal([2, 16]);
  const g = tf.grad((v: tf.Tensor) => tf.sum(tf.square(t.decoder(v))))(f);
  assert.deepEqual(g.shape, [2, 16]);
  assert.ok((g.dataSync() as Float32Array).every(Number.isFinite) && tf.norm(g).dataSync()[0] > 0);
  tf.dispose([f, g]);
  t.dispose();
});

test('a decoder with the fixed resize trains, and the resize stays fixed', async () => {
  // 16 -> avg-pool 3x3 'valid' -> 5x5: two x2 stages give 20x20, resized to 16x16.
  const t = await trainDecoder(options((x) => tf.avgPool(x, 3, 3, 'valid'), [5, 5, 1], { settings: { ...SMALL, maxEpochs: 3 } }));
  assert.ok(Number.isFinite(t.info.psnr));
  const rows = t.model.getLayer('resize_rows').getWeights()[0];
  assert.deepEqual(rows.shape, [20, 16]);
  assert.deepEqual(Array.from(rows.dataSync()), Array.from(resizeMatrix(20, 16)));
  assert.ok(t.model.trainableWeights.every((w) => !w.name.startsWith('resize_') && !w.name.startsWith('standardize')));
  t.dispose();
});

test('same seed, same decoder; a single image is trained on and reported as 0 held out', async () => {
  const short = { ...SMALL, maxEpochs: 2 };
  const probe = (x: tf.Tensor4D) => tf.avgPool(x, 2, 2, 'same');
  const a = await trainDecoder(options(probe, [8, 8, 1], { settings: short }));
  const b = await trainDecoder(options(probe, [8, 8, 1], { settings: short }));
  const c = await trainDecoder(options(probe, [8, 8, 1], { settings: short, seed: 4 }));
  const weights = (t: typeof a) => t.model.getWeights().map((w) => Array.from(w.dataSync()));
  assert.deepEqual(weights(a), weights(b));
  assert.deepEqual({ ...a.info, seconds: 0 }, { ...b.info, seconds: 0 });
  assert.notDeepEqual(weights(a), weights(c));
  const streamed = await trainDecoder(options(probe, [8, 8, 1], { settings: short, featureBudget: 1 }));
  assert.deepEqual(weights(streamed), weights(a), 'features recomputed per batch give the same decoder');
  [a, b, c, streamed].forEach((t) => t.dispose());

  const one = await trainDecoder(options(probe, [8, 8, 1], { settings: short, images: images16.slice(0, 1) }));
  assert.equal(one.info.trainImages, 1);
  assert.equal(one.info.heldOutImages, 0);
  assert.ok(Number.isFinite(one.info.psnr));
  one.dispose();
});

test('cache: a loaded decoder reproduces the saved one bitwise; corrupt entries are null', async () => {
  const dir = tempDir('infodiscard-decoders-');
  const t = await trainDecoder(options((x) => tf.avgPool(x, 2, 2, 'same'), [8, 8, 1], { settings: { ...SMALL, maxEpochs: 2 } }));
  const parts = {
    modelSha256: 'ab'.repeat(32),
    layer: 'pool',
    settings: SMALL,
    trainingPixelsHash: hashImages(images16),
    mappingDescription: mapping.description,
    height: 16,
    width: 16,
    channels: 1,
  };
  const key = decoderKey(parts);
  assert.match(key, /^[0-9a-f]{24}$/);
  assert.equal(decoderKey({ ...parts, settings: { ...SMALL } }), key, 'same content, same key');
  assert.notEqual(decoderKey({ ...parts, layer: 'other' }), key);
  assert.notEqual(decoderKey({ ...parts, settings: { ...SMALL, width: 9 } }), key);
  assert.notEqual(decoderKey({ ...parts, mappingDescription: 'range -1,1' }), key);
  assert.notEqual(decoderKey({ ...parts, seed: 3 }), key);
  const changed = images16.map((im) => im.slice());
  changed[5][17] += 1e-3;
  assert.notEqual(hashImages(changed), parts.trainingPixelsHash);

  assert.equal(await loadDecoder(dir, key), null, 'nothing cached yet');
  const folder = await saveDecoder(dir, key, t);
  assert.deepEqual(readdirSync(dir), [key], 'no temporary folders left');
  await saveDecoder(dir, key, t); // overwriting an entry works

  const loaded = await loadDecoder(dir, key);
  assert.ok(loaded);
  assert.deepEqual(loaded.info, t.info);
  assert.deepEqual(loaded.standardization, t.standardization);
  const f = tf.tidy(() => tf.add(tf.mul(tf.randomNormal([3, 8, 8, 1], 0, 1, 'float32', 9), 0.3), 0.5));
  const y0 = t.decoder(f);
  const y1 = loaded.decoder(f);
  assert.deepEqual(y1.shape, [3, 16, 16, 1]);
  assert.deepEqual(Buffer.from((y1.dataSync() as Float32Array).buffer), Buffer.from((y0.dataSync() as Float32Array).buffer));
  tf.dispose([f, y0, y1]);
  loaded.dispose();

  // A flipped byte in the weights, a truncated model.json, a missing decoder.json: all ignored.
  const weights = path.join(folder, 'weights.bin');
  const good = readFileSync(weights);
  const bad = Buffer.from(good);
  bad[10] ^= 0xff;
  writeFileSync(weights, bad);
  assert.equal(await loadDecoder(dir, key), null);
  writeFileSync(weights, good);
  const modelJson = path.join(folder, 'model.json');
  const json = readFileSync(modelJson);
  writeFileSync(modelJson, json.subarray(0, json.length >> 1));
  assert.equal(await loadDecoder(dir, key), null);
  writeFileSync(modelJson, json);
  writeFileSync(path.join(folder, 'decoder.json'), '{ not json');
  assert.equal(await loadDecoder(dir, key), null);
  assert.equal(await loadDecoder(dir, '../../etc'), null);
  assert.ok(existsSync(folder));
  t.dispose();
});

test('features are computed in model units (the input mapping)', async () => {
  let max = 0;
  const spy = (x: tf.Tensor4D) => {
    max = Math.max(max, tf.max(x).dataSync()[0]);
    return tf.avgPool(x, 4, 4, 'same');
  };
  const t = await trainDecoder(options(spy, [4, 4, 1], { mapping: makeInputMapping({ inputRange: [0, 255] }, 1), settings: { ...SMALL, maxEpochs: 1 } }));
  const brightest = Math.max(...images16.map((im) => Math.max(...im)));
  assert.ok(Math.abs(max - 255 * brightest) < 1e-3, `probe saw ${max}, expected ${255 * brightest}`);
  t.dispose();
});

test('an AbortSignal cancels training with CancelledError and frees everything', async () => {
  const probe = (x: tf.Tensor4D) => tf.avgPool(x, 2, 2, 'same');
  const n0 = tf.memory().numTensors;
  const ac = new AbortController();
  await assert.rejects(
    trainDecoder(options(probe, [8, 8, 1], { signal: ac.signal, onEpoch: (e) => e === 1 && ac.abort() })),
    CancelledError,
  );
  assert.equal(tf.memory().numTensors, n0, 'tensors left after cancelling');
  const pre = new AbortController();
  pre.abort();
  await assert.rejects(trainDecoder(options(probe, [8, 8, 1], { signal: pre.signal })), CancelledError);
  assert.equal(tf.memory().numTensors, n0);
});

test('no tensor leaks: only the returned model weights remain, and dispose frees them', async () => {
  const probe = (x: tf.Tensor4D) => tf.avgPool(x, 4, 4, 'same');
  const short = { ...SMALL, maxEpochs: 2 };
  (await trainDecoder(options(probe, [4, 4, 1], { settings: short }))).dispose(); // warm-up
  const n0 = tf.memory().numTensors;
  const t = await trainDecoder(options(probe, [4, 4, 1], { settings: short, featureBudget: 10 })); // streamed features too
  assert.equal(tf.memory().numTensors - n0, t.model.weights.length);
  const z = tf.zeros([1, 4, 4, 1]);
  const y = t.decoder(z);
  tf.dispose([z, y]);
  assert.equal(tf.memory().numTensors - n0, t.model.weights.length, 'decoder() leaks');
  t.dispose();
  assert.equal(tf.memory().numTensors, n0);
});
