/**
 * Channels-last evaluation of ONNX graphs (src/engine/loaders/onnx/channelsLast.ts): every node output and the
 * input gradient of a feature are the same with and without it, on a graph built here that exercises each
 * channels-last path (tf2onnx's input Transpose, Conv, BatchNormalization, pools, Concat on channels, activations,
 * broadcasting with [N,C,1,1], [C,1,1], full NCHW and scalar operands, SE-style GlobalAveragePool → Mul, Flatten
 * after a channels-last value), on the repository's ONNX models (ResNet-14 auto-encoder with ConvTranspose, plain
 * CNN, PyTorch fixtures), and on three torchvision architectures, exported on first use (test/helpers/torchvision.ts).
 */
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { onnx } from 'onnx-proto';
import { selectBackend } from '../src/engine/backend';
import { decodeModel, OnnxGraph } from '../src/engine/loaders/onnx/graph';
import { Rng } from '../src/engine/rng';
import { cachedExport, ensureTorchvisionExports } from './helpers/torchvision';

const ROOT = path.join(__dirname, '..');

before(async () => {
  await selectBackend('wasm');
});

const F = onnx.TensorProto.DataType.FLOAT;
function tensor(name: string, dims: number[], seed: number): onnx.ITensorProto {
  const n = dims.reduce((a, b) => a * b, 1);
  const data = Float32Array.from({ length: n }, (_, i) => Math.sin(i * 12.9898 + seed) * 0.5);
  return onnx.TensorProto.create({ name, dims, dataType: F, rawData: new Uint8Array(data.buffer) });
}
const ints = (name: string, v: number[]) => onnx.AttributeProto.create({ name, ints: v, type: onnx.AttributeProto.AttributeType.INTS });
const int = (name: string, v: number) => onnx.AttributeProto.create({ name, i: v, type: onnx.AttributeProto.AttributeType.INT });
const node = (opType: string, input: string[], output: string, attribute: onnx.IAttributeProto[] = []) =>
  onnx.NodeProto.create({ opType, input, output: [output], name: output, attribute });

/** An NHWC-input graph (as tf2onnx writes Keras models) through every channels-last path. */
function mixedGraph(): onnx.ModelProto {
  const graph = onnx.GraphProto.create({
    name: 'mixed',
    input: [onnx.ValueInfoProto.create({ name: 'x', type: { tensorType: { elemType: F, shape: { dim: [{ dimParam: 'N' }, { dimValue: 12 }, { dimValue: 12 }, { dimValue: 3 }] } } } })],
    output: [onnx.ValueInfoProto.create({ name: 'logits' }), onnx.ValueInfoProto.create({ name: 'back' })],
    initializer: [
      tensor('w1', [8, 3, 3, 3], 1), tensor('b1', [8], 2),
      tensor('bn.s', [8], 3), tensor('bn.b', [8], 4), tensor('bn.m', [8], 5),
      onnx.TensorProto.create({ name: 'bn.v', dims: [8], dataType: F, rawData: new Uint8Array(Float32Array.from({ length: 8 }, (_, i) => 0.5 + i / 8).buffer) }),
      tensor('w2', [8, 1, 3, 3], 7), tensor('w3', [6, 8, 1, 1], 8),
      tensor('chan', [8, 1, 1], 9), tensor('full', [1, 8, 6, 6], 10), tensor('half', [], 11),
      tensor('wse', [8, 8, 1, 1], 12), tensor('fc', [14 * 3 * 3, 4], 13), tensor('wt', [8, 4, 2, 2], 14),
    ],
    node: [
      node('Transpose', ['x'], 'x_nchw', [ints('perm', [0, 3, 1, 2])]),
      node('Conv', ['x_nchw', 'w1', 'b1'], 'c1', [ints('kernel_shape', [3, 3]), ints('pads', [1, 1, 1, 1])]),
      node('BatchNormalization', ['c1', 'bn.s', 'bn.b', 'bn.m', 'bn.v'], 'bn'),
      node('HardSwish', ['bn'], 'hs'),
      node('MaxPool', ['hs'], 'mp', [ints('kernel_shape', [2, 2]), ints('strides', [2, 2])]),
      node('Conv', ['mp', 'w2'], 'dw', [ints('kernel_shape', [3, 3]), ints('pads', [1, 1, 1, 1]), int('group', 8)]),
      node('Mul', ['dw', 'chan'], 'scaled'),
      node('Add', ['scaled', 'full'], 'plus_full'),
      node('Mul', ['half', 'plus_full'], 'halved'),
      node('GlobalAveragePool', ['halved'], 'gap'),
      node('Conv', ['gap', 'wse'], 'se'),
      node('Sigmoid', ['se'], 'gate'),
      node('Mul', ['halved', 'gate'], 'excited'),
      node('Add', ['excited', 'mp'], 'res'),
      node('Relu', ['res'], 'r'),
      node('Conv', ['r', 'w3'], 'c3', [ints('kernel_shape', [1, 1])]),
      node('Concat', ['c3', 'r'], 'cat', [int('axis', 1)]),
      node('AveragePool', ['cat'], 'ap', [ints('kernel_shape', [3, 3]), ints('strides', [2, 2]), ints('pads', [1, 1, 1, 1]), int('count_include_pad', 0)]),
      node('Flatten', ['ap'], 'flat'),
      node('MatMul', ['flat', 'fc'], 'logits'),
      node('ConvTranspose', ['r', 'wt'], 'up', [ints('kernel_shape', [2, 2]), ints('strides', [2, 2])]),
      node('Transpose', ['up'], 'back', [ints('perm', [0, 2, 3, 1])]),
    ],
  });
  return onnx.ModelProto.create({ irVersion: 8, opsetImport: [{ domain: '', version: 13 }], graph });
}

/** Every node output's value and d(sum of squares of `probe`)/d(input), with channels-last on or off. */
function evaluate(graph: OnnxGraph, channelsLast: boolean, x: tf.Tensor, probe: string) {
  graph.channelsLast = channelsLast;
  const inputName = graph.inputs[0].name;
  const names = graph.nodes.flatMap((n) => n.outputs).filter((o) => o && !graph.isConstant(o));
  const values = tf.tidy(() => graph.run({ [inputName]: x }, names).map((t) => t.dataSync().slice()));
  const grad = tf.tidy(() => tf.grad((xi: tf.Tensor) => tf.sum(tf.square(graph.run({ [inputName]: xi }, [probe])[0])))(x).dataSync().slice());
  return { names, values, grad };
}

function maxAbs(a: ArrayLike<number>): number {
  let m = 0;
  for (let k = 0; k < a.length; k++) m = Math.max(m, Math.abs(a[k]));
  return m;
}

function assertSame(graph: OnnxGraph, x: tf.Tensor, probe: string, label: string, nonZero = true) {
  const before = tf.memory().numTensors;
  const off = evaluate(graph, false, x, probe);
  const on = evaluate(graph, true, x, probe);
  assert.equal(tf.memory().numTensors, before, `${label}: no tensor leaks`);
  let worst = 0;
  off.names.forEach((name, i) => {
    const a = off.values[i];
    const b = on.values[i];
    assert.equal(b.length, a.length, `${label}: ${name} has the same size`);
    const scale = Math.max(1e-6, maxAbs(a));
    for (let k = 0; k < a.length; k++) worst = Math.max(worst, Math.abs(a[k] - b[k]) / scale);
    assert.ok(worst <= 1e-6, `${label}: ${name} differs by ${worst} (relative to its largest value)`);
  });
  const gScale = Math.max(1e-30, maxAbs(off.grad));
  const gWorst = maxAbs(off.grad.map((g, k) => g - on.grad[k])) / gScale;
  if (nonZero) assert.ok(gScale > 1e-9, `${label}: the gradient is not zero`);
  assert.ok(gWorst <= 1e-5, `${label}: input gradient differs by ${gWorst}`);
}

function randomInput(shape: number[], seed: number): tf.Tensor {
  const rng = new Rng(seed);
  return tf.tensor(Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => rng.uniform() * 2 - 1), shape);
}

test('channels-last: a graph through every channels-last path gives the same values and input gradients', async () => {
  const graph = new OnnxGraph(decodeModel(onnx.ModelProto.encode(mixedGraph()).finish()));
  graph.loadConstants();
  const x = randomInput([2, 12, 12, 3], 3);
  for (const probe of ['logits', 'back', 'cat', 'gate']) assertSame(graph, x, probe, `mixed graph, probe ${probe}`);
  // The values really are computed channels-last: fewer Transpose kernels run.
  const transposes = async (on: boolean) => {
    graph.channelsLast = on;
    const p = await tf.profile(() => {
      const outs = graph.run({ x }, ['logits', 'back']);
      return tf.tidy(() => tf.concat([tf.reshape(outs[0], [-1]), tf.reshape(outs[1], [-1])]));
    });
    // Activation transposes (batch 2 first); the weights' own transposes are the same either way.
    return p.kernels.filter((k) => k.name === 'Transpose' && k.inputShapes[0]?.length === 4 && k.inputShapes[0][0] === 2).length;
  };
  const off = await transposes(false);
  const on = await transposes(true);
  assert.ok(on <= 1 && off >= 10, `Transpose kernels with channels-last ${on}, without ${off}`);
  graph.dispose();
  x.dispose();
});

/** [file, input shape]: a file in the repository, or a torchvision architecture exported on first use. */
const MODELS: [string, number[]][] = [
  ['test/fixtures/onnx/tiny_resnet.onnx', [1, 3, 32, 32]],
  ['test/fixtures/onnx/tiny_vgg.onnx', [2, 3, 32, 32]],
  ['media/families/task/resnet14-autoencoder.onnx', [2, 1, 28, 28]],
  ['media/families/depth-plain/plain6.onnx', [2, 1, 28, 28]],
  ['torchvision resnet18', [1, 3, 96, 96]],
  ['torchvision mobilenet_v3_small', [1, 3, 96, 96]],
  ['torchvision shufflenet_v2_x1_0', [1, 3, 224, 224]],
];

for (const [rel, shape] of MODELS) {
  const arch = rel.startsWith('torchvision ') ? rel.slice('torchvision '.length) : null;
  test(`channels-last: ${rel} gives the same node outputs and input gradients`, (t) => {
    let file = path.join(ROOT, rel);
    if (arch) {
      const { manifest, skipReason } = ensureTorchvisionExports([arch]);
      const exported = cachedExport(arch, manifest);
      if (skipReason || !exported) return t.skip(skipReason || `${arch}: ${manifest?.[arch]?.error ?? 'not in the manifest'}`);
      file = exported;
    }
    const graph = new OnnxGraph(decodeModel(readFileSync(file)));
    graph.loadConstants();
    graph.foldConstants();
    const x = randomInput(shape, 7);
    // The probe: the last 4-D value (a deep feature map), then the graph's output.
    const fourD = graph.nodes.flatMap((n) => n.outputs).filter((o) => o && !graph.isConstant(o));
    const shapes = graph.shapes({ [graph.inputs[0].name]: x }, fourD);
    const deep = fourD.filter((_, i) => shapes[i].shape.length === 4).at(-1)!;
    assertSame(graph, x, deep, `${rel} at ${deep}`);
    // (A random-weight classifier's output can be flat: its gradient is only compared.)
    assertSame(graph, x, graph.outputs[0], `${rel} at its output`, false);
    graph.dispose();
    x.dispose();
  });
}
