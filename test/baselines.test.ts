/**
 * Baseline maps (gradient map, Grad-CAM, CAM) and the loaders' runWithFeature hook:
 *  - a tiny conv -> ReLU -> GAP -> dense(softmax) layers model with hand-set weights: every map against closed
 *    forms computed here with plain loops (pre-softmax logits, as documented in baselines.ts);
 *  - vector features (1x1 maps), upsampling, target class choice, errors, no leaked tensors;
 *  - a residual layers model: the skip path is still computed from x, gradients match finite differences;
 *  - a graph model and ONNX models: gradNorm against finite differences of independent references (plain tf ops
 *    for the graph, onnxruntime on a graph cut at the layer for ONNX), CAM against the head's weights.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import * as ort from 'onnxruntime-node';
import { onnx } from 'onnx-proto';
import { selectBackend } from '../src/engine/backend';
import { computeBaselines } from '../src/engine/baselines';
import { UserError } from '../src/engine/errors';
import { onnxLoader } from '../src/engine/loaders/onnx';
import { tfjsGraphLoader } from '../src/engine/loaders/tfjsGraph';
import { wrapLayersModel } from '../src/engine/loaders/tfjsLayers';
import type { LoadedModel } from '../src/engine/loaders/types';
import { Rng } from '../src/engine/rng';
import { randomArray, tempDir } from './helpers/fixtures';
import { FUSED_CNN, PLAIN_CNN, referenceForward, writeGraphModel, type WrittenGraphModel } from './fixtures/graphModel';

const dir = tempDir('infodiscard-baselines-');
before(async () => {
  await selectBackend('wasm');
});
after(() => rmSync(dir, { recursive: true, force: true }));

/** |a - b| within 4 significant digits' rounding (plus float32 noise). */
function close(a: number, b: number, what: string, rel = 2e-3, abs = 1e-6): void {
  assert.ok(Math.abs(a - b) <= rel * Math.abs(b) + abs, `${what}: got ${a}, expected ${b}`);
}
function closeMap(got: number[][] | null, want: number[][], what: string, rel = 2e-3, abs = 1e-6): void {
  assert.ok(got, `${what}: map is null`);
  assert.equal(got.length, want.length, `${what}: rows`);
  want.forEach((row, i) => {
    assert.equal(got[i].length, row.length, `${what}: columns`);
    row.forEach((v, j) => close(got[i][j], v, `${what}[${i}][${j}]`, rel, abs));
  });
}
const mean2 = (m: number[][]) => m.flat().reduce((a, b) => a + b, 0) / m.flat().length;
const grid = (h: number, w: number, fn: (i: number, j: number) => number) => Array.from({ length: h }, (_, i) => Array.from({ length: w }, (_, j) => fn(i, j)));

/** Bilinear upsampling with half-pixel centres, clamped at the borders (what the maps are displayed with). */
function upsample(m: number[][], height: number, width: number): number[][] {
  const h = m.length;
  const w = m[0].length;
  const src = (d: number, from: number, to: number) => {
    const s = (d + 0.5) * (from / to) - 0.5;
    const i0 = Math.max(0, Math.floor(s));
    return { i0, i1: Math.min(from - 1, Math.ceil(s)), t: s - i0 };
  };
  return grid(height, width, (y, x) => {
    const r = src(y, h, height);
    const c = src(x, w, width);
    const top = m[r.i0][c.i0] + (m[r.i0][c.i1] - m[r.i0][c.i0]) * c.t;
    const bottom = m[r.i1][c.i0] + (m[r.i1][c.i1] - m[r.i1][c.i0]) * c.t;
    return top + (bottom - top) * r.t;
  });
}

// ---------------------------------------------------------------------------------------------------------------
// The tiny model: 4x4x1 -> conv (2 filters 3x3, same, bias) -> ReLU -> GAP -> dense 3 (softmax), weights by hand.

const S = 4;
const KERNEL = [
  // [di][dj][c]
  [[0.5, -0.3], [0.2, 0.4], [-0.1, 0.3]],
  [[0.3, 0.6], [-0.4, -0.2], [0.25, 0.1]],
  [[-0.2, 0.35], [0.45, -0.5], [0.15, 0.2]],
];
const CONV_BIAS = [0.05, -0.12];
const DENSE = [
  // [c][k]
  [1.3, -0.7, 0.4],
  [-0.6, 1.1, 0.9],
];
const DENSE_BIAS = [0.1, -0.2, 0.05];
const IMAGE = grid(S, S, (i, j) => Math.sin(1.3 * i + 0.7 * j + 0.2) * 0.8 + 0.1 * i);

function tinyModel(): LoadedModel {
  const input = tfl.input({ shape: [S, S, 1] });
  let y = tfl.layers.conv2d({ filters: 2, kernelSize: 3, padding: 'same', name: 'conv' }).apply(input) as tfl.SymbolicTensor;
  y = tfl.layers.reLU({ name: 'relu' }).apply(y) as tfl.SymbolicTensor;
  y = tfl.layers.globalAveragePooling2d({ name: 'gap' }).apply(y) as tfl.SymbolicTensor;
  y = tfl.layers.dense({ units: 3, activation: 'softmax', name: 'dense' }).apply(y) as tfl.SymbolicTensor;
  const model = tfl.model({ inputs: input, outputs: y });
  const k = KERNEL.flatMap((row) => row.flatMap((c) => c));
  model.getLayer('conv').setWeights([tf.tensor4d(k, [3, 3, 1, 2]), tf.tensor1d(CONV_BIAS)]);
  model.getLayer('dense').setWeights([tf.tensor2d(DENSE.flat(), [2, 3]), tf.tensor1d(DENSE_BIAS)]);
  return wrapLayersModel(model, 'tiny.json', 'tfjs-layers', 'hash');
}

/** The tiny model in closed form: pre-activation z, feature f, logits, and the target class. */
function tinyByHand() {
  const z = grid(S, S, () => 0).map((row) => row.map(() => [0, 0]));
  for (let i = 0; i < S; i++)
    for (let j = 0; j < S; j++)
      for (let c = 0; c < 2; c++) {
        let s = CONV_BIAS[c];
        for (let di = 0; di < 3; di++)
          for (let dj = 0; dj < 3; dj++) {
            const ii = i + di - 1;
            const jj = j + dj - 1;
            if (ii >= 0 && ii < S && jj >= 0 && jj < S) s += IMAGE[ii][jj] * KERNEL[di][dj][c];
          }
        z[i][j][c] = s;
      }
  const f = z.map((row) => row.map((v) => v.map((e) => Math.max(0, e))));
  const pooled = [0, 1].map((c) => f.flat().reduce((a, v) => a + v[c], 0) / (S * S));
  const logits = [0, 1, 2].map((k) => DENSE_BIAS[k] + pooled[0] * DENSE[0][k] + pooled[1] * DENSE[1][k]);
  const top = logits.indexOf(Math.max(...logits));
  return { z, f, pooled, logits, top };
}

const imageTensor = () => tf.tensor4d(IMAGE.flat(), [1, S, S, 1]);

async function baselinesNoLeak(model: LoadedModel, layer: string, x: tf.Tensor4D, h: number, w: number, target?: number) {
  const before = tf.memory().numTensors;
  const r = await computeBaselines(model, layer, x, h, w, target);
  assert.equal(tf.memory().numTensors, before, `${layer}: computeBaselines leaked tensors`);
  return r;
}

test('tiny model: gradNorm, Grad-CAM and CAM at the GAP input match the closed forms (pre-softmax logit)', async () => {
  const model = tinyModel();
  const x = imageTensor();
  try {
    const hand = tinyByHand();
    // No pre-activation sits exactly at the ReLU kink.
    assert.ok(hand.z.flat(2).every((v) => Math.abs(v) > 1e-3));
    for (const k of [hand.top, (hand.top + 1) % 3]) {
      const r = await baselinesNoLeak(model, 'relu', x, S, S, k === hand.top ? undefined : k);
      assert.equal(r.targetClass, k);
      // dy/df_ijc = W[c][k] / (S*S) everywhere (y is the logit: with the softmax it would depend on f).
      const g = [0, 1].map((c) => DENSE[c][k] / (S * S));
      const gradNorm = grid(S, S, () => Math.hypot(g[0], g[1]));
      const gradCam = grid(S, S, (i, j) => Math.max(0, g[0] * hand.f[i][j][0] + g[1] * hand.f[i][j][1]));
      const cam = grid(S, S, (i, j) => DENSE[0][k] * hand.f[i][j][0] + DENSE[1][k] * hand.f[i][j][1]);
      closeMap(r.gradNorm, gradNorm, `gradNorm k=${k}`);
      closeMap(r.gradCam, gradCam, `gradCam k=${k}`);
      closeMap(r.cam, cam, `cam k=${k}`);
      close(r.magnitude.gradNorm, mean2(gradNorm), 'magnitude.gradNorm');
      close(r.magnitude.gradCam!, mean2(gradCam), 'magnitude.gradCam');
      close(r.magnitude.cam!, mean2(cam), 'magnitude.cam');
    }
  } finally {
    x.dispose();
    model.dispose();
  }
});

test('tiny model: before the ReLU the gradient is masked; Grad-CAM by hand; no CAM (the layer does not feed the GAP)', async () => {
  const model = tinyModel();
  const x = imageTensor();
  try {
    const hand = tinyByHand();
    const k = hand.top;
    const r = await baselinesNoLeak(model, 'conv', x, S, S);
    assert.equal(r.targetClass, k);
    const g = (i: number, j: number, c: number) => (hand.z[i][j][c] > 0 ? DENSE[c][k] / (S * S) : 0);
    const gradNorm = grid(S, S, (i, j) => Math.hypot(g(i, j, 0), g(i, j, 1)));
    const a = [0, 1].map((c) => mean2(grid(S, S, (i, j) => g(i, j, c))));
    const gradCam = grid(S, S, (i, j) => Math.max(0, a[0] * hand.z[i][j][0] + a[1] * hand.z[i][j][1]));
    closeMap(r.gradNorm, gradNorm, 'gradNorm');
    closeMap(r.gradCam, gradCam, 'gradCam');
    assert.equal(r.cam, null);
    assert.equal(r.magnitude.cam, null);
    close(r.magnitude.gradCam!, mean2(gradCam), 'magnitude.gradCam');
  } finally {
    x.dispose();
    model.dispose();
  }
});

test('tiny model: maps are upsampled bilinearly to the display size; magnitudes stay those of the feature-size maps', async () => {
  const model = tinyModel();
  const x = imageTensor();
  try {
    const hand = tinyByHand();
    const k = hand.top;
    const r = await baselinesNoLeak(model, 'relu', x, 8, 8);
    const cam = grid(S, S, (i, j) => DENSE[0][k] * hand.f[i][j][0] + DENSE[1][k] * hand.f[i][j][1]);
    closeMap(r.cam, upsample(cam, 8, 8), 'cam 8x8', 2e-3, 1e-5);
    close(r.magnitude.cam!, mean2(cam), 'magnitude.cam');
    closeMap(r.gradNorm, grid(8, 8, () => Math.hypot(DENSE[0][k], DENSE[1][k]) / (S * S)), 'gradNorm 8x8');
    // Non-square display sizes work too.
    const wide = await baselinesNoLeak(model, 'relu', x, 3, 6);
    assert.equal(wide.gradNorm.length, 3);
    assert.equal(wide.gradNorm[0].length, 6);
  } finally {
    x.dispose();
    model.dispose();
  }
});

test('tiny model: vector features give a 1x1 gradient map (constant when upsampled), no Grad-CAM or CAM', async () => {
  const model = tinyModel();
  const x = imageTensor();
  try {
    const hand = tinyByHand();
    const k = hand.top;
    const gap = await baselinesNoLeak(model, 'gap', x, S, S);
    const norm = Math.hypot(DENSE[0][k], DENSE[1][k]);
    closeMap(gap.gradNorm, grid(S, S, () => norm), 'gap gradNorm');
    close(gap.magnitude.gradNorm, norm, 'gap magnitude');
    assert.equal(gap.gradCam, null);
    assert.equal(gap.cam, null);
    assert.deepEqual(gap.magnitude, { gradNorm: gap.magnitude.gradNorm, gradCam: null, cam: null });
    // The output layer itself (softmax included): y is that unit of the feature, its gradient is one-hot.
    const out = await baselinesNoLeak(model, 'dense', x, 2, 2);
    assert.equal(out.targetClass, k);
    closeMap(out.gradNorm, grid(2, 2, () => 1), 'dense gradNorm');
    assert.equal(out.gradCam, null);
  } finally {
    x.dispose();
    model.dispose();
  }
});

test('tiny model: runWithFeature reproduces the output from the clean feature; preSoftmax gives the logits', async () => {
  const model = tinyModel();
  const x = imageTensor();
  try {
    const hand = tinyByHand();
    const before = tf.memory().numTensors;
    for (const layer of ['conv', 'relu', 'gap', 'dense']) {
      const [out, logits, direct] = tf.tidy(() => {
        const f = model.probe(layer)(x);
        return [model.runWithFeature!(layer)(x, f), model.runWithFeature!(layer, { preSoftmax: true })(x, f), model.probe('dense')(x)];
      });
      const o = [...out.dataSync()];
      [...direct.dataSync()].forEach((v, i) => close(o[i], v, `${layer}: output[${i}]`, 1e-5));
      if (layer !== 'dense') [...logits.dataSync()].forEach((v, i) => close(v, hand.logits[i], `${layer}: logit ${i}`, 1e-4));
      tf.dispose([out, logits, direct]);
    }
    assert.equal(tf.memory().numTensors, before, 'runWithFeature leaked tensors');
    // The layer patch is gone afterwards: the model still computes from x.
    const again = tf.tidy(() => model.probe('dense')(x));
    const softmax = hand.logits.map((l) => Math.exp(l)).map((e, _, all) => e / all.reduce((a, b) => a + b, 0));
    [...again.dataSync()].forEach((v, i) => close(v, softmax[i], `after: prob ${i}`, 1e-4));
    again.dispose();
  } finally {
    x.dispose();
    model.dispose();
  }
});

test('errors: a target class outside the output, a model without runWithFeature', async () => {
  const model = tinyModel();
  const x = imageTensor();
  try {
    const before = tf.memory().numTensors;
    await assert.rejects(computeBaselines(model, 'relu', x, S, S, 3), (e: unknown) => e instanceof UserError && /target class 3 is out of range: the model output has 3 units/.test(e.message));
    assert.equal(tf.memory().numTensors, before, 'leak on error');
    const opaque: LoadedModel = { ...model, runWithFeature: undefined };
    await assert.rejects(computeBaselines(opaque, 'relu', x, S, S), (e: unknown) => e instanceof UserError && /do not support/.test(e.message));
  } finally {
    x.dispose();
    model.dispose();
  }
});

// ---------------------------------------------------------------------------------------------------------------
// A residual layers model: c1 -> c2 -> add(c1, c2) -> c3 -> flatten -> dense. Smooth (tanh) for finite differences.

function residualModel(): { loaded: LoadedModel; model: tfl.LayersModel } {
  const input = tfl.input({ shape: [6, 6, 1] });
  const c1 = tfl.layers.conv2d({ filters: 3, kernelSize: 3, padding: 'same', activation: 'tanh', name: 'c1' }).apply(input) as tfl.SymbolicTensor;
  const c2 = tfl.layers.conv2d({ filters: 3, kernelSize: 3, padding: 'same', activation: 'tanh', name: 'c2' }).apply(c1) as tfl.SymbolicTensor;
  const sum = tfl.layers.add({ name: 'add' }).apply([c1, c2]) as tfl.SymbolicTensor;
  const c3 = tfl.layers.conv2d({ filters: 2, kernelSize: 3, strides: 2, padding: 'same', activation: 'tanh', name: 'c3' }).apply(sum) as tfl.SymbolicTensor;
  const flat = tfl.layers.flatten({ name: 'flat' }).apply(c3) as tfl.SymbolicTensor;
  const out = tfl.layers.dense({ units: 3, name: 'out' }).apply(flat) as tfl.SymbolicTensor;
  const model = tfl.model({ inputs: input, outputs: out });
  let s = 7;
  for (const layer of model.layers) {
    const ws = layer.getWeights();
    if (ws.length) layer.setWeights(ws.map((w) => tf.tensor(randomArray(w.size, s++, w.rank > 1 ? 0.6 : 0.1), w.shape)));
  }
  return { loaded: wrapLayersModel(model, 'residual.json', 'tfjs-layers', 'hash'), model };
}

/** Central finite differences of unit k of run(x, f + eps d) along the given directions, against <grad, d>. */
function checkDirectional(run: (x: tf.Tensor4D, f: tf.Tensor) => tf.Tensor, x: tf.Tensor4D, f: tf.Tensor, k: number, grad: Float32Array, seed: number, what: string, eps = 3e-3) {
  const rng = new Rng(seed);
  for (let t = 0; t < 4; t++) {
    const d = Float32Array.from({ length: f.size }, () => rng.normal());
    const [plus, minus] = tf.tidy(() => {
      const dt = tf.tensor(d, f.shape);
      return [tf.reshape(run(x, tf.add(f, tf.mul(dt, eps))), [-1]).dataSync()[k], tf.reshape(run(x, tf.sub(f, tf.mul(dt, eps))), [-1]).dataSync()[k]];
    });
    const fd = (plus - minus) / (2 * eps);
    const an = d.reduce((a, v, i) => a + v * grad[i], 0);
    assert.ok(Math.abs(fd - an) <= 2e-3 * (Math.abs(an) + 1), `${what}: finite difference ${fd} vs gradient ${an}`);
  }
}

test('residual model: the skip still comes from x; gradients w.r.t. the feature match finite differences', async () => {
  const { loaded, model } = residualModel();
  const x = tf.tensor4d(randomArray(36, 3), [1, 6, 6, 1]);
  try {
    for (const layer of ['c1', 'c2', 'add', 'c3']) {
      const run = loaded.runWithFeature!(layer);
      const f = tf.tidy(() => loaded.probe(layer)(x));
      // Clean feature: the model's own output.
      const [a, b] = tf.tidy(() => [run(x, f), model.predict(x) as tf.Tensor]);
      [...b.dataSync()].forEach((v, i) => close(a.dataSync()[i], v, `${layer}: output ${i}`, 1e-5));
      tf.dispose([a, b]);
      const k = 1;
      const g = tf.tidy(() => tf.grad((ff: tf.Tensor) => tf.sum(tf.slice(tf.reshape(run(x, ff), [-1]), [k], [1])))(f));
      checkDirectional(run, x, f, k, g.dataSync() as Float32Array, 100, `layer ${layer}`);
      g.dispose();
      f.dispose();
    }
    // Replacing c2's output by F gives out(flat(c3(c1(x) + F))): the skip is read from x, not from F.
    const got = tf.tidy(() => {
      const F = tf.tensor(randomArray(108, 9, 0.5), [1, 6, 6, 3]);
      const viaHook = loaded.runWithFeature!('c2')(x, F);
      const c1 = model.getLayer('c1').apply(x) as tf.Tensor;
      const manual = model.getLayer('out').apply(model.getLayer('flat').apply(model.getLayer('c3').apply(tf.add(c1, F)))) as tf.Tensor;
      return [viaHook, manual];
    });
    [...got[1].dataSync()].forEach((v, i) => close(got[0].dataSync()[i], v, `skip: output ${i}`, 1e-5));
    tf.dispose(got);
    // A whole-map baseline on the branching model (no CAM: the head is flatten + dense).
    const r = await baselinesNoLeak(loaded, 'c2', x, 6, 6);
    assert.equal(r.cam, null);
    assert.ok(r.gradNorm.flat().every((v) => Number.isFinite(v) && v >= 0));
  } finally {
    x.dispose();
    loaded.dispose();
  }
});

// ---------------------------------------------------------------------------------------------------------------
// Graph models: finite differences of the fixture's independent plain-tf forward from the layer's node onwards.

/** Runs the written network's reference steps after `node` on the feature f. */
function referenceFrom(written: WrittenGraphModel, node: string, f: tf.Tensor, upTo?: string): tf.Tensor {
  return tf.tidy(() => {
    const wt: Record<string, tf.Tensor> = {};
    for (const [name, v] of Object.entries(written.weights)) wt[name] = tf.tensor(v.values, v.shape, v.dtype);
    let cur = f;
    for (const step of written.steps.slice(written.steps.findIndex((s) => s.node === node) + 1)) {
      cur = step.apply(cur, wt);
      if (step.node === upTo) break;
    }
    return cur;
  });
}

/** The full gradient of unit k by central differences, one feature element at a time. */
function finiteDifferenceGradient(y: (f: tf.Tensor) => number, f: tf.Tensor, eps: number): Float32Array {
  const base = f.dataSync();
  const out = new Float32Array(base.length);
  for (let i = 0; i < base.length; i++) {
    const at = (delta: number) =>
      tf.tidy(() => {
        const v = Float32Array.from(base);
        v[i] += delta;
        return y(tf.tensor(v, f.shape));
      });
    out[i] = (at(eps) - at(-eps)) / (2 * eps);
  }
  return out;
}

/** sqrt(sum_c g^2) of an NHWC (or NCHW) [1, h, w, c] gradient, as rows. */
function gradNormOf(g: Float32Array, h: number, w: number, c: number, nchw = false): number[][] {
  return grid(h, w, (i, j) => {
    let s = 0;
    for (let k = 0; k < c; k++) s += g[nchw ? (k * h + i) * w + j : (i * w + j) * c + k] ** 2;
    return Math.sqrt(s);
  });
}

test('graph model: gradNorm matches finite differences of a plain-tf reference; CAM from the MatMul kernel', async () => {
  const written = writeGraphModel(path.join(dir, 'plain'), PLAIN_CNN);
  const model = await tfjsGraphLoader.load(written.file, written.json);
  const x = tf.tensor4d(randomArray(64, 21), [1, 8, 8, 1]);
  try {
    const ref = referenceForward(written, x);
    const logits = [...ref['Identity'].dataSync()];
    const k = logits.indexOf(Math.max(...logits));
    for (const [layer, [h, w, c]] of [
      ['StatefulPartitionedCall/sequential/conv2d_1/Relu', [4, 4, 6]],
      ['StatefulPartitionedCall/sequential/conv2d/Relu', [8, 8, 4]],
    ] as const) {
      const r = await baselinesNoLeak(model, layer, x, h, w);
      assert.equal(r.targetClass, k);
      const f = ref[layer];
      const g = finiteDifferenceGradient((ff) => referenceFrom(written, layer, ff).dataSync()[k], f, 1e-2);
      closeMap(r.gradNorm, gradNormOf(g, h, w, c), `${layer}: gradNorm`, 5e-3, 1e-4);
      if (c === 6) {
        // Mean -> MatMul -> BiasAdd -> output: CAM = sum_c W[c][k] f_ijc.
        const W = written.weights['StatefulPartitionedCall/sequential/dense/MatMul/ReadVariableOp'].values;
        const fv = f.dataSync();
        const cam = grid(h, w, (i, j) => {
          let s = 0;
          for (let ch = 0; ch < c; ch++) s += W[ch * 3 + k] * fv[(i * w + j) * c + ch];
          return s;
        });
        closeMap(r.cam, cam, `${layer}: cam`, 2e-3, 1e-5);
      } else {
        assert.equal(r.cam, null, `${layer}: no CAM before the last conv`);
      }
    }
    tf.dispose(Object.values(ref));
  } finally {
    x.dispose();
    model.dispose();
  }
});

test('graph model with a softmax output: preSoftmax returns the logits node, the default the probabilities', async () => {
  const written = writeGraphModel(path.join(dir, 'fused'), FUSED_CNN);
  const model = await tfjsGraphLoader.load(written.file, written.json);
  const x = tf.tensor4d(randomArray(64, 22), [1, 8, 8, 1]);
  try {
    const ref = referenceForward(written, x);
    const layer = 'StatefulPartitionedCall/sequential/conv2d_1/Relu';
    const [logits, probs] = tf.tidy(() => {
      const f = model.probe(layer)(x);
      return [model.runWithFeature!(layer, { preSoftmax: true })(x, f), model.runWithFeature!(layer)(x, f)];
    });
    const wantLogits = ref['StatefulPartitionedCall/sequential/dense_1/BiasAdd'].dataSync();
    const wantProbs = ref['Identity'].dataSync();
    logits.dataSync().forEach((v, i) => close(v, wantLogits[i], `logit ${i}`, 1e-4, 1e-5));
    probs.dataSync().forEach((v, i) => close(v, wantProbs[i], `prob ${i}`, 1e-4, 1e-6));
    tf.dispose([logits, probs]);
    const r = await baselinesNoLeak(model, layer, x, 4, 4);
    assert.equal(r.cam, null);
    const f = ref[layer];
    const g = finiteDifferenceGradient((ff) => referenceFrom(written, layer, ff, 'StatefulPartitionedCall/sequential/dense_1/BiasAdd').dataSync()[r.targetClass], f, 1e-3);
    closeMap(r.gradNorm, gradNormOf(g, 4, 4, 6), 'gradNorm of the logit', 5e-3, 1e-4);
    tf.dispose(Object.values(ref));
  } finally {
    x.dispose();
    model.dispose();
  }
});

// ---------------------------------------------------------------------------------------------------------------
// ONNX (NCHW features): finite differences with onnxruntime on the graph cut at the layer (the layer's value
// becomes a graph input; the skip path keeps reading the image input).

const ONNX = path.join(__dirname, 'fixtures', 'onnx');

function cutAt(file: string, value: string, dims: number[]): string {
  const m = onnx.ModelProto.decode(readFileSync(file));
  const g = m.graph!;
  g.node = g.node!.filter((n) => !(n.output ?? []).includes(value));
  g.input!.push(onnx.ValueInfoProto.create({ name: value, type: { tensorType: { elemType: onnx.TensorProto.DataType.FLOAT, shape: { dim: dims.map((d) => ({ dimValue: d })) } } } }));
  const out = path.join(dir, `cut-${path.basename(file)}`);
  writeFileSync(out, onnx.ModelProto.encode(m).finish());
  return out;
}

function initializer(file: string, name: string): Float32Array {
  const t = onnx.ModelProto.decode(readFileSync(file)).graph!.initializer!.find((i) => i.name === name)!;
  if (t.rawData && t.rawData.length) return new Float32Array(Uint8Array.from(t.rawData).buffer);
  return Float32Array.from(t.floatData ?? []);
}

test('ONNX residual net: NCHW gradNorm matches onnxruntime finite differences inside a block; CAM and Grad-CAM from the fc weights', async () => {
  const file = path.join(ONNX, 'tiny_resnet.onnx');
  const model = await onnxLoader.load(file, undefined);
  const rng = new Rng(5);
  const x = tf.tensor4d(Float32Array.from({ length: 32 * 32 * 3 }, () => rng.uniform()), [1, 32, 32, 3]);
  try {
    // Inside layer3: conv2's input. The block's shortcut reads layer2's output, computed from the image.
    const layer = '/layer3/Relu_output_0';
    assert.equal(model.featureLayout!(layer), 'nchw');
    const r = await baselinesNoLeak(model, layer, x, 8, 8);
    const f = tf.tidy(() => model.probe(layer)(x));
    assert.deepEqual(f.shape, [1, 48, 8, 8]);
    const session = await ort.InferenceSession.create(cutAt(file, layer, [1, 48, 8, 8]));
    const nchw = tf.tidy(() => tf.transpose(x, [0, 3, 1, 2]));
    const image = new ort.Tensor('float32', nchw.dataSync() as Float32Array, nchw.shape);
    nchw.dispose();
    const base = f.dataSync() as Float32Array;
    const y = async (v: Float32Array) => ((await session.run({ input: image, [layer]: new ort.Tensor('float32', v, [1, 48, 8, 8]) })).logits.data as Float32Array)[r.targetClass];
    const clean = (await session.run({ input: image, [layer]: new ort.Tensor('float32', base, [1, 48, 8, 8]) })).logits.data as Float32Array;
    const ours = tf.tidy(() => model.runWithFeature!(layer)(x, f));
    ours.dataSync().forEach((v, i) => close(v, clean[i], `clean logit ${i}`, 1e-4, 1e-4));
    ours.dispose();
    assert.equal(r.targetClass, [...clean].indexOf(Math.max(...clean)));
    const eps = 1e-2;
    for (const [i, j] of [[1, 2], [5, 6], [7, 0]]) {
      let s = 0;
      for (let c = 0; c < 48; c++) {
        const at = (d: number) => {
          const v = Float32Array.from(base);
          v[(c * 8 + i) * 8 + j] += d;
          return y(v);
        };
        s += (((await at(eps)) - (await at(-eps))) / (2 * eps)) ** 2;
      }
      close(r.gradNorm[i][j], Math.sqrt(s), `gradNorm[${i}][${j}]`, 1e-2, 1e-4);
    }
    f.dispose();
    await session.release();

    // The last ReLU feeds GlobalAveragePool -> Flatten -> Gemm(transB): CAM = sum_c W[k][c] f_cij, Grad-CAM = ReLU(CAM / 64).
    const last = '/layer3/Relu_1_output_0';
    const rl = await baselinesNoLeak(model, last, x, 8, 8);
    const fv = tf.tidy(() => model.probe(last)(x)).dataSync();
    const W = initializer(file, 'fc.weight');
    const k = rl.targetClass;
    const cam = grid(8, 8, (i, j) => {
      let s = 0;
      for (let c = 0; c < 48; c++) s += W[k * 48 + c] * fv[(c * 8 + i) * 8 + j];
      return s;
    });
    closeMap(rl.cam, cam, 'cam', 2e-3, 1e-5);
    closeMap(rl.gradCam, cam.map((row) => row.map((v) => Math.max(0, v / 64))), 'gradCam', 2e-3, 1e-6);
    let norm = 0;
    for (let c = 0; c < 48; c++) norm += (W[k * 48 + c] / 64) ** 2;
    closeMap(rl.gradNorm, grid(8, 8, () => Math.sqrt(norm)), 'gradNorm');
    // The pooled vector: a 1x1 map, no Grad-CAM/CAM.
    const pooled = await baselinesNoLeak(model, '/Flatten_output_0', x, 4, 4);
    closeMap(pooled.gradNorm, grid(4, 4, () => Math.sqrt(norm) * 64), 'pooled gradNorm');
    assert.equal(pooled.gradCam, null);
    assert.equal(pooled.cam, null);
  } finally {
    x.dispose();
    model.dispose();
  }
});

test('ONNX with a softmax output: preSoftmax returns the last Gemm, the default the probabilities; no CAM after flatten', async () => {
  const file = path.join(ONNX, 'tiny_vgg.onnx');
  const model = await onnxLoader.load(file, undefined);
  const rng = new Rng(6);
  const x = tf.tensor4d(Float32Array.from({ length: 32 * 32 * 3 }, () => rng.uniform()), [1, 32, 32, 3]);
  try {
    const layer = '/features/features.8/Relu_output_0';
    const [pre, post, wantPre, wantPost] = tf.tidy(() => {
      const f = model.probe(layer)(x);
      return [
        model.runWithFeature!(layer, { preSoftmax: true })(x, f),
        model.runWithFeature!(layer)(x, f),
        model.probe('/classifier/classifier.3/Gemm_output_0')(x),
        model.probe('logits')(x),
      ];
    });
    wantPre.dataSync().forEach((v, i) => close(pre.dataSync()[i], v, `pre ${i}`, 1e-5, 1e-6));
    wantPost.dataSync().forEach((v, i) => close(post.dataSync()[i], v, `post ${i}`, 1e-5, 1e-7));
    tf.dispose([pre, post, wantPre, wantPost]);
    const r = await baselinesNoLeak(model, layer, x, 32, 32);
    assert.equal(r.cam, null);
    assert.ok(r.gradCam && r.gradNorm.length === 32 && r.gradNorm.flat().every(Number.isFinite));
    // The softmax output itself: y is the probability, the gradient one-hot.
    const out = await baselinesNoLeak(model, 'logits', x, 2, 2);
    closeMap(out.gradNorm, grid(2, 2, () => 1), 'softmax output gradNorm');
  } finally {
    x.dispose();
    model.dispose();
  }
});

test('sequential layers models: a final Activation/Softmax layer is skipped for preSoftmax; CAM through Dropout', async () => {
  for (const last of ['activation', 'softmax'] as const) {
    const seq = tfl.sequential({
      layers: [
        tfl.layers.conv2d({ inputShape: [5, 5, 2], filters: 3, kernelSize: 3, padding: 'same', activation: 'relu', name: 'conv' }),
        tfl.layers.globalAveragePooling2d({ name: 'gap' }),
        tfl.layers.dropout({ rate: 0.5, name: 'drop' }),
        tfl.layers.dense({ units: 4, name: 'dense' }),
        last === 'activation' ? tfl.layers.activation({ activation: 'softmax', name: 'act' }) : tfl.layers.softmax({ name: 'act' }),
      ],
    });
    let s = 40;
    for (const layer of seq.layers) {
      const ws = layer.getWeights();
      if (ws.length) layer.setWeights(ws.map((w) => tf.tensor(randomArray(w.size, s++, 0.7), w.shape)));
    }
    const model = wrapLayersModel(seq, 'seq.json', 'keras-h5', 'hash');
    const x = tf.tensor4d(randomArray(50, 41), [1, 5, 5, 2]);
    try {
      const [pre, post, logits, probs] = tf.tidy(() => {
        const f = model.probe('conv')(x);
        return [
          model.runWithFeature!('conv', { preSoftmax: true })(x, f),
          model.runWithFeature!('conv')(x, f),
          model.probe('dense')(x),
          seq.predict(x) as tf.Tensor,
        ];
      });
      logits.dataSync().forEach((v, i) => close(pre.dataSync()[i], v, `${last}: logit ${i}`, 1e-5, 1e-6));
      probs.dataSync().forEach((v, i) => close(post.dataSync()[i], v, `${last}: prob ${i}`, 1e-5, 1e-7));
      tf.dispose([pre, post, logits, probs]);
      const W = model.camWeights!('conv');
      assert.ok(W, `${last}: CAM head detected`);
      assert.deepEqual(W.shape, [3, 4]);
      W.dispose();
      assert.equal(model.camWeights!('gap'), null);
      assert.equal(model.camWeights!('dense'), null);
      const r = await baselinesNoLeak(model, 'conv', x, 5, 5);
      assert.ok(r.cam && r.gradCam);
      // With a linear head Grad-CAM is ReLU(CAM) / (h*w).
      r.cam.forEach((row, i) => row.forEach((v, j) => close(r.gradCam![i][j], Math.max(0, v) / 25, `${last}: gradCam vs cam [${i}][${j}]`, 3e-3, 1e-6)));
    } finally {
      x.dispose();
      model.dispose();
    }
  }
});
