/**
 * Every op added for modern vision exports, one single-node model per case: our interpreter (wasm backend) against
 * onnxruntime-node on random inputs (1e-4 relative to the output's scale), and the input gradient of a random
 * projection of the output against central finite differences at a few coordinates, so each op is differentiable
 * on wasm. Plus: constant and shape folding at load, and the missing-op error naming op and node.
 */
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import * as ort from 'onnxruntime-node';
import { onnx } from 'onnx-proto';
import { selectBackend } from '../src/engine/backend';
import { OnnxGraph, decodeModel } from '../src/engine/loaders/onnx/graph';
import { Rng } from '../src/engine/rng';

const F = onnx.TensorProto.DataType.FLOAT;
const I64 = onnx.TensorProto.DataType.INT64;
const B = onnx.TensorProto.DataType.BOOL;

type Attr = number | string | number[] | { floats: number[] };
interface In {
  dims: number[];
  /** A constant (initializer) instead of a fed random input. */
  ints?: number[];
  floats?: number[];
  bools?: boolean[];
  /** Random values: 'any' in [-2, 2], 'pos' in [0.5, 2.5]. */
  range?: 'any' | 'pos';
}
interface Case {
  name: string;
  op: string;
  opset?: number;
  inputs: (In | null)[];
  attrs?: Record<string, Attr>;
  outputs?: number;
  /** Skip the gradient check (integer or boolean output, or no float input). */
  noGrad?: boolean;
}

const x4 = (range: 'any' | 'pos' = 'any'): In => ({ dims: [2, 3, 5, 4], range });
const i64 = (...v: number[]): In => ({ dims: [v.length], ints: v });

const CASES: Case[] = [
  { name: 'ReduceMean axes attr', op: 'ReduceMean', inputs: [x4()], attrs: { axes: [1, -1], keepdims: 1 } },
  { name: 'ReduceSum axes input', op: 'ReduceSum', inputs: [x4(), i64(2)], attrs: { keepdims: 0 } },
  { name: 'ReduceMax', op: 'ReduceMax', inputs: [x4()], attrs: { axes: [1] } },
  { name: 'ReduceMin all', op: 'ReduceMin', inputs: [x4()], attrs: { keepdims: 0 } },
  { name: 'ReduceL2', op: 'ReduceL2', inputs: [x4()], attrs: { axes: [2, 3] } },
  { name: 'ReduceSumSquare', op: 'ReduceSumSquare', inputs: [x4()], attrs: { axes: [1] } },
  { name: 'ReduceL1', op: 'ReduceL1', inputs: [x4()], attrs: { axes: [3] } },
  { name: 'ReduceLogSumExp', op: 'ReduceLogSumExp', inputs: [x4()], attrs: { axes: [1] } },
  { name: 'ReduceProd', op: 'ReduceProd', inputs: [x4('pos')], attrs: { axes: [1] } },
  { name: 'Pow by constant 2', op: 'Pow', inputs: [x4(), { dims: [], floats: [2] }] },
  { name: 'Pow by tensor', op: 'Pow', inputs: [x4('pos'), { dims: [4], floats: [0.5, 1.5, -1, 3] }] },
  { name: 'Sqrt', op: 'Sqrt', inputs: [x4('pos')] },
  { name: 'Reciprocal', op: 'Reciprocal', inputs: [x4('pos')] },
  { name: 'Erf', op: 'Erf', inputs: [x4()] },
  { name: 'Exp', op: 'Exp', inputs: [x4()] },
  { name: 'Log', op: 'Log', inputs: [x4('pos')] },
  { name: 'Gelu', op: 'Gelu', opset: 20, inputs: [x4()] },
  { name: 'Gelu tanh', op: 'Gelu', opset: 20, inputs: [x4()], attrs: { approximate: 'tanh' } },
  { name: 'LayerNormalization', op: 'LayerNormalization', opset: 17, inputs: [x4(), { dims: [4], floats: [1, 0.5, -2, 1.5] }, { dims: [4], floats: [0.1, 0, -0.3, 1] }], attrs: { epsilon: 1e-5 } },
  { name: 'LayerNormalization axis 1', op: 'LayerNormalization', opset: 17, inputs: [x4(), { dims: [3, 5, 4], range: 'pos' }], attrs: { axis: 1 } },
  { name: 'HardSigmoid', op: 'HardSigmoid', inputs: [x4()], attrs: { alpha: 0.3, beta: 0.4 } },
  { name: 'HardSwish', op: 'HardSwish', opset: 14, inputs: [{ dims: [2, 3, 5, 4], range: 'any' }] },
  { name: 'PRelu per channel', op: 'PRelu', inputs: [x4(), { dims: [3, 1, 1], floats: [0.1, -0.2, 0.5] }] },
  { name: 'Elu', op: 'Elu', inputs: [x4()], attrs: { alpha: 0.7 } },
  { name: 'Selu', op: 'Selu', inputs: [x4()] },
  { name: 'LeakyRelu', op: 'LeakyRelu', inputs: [x4()], attrs: { alpha: 0.2 } },
  { name: 'Softplus', op: 'Softplus', inputs: [x4()] },
  { name: 'Slice steps and INT64_MAX end', op: 'Slice', inputs: [x4(), i64(1, 0), i64(2 ** 62, -1), i64(2, 3), i64(2, -2)] },
  { name: 'Slice class token', op: 'Slice', inputs: [x4(), i64(1), i64(2 ** 62), i64(2)] },
  { name: 'Split sizes input', op: 'Split', opset: 13, inputs: [x4(), i64(2, 3)], attrs: { axis: 2 }, outputs: 2 },
  { name: 'Split equal', op: 'Split', opset: 13, inputs: [x4()], attrs: { axis: 3 }, outputs: 2 },
  { name: 'Expand', op: 'Expand', inputs: [{ dims: [3, 1], range: 'any' }, i64(2, 3, 4)] },
  { name: 'Where', op: 'Where', inputs: [{ dims: [5, 4], bools: Array.from({ length: 20 }, (_, i) => i % 3 === 0) }, x4(), { dims: [1], floats: [-7] }] },
  { name: 'Equal', op: 'Equal', inputs: [{ dims: [2, 3], ints: [1, 2, 3, 4, 5, 6] }, { dims: [3], ints: [1, 5, 3] }], noGrad: true },
  { name: 'Less', op: 'Less', inputs: [x4(), { dims: [1], floats: [0] }], noGrad: true },
  { name: 'Greater', op: 'Greater', inputs: [x4(), { dims: [4], floats: [0, 1, -1, 0.5] }], noGrad: true },
  { name: 'ConstantOfShape', op: 'ConstantOfShape', inputs: [i64(2, 3)], noGrad: true },
  { name: 'Tile', op: 'Tile', inputs: [x4(), i64(1, 2, 1, 3)] },
  { name: 'Resize nearest asymmetric floor (F.interpolate nearest)', op: 'Resize', inputs: [x4(), null, { dims: [4], floats: [1, 1, 2, 2] }], attrs: { mode: 'nearest', coordinate_transformation_mode: 'asymmetric', nearest_mode: 'floor' } },
  { name: 'Resize linear pytorch_half_pixel sizes (bilinear, align_corners=False)', op: 'Resize', inputs: [x4(), null, null, i64(2, 3, 9, 7)], attrs: { mode: 'linear', coordinate_transformation_mode: 'pytorch_half_pixel' } },
  { name: 'Resize linear align_corners', op: 'Resize', inputs: [x4(), null, { dims: [4], floats: [1, 1, 2, 2] }], attrs: { mode: 'linear', coordinate_transformation_mode: 'align_corners' } },
  { name: 'Resize linear half_pixel downsample', op: 'Resize', inputs: [x4(), null, { dims: [4], floats: [1, 1, 0.5, 0.5] }], attrs: { mode: 'linear' } },
  { name: 'Resize cubic', op: 'Resize', inputs: [x4(), null, { dims: [4], floats: [1, 1, 1.5, 2] }], attrs: { mode: 'cubic', coordinate_transformation_mode: 'pytorch_half_pixel', cubic_coeff_a: -0.75 } },
  { name: 'InstanceNormalization', op: 'InstanceNormalization', inputs: [x4(), { dims: [3], floats: [1, 2, 0.5] }, { dims: [3], floats: [0, 1, -1] }] },
  { name: 'GroupNormalization', op: 'GroupNormalization', opset: 21, inputs: [{ dims: [2, 4, 3, 3], range: 'any' }, { dims: [4], floats: [1, 2, 0.5, -1] }, { dims: [4], floats: [0, 1, -1, 2] }], attrs: { num_groups: 2 } },
  { name: 'Einsum attention scores', op: 'Einsum', opset: 12, inputs: [{ dims: [2, 3, 5, 4], range: 'any' }, { dims: [2, 3, 6, 4], range: 'any' }], attrs: { equation: 'bhid,bhjd->bhij' } },
  { name: 'Einsum attention values', op: 'Einsum', opset: 12, inputs: [{ dims: [2, 3, 5, 6], range: 'any' }, { dims: [2, 3, 6, 4], range: 'any' }], attrs: { equation: 'bhij,bhjd->bhid' } },
  { name: 'Einsum ellipsis projection', op: 'Einsum', opset: 12, inputs: [{ dims: [2, 5, 4], range: 'any' }, { dims: [3, 4], floats: Array.from({ length: 12 }, (_, i) => (i % 5) - 2) }], attrs: { equation: '...d,ed->...e' } },
  { name: 'Einsum transpose and sum', op: 'Einsum', opset: 12, inputs: [x4()], attrs: { equation: 'nchw->nwc' } },
  { name: 'Max variadic broadcast', op: 'Max', inputs: [x4(), { dims: [4], floats: [0, 0.5, -0.5, 1] }, { dims: [5, 1], range: 'any' }] },
  { name: 'Min', op: 'Min', inputs: [x4(), { dims: [1], floats: [0.3] }] },
  { name: 'Sum', op: 'Sum', inputs: [x4(), { dims: [4], range: 'any' }] },
  { name: 'Mean', op: 'Mean', inputs: [x4(), { dims: [4], range: 'any' }] },
  { name: 'Clip with inputs', op: 'Clip', inputs: [x4(), { dims: [], floats: [-0.5] }, { dims: [], floats: [0.8] }] },
  { name: 'Clip max only', op: 'Clip', inputs: [x4(), null, { dims: [], floats: [0.8] }] },
  { name: 'MatMul broadcasting', op: 'MatMul', inputs: [{ dims: [2, 1, 3, 4], range: 'any' }, { dims: [5, 4, 2], range: 'any' }] },
  { name: 'MatMul batch x weight matrix (one GEMM over rows)', op: 'MatMul', inputs: [{ dims: [5, 1, 3, 4], range: 'any' }, { dims: [4, 6], range: 'any' }] },
  { name: 'MatMul batch x batch-1 matrix', op: 'MatMul', inputs: [{ dims: [2, 3, 4], range: 'any' }, { dims: [1, 1, 4, 2], range: 'any' }] },
  { name: 'MatMul matrix x batch', op: 'MatMul', inputs: [{ dims: [3, 4], range: 'any' }, { dims: [2, 5, 4, 2], range: 'any' }] },
  { name: 'MatMul vector x batch', op: 'MatMul', inputs: [{ dims: [4], range: 'any' }, { dims: [3, 4, 2], range: 'any' }] },
  { name: 'Softmax axis 1', op: 'Softmax', inputs: [x4()], attrs: { axis: 1 } },
  { name: 'LogSoftmax axis 2', op: 'LogSoftmax', inputs: [x4()], attrs: { axis: 2 } },
  { name: 'Pad reflect', op: 'Pad', inputs: [x4(), i64(0, 0, 2, 1, 0, 0, 1, 3)], attrs: { mode: 'reflect' } },
  { name: 'Pad edge', op: 'Pad', inputs: [x4(), i64(0, 0, 2, 1, 0, 0, 1, 3)], attrs: { mode: 'edge' } },
  { name: 'ScatterND rows', op: 'ScatterND', inputs: [{ dims: [4, 3], range: 'any' }, { dims: [2, 1], ints: [3, 1] }, { dims: [2, 3], floats: [1, 2, 3, 4, 5, 6] }] },
  { name: 'ScatterND elements add', op: 'ScatterND', opset: 16, inputs: [{ dims: [2, 3], range: 'any' }, { dims: [3, 2], ints: [0, 1, 1, 2, 0, 1] }, { dims: [3], floats: [1, 2, 3] }], attrs: { reduction: 'add' } },
  { name: 'DepthToSpace CRD', op: 'DepthToSpace', inputs: [{ dims: [1, 8, 2, 3], range: 'any' }], attrs: { blocksize: 2, mode: 'CRD' } },
  { name: 'SpaceToDepth', op: 'SpaceToDepth', inputs: [{ dims: [1, 2, 4, 6], range: 'any' }], attrs: { blocksize: 2 } },
];

function attrProto(name: string, v: Attr): onnx.IAttributeProto {
  const T = onnx.AttributeProto.AttributeType;
  if (typeof v === 'string') return { name, type: T.STRING, s: Buffer.from(v) };
  if (Array.isArray(v)) return { name, type: T.INTS, ints: v };
  if (typeof v === 'object') return { name, type: T.FLOATS, floats: v.floats };
  if (Number.isInteger(v) && !['alpha', 'beta', 'epsilon', 'cubic_coeff_a', 'gamma'].includes(name)) return { name, type: T.INT, i: v };
  return { name, type: T.FLOAT, f: v };
}

interface Built {
  bytes: Uint8Array;
  feeds: { name: string; dims: number[]; data: Float32Array }[];
  outputs: string[];
}

function build(c: Case, rng: Rng): Built {
  const graphInputs: onnx.IValueInfoProto[] = [];
  const inits: onnx.ITensorProto[] = [];
  const feeds: Built['feeds'] = [];
  const names = c.inputs.map((inp, i) => {
    if (!inp) return '';
    const name = `in${i}`;
    if (inp.ints) inits.push({ name, dims: inp.dims, dataType: I64, int64Data: inp.ints });
    else if (inp.floats) inits.push({ name, dims: inp.dims, dataType: F, floatData: inp.floats });
    else if (inp.bools) inits.push({ name, dims: inp.dims, dataType: B, int32Data: inp.bools.map(Number) });
    else {
      const n = inp.dims.reduce((a, b) => a * b, 1);
      const data = Float32Array.from({ length: n }, () => (inp.range === 'pos' ? 0.5 + 2 * rng.uniform() : 4 * rng.uniform() - 2));
      feeds.push({ name, dims: inp.dims, data });
      graphInputs.push({ name, type: { tensorType: { elemType: F, shape: { dim: inp.dims.map((d) => ({ dimValue: d })) } } } });
    }
    return name;
  });
  while (names.length && names[names.length - 1] === '') names.pop();
  const outputs = Array.from({ length: c.outputs ?? 1 }, (_, k) => `out${k}`);
  const model = onnx.ModelProto.create({
    irVersion: 8,
    opsetImport: [{ domain: '', version: c.opset ?? 13 }],
    graph: {
      name: 'g',
      node: [{ opType: c.op, input: names, output: outputs, name: `${c.op}_node`, attribute: Object.entries(c.attrs ?? {}).map(([k, v]) => attrProto(k, v)) }],
      input: graphInputs,
      initializer: inits,
      output: outputs.map((name) => ({ name })),
    },
  });
  return { bytes: onnx.ModelProto.encode(model).finish(), feeds, outputs };
}

before(async () => {
  await selectBackend('wasm');
});

for (const c of CASES) {
  test(`ONNX op ${c.name}: matches onnxruntime${c.noGrad ? '' : '; input gradient matches finite differences on wasm'}`, async () => {
    const rng = new Rng(c.name.length * 31 + 7);
    const built = build(c, rng);
    const session = await ort.InferenceSession.create(built.bytes);
    const expected = await session.run(Object.fromEntries(built.feeds.map((f) => [f.name, new ort.Tensor('float32', f.data, f.dims)])));
    await session.release();
    const graph = new OnnxGraph(decodeModel(built.bytes));
    try {
      graph.loadConstants();
      graph.foldConstants();
      const feedTensors = () => Object.fromEntries(built.feeds.map((f) => [f.name, tf.tensor(f.data, f.dims)]));
      const got = tf.tidy(() => graph.run(feedTensors(), built.outputs).map((t) => ({ shape: t.shape, data: Array.from(t.dataSync() as ArrayLike<number>, Number) })));
      built.outputs.forEach((o, k) => {
        const exp = expected[o];
        assert.deepEqual(got[k].shape, exp.dims.map(Number), `${o}: shape`);
        const want = Array.from(exp.data as ArrayLike<number | boolean | bigint>, Number);
        const scale = Math.max(1e-6, ...want.map(Math.abs));
        want.forEach((w, i) => assert.ok(Math.abs(got[k].data[i] - w) <= 1e-4 * scale, `${o}[${i}] = ${got[k].data[i]}, onnxruntime ${w}`));
      });
      if (c.noGrad) return;
      assert.ok(built.feeds.length > 0, 'a gradient check needs a fed float input');
      // d/dx0 of sum(y ⊙ w): analytic on wasm against central differences.
      const f0 = built.feeds[0];
      const others = () => Object.fromEntries(built.feeds.slice(1).map((f) => [f.name, tf.tensor(f.data, f.dims)]));
      const outShape = got[0].shape;
      const w = tf.tensor(Float32Array.from({ length: got[0].data.length }, () => rng.uniform() * 2 - 1), outShape);
      const objective = (x: tf.Tensor) => tf.sum(tf.mul(graph.run({ ...others(), [f0.name]: x }, [built.outputs[0]])[0], w));
      const g = tf.tidy(() => tf.grad(objective)(tf.tensor(f0.data, f0.dims)));
      const gv = g.dataSync();
      g.dispose();
      assert.ok(gv.every(Number.isFinite), 'gradient is finite');
      const eps = 1e-2;
      for (let k = 0; k < 4; k++) {
        const i = Math.floor(rng.uniform() * f0.data.length);
        const at = (d: number) => {
          const v = Float32Array.from(f0.data);
          v[i] += d;
          return tf.tidy(() => objective(tf.tensor(v, f0.dims)).dataSync()[0]);
        };
        const fd = (at(eps) - at(-eps)) / (2 * eps);
        assert.ok(Math.abs(fd - gv[i]) <= 2e-2 * Math.max(1, Math.abs(fd)), `d/d${f0.name}[${i}]: gradient ${gv[i]}, finite difference ${fd}`);
      }
      w.dispose();
    } finally {
      graph.dispose();
    }
  });
}

test('ONNX folding: a Shape → Gather → Unsqueeze → Concat → Reshape chain folds to a constant, batch-dependent parts stay computed', async () => {
  // y = Reshape(x, Concat(Unsqueeze(Gather(Shape(x), 0)), [-1])): the batch size must stay computed.
  const ints = (name: string, v: number[], dims = [v.length]): onnx.ITensorProto => ({ name, dims, dataType: I64, int64Data: v });
  const model = onnx.ModelProto.create({
    irVersion: 8,
    opsetImport: [{ domain: '', version: 13 }],
    graph: {
      name: 'g',
      node: [
        { opType: 'Shape', input: ['x'], output: ['s'], name: 'shape' },
        { opType: 'Gather', input: ['s', 'zero'], output: ['n'], name: 'batch', attribute: [{ name: 'axis', type: 2, i: 0 }] },
        { opType: 'Gather', input: ['s', 'one'], output: ['c'], name: 'channels', attribute: [{ name: 'axis', type: 2, i: 0 }] },
        { opType: 'Unsqueeze', input: ['n', 'ax0'], output: ['n1'], name: 'un' },
        { opType: 'Unsqueeze', input: ['c', 'ax0'], output: ['c1'], name: 'uc' },
        { opType: 'Concat', input: ['n1', 'c1', 'minus1'], output: ['shape2'], name: 'cat', attribute: [{ name: 'axis', type: 2, i: 0 }] },
        { opType: 'Reshape', input: ['x', 'shape2'], output: ['y'], name: 'reshape' },
        { opType: 'Mul', input: ['w', 'two'], output: ['w2'], name: 'constmul' },
        { opType: 'Mul', input: ['y', 'w2'], output: ['z'], name: 'scale' },
      ],
      input: [{ name: 'x', type: { tensorType: { elemType: F, shape: { dim: [{ dimValue: 1 }, { dimValue: 3 }, { dimValue: 2 }, { dimValue: 2 }] } } } }],
      initializer: [ints('zero', [0], []), ints('one', [1], []), ints('ax0', [0]), ints('minus1', [-1]), { name: 'w', dims: [1], dataType: F, floatData: [1.5] }, { name: 'two', dims: [], dataType: F, floatData: [2] }],
      output: [{ name: 'z' }],
    },
  });
  const graph = new OnnxGraph(decodeModel(onnx.ModelProto.encode(model).finish()));
  try {
    graph.loadConstants();
    const folded = graph.foldConstants(() => [{ x: tf.zeros([1, 3, 2, 2]) }, { x: tf.zeros([2, 3, 2, 2]) }]);
    assert.ok(graph.isConstant('w2'), 'the constant Mul is folded');
    assert.ok(graph.isConstant('c1'), 'the channel count (the same at both batch sizes) is folded');
    assert.ok(!graph.isConstant('n1') && !graph.isConstant('shape2'), 'the batch size stays computed');
    assert.ok(folded >= 3, `${folded} values folded`);
    const z = tf.tidy(() => graph.run({ x: tf.ones([4, 3, 2, 2]) }, ['z'])[0]);
    assert.deepEqual(z.shape, [4, 3, 4]);
    assert.equal(z.dataSync()[0], 3);
    z.dispose();
    // A folded constant follows its source when the source is replaced (the coherency check rescales weights).
    graph.setConstant('w', tf.tensor1d([0.5]));
    const z2 = tf.tidy(() => graph.run({ x: tf.ones([1, 3, 2, 2]) }, ['z'])[0]);
    assert.equal(z2.dataSync()[0], 1);
    z2.dispose();
  } finally {
    graph.dispose();
  }
});

test('ONNX: a mask computed from the input (Where(Greater(x, 0), x, 0.1·x)) keeps the input gradient on wasm', () => {
  const model = onnx.ModelProto.create({
    irVersion: 8,
    opsetImport: [{ domain: '', version: 13 }],
    graph: {
      name: 'g',
      node: [
        { opType: 'Greater', input: ['x', 'zero'], output: ['m'], name: 'mask' },
        { opType: 'Mul', input: ['x', 'tenth'], output: ['s'], name: 'scaled' },
        { opType: 'Where', input: ['m', 'x', 's'], output: ['y'], name: 'select' },
      ],
      input: [{ name: 'x', type: { tensorType: { elemType: F, shape: { dim: [{ dimValue: 4 }] } } } }],
      initializer: [{ name: 'zero', dims: [], dataType: F, floatData: [0] }, { name: 'tenth', dims: [], dataType: F, floatData: [0.1] }],
      output: [{ name: 'y' }],
    },
  });
  const graph = new OnnxGraph(decodeModel(onnx.ModelProto.encode(model).finish()));
  try {
    graph.loadConstants();
    const g = tf.tidy(() => tf.grad((x: tf.Tensor) => tf.sum(graph.run({ x }, ['y'])[0]))(tf.tensor1d([-2, -0.5, 0.5, 2])));
    assert.deepEqual(Array.from(g.dataSync()).map((v) => Number(v.toFixed(5))), [0.1, 0.1, 1, 1]);
    g.dispose();
  } finally {
    graph.dispose();
  }
});
