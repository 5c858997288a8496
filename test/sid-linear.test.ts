/**
 * The closed form: for h(x) = W x with c_i = ||W_{:,i}||^2, maximising sum_i log sigma_i subject to
 * E||W(sigma∘delta)||^2 = alpha * delta_f^2 = alpha * tau * sum_j c_j gives sigma_i^2 = alpha*tau*sum_j c_j / (n c_i).
 * The whole pipeline (saved model, loader, image, engine) must find it.
 */
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { analyze } from '../src/engine/analyze';
import { selectBackend } from '../src/engine/backend';
import { GAUSSIAN_ENTROPY_CONSTANT } from '../src/engine/report';
import { DEFAULT_SETTINGS } from '../src/engine/settings';
import { Rng } from '../src/engine/rng';
import { saveLinearModel, tempDir, writeGrayPng } from './helpers/fixtures';

before(() => selectBackend('wasm'));

test('pixel SID of a linear layer matches the closed-form optimum', async () => {
  const dir = tempDir();
  const side = 8;
  const n = side * side;
  const outputs = 20;
  const rng = new Rng(11);
  const w = new Float32Array(n * outputs);
  const c = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const colScale = Math.exp(3 * (rng.uniform() - 0.5)); // column norms over ~1.3 orders of magnitude
    for (let j = 0; j < outputs; j++) {
      w[i * outputs + j] = rng.normal() * colScale;
      c[i] += w[i * outputs + j] ** 2;
    }
  }
  const model = await saveLinearModel(path.join(dir, 'linear'), side, w, outputs);
  const image = writeGrayPng(path.join(dir, 'x.png'), side, side, (x, y) => (x + y) / (2 * side));
  const settings = { ...DEFAULT_SETTINGS, backend: 'wasm' as const, seed: 5, sigmaMax: 100 };
  const report = await analyze({ modelPath: model, images: [image], settings });

  const sumC = c.reduce((a, b) => a + b, 0);
  const expected = Array.from(c, (ci) => 0.5 * Math.log((settings.alpha * settings.tau * sumC) / (n * ci)) + GAUSSIAN_ENTROPY_CONSTANT);
  const result = report.layers[0].perImage[0];
  const got = result.map.flat();
  const expectedMean = expected.reduce((a, b) => a + b, 0) / n;
  assert.ok(Math.abs(result.sidMean - expectedMean) < 0.05, `mean SID ${result.sidMean} vs closed form ${expectedMean}`);
  const worst = Math.max(...got.map((h, i) => Math.abs(h - expected[i])));
  assert.ok(worst < 0.2, `worst pixel off by ${worst} nats`);
  // The constraint and the multiplier: at the optimum every d ratio / d log sigma_i = 2*alpha/n = lambda.
  assert.ok(Math.abs(result.constraintRatio / settings.alpha - 1) < 0.05, `constraint ratio ${result.constraintRatio}`);
  assert.ok(Math.abs(result.lambda / ((2 * settings.alpha) / n) - 1) < 0.1, `lambda ${result.lambda} vs ${(2 * settings.alpha) / n}`);
  assert.ok(result.deltaF2RelSe < 0.02);
  assert.equal(result.saturated, 0);
  assert.equal(report.status, 'complete');
});
