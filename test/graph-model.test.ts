/**
 * TensorFlow.js graph models (format "graph-model", as tensorflowjs_converter writes them), generated in TypeScript:
 * layer listing, probe values against an independent tf-ops forward pass, input gradients on wasm (checked
 * against cpu), an end-to-end analysis, and the one-line errors for graphs we cannot analyze.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { selectBackend } from '../src/engine/backend';
import { analyze } from '../src/engine/analyze';
import { UserError } from '../src/engine/errors';
import { loadModel } from '../src/engine/loaders';
import { Rng } from '../src/engine/rng';
import { DEFAULT_SETTINGS } from '../src/engine/settings';
import type { Report } from '../src/engine/report';
import { DEPTHWISE_CNN, FUSED_CNN, PLAIN_CNN, referenceForward, writeGraphModel, type GraphSpec } from './fixtures/graphModel';
import { tempDir, writeGrayPng } from './helpers/fixtures';

const dir = tempDir('infodiscard-graph-');
const FIXTURES: Record<string, GraphSpec> = { plain: PLAIN_CNN, fused: FUSED_CNN, depthwise: DEPTHWISE_CNN };
/** Input gradients of every listed node on wasm, kept to compare with the cpu reference later. */
const wasmGrads: Record<string, Record<string, Float32Array>> = {};

before(async () => {
  await selectBackend('wasm');
});
after(() => rmSync(dir, { recursive: true, force: true }));

function batch(spec: GraphSpec, n: number, seed: number): tf.Tensor4D {
  const [h, w, c] = spec.input;
  const rng = new Rng(seed);
  const size = n * (h ?? 8) * (w ?? 8) * c;
  return tf.tensor4d(Float32Array.from({ length: size }, () => rng.uniform()), [n, h ?? 8, w ?? 8, c]);
}

/** Same fixed output weighting for graph and reference, so their input gradients must agree. */
function weightedSum(y: tf.Tensor): tf.Scalar {
  const r = tf.reshape(tf.linspace(-1, 1.5, y.size), y.shape);
  return tf.sum(tf.mul(y, r));
}

function maxAbsDiff(a: tf.Tensor, b: tf.Tensor): number {
  return tf.tidy(() => tf.max(tf.abs(tf.sub(a, b))).dataSync()[0]);
}

async function rejectsUserError(file: string, check: (msg: string) => void): Promise<void> {
  await assert.rejects(loadModel(file), (e: unknown) => {
    assert.ok(e instanceof UserError, `expected a UserError, got ${(e as Error)?.name}: ${(e as Error)?.message}`);
    assert.ok(!/[\r\n]/.test(e.message), `message is not one line: ${JSON.stringify(e.message)}`);
    assert.ok(e.message.includes(file), `message does not name the file: ${e.message}`);
    check(e.message);
    return true;
  });
}

for (const [name, spec] of Object.entries(FIXTURES)) {
  test(`graph model (${name}): layers, probe values and input gradients on wasm`, async () => {
    const written = writeGraphModel(path.join(dir, name), spec);
    const model = await loadModel(written.file);
    try {
      assert.equal(model.format, 'tfjs-graph');
      assert.deepEqual(model.input, { height: spec.input[0], width: spec.input[1], channels: spec.input[2], flat: false, shape: spec.input });
      assert.deepEqual(
        model.layers.map((l) => ({ name: l.name, op: l.kind, shape: l.outputShape })),
        written.nodes.map((n) => ({ name: n.name, op: n.op, shape: n.shape })),
      );

      const x = batch(spec, 2, 7);
      const ref = referenceForward(written, x);
      wasmGrads[name] = {};
      for (const layer of model.layers) {
        const tensorsBefore = tf.memory().numTensors;
        const y = model.probe(layer.name)(x);
        assert.deepEqual(y.shape, [2, ...layer.outputShape], `${layer.name}: probe shape`);
        const diff = maxAbsDiff(y, ref[layer.name]);
        assert.ok(diff < 1e-4, `${layer.name}: probe differs from the reference forward pass by ${diff}`);
        y.dispose();

        const g = tf.grad((xx: tf.Tensor) => weightedSum(model.probe(layer.name)(xx as tf.Tensor4D)))(x);
        const gRef = tf.grad((xx: tf.Tensor) => weightedSum(referenceForward(written, xx as tf.Tensor4D)[layer.name]))(x);
        const values = g.dataSync() as Float32Array;
        assert.ok(values.every(Number.isFinite), `${layer.name}: non-finite input gradient`);
        assert.ok(values.some((v) => v !== 0), `${layer.name}: input gradient is all zero`);
        const scale = tf.tidy(() => tf.max(tf.abs(gRef)).dataSync()[0]);
        const gDiff = maxAbsDiff(g, gRef);
        assert.ok(gDiff <= 1e-4 * Math.max(1, scale), `${layer.name}: input gradient differs from the reference by ${gDiff} (scale ${scale})`);
        wasmGrads[name][layer.name] = values.slice();
        g.dispose();
        gRef.dispose();
        // Reference outputs of the grad call are tidied by tf.grad; nothing else may be left behind.
        assert.equal(tf.memory().numTensors, tensorsBefore, `${layer.name}: tensors leaked by probe/grad`);
      }
      Object.values(ref).forEach((t) => t.dispose());
      x.dispose();
    } finally {
      model.dispose();
    }
  });
}

test('graph model with a dynamic input size: spatial dims unknown, channel and dense dims known', async () => {
  const spec: GraphSpec = {
    input: [null, null, 3],
    seed: 5,
    layers: [{ kind: 'conv', filters: 4, kernel: 3, stride: 2, activation: 'Relu', fused: true }, { kind: 'mean' }, { kind: 'dense', units: 2 }],
  };
  const written = writeGraphModel(path.join(dir, 'dynamic'), spec);
  const model = await loadModel(written.file);
  try {
    assert.equal(model.input.height, null);
    assert.equal(model.input.width, null);
    assert.deepEqual(
      model.layers.map((l) => l.outputShape),
      [[null, null, 4], [4], [2], [2], [2]],
    );
    const x = batch(spec, 1, 3);
    const ref = referenceForward(written, x);
    for (const layer of model.layers) {
      const y = model.probe(layer.name)(x);
      assert.ok(maxAbsDiff(y, ref[layer.name]) < 1e-4, layer.name);
      y.dispose();
    }
    Object.values(ref).forEach((t) => t.dispose());
    x.dispose();
  } finally {
    model.dispose();
  }
});

test('graph model: nodes with integer outputs or that do not depend on the image are not listed', async () => {
  const spec: GraphSpec = {
    input: [8, 8, 1],
    seed: 9,
    layers: [
      { kind: 'conv', filters: 2, kernel: 3, activation: 'Relu' },
      { kind: 'op', op: 'Shape', branch: true, attr: { out_type: { type: 'DT_INT32' } } },
      { kind: 'mean' },
    ],
  };
  const written = writeGraphModel(path.join(dir, 'side-nodes'), spec);
  // A node computed from a weight alone (constant w.r.t. the image).
  const json = JSON.parse(readFileSync(written.file, 'utf8'));
  const weight = Object.keys(written.weights)[0];
  json.modelTopology.node.push({ name: 'const_branch/Neg', op: 'Neg', input: [weight], attr: { T: { type: 'DT_FLOAT' } } });
  writeFileSync(written.file, JSON.stringify(json));
  const model = await loadModel(written.file);
  try {
    assert.deepEqual(
      model.layers.map((l) => l.name),
      written.nodes.map((n) => n.name),
    );
  } finally {
    model.dispose();
  }
});

test('graph model: an op TensorFlow.js does not have is a one-line UserError naming the op and the file', async () => {
  const written = writeGraphModel(path.join(dir, 'foobar'), {
    input: [8, 8, 1],
    layers: [{ kind: 'conv', filters: 2, kernel: 3, activation: 'Relu' }, { kind: 'op', op: 'FooBar' }, { kind: 'mean' }],
  });
  await rejectsUserError(written.file, (msg) => assert.match(msg, /unsupported op "FooBar"/));
});

test('graph model: control flow (Enter/Merge) is a one-line UserError', async () => {
  const written = writeGraphModel(path.join(dir, 'control'), {
    input: [8, 8, 1],
    layers: [{ kind: 'conv', filters: 2, kernel: 3 }, { kind: 'op', op: 'Enter', attr: { frame_name: { s: Buffer.from('while').toString('base64') } } }, { kind: 'op', op: 'Merge' }],
  });
  await rejectsUserError(written.file, (msg) => {
    assert.match(msg, /control-flow/);
    assert.match(msg, /Enter/);
    assert.match(msg, /Merge/);
  });
});

test('graph model: a weight file that does not match the manifest is a one-line UserError', async () => {
  const written = writeGraphModel(path.join(dir, 'short'), PLAIN_CNN);
  const shard = path.join(written.dir, 'group1-shard1of1.bin');
  writeFileSync(shard, readFileSync(shard).subarray(0, 40));
  await rejectsUserError(written.file, (msg) => assert.match(msg, /too short/));
});

test('graph model input gradients on wasm match the cpu backend', async () => {
  await selectBackend('cpu');
  try {
    for (const [name, spec] of Object.entries(FIXTURES)) {
      const grads = wasmGrads[name];
      assert.ok(grads, `no wasm gradients recorded for ${name}`);
      const written = writeGraphModel(path.join(dir, `${name}-cpu`), spec);
      const x = batch(spec, 2, 7);
      for (const [node, wasm] of Object.entries(grads)) {
        const g = tf.grad((xx: tf.Tensor) => weightedSum(referenceForward(written, xx as tf.Tensor4D)[node]))(x);
        const cpu = g.dataSync();
        g.dispose();
        const scale = Math.max(1, ...Array.from(cpu, Math.abs));
        const diff = Math.max(...Array.from(cpu, (v, i) => Math.abs(v - wasm[i])));
        assert.ok(diff <= 1e-4 * scale, `${name} ${node}: wasm input gradient differs from cpu by ${diff} (scale ${scale})`);
      }
      x.dispose();
    }
  } finally {
    await selectBackend('wasm');
  }
});

test('analyze() on a graph model: finite SID per layer, report format tfjs-graph', async () => {
  const written = writeGraphModel(path.join(dir, 'analyze'), FUSED_CNN);
  const image = writeGrayPng(path.join(dir, 'img.png'), 8, 8, (x, y) => (x * 3 + y * 5) / 56);
  const layers = [written.nodes[0].name, written.nodes[2].name]; // fused conv + relu, linear fused conv (BiasAdd only)
  const reportPath = path.join(dir, 'analyze-report.json');
  const report = await analyze({
    modelPath: written.file,
    images: [image],
    layers,
    settings: { ...DEFAULT_SETTINGS, backend: 'wasm', seed: 3, maxSteps: 40, samples: 8 },
    reportPath,
  });
  assert.equal(report.status, 'complete');
  assert.equal(report.model.format, 'tfjs-graph');
  assert.deepEqual(report.model.inputShape, [8, 8, 1]);
  assert.deepEqual(report.layers.map((l) => l.name), layers);
  for (const layer of report.layers) {
    assert.ok(Number.isFinite(layer.sid.mean), `${layer.name}: SID mean ${layer.sid.mean}`);
    assert.equal(layer.perImage.length, 1);
    const p = layer.perImage[0];
    assert.ok(Number.isFinite(p.sidMean), `${layer.name}: per-image SID ${p.sidMean}`);
    assert.equal(p.map.length, 8);
    assert.ok(p.map.every((row) => row.length === 8 && row.every(Number.isFinite)), `${layer.name}: non-finite SID map`);
  }
  assert.deepEqual(report.layers.map((l) => l.kind), ['_FusedConv2D', '_FusedConv2D']);
  const onDisk = JSON.parse(readFileSync(reportPath, 'utf8')) as Report;
  assert.equal(onDisk.model.format, 'tfjs-graph');
  assert.equal(onDisk.status, 'complete');
});
