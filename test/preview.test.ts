/**
 * The first-order preview (src/engine/preview.ts) and learnSid's warm start from it:
 *  - on a linear layer the linearisation is exact, so the preview is the closed form of test/sid-linear.test.ts up
 *    to the Monte-Carlo error of Hutchinson's estimate (per pixel ĉ_p / c_p ~ chi^2_M / M exactly) and of delta_f^2;
 *  - the clamp is solved properly (water filling: KKT conditions hold);
 *  - warm-started learnSid on a ReLU conv net lands on the cold start's optimum, in fewer steps;
 *  - nothing leaks.
 */
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { selectBackend } from '../src/engine/backend';
import { makeInputMapping } from '../src/engine/inputMapping';
import { loadModel } from '../src/engine/loaders';
import { saveLayersModel } from '../src/engine/loaders/saveTfjs';
import { previewSigma, waterFill } from '../src/engine/preview';
import { GAUSSIAN_ENTROPY_CONSTANT } from '../src/engine/report';
import { Rng } from '../src/engine/rng';
import { learnSid } from '../src/engine/sid';
import { makeSigmaGrid } from '../src/engine/sigmaGrid';
import { reluConvNet, tempDir } from './helpers/fixtures';
import { pearson } from '../bench/util';

before(() => selectBackend('wasm'));

const side = 8;
const n = side * side;
const outputs = 20;
const alpha = 1.5;
const tau = 0.01;
const mapping = makeInputMapping({ inputRange: null, normalize: null }, 1);

/** The weights of test/sid-linear.test.ts: column norms over ~1.3 orders of magnitude. */
function linearWeights(): { w: Float32Array; c: Float64Array } {
  const rng = new Rng(11);
  const w = new Float32Array(n * outputs);
  const c = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const colScale = Math.exp(3 * (rng.uniform() - 0.5));
    for (let j = 0; j < outputs; j++) {
      w[i * outputs + j] = rng.normal() * colScale;
      c[i] += w[i * outputs + j] ** 2;
    }
  }
  return { w, c };
}

/** Wilson-Hilferty quantile of chi^2_M / M at the standard-normal quantile z. */
const chi2OverM = (m: number, z: number) => (1 - 2 / (9 * m) + z * Math.sqrt(2 / (9 * m))) ** 3;

test('on a linear layer the preview is the closed form, within the Monte-Carlo error of c', async () => {
  const { w, c } = linearWeights();
  const wT = tf.keep(tf.tensor2d(w, [n, outputs]));
  const probe = (x: tf.Tensor4D) => tf.matMul(tf.reshape(x, [x.shape[0], n]), wT);
  const pixels = Float32Array.from({ length: n }, (_, i) => ((i % side) + Math.floor(i / side)) / (2 * side));
  const M = 256;
  const before = tf.memory().numTensors;
  const r = await previewSigma(
    { probe, pixels, height: side, width: side, channels: 1, mapping },
    { alpha, tau, sigmaMax: 100, sigmaGrid: null, seed: 5, samples: 16, vjpSamples: M, passes: 1, calibrate: false },
  );
  assert.equal(tf.memory().numTensors, before, 'tensors leaked by previewSigma');
  wT.dispose();

  const sumC = c.reduce((a, b) => a + b, 0);
  const expected = Array.from(c, (ci) => 0.5 * Math.log((alpha * tau * sumC) / (n * ci)) + GAUSSIAN_ENTROPY_CONSTANT);
  const expectedMean = expected.reduce((a, b) => a + b, 0) / n;
  // Per pixel H_p - H*_p = -½ log(ĉ_p / c_p) + ½ log(delta_f^2 estimate / tau sum c), ĉ_p / c_p ~ chi^2_M / M.
  // delta_f^2 has a relative standard error <= 1 % (its stopping rule): at most ½ * 4 * 0.01 nats at 4 sigma.
  const dfTol = 0.5 * 4 * Math.max(r.deltaF2RelSe, 0.005);
  // Worst pixel: a two-sided 4.5-sigma chi^2 interval per pixel (Bonferroni over 64 pixels: ~5e-4 in all).
  const worstTol = 0.5 * Math.max(-Math.log(chi2OverM(M, -4.5)), Math.log(chi2OverM(M, 4.5))) + dfTol;
  // Mean: bias +1/(2M) (E log chi^2_M/M ≈ -1/M), sd 1/sqrt(2M) per pixel, averaged over n pixels whose estimates
  // correlate through the shared probes: var of the mean = var/n * (1 + sum_{p != q} rho_pq^2 / n), rho = column correlation.
  let rho2 = 0;
  for (let p = 0; p < n; p++)
    for (let q = 0; q < n; q++) {
      if (p === q) continue;
      let dot = 0;
      for (let j = 0; j < outputs; j++) dot += w[p * outputs + j] * w[q * outputs + j];
      rho2 += (dot * dot) / (c[p] * c[q]);
    }
  const meanSd = Math.sqrt((1 / (2 * M) / n) * (1 + rho2 / n));
  const meanTol = 1 / (2 * M) + 4 * meanSd + dfTol;
  assert.ok(Math.abs(r.sidMean - expectedMean) < meanTol, `mean SID ${r.sidMean} vs closed form ${expectedMean} (tolerance ${meanTol})`);
  const worst = Math.max(...Array.from(r.map, (h, i) => Math.abs(h - expected[i])));
  assert.ok(worst < worstTol, `worst pixel off by ${worst} nats (tolerance ${worstTol})`);
  // The first-order model holds the budget exactly; a linear layer's measured ratio differs only by
  // E[c/ĉ] - 1 ≈ 2/(M-2) and the Monte-Carlo errors of the two feature-change estimates.
  assert.ok(Math.abs(r.firstOrderRatio / alpha - 1) < 1e-4, `first-order ratio ${r.firstOrderRatio}`);
  const ratioTol = 2 / (M - 2) + 4 * Math.sqrt(2 / M / n * (1 + rho2 / n)) + 4 * Math.hypot(r.deltaF2RelSe, r.constraintRatioSe / r.constraintRatio);
  assert.ok(Math.abs(r.constraintRatio / alpha - 1) < ratioTol, `measured ratio ${r.constraintRatio} (tolerance ${ratioTol})`);
  assert.equal(r.vjpSamples, M);
  assert.equal(r.saturated, 0);
});

test('water filling: clamped parameters at sigma_max, the rest share one multiplier, the budget is met', () => {
  const rng = new Rng(4);
  const m = 50;
  const e = Float64Array.from({ length: m }, () => 0.5 + rng.uniform());
  const d = Float64Array.from({ length: m }, (_, j) => (j === 7 ? 0 : Math.exp(4 * (rng.uniform() - 0.5))));
  const sigmaMax = 0.5;
  const budget = 3;
  const s2 = waterFill(e, d, budget, sigmaMax);
  const clamped = Array.from(s2, (v) => v >= sigmaMax ** 2 * (1 - 1e-12));
  assert.ok(clamped[7], 'a parameter the layer cannot see sits at sigma_max');
  assert.ok(clamped.some((x, j) => x && j !== 7) && clamped.some((x) => !x), 'the case has both clamped and free parameters');
  const used = s2.reduce((a, v, j) => a + v * d[j], 0);
  assert.ok(Math.abs(used / budget - 1) < 1e-9, `budget ${used} vs ${budget}`);
  const kappas = Array.from(s2, (v, j) => (v * d[j]) / e[j]).filter((_, j) => !clamped[j]);
  const kappa = kappas[0];
  assert.ok(kappas.every((k) => Math.abs(k / kappa - 1) < 1e-9), 'free parameters share the multiplier');
  // KKT: a clamped parameter would want at least sigma_max^2 at that multiplier.
  clamped.forEach((cl, j) => cl && j !== 7 && assert.ok((kappa * e[j]) / d[j] >= sigmaMax ** 2 * (1 - 1e-9)));
  // Budget beyond what sigma_max everywhere can use: everything at the bound.
  assert.ok(Array.from(waterFill(e, d, 1e9, sigmaMax)).every((v) => v === sigmaMax ** 2));
});

test('grid preview meets the first-order budget; the least-squares grid fit inverts the upsampling', async () => {
  const grid = makeSigmaGrid(12, 10, 4);
  const v = Float32Array.from({ length: 16 }, (_, j) => Math.sin(j));
  const back = grid.downsampleArray(grid.upsampleArray(v));
  grid.dispose();
  assert.ok(back.every((b, j) => Math.abs(b - v[j]) < 1e-4), 'downsample(upsample(v)) = v');

  const { w } = linearWeights();
  const wT = tf.keep(tf.tensor2d(w, [n, outputs]));
  const probe = (x: tf.Tensor4D) => tf.matMul(tf.reshape(x, [x.shape[0], n]), wT);
  const r = await previewSigma(
    { probe, pixels: new Float32Array(n).fill(0.5), height: side, width: side, channels: 1, mapping },
    { alpha, tau, sigmaMax: 100, sigmaGrid: 3, seed: 2, samples: 16, vjpSamples: 32, measure: false },
  );
  wT.dispose();
  assert.ok(Math.abs(r.firstOrderRatio / alpha - 1) < 1e-4, `first-order ratio ${r.firstOrderRatio}`);
  assert.ok(Number.isNaN(r.constraintRatio));
});

test('warm-started learnSid on a ReLU conv net reaches the cold optimum in fewer steps', async () => {
  const dir = tempDir();
  const size = 12;
  const model = await loadModel(await saveLayersModel(reluConvNet(size, 8), path.join(dir, 'm')));
  try {
    const pixels = Float32Array.from({ length: size * size }, (_, i) => 0.5 + 0.4 * Math.cos((i % size) - Math.floor(i / size)));
    for (const layer of ['conv2', 'conv3']) {
      const input = { probe: model.probe(layer), pixels, height: size, width: size, channels: 1, mapping };
      const opts = { alpha, tau, samples: 16, maxSteps: 200, sigmaMax: 1, sigmaGrid: null, learningRate: 0.05, seed: 3 };
      const before = tf.memory().numTensors;
      const cold = await learnSid(input, opts);
      const preview = await previewSigma(input, opts);
      const warm = await learnSid(input, { ...opts, initialLogSigma: preview.sigma.map(Math.log) });
      assert.equal(tf.memory().numTensors, before, `${layer}: tensors leaked`);
      assert.equal(warm.deltaF2, cold.deltaF2, 'same delta_f^2 stream');
      assert.equal(preview.deltaF2, cold.deltaF2, 'the preview measures delta_f^2 as learnSid does');
      assert.ok(Math.abs(warm.sidMean - cold.sidMean) < 0.05, `${layer}: warm ${warm.sidMean} vs cold ${cold.sidMean}`);
      const rho = pearson(warm.map, cold.map);
      assert.ok(rho >= 0.9, `${layer}: map correlation warm vs cold ${rho}`);
      assert.ok(warm.steps < cold.steps, `${layer}: warm ${warm.steps} steps vs cold ${cold.steps}`);
      assert.ok(Math.abs(warm.constraintRatio / alpha - 1) < 0.05, `${layer}: warm ratio ${warm.constraintRatio}`);
    }
  } finally {
    model.dispose();
  }
});
