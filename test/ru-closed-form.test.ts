/**
 * RU against answers known in closed form, with decoders trained by the real pipeline (analyze() with metrics ru:
 * the decoder is trained on the training folder, then the RU search runs), on real photographs: 8x8 patches of two
 * public-domain / CC0 photos (test/fixtures/photo-patches, made by scripts/test-data/photo-patches.ts).
 *
 *  - An identity layer (Dense(64) = I) and an orthogonal one lose nothing: with a faithful decoder x̂' = x' and the
 *    reconstruction error of unit i is σ_i², so RU = ½·log(α·τ) + ½·log(2πe) per unit, the SID's closed form.
 *  - The sum of the pixels keeps one number: no decoder can tell where the brightness is, so its RU is higher.
 *  - A layer that keeps only the left half of the image: the right half is guessed from the left, so its RU is
 *    higher than the left half's.
 * Before the bounded, noise-trained decoder (issue 19), the identity's RU came out at +3.3 nats/pixel: the search
 * put the noise where an unbounded decoder extrapolated off the image manifold.
 */
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { analyze } from '../src/engine/analyze';
import { selectBackend } from '../src/engine/backend';
import { GAUSSIAN_ENTROPY_CONSTANT, type LayerResult } from '../src/engine/report';
import { Rng } from '../src/engine/rng';
import { DEFAULT_DECODER, DEFAULT_SETTINGS } from '../src/engine/settings';
import { saveLinearModel, tempDir } from './helpers/fixtures';

before(() => selectBackend('wasm'));

const side = 8;
const n = side * side;
const patches = path.join(__dirname, 'fixtures', 'photo-patches');
const images = ['astronaut-0.png', 'astronaut-40.png', 'coffee-20.png', 'coffee-60.png'].map((f) => path.join(patches, f));
const dir = tempDir('ru-closed-form-');
const settings = {
  ...DEFAULT_SETTINGS,
  backend: 'wasm' as const,
  metrics: ['sid' as const, 'ru' as const],
  decoder: { ...DEFAULT_DECODER, blocks: 3, maxEpochs: 60, patience: 8 },
};
const closedForm = 0.5 * Math.log(settings.alpha * settings.tau) + GAUSSIAN_ENTROPY_CONSTANT;

async function ruOf(name: string, weights: Float32Array, outputs: number, tau = settings.tau): Promise<LayerResult> {
  const model = await saveLinearModel(path.join(dir, name), side, weights, outputs);
  const report = await analyze({
    modelPath: model,
    images,
    trainImages: [path.join(patches, 'train')],
    settings: { ...settings, tau },
    reportPath: path.join(dir, `${name}.json`),
  });
  const layer = report.layers[0];
  assert.ok(layer.ru, `${name}: RU is in the report`);
  assert.equal(layer.ru.decoder.output, 'clamp');
  assert.equal(layer.ru.decoder.training, 'noisy');
  return layer;
}

/** Mean RU over the images of the left (x < 4) and right columns. */
function halves(layer: LayerResult): { left: number; right: number } {
  let left = 0;
  let right = 0;
  for (const p of layer.perImage) for (const row of p.ruMap!) row.forEach((v, x) => (x < side / 2 ? (left += v) : (right += v)));
  const count = (layer.perImage.length * n) / 2;
  return { left: left / count, right: right / count };
}

const eye = Float32Array.from({ length: n * n }, (_, k) => (Math.floor(k / n) === k % n ? 1 : 0));

test('an identity layer: RU within 0.3 nats of ½ log(ατ) + ½ log(2πe), every value bounded', async (t) => {
  const layer = await ruOf('identity', eye, n);
  t.diagnostic(`identity: RU ${layer.ru!.mean.toFixed(3)} (closed form ${closedForm.toFixed(3)}), SID ${layer.sid.mean.toFixed(3)}, decoder ${layer.ru!.decoder.psnr.toFixed(1)} dB`);
  assert.ok(Math.abs(layer.ru!.mean - closedForm) < 0.3, `identity RU ${layer.ru!.mean}, closed form ${closedForm}`);
  for (const p of layer.perImage) {
    assert.ok(Math.abs(p.ru!.constraintRatio / settings.alpha - 1) < 0.05, `RU constraint ratio ${p.ru!.constraintRatio}`);
    // The clamped decoder bounds every unit's error by max(x, 1 − x)² ≤ 1: no pixel RU above C.
    for (const row of p.ruMap!) for (const v of row) assert.ok(v <= GAUSSIAN_ENTROPY_CONSTANT + 1e-6, `pixel RU ${v} above the bound`);
  }
});

test('an orthogonal layer: the same closed form', async (t) => {
  const rng = new Rng(7);
  const q = tf.tidy(() => tf.linalg.qr(tf.tensor2d(Float32Array.from({ length: n * n }, () => rng.normal()), [n, n]))[0]);
  const weights = q.dataSync() as Float32Array;
  q.dispose();
  const layer = await ruOf('orthogonal', weights, n);
  t.diagnostic(`orthogonal: RU ${layer.ru!.mean.toFixed(3)} (closed form ${closedForm.toFixed(3)}), decoder ${layer.ru!.decoder.psnr.toFixed(1)} dB`);
  assert.ok(Math.abs(layer.ru!.mean - closedForm) < 0.3, `orthogonal RU ${layer.ru!.mean}, closed form ${closedForm}`);
});

// The sum's RU is its decoder's error on the clean image, E_i ≈ (x_i − g_i(sum))², whatever the noise; the identity's
// is the noise itself, α·τ. With μ_rec = x (the paper's choice) a unit's Ĥ is the log of a squared residual, whose mean
// over pixels sits ≈ 0.64 nats below the log of the mean squared residual; on these patches the two come within the
// decoder's own error at the paper's τ = 0.01 (measured: sum −0.53, identity −0.54). At τ = 0.002 the identity's
// closed form drops by 0.8 nats and the sum's RU does not move, so the ordering is tested there.
test('the sum of the pixels reconstructs less than the identity: higher RU (τ = 0.002)', async (t) => {
  const tau = 0.002;
  const sum = await ruOf('sum', new Float32Array(n).fill(1), 1, tau);
  const identity = await ruOf('identity-small-tau', eye, n, tau);
  const margin = sum.ru!.mean - identity.ru!.mean;
  t.diagnostic(`τ ${tau}: sum RU ${sum.ru!.mean.toFixed(3)} (decoder ${sum.ru!.decoder.psnr.toFixed(1)} dB), identity ${identity.ru!.mean.toFixed(3)} (closed form ${(0.5 * Math.log(settings.alpha * tau) + GAUSSIAN_ENTROPY_CONSTANT).toFixed(3)})`);
  assert.ok(margin > 0.1, `sum RU ${sum.ru!.mean}, identity RU ${identity.ru!.mean}`);
});

test('a layer that keeps only the left half: the right half has the higher RU', async (t) => {
  const left = Float32Array.from({ length: n * n }, (_, k) => {
    const i = Math.floor(k / n);
    return i === k % n && i % side < side / 2 ? 1 : 0;
  });
  const layer = await ruOf('left-half', left, n);
  const h = halves(layer);
  t.diagnostic(`left-half layer: RU left ${h.left.toFixed(3)}, right ${h.right.toFixed(3)}`);
  assert.ok(h.right - h.left > 0.3, `RU left half ${h.left}, right half ${h.right}`);
});
