/**
 * ONNX models exported by PyTorch (test/fixtures/onnx/export_models.py): every probe-able node output against
 * onnxruntime-node on the same file and inputs, input gradients on wasm, an end-to-end analysis through
 * analyze(), and the one-line errors for files we cannot load.
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import * as ort from 'onnxruntime-node';
import { onnx } from 'onnx-proto';
import { selectBackend } from '../src/engine/backend';
import { analyze } from '../src/engine/analyze';
import { UserError } from '../src/engine/errors';
import { LOADERS } from '../src/engine/loaders';
import { onnxLoader } from '../src/engine/loaders/onnx';
import type { LoadedModel } from '../src/engine/loaders/types';
import { Rng } from '../src/engine/rng';
import { DEFAULT_SETTINGS } from '../src/engine/settings';
import { tempDir, writeGrayPng } from './helpers/fixtures';

const FIXTURES = path.join(__dirname, 'fixtures', 'onnx');
const MODELS = [
  { file: 'tiny_resnet.onnx', batch: 1, kinds: ['Conv', 'Relu', 'Add', 'GlobalAveragePool', 'Flatten', 'Gemm'] },
  { file: 'tiny_vgg.onnx', batch: 2, kinds: ['Conv', 'BatchNormalization', 'Relu', 'MaxPool', 'LeakyRelu', 'Pad', 'AveragePool', 'Reshape', 'Gemm', 'Softmax'] },
];
const dir = tempDir('infodiscard-onnx-');

before(async () => {
  await selectBackend('wasm');
});
after(() => rmSync(dir, { recursive: true, force: true }));

function randomBatch(n: number, seed: number): tf.Tensor4D {
  const rng = new Rng(seed);
  return tf.tensor4d(Float32Array.from({ length: n * 32 * 32 * 3 }, () => rng.uniform() * 2 - 1), [n, 32, 32, 3]);
}

/** The same model with every listed node output also declared as a graph output, so onnxruntime returns it. */
function withAllOutputs(file: string, names: string[]): string {
  const model = onnx.ModelProto.decode(readFileSync(file));
  const have = new Set(model.graph!.output!.map((o) => o.name));
  for (const name of names) {
    if (!have.has(name)) model.graph!.output!.push(onnx.ValueInfoProto.create({ name, type: { tensorType: { elemType: onnx.TensorProto.DataType.FLOAT } } }));
  }
  const out = path.join(dir, `all-outputs-${path.basename(file)}`);
  writeFileSync(out, onnx.ModelProto.encode(model).finish());
  return out;
}

for (const spec of MODELS) {
  test(`ONNX ${spec.file}: every node output matches onnxruntime; input gradients on wasm are finite and non-zero`, async () => {
    const file = path.join(FIXTURES, spec.file);
    const model = await onnxLoader.load(file, undefined);
    try {
      assert.equal(model.format, 'onnx');
      assert.deepEqual(model.input, { height: 32, width: 32, channels: 3, flat: false, shape: [3, 32, 32] });
      assert.deepEqual([...new Set(model.layers.map((l) => l.kind))].sort(), [...spec.kinds].sort());
      const x = randomBatch(spec.batch, 11);
      const session = await ort.InferenceSession.create(withAllOutputs(file, model.layers.map((l) => l.name)));
      const nchw = tf.transpose(x, [0, 3, 1, 2]);
      const expected = await session.run({ [session.inputNames[0]]: new ort.Tensor('float32', nchw.dataSync() as Float32Array, nchw.shape) });
      nchw.dispose();
      for (const layer of model.layers) {
        const before = tf.memory().numTensors;
        const y = tf.tidy(() => model.probe(layer.name)(x));
        const exp = expected[layer.name];
        assert.ok(exp, `onnxruntime did not return ${layer.name}`);
        assert.deepEqual(y.shape, exp.dims.map(Number), `${layer.name}: shape`);
        assert.deepEqual(y.shape.slice(1), layer.outputShape.map((d, i) => d ?? y.shape[i + 1]), `${layer.name}: listed shape`);
        const got = y.dataSync();
        const want = exp.data as Float32Array;
        let worst = 0;
        for (let i = 0; i < want.length; i++) worst = Math.max(worst, Math.abs(got[i] - want[i]) / (1 + Math.abs(want[i])));
        assert.ok(worst <= 1e-4, `${layer.name} (${layer.kind}): differs from onnxruntime by ${worst}`);
        y.dispose();
        assert.equal(tf.memory().numTensors, before, `${layer.name}: probe leaked tensors`);
      }
      const last = model.layers[model.layers.length - 1].name;
      for (const name of [model.layers[0].name, model.layers[Math.floor(model.layers.length / 2)].name, last]) {
        const g = tf.tidy(() =>
          tf.grad((xx: tf.Tensor) => {
            const y = model.probe(name)(xx as tf.Tensor4D);
            return tf.sum(tf.mul(y, tf.reshape(tf.linspace(-1, 1.5, y.size), y.shape)));
          })(x),
        );
        const v = g.dataSync();
        g.dispose();
        assert.ok(v.every(Number.isFinite), `${name}: input gradient is not finite`);
        assert.ok(v.some((e) => e !== 0), `${name}: input gradient is all zero`);
      }
      x.dispose();
      await session.release();
    } finally {
      model.dispose();
    }
  });
}

test('ONNX end to end: analyze() with per-channel normalization gives finite SID for two node outputs', async () => {
  assert.ok(LOADERS.includes(onnxLoader), 'the ONNX loader is registered');
  const file = path.join(FIXTURES, 'tiny_vgg.onnx');
  const image = writeGrayPng(path.join(dir, 'img.png'), 32, 32, (x, y) => ((x * 7 + y * 3) % 32) / 31);
  const layers = ['/features/features.2/Relu_output_0', '/features/features.11/LeakyRelu_output_0'];
  const report = await analyze({
    modelPath: file,
    images: [image],
    layers,
    settings: { ...DEFAULT_SETTINGS, backend: 'wasm', maxSteps: 30, samples: 4, normalize: { mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225] } },
  });
  assert.equal(report.status, 'complete');
  assert.equal(report.model.format, 'onnx');
  assert.deepEqual(report.layers.map((l) => l.name), layers);
  for (const l of report.layers) {
    assert.ok(Number.isFinite(l.sid.mean) && Number.isFinite(l.sid.total), `${l.name}: SID ${l.sid.mean}`);
  }
});

async function rejects(file: string, pattern: RegExp): Promise<void> {
  await assert.rejects(onnxLoader.load(file, undefined) as Promise<LoadedModel>, (e: unknown) => {
    assert.ok(e instanceof UserError, `expected a UserError, got ${(e as Error)?.name}: ${(e as Error)?.message}`);
    assert.ok(!/[\r\n]/.test(e.message), `message is not one line: ${JSON.stringify(e.message)}`);
    assert.ok(e.message.includes(file), `message does not name the file: ${e.message}`);
    assert.match(e.message, pattern);
    return true;
  });
}

test('ONNX: a file that is not ONNX, or is truncated, is a one-line UserError', async () => {
  const text = path.join(dir, 'notes.onnx');
  writeFileSync(text, 'this is not a model\n');
  await rejects(text, /not an ONNX model/);
  const cut = path.join(dir, 'cut.onnx');
  writeFileSync(cut, readFileSync(path.join(FIXTURES, 'tiny_resnet.onnx')).subarray(0, 5000));
  await rejects(cut, /not an ONNX model or truncated/);
});

test('ONNX: unsupported ops are all named, each with a node, in one error line at load', async () => {
  const model = onnx.ModelProto.decode(readFileSync(path.join(FIXTURES, 'tiny_resnet.onnx')));
  const nodes = model.graph!.node!;
  nodes[1].opType = 'Foo';
  nodes[3].opType = 'Bar';
  nodes[5].opType = 'Foo';
  const file = path.join(dir, 'foo.onnx');
  writeFileSync(file, onnx.ModelProto.encode(model).finish());
  // Each missing op is named with its first node and the count of the others, and called unsupported (no advice
  // to re-export, which would not help).
  const n = (i: number) => JSON.stringify(nodes[i].name);
  await rejects(file, new RegExp(`uses ONNX ops that infodiscard does not support: Foo \\(node ${n(1).replace(/[/.]/g, '\\$&')} and 1 more\\), Bar \\(node ${n(3).replace(/[/.]/g, '\\$&')}\\)$`));
});
