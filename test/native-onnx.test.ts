/**
 * ONNX layers on onnxruntime (src/engine/native/): the gradient graph onnxVjp.ts writes gives the same squared
 * feature change and input gradient as our tfjs interpreter's tf.grad, op by op on a graph built here (every op with
 * a written gradient, NCHW and NHWC inputs) and on torchvision's ResNet-18; a graph with an op that has none is
 * refused with its name (the tfjs path stays); the SID search on onnxruntime takes the tfjs search's steps to the
 * same answer; analyze() records what ran the passes, and turning it off or rescaling weights in memory keeps tfjs.
 */
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { onnx } from 'onnx-proto';
import { selectBackend } from '../src/engine/backend';
import { analyze } from '../src/engine/analyze';
import { DEFAULT_SETTINGS } from '../src/engine/settings';
import { backendSummary } from '../src/engine/report';
import { loadModel, type LoadedModel } from '../src/engine/loaders';
import { learnSid } from '../src/engine/sid';
import { previewSigma } from '../src/engine/preview';
import { NATIVE_PASS, nativeAllowed, nativeThreads, type NativeProbe } from '../src/engine/native/ortProbe';
import { Rng } from '../src/engine/rng';
import { cachedExport, ensureTorchvisionExports } from './helpers/torchvision';

before(async () => {
  await selectBackend('wasm');
});

const F = onnx.TensorProto.DataType.FLOAT;
function tensor(name: string, dims: number[], seed: number, offset = 0): onnx.ITensorProto {
  const n = dims.reduce((a, b) => a * b, 1);
  const data = Float32Array.from({ length: n }, (_, i) => offset + Math.sin(i * 12.9898 + seed) * 0.5);
  return onnx.TensorProto.create({ name, dims, dataType: F, rawData: new Uint8Array(data.buffer) });
}
const ints = (name: string, v: number[]) => onnx.AttributeProto.create({ name, ints: v, type: onnx.AttributeProto.AttributeType.INTS });
const int = (name: string, v: number) => onnx.AttributeProto.create({ name, i: v, type: onnx.AttributeProto.AttributeType.INT });
const flt = (name: string, v: number) => onnx.AttributeProto.create({ name, f: v, type: onnx.AttributeProto.AttributeType.FLOAT });
const node = (opType: string, input: string[], output: string, attribute: onnx.IAttributeProto[] = []) =>
  onnx.NodeProto.create({ opType, input, output: [output], name: output, attribute });
const imageInput = (name: string, dims: number[]) =>
  onnx.ValueInfoProto.create({ name, type: { tensorType: { elemType: F, shape: { dim: [{ dimParam: 'N' }, ...dims.map((d) => ({ dimValue: d }))] } } } });

/** An NCHW graph (as PyTorch exports) through every op whose gradient onnxVjp.ts writes. */
function everyOpGraph(extra: onnx.INodeProto[] = [], output = 'th2'): Uint8Array {
  const graph = onnx.GraphProto.create({
    name: 'every-op',
    input: [imageInput('x', [3, 16, 16])],
    output: [onnx.ValueInfoProto.create({ name: output }), onnx.ValueInfoProto.create({ name: 'th' }), onnx.ValueInfoProto.create({ name: 'rm' })],
    initializer: [
      tensor('w1', [8, 3, 3, 3], 1), tensor('b1', [8], 2),
      tensor('bn.s', [8], 3), tensor('bn.b', [8], 4), tensor('bn.m', [8], 5), tensor('bn.v', [8], 6, 1),
      tensor('w2', [8, 1, 3, 3], 7), tensor('wse', [8, 8, 1, 1], 8), tensor('w3', [6, 8, 3, 3], 9),
      tensor('chan', [1, 8, 1, 1], 10), tensor('lo', [], 11, -0.2), tensor('hi', [], 12, 0.4), tensor('two', [], 13, 2),
      tensor('wd', [4, 8, 2, 2], 14), tensor('wt', [8, 4, 3, 3], 15), tensor('fc', [5, 160], 16), tensor('fcb', [5], 17),
      tensor('mm', [5, 3], 18),
      onnx.TensorProto.create({ name: 'padsC', dims: [8], dataType: onnx.TensorProto.DataType.INT64, int64Data: [0, 0, 1, 2, 0, 0, 2, 1] }),
      onnx.TensorProto.create({ name: 'sl.s', dims: [1], dataType: onnx.TensorProto.DataType.INT64, int64Data: [2] }),
      onnx.TensorProto.create({ name: 'sl.e', dims: [1], dataType: onnx.TensorProto.DataType.INT64, int64Data: [-3] }),
      onnx.TensorProto.create({ name: 'sl.a', dims: [1], dataType: onnx.TensorProto.DataType.INT64, int64Data: [1] }),
    ],
    node: [
      node('Conv', ['x', 'w1', 'b1'], 'c1', [ints('kernel_shape', [3, 3]), ints('pads', [1, 1, 1, 1])]),
      node('BatchNormalization', ['c1', 'bn.s', 'bn.b', 'bn.m', 'bn.v'], 'bn', [flt('epsilon', 1e-3)]),
      node('Relu', ['bn'], 'r1'),
      node('MaxPool', ['r1'], 'mp', [ints('kernel_shape', [3, 3]), ints('strides', [2, 2]), ints('pads', [1, 1, 1, 1])]),
      node('Conv', ['mp', 'w2'], 'dw', [ints('kernel_shape', [3, 3]), ints('pads', [2, 2, 2, 2]), ints('dilations', [2, 2]), int('group', 8)]),
      node('LeakyRelu', ['dw'], 'lr', [flt('alpha', 0.1)]),
      node('GlobalAveragePool', ['lr'], 'gap'),
      node('Conv', ['gap', 'wse'], 'se'),
      node('Sigmoid', ['se'], 'gate'),
      node('Mul', ['lr', 'gate'], 'excited'),
      node('Add', ['excited', 'mp'], 'res'),
      node('Clip', ['res', 'lo', 'hi'], 'clip'),
      node('HardSwish', ['clip'], 'hs'),
      node('HardSigmoid', ['res'], 'hsig', [flt('alpha', 0.3), flt('beta', 0.4)]),
      node('Div', ['hs', 'two'], 'half'),
      node('Add', ['hsig', 'two'], 'denom'),
      node('Div', ['half', 'denom'], 'ratio'),
      node('Sub', ['ratio', 'chan'], 'shifted'),
      node('Mul', ['shifted', 'chan'], 'scaled'),
      node('Conv', ['scaled', 'w3'], 'c3', [ints('kernel_shape', [3, 3]), ints('strides', [2, 2]), ints('pads', [0, 0, 1, 1])]),
      node('Conv', ['scaled', 'wd'], 'c4', [ints('kernel_shape', [2, 2]), ints('strides', [2, 2])]),
      node('Concat', ['c3', 'c4'], 'cat', [int('axis', 1)]),
      node('Identity', ['cat'], 'id'),
      node('Transpose', ['id'], 'tr', [ints('perm', [0, 2, 3, 1])]),
      node('Flatten', ['tr'], 'flat'),
      node('Gemm', ['flat', 'fc', 'fcb'], 'fc1', [int('transB', 1), flt('alpha', 0.5)]),
      node('MatMul', ['fc1', 'mm'], 'mm1'),
      node('Tanh', ['mm1'], 'th2'),
      node('Pad', ['scaled', 'padsC'], 'padded'),
      node('AveragePool', ['padded'], 'ap', [ints('kernel_shape', [3, 3]), ints('strides', [2, 2]), ints('pads', [1, 1, 1, 1])]),
      node('AveragePool', ['padded'], 'ap2', [ints('kernel_shape', [3, 3]), ints('strides', [2, 2]), ints('pads', [1, 1, 1, 1]), int('count_include_pad', 1)]),
      node('Add', ['ap', 'ap2'], 'aps'),
      node('ConvTranspose', ['aps', 'wt'], 'up', [ints('kernel_shape', [3, 3]), ints('strides', [2, 2]), ints('pads', [1, 1, 1, 1]), ints('output_padding', [1, 1])]),
      node('Tanh', ['up'], 'th'),
      node('Slice', ['cat', 'sl.s', 'sl.e', 'sl.a'], 'sl'),
      node('ReduceMean', ['sl'], 'rm', [ints('axes', [2, 3]), int('keepdims', 0)]),
      ...extra,
    ],
  });
  return onnx.ModelProto.encode(onnx.ModelProto.create({ irVersion: 8, opsetImport: [{ domain: '', version: 13 }], graph })).finish();
}

/** An NHWC-input graph (as tf2onnx writes Keras models): the image reaches the convs through a Transpose. */
function nhwcGraph(): Uint8Array {
  const graph = onnx.GraphProto.create({
    name: 'nhwc',
    input: [imageInput('img', [12, 12, 3])],
    output: [onnx.ValueInfoProto.create({ name: 'c2' })],
    initializer: [tensor('w', [5, 3, 3, 3], 21), tensor('w2', [4, 5, 1, 1], 22)],
    node: [
      node('Transpose', ['img'], 't', [ints('perm', [0, 3, 1, 2])]),
      node('Conv', ['t', 'w'], 'c', [ints('kernel_shape', [3, 3]), ints('strides', [2, 2]), ints('pads', [1, 1, 1, 1])]),
      node('Relu', ['c'], 'r'),
      node('Conv', ['r', 'w2'], 'c2', [ints('kernel_shape', [1, 1])]),
    ],
  });
  return onnx.ModelProto.encode(onnx.ModelProto.create({ irVersion: 8, opsetImport: [{ domain: '', version: 13 }], graph })).finish();
}

const dir = mkdtempSync(path.join(os.tmpdir(), 'infodiscard-native-'));
function writeModel(name: string, bytes: Uint8Array): string {
  const file = path.join(dir, name);
  writeFileSync(file, bytes);
  return file;
}

function random(n: number, seed: number, amp = 1): Float32Array {
  const rng = new Rng(seed);
  return Float32Array.from({ length: n }, () => (rng.uniform() * 2 - 1) * amp);
}

/** tfjs's coef · Σ_n ||h(x_n) − f||² and its input gradient, through the loader's probe. */
function tfjsReference(model: LoadedModel, layer: string, image: Float32Array, noisy: Float32Array, n: number, coef: number) {
  const { height: H, width: W, channels: C } = model.input as { height: number; width: number; channels: number };
  return tf.tidy(() => {
    const probe = model.probe(layer);
    const f = probe(tf.tensor4d(image, [1, H, W, C]));
    const loss = (x: tf.Tensor) => tf.mul(tf.sum(tf.square(tf.sub(probe(x as tf.Tensor4D), f))), coef) as tf.Scalar;
    const { value, grad } = tf.valueAndGrad(loss)(tf.tensor4d(noisy, [n, H, W, C]));
    const perSample = tf.sum(tf.square(tf.reshape(tf.sub(probe(tf.tensor4d(noisy, [n, H, W, C])), f), [n, -1])), 1);
    return { value: value.dataSync()[0], grad: grad.dataSync().slice(), sq: perSample.dataSync().slice() };
  });
}

async function compareLayer(model: LoadedModel, layer: string, n: number, tol: number) {
  const { height: H, width: W, channels: C } = model.input as { height: number; width: number; channels: number };
  const image = random(H * W * C, 1);
  const noisy = Float32Array.from(random(n * H * W * C, 2, 0.3), (d, i) => image[i % image.length] + d);
  const native = await model.nativeProbe!(layer, image, 1);
  assert.ok(typeof native !== 'string', `${layer}: ${native as string}`);
  const probe = native as NativeProbe;
  try {
    const coef = 0.37;
    const ref = tfjsReference(model, layer, image, noisy, n, coef);
    const sq = await probe.squaredChange(noisy, n);
    const both = await probe.squaredChangeAndGrad(noisy, n, coef);
    for (let i = 0; i < n; i++) {
      // A squared change is a difference of nearly equal features: float32 rounding leaves ~1e-5 of it at small changes.
      assert.ok(Math.abs(sq[i] - ref.sq[i]) <= Math.max(tol, 1e-4) * ref.sq[i], `${layer}: sample ${i}'s change ${sq[i]} vs tfjs ${ref.sq[i]}`);
      assert.ok(Math.abs(both.sq[i] - sq[i]) <= 1e-6 * sq[i], `${layer}: the two graphs agree on sample ${i}`);
    }
    let diff = 0;
    let norm = 0;
    for (let i = 0; i < ref.grad.length; i++) {
      diff += (both.grad[i] - ref.grad[i]) ** 2;
      norm += ref.grad[i] ** 2;
    }
    assert.ok(norm > 0, `${layer}: the gradient is not zero`);
    assert.ok(Math.sqrt(diff / norm) <= tol, `${layer}: input gradient differs by ${Math.sqrt(diff / norm)} (relative L2)`);
    assert.ok(probe.runtime.startsWith('onnxruntime 1.'), probe.runtime);
  } finally {
    await probe.dispose();
  }
}

test('native: every op with a written gradient matches tfjs (values and input gradients) at each layer of an NCHW graph', async () => {
  const model = await loadModel(writeModel('every-op.onnx', everyOpGraph()));
  try {
    for (const layer of ['r1', 'mp', 'excited', 'res', 'hs', 'ratio', 'scaled', 'cat', 'flat', 'padded', 'aps', 'th', 'sl', 'rm']) await compareLayer(model, layer, 3, 1e-4);
    // Behind the saturating Clip the head's features barely move (changes ~2e-5 of the bias-dominated values), so
    // float32 rounding is a larger share of the change: a wrong gradient is off by 1e-2 or more (a scaled LeakyRelu
    // slope: 9e-3).
    for (const layer of ['fc1', 'th2']) await compareLayer(model, layer, 3, 1e-3);
  } finally {
    model.dispose();
  }
});

test('native: an NHWC-input graph (tf2onnx) takes and returns channels-last images; a rescaled model is refused', async () => {
  const model = await loadModel(writeModel('nhwc.onnx', nhwcGraph()));
  try {
    await compareLayer(model, 'r', 4, 2e-5);
    await compareLayer(model, 'c2', 4, 2e-5);
    // After an in-memory rescale (the coherency check), the file's weights are not the model's: refused.
    model.rescaleConvPair!('c', 2);
    assert.match((await model.nativeProbe!('c2', random(12 * 12 * 3, 4), 1)) as string, /changed in memory/);
  } finally {
    model.dispose();
  }
});

test('native: an op without a written gradient on the path is named, and the tfjs path stays', async () => {
  const bytes = everyOpGraph([node('Softmax', ['cat'], 'sm', [int('axis', 1)]), node('Flatten', ['sm'], 'flat2')], 'flat2');
  const model = await loadModel(writeModel('avgpool.onnx', bytes));
  try {
    const img = random(16 * 16 * 3, 3);
    const refused = await model.nativeProbe!('flat2', img, 1);
    assert.equal(typeof refused, 'string');
    assert.match(refused as string, /Softmax \(node "sm"\)/);
    // A layer before it still runs natively.
    const ok = await model.nativeProbe!('cat', img, 1);
    assert.notEqual(typeof ok, 'string');
    await (ok as NativeProbe).dispose();
    // A refused rescale changes nothing: the native path stays.
    assert.throws(() => model.rescaleConvPair!('c1', 2), /not positively homogeneous/);
    const still = await model.nativeProbe!('cat', img, 1);
    assert.notEqual(typeof still, 'string');
    await (still as NativeProbe).dispose();
  } finally {
    model.dispose();
  }
});

/** The every-op model and one 16x16 image in [0,1] for a search at `layer`. */
async function searchProblem(file: string, layer: string, seed: number) {
  const model = await loadModel(writeModel(file, everyOpGraph()));
  const pixels = Float32Array.from(random(16 * 16 * 3, seed), (v) => 0.5 + 0.5 * v);
  const mapping = { description: 'range 0,1', scale: [1, 1, 1], offset: [0, 0, 0] };
  return { model, base: { probe: model.probe(layer), pixels, height: 16, width: 16, channels: 3, mapping } };
}

test('native: the SID search on onnxruntime takes the tfjs search to the same answer', async () => {
  const { model, base } = await searchProblem('every-op-sid.onnx', 'res', 5);
  try {
    const opts = { alpha: 1.5, tau: 0.01, samples: 8, maxSteps: 60, sigmaMax: 1, sigmaGrid: null, learningRate: 0.05, seed: 7, sampleBatch: 4 };
    const tfjs = await learnSid(base, opts);
    const native = await model.nativeProbe!('res', base.pixels, 1);
    assert.notEqual(typeof native, 'string');
    const fast = await learnSid({ ...base, native: native as NativeProbe }, opts);
    await (native as NativeProbe).dispose();
    assert.ok(Math.abs(fast.deltaF2 / tfjs.deltaF2 - 1) < 1e-4, `delta_f^2 ${fast.deltaF2} vs ${tfjs.deltaF2}`);
    assert.ok(Math.abs(fast.sidMean - tfjs.sidMean) < 5e-3, `SID ${fast.sidMean} vs ${tfjs.sidMean}`);
    assert.ok(Math.abs(fast.steps - tfjs.steps) <= 2, `steps ${fast.steps} vs ${tfjs.steps}`);
    assert.ok(Math.abs(fast.constraintRatio / 1.5 - 1) < 0.05, `ratio ${fast.constraintRatio}`);
    let r = 0;
    const ma = fast.map.reduce((a, b) => a + b, 0) / fast.map.length;
    const mb = tfjs.map.reduce((a, b) => a + b, 0) / tfjs.map.length;
    let va = 0;
    let vb = 0;
    for (let i = 0; i < fast.map.length; i++) {
      r += (fast.map[i] - ma) * (tfjs.map[i] - mb);
      va += (fast.map[i] - ma) ** 2;
      vb += (tfjs.map[i] - mb) ** 2;
    }
    assert.ok(r / Math.sqrt(va * vb) > 0.99, `map Pearson ${r / Math.sqrt(va * vb)}`);
  } finally {
    model.dispose();
  }
});

test('native: the first-order preview takes the same draws on onnxruntime (vector-Jacobian products) to the same map', async () => {
  const { model, base } = await searchProblem('every-op-preview.onnx', 'cat', 6);
  try {
    // 20 products in batches of 12: the native path runs each batch NATIVE_PASS at a time.
    const opts = { alpha: 1.5, tau: 0.01, samples: 8, sigmaMax: 1, sigmaGrid: null, seed: 4, vjpSamples: 20, vjpBatch: 12 };
    const tfjs = await previewSigma(base, opts);
    const native = await model.nativeProbe!('cat', base.pixels, 1, 'vjp');
    assert.notEqual(typeof native, 'string', native as string);
    const fast = await previewSigma({ ...base, native: native as NativeProbe }, opts);
    await (native as NativeProbe).dispose();
    assert.ok(Math.abs(fast.deltaF2 / tfjs.deltaF2 - 1) < 1e-4, `delta_f^2 ${fast.deltaF2} vs ${tfjs.deltaF2}`);
    let worst = 0;
    for (let i = 0; i < tfjs.sigma.length; i++) worst = Math.max(worst, Math.abs(Math.log(fast.sigma[i] / tfjs.sigma[i])));
    assert.ok(worst < 1e-3, `log sigma differs by up to ${worst}`);
    assert.ok(Math.abs(fast.constraintRatio / tfjs.constraintRatio - 1) < 1e-3, `ratio ${fast.constraintRatio} vs ${tfjs.constraintRatio}`);
  } finally {
    model.dispose();
  }
});

test('native: analyze() records onnxruntime per layer, and INFODISCARD_NATIVE=off keeps tfjs', async () => {
  const file = writeModel('every-op-analyze.onnx', everyOpGraph());
  const { PNG } = await import('pngjs');
  const png = new PNG({ width: 16, height: 16 });
  const rng = new Rng(9);
  for (let i = 0; i < png.data.length; i++) png.data[i] = i % 4 === 3 ? 255 : Math.floor(rng.uniform() * 256);
  const image = path.join(dir, 'img.png');
  writeFileSync(image, PNG.sync.write(png));
  const run = () => analyze({ modelPath: file, images: [image], layers: ['res'], settings: { ...DEFAULT_SETTINGS, samples: 8, maxSteps: 40, seed: 3, backend: 'wasm' } });
  const on = await run();
  assert.match(on.layers[0].runtime ?? '', /^onnxruntime 1\.\d+\.\d+ \(cpu, \d+ threads?\)$/);
  assert.equal(backendSummary(on).backend, 'wasm + onnxruntime', 'the panel header says onnxruntime ran');
  process.env.INFODISCARD_NATIVE = 'off';
  try {
    const off = await run();
    assert.equal(off.layers[0].runtime, undefined);
    assert.equal(backendSummary(off).backend, 'wasm');
    assert.ok(Math.abs(off.layers[0].sid.mean - on.layers[0].sid.mean) < 0.01, `SID ${off.layers[0].sid.mean} vs ${on.layers[0].sid.mean}`);
  } finally {
    delete process.env.INFODISCARD_NATIVE;
  }
});

test('native: allowed on the CPU backends only; threads from INFODISCARD_NATIVE_THREADS, else every core', () => {
  assert.equal(nativeAllowed('wasm', {}), true);
  assert.equal(nativeAllowed('cpu', {}), true);
  assert.equal(nativeAllowed('webgpu', {}), false);
  assert.equal(nativeAllowed('tensorflow', {}), false);
  assert.equal(nativeAllowed('wasm', { INFODISCARD_NATIVE: 'off' }), false);
  assert.equal(nativeThreads({ INFODISCARD_NATIVE_THREADS: '3' }), 3);
  assert.equal(nativeThreads({ INFODISCARD_NATIVE_THREADS: '0' }), os.availableParallelism());
  assert.equal(nativeThreads({}), os.availableParallelism());
  assert.ok(NATIVE_PASS >= 1);
});

test('native: torchvision ResNet-18, MobileNetV3-S and ShuffleNetV2 (one image at a time, split points folded from its shape arithmetic) match tfjs', async (t) => {
  const names = ['resnet18', 'mobilenet_v3_small', 'shufflenet_v2_x1_0'];
  const { manifest, skipReason } = ensureTorchvisionExports(names);
  const layers: Record<string, string[]> = {
    resnet18: ['/layer2/layer2.1/relu_1/Relu_output_0'],
    mobilenet_v3_small: ['/features/features.5/block/block.2/Mul_output_0'],
    shufflenet_v2_x1_0: ['/stage3/stage3.1/branch2/branch2.0/Conv_output_0', '/stage4/stage4.3/Reshape_1_output_0'],
  };
  for (const name of names) {
    const file = manifest ? cachedExport(name, manifest) : null;
    if (!file) {
      t.diagnostic(`${name}: ${skipReason || 'export failed'}`);
      continue;
    }
    const model = await loadModel(file);
    try {
      // Deep real graphs: float32 rounding of the cotangent h(x') - f reaches ~1e-3 against wasm (docs/performance.md,
      // bench/native-pass.ts); a lost branch or a wrong split point is off by 1e-1 or more.
      for (const layer of layers[name]) await compareLayer(model, layer, 2, 5e-3);
    } finally {
      model.dispose();
    }
  }
  if (!manifest) t.skip(skipReason);
});
