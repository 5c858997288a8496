/**
 * The ONNX ops of modern vision exports (PyTorch's LayerNorm, GELU, HardSwish, channel split, class token,
 * F.interpolate, attention), each composed of tfjs ops that have gradients on every backend (wasm included):
 * reductions, element-wise math, comparisons, Slice/Split/Expand/Where/Tile, Resize (nearest, linear and cubic as
 * separable gathers, so every coordinate mode is exact), normalisations, Einsum (as transposes and batched matmuls).
 * Shape arithmetic runs on int32 tensors, as in ./ops.ts.
 */
import * as tf from '@tensorflow/tfjs-core';
import { decodeTensor, OnnxVariantError } from './tensor';
import type { OpCtx } from './ops';

type OpFn = (c: OpCtx) => tf.Tensor[];

const intValues = (t: tf.Tensor): number[] => Array.from(t.dataSync() as ArrayLike<number>, Number);
const normAxis = (a: number, rank: number) => (a < 0 ? a + rank : a);
const prod = (v: number[]) => v.reduce((a, b) => a * b, 1);
function req(c: OpCtx, i: number): tf.Tensor {
  const t = c.inputs[i];
  if (!t) throw new Error(`${c.op}: input ${i} is missing`);
  return t;
}
const present = (t: tf.Tensor | undefined): t is tf.Tensor => !!t && t.size > 0;

/**
 * Zero gradients for the comparison and logic kernels, which tfjs leaves without one: a mask computed from the
 * input (Where(Greater(x, 0), ...)) would otherwise stop every input gradient with "gradient function not found".
 */
for (const [names, inputs] of [
  [['Greater', 'GreaterEqual', 'Less', 'LessEqual', 'Equal', 'NotEqual', 'LogicalAnd', 'LogicalOr', 'LogicalXor'], ['a', 'b']],
  [['LogicalNot', 'ArgMax', 'ArgMin'], ['x']],
] as const) {
  for (const kernelName of names) {
    if (tf.getGradient(kernelName)) continue;
    tf.registerGradient({
      kernelName,
      inputsToSave: [...inputs],
      gradFunc: (_dy, saved) => Object.fromEntries(inputs.map((k, i) => [k, () => tf.zerosLike(saved[i])])),
    });
  }
}

/**
 * x ×_axis M: out[..., j, ...] = Σ_i M[j][i] x[..., i, ...], as one matmul (differentiable on every backend; tfjs's
 * gather has no gradient on wasm). `rows` is M as sparse rows: for each output index, its (source, weight) taps.
 */
export function mixAxis(x: tf.Tensor, axis: number, rows: { idx: number[]; w: number[] }[]): tf.Tensor {
  const d = x.shape[axis];
  const n = rows.length;
  const m = new Float32Array(d * n);
  rows.forEach((r, j) => r.idx.forEach((i, k) => (m[i * n + j] += r.w[k])));
  const perm = [...Array(x.rank).keys()].filter((a) => a !== axis).concat(axis);
  const moved = tf.transpose(x, perm);
  const lead = moved.shape.slice(0, -1);
  const y = tf.reshape(tf.matMul(tf.reshape(moved, [-1, d]), tf.tensor2d(m, [d, n])), [...lead, n]);
  const back = perm.map((_, i) => perm.indexOf(i));
  return tf.transpose(y, back);
}

/**
 * x's elements at the given indices along one axis (in range, non-negative). Differentiable: a contiguous run is
 * a slice, anything else a one-hot matmul for floats; integer and boolean values (shape arithmetic) use gather.
 */
export function gatherAxis(x: tf.Tensor, idx: number[], axis: number): tf.Tensor {
  const contiguous = idx.length > 0 && idx.every((v, i) => v === idx[0] + i);
  if (contiguous) return tf.slice(x, x.shape.map((_, i) => (i === axis ? idx[0] : 0)), x.shape.map((d, i) => (i === axis ? idx.length : d)));
  if (x.dtype !== 'float32' || idx.length === 0) return tf.gather(x, tf.tensor1d(idx, 'int32'), axis);
  return mixAxis(x, axis, idx.map((i) => ({ idx: [i], w: [1] })));
}

/** numpy broadcasting of two shapes. */
export function broadcastShapes(a: number[], b: number[]): number[] {
  const r = Math.max(a.length, b.length);
  const out: number[] = [];
  for (let i = 0; i < r; i++) {
    const x = a[a.length - r + i] ?? 1;
    const y = b[b.length - r + i] ?? 1;
    if (x !== y && x !== 1 && y !== 1) throw new Error(`shapes [${a}] and [${b}] do not broadcast`);
    out.push(x === 1 ? y : x);
  }
  return out;
}

/** x broadcast to `shape` (differentiable: an add of zeros, whose gradient sums over the broadcast axes). */
function expandTo(x: tf.Tensor, shape: number[]): tf.Tensor {
  if (x.shape.length === shape.length && x.shape.every((d, i) => d === shape[i])) return tf.clone(x);
  if (x.dtype === 'bool') return tf.cast(tf.add(tf.cast(x, 'int32'), tf.zeros(shape, 'int32')), 'bool');
  return tf.add(x, tf.zeros(shape, x.dtype));
}

// ---- reductions ----

function reduce(kind: 'mean' | 'sum' | 'max' | 'min' | 'prod' | 'l1' | 'l2' | 'sumSquare' | 'logSum' | 'logSumExp'): OpFn {
  return (c) => {
    const x = req(c, 0);
    const keep = c.attrs.int('keepdims', 1) === 1;
    const fromInput = c.inputs[1];
    let axes = fromInput ? intValues(fromInput) : c.attrs.ints('axes');
    if (!axes || axes.length === 0) {
      if (c.attrs.int('noop_with_empty_axes', 0) === 1) return [tf.clone(x)];
      axes = [...Array(x.rank).keys()];
    }
    axes = [...new Set(axes.map((a) => normAxis(a, x.rank)))].sort((a, b) => a - b);
    if (x.rank === 0) return [tf.clone(x)];
    switch (kind) {
      case 'mean': return [tf.mean(x, axes, keep)];
      case 'sum': return [tf.sum(x, axes, keep)];
      case 'max': return [tf.max(x, axes, keep)];
      case 'min': return [tf.min(x, axes, keep)];
      case 'prod': {
        if (x.dtype !== 'float32') return [tf.prod(x, axes, keep)];
        // tfjs's Prod gradient fails without the chained API; d prod / dx_i = prod / x_i (away from zeros).
        const f = tf.customGrad(((v: tf.Tensor, save: (ts: tf.Tensor[]) => void) => {
          const p = tf.prod(v, axes, true);
          save([v, p]);
          return { value: keep ? p : tf.reshape(p, tf.prod(v, axes, false).shape), gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => tf.div(tf.mul(tf.reshape(dy, saved[1].shape), saved[1]), saved[0]) };
        }) as unknown as Parameters<typeof tf.customGrad>[0]);
        return [f(x)];
      }
      case 'l1': return [tf.sum(tf.abs(x), axes, keep)];
      case 'l2': return [tf.sqrt(tf.sum(tf.square(x), axes, keep))];
      case 'sumSquare': return [tf.sum(tf.square(x), axes, keep)];
      case 'logSum': return [tf.log(tf.sum(x, axes, keep))];
      case 'logSumExp': return [tf.logSumExp(x, axes, keep)];
    }
  };
}

function argExtreme(max: boolean): OpFn {
  return (c) => {
    const x = req(c, 0);
    if (c.attrs.int('select_last_index', 0) === 1) throw new OnnxVariantError(c.op, 'select_last_index=1');
    const axis = normAxis(c.attrs.int('axis', 0), x.rank);
    let y = max ? tf.argMax(x, axis) : tf.argMin(x, axis);
    if (c.attrs.int('keepdims', 1) === 1) y = tf.expandDims(y, axis);
    return [y];
  };
}

// ---- element-wise ----

const unary = (f: (x: tf.Tensor) => tf.Tensor): OpFn => (c) => [f(req(c, 0))];
const variadic = (f: (a: tf.Tensor, b: tf.Tensor) => tf.Tensor): OpFn => (c) => {
  const xs = c.inputs.filter((t): t is tf.Tensor => !!t);
  return [xs.length === 1 ? tf.clone(xs[0]) : xs.slice(1).reduce((acc, t) => f(acc, t), xs[0])];
};

/** exp(x) − 1 for x ≤ 0, computed on min(x, 0) so the unselected branch never overflows into a NaN gradient. */
const expm1Neg = (x: tf.Tensor) => tf.sub(tf.exp(tf.minimum(x, 0)), 1);

function pow(c: OpCtx): tf.Tensor[] {
  const x = req(c, 0);
  let e = req(c, 1);
  if (e.size === 1 && x.dtype === 'float32') {
    const v = Number(e.dataSync()[0]);
    if (v === 2) return [tf.square(x)];
    if (v === 1) return [tf.clone(x)];
    if (v === 0.5) return [tf.sqrt(x)];
    if (v === 3) return [tf.mul(tf.square(x), x)];
  }
  if (e.dtype !== x.dtype) e = tf.cast(e, x.dtype);
  return [tf.pow(x, e)];
}

function gelu(c: OpCtx): tf.Tensor[] {
  const x = req(c, 0);
  const approx = c.attrs.str('approximate', 'none');
  if (approx === 'tanh') {
    const inner = tf.mul(Math.sqrt(2 / Math.PI), tf.add(x, tf.mul(0.044715, tf.mul(tf.square(x), x))));
    return [tf.mul(tf.mul(0.5, x), tf.add(1, tf.tanh(inner)))];
  }
  if (approx !== 'none') throw new OnnxVariantError('Gelu', `approximate="${approx}"`);
  return [tf.mul(tf.mul(0.5, x), tf.add(1, tf.erf(tf.mul(x, Math.SQRT1_2))))];
}

function hardSigmoid(x: tf.Tensor, alpha: number, beta: number): tf.Tensor {
  return tf.clipByValue(tf.add(tf.mul(x, alpha), beta), 0, 1);
}

function prelu(c: OpCtx): tf.Tensor[] {
  const x = req(c, 0);
  let slope = req(c, 1);
  // ONNX broadcasts the slope unidirectionally (numpy-style); a [C] slope on NCHW is written [C, 1, 1] by exporters,
  // but a bare [C] against a rank>2 input means channels (PyTorch's convention, accepted by onnxruntime).
  if (slope.rank === 1 && x.rank > 2 && slope.shape[0] === x.shape[1] && slope.shape[0] !== x.shape[x.rank - 1]) {
    slope = tf.reshape(slope, [slope.shape[0], ...new Array(x.rank - 2).fill(1)]);
  }
  return [tf.add(tf.relu(x), tf.mul(slope, tf.neg(tf.relu(tf.neg(x)))))];
}

function modOp(c: OpCtx): tf.Tensor[] {
  const a = req(c, 0);
  const b = req(c, 1);
  if (c.attrs.int('fmod', 0) === 1) {
    // C fmod: the sign of the dividend.
    const q = tf.div(tf.cast(a, 'float32'), tf.cast(b, 'float32'));
    const t = tf.mul(tf.sign(q), tf.floor(tf.abs(q)));
    const r = tf.sub(tf.cast(a, 'float32'), tf.mul(t, tf.cast(b, 'float32')));
    return [a.dtype === 'int32' ? tf.cast(r, 'int32') : r];
  }
  return [tf.mod(a, b)];
}

function compare(f: (a: tf.Tensor, b: tf.Tensor) => tf.Tensor): OpFn {
  return (c) => {
    let a = req(c, 0);
    let b = req(c, 1);
    if (a.dtype !== b.dtype) {
      a = tf.cast(a, 'float32');
      b = tf.cast(b, 'float32');
    }
    return [f(a, b)];
  };
}

function where(c: OpCtx): tf.Tensor[] {
  const cond = req(c, 0);
  let a = req(c, 1);
  let b = req(c, 2);
  if (a.dtype === 'bool' && b.dtype === 'bool') {
    return [tf.cast(tf.where(cond, tf.cast(a, 'int32'), tf.cast(b, 'int32')), 'bool')];
  }
  if (a.dtype !== b.dtype) {
    a = tf.cast(a, 'float32');
    b = tf.cast(b, 'float32');
  }
  return [tf.where(cond, a, b)];
}

// ---- shape and indexing ----

function constantOfShape(c: OpCtx): tf.Tensor[] {
  const shape = c.inputs[0] ? intValues(c.inputs[0]) : [];
  const t = c.attrs.tensor('value');
  let value = 0;
  let dtype = 'float32' as 'float32' | 'int32' | 'bool';
  if (t) {
    const v = decodeTensor(t);
    value = Number(v.dataSync()[0] ?? 0);
    dtype = v.dtype as typeof dtype;
    v.dispose();
  }
  if (dtype === 'bool') return [tf.cast(tf.fill(shape, value, 'int32'), 'bool')];
  return [tf.fill(shape, value, dtype)];
}

function expand(c: OpCtx): tf.Tensor[] {
  const x = req(c, 0);
  return [expandTo(x, broadcastShapes(x.shape, intValues(req(c, 1))))];
}

function tile(c: OpCtx): tf.Tensor[] {
  const x = req(c, 0);
  const reps = intValues(req(c, 1));
  if (x.dtype === 'bool') return [tf.cast(tf.tile(tf.cast(x, 'int32'), reps), 'bool')];
  return [tf.tile(x, reps)];
}

/** Elements [start, end) by step along one axis, ONNX Slice's clamping rules. */
function sliceAxis(x: tf.Tensor, axis: number, start: number, end: number, step: number): tf.Tensor {
  const d = x.shape[axis];
  if (step === 0) throw new Error('Slice: a step of 0');
  const clamp = (v: number, lo: number, hi: number) => Math.min(Math.max(v, lo), hi);
  let s = start < 0 ? start + d : start;
  let e = end < 0 ? end + d : end;
  if (step > 0) {
    s = clamp(s, 0, d);
    e = clamp(e, 0, d);
  } else {
    s = clamp(s, 0, d - 1);
    e = clamp(e, -1, d - 1);
  }
  if (step === 1) {
    const begin = x.shape.map((_, i) => (i === axis ? s : 0));
    const size = x.shape.map((dd, i) => (i === axis ? Math.max(0, e - s) : dd));
    return tf.slice(x, begin, size);
  }
  const idx: number[] = [];
  if (step > 0) for (let i = s; i < e; i += step) idx.push(i);
  else for (let i = s; i > e; i += step) idx.push(i);
  if (idx.length === 0) {
    const size = x.shape.map((dd, i) => (i === axis ? 0 : dd));
    return tf.slice(x, x.shape.map(() => 0), size);
  }
  return gatherAxis(x, idx, axis);
}

function slice(c: OpCtx): tf.Tensor[] {
  let x = req(c, 0);
  let starts: number[];
  let ends: number[];
  let axes: number[] | undefined;
  let steps: number[] | undefined;
  if (c.opset < 10) {
    starts = c.attrs.ints('starts')!;
    ends = c.attrs.ints('ends')!;
    axes = c.attrs.ints('axes');
  } else {
    starts = intValues(req(c, 1));
    ends = intValues(req(c, 2));
    axes = c.inputs[3] ? intValues(c.inputs[3]) : undefined;
    steps = c.inputs[4] ? intValues(c.inputs[4]) : undefined;
  }
  const ax = axes ?? starts.map((_, i) => i);
  const input = x;
  ax.forEach((a, i) => {
    x = sliceAxis(x, normAxis(a, input.rank), starts[i], ends[i], steps?.[i] ?? 1);
  });
  return [x === input ? tf.clone(x) : x];
}

function split(c: OpCtx): tf.Tensor[] {
  const x = req(c, 0);
  const axis = normAxis(c.attrs.int('axis', 0), x.rank);
  const d = x.shape[axis];
  let sizes: number[] | undefined = c.opset >= 13 ? (c.inputs[1] ? intValues(c.inputs[1]) : undefined) : c.attrs.ints('split');
  if (!sizes || sizes.length === 0) {
    const n = c.attrs.has('num_outputs') ? c.attrs.int('num_outputs', c.outputs) : c.outputs;
    const each = Math.ceil(d / n);
    sizes = Array.from({ length: n }, (_, i) => Math.max(0, Math.min(each, d - i * each)));
  }
  const out: tf.Tensor[] = [];
  let at = 0;
  for (const s of sizes) {
    out.push(tf.slice(x, x.shape.map((_, i) => (i === axis ? at : 0)), x.shape.map((dd, i) => (i === axis ? s : dd))));
    at += s;
  }
  return out;
}

function range(c: OpCtx): tf.Tensor[] {
  const [start, limit, delta] = [0, 1, 2].map((i) => Number(req(c, i).dataSync()[0]));
  const dtype = req(c, 0).dtype === 'int32' ? 'int32' : 'float32';
  const n = Math.max(0, Math.ceil((limit - start) / delta));
  return [tf.tensor1d(Array.from({ length: n }, (_, i) => start + i * delta), dtype)];
}

function depthToSpace(c: OpCtx): tf.Tensor[] {
  const x = req(c, 0);
  const b = c.attrs.int('blocksize', 1);
  const [N, C, H, W] = x.shape;
  const dcr = c.attrs.str('mode', 'DCR') === 'DCR';
  const t = dcr ? tf.reshape(x, [N, b, b, C / (b * b), H, W]) : tf.reshape(x, [N, C / (b * b), b, b, H, W]);
  const p = dcr ? tf.transpose(t, [0, 3, 4, 1, 5, 2]) : tf.transpose(t, [0, 1, 4, 2, 5, 3]);
  return [tf.reshape(p, [N, C / (b * b), H * b, W * b])];
}

function spaceToDepth(c: OpCtx): tf.Tensor[] {
  const x = req(c, 0);
  const b = c.attrs.int('blocksize', 1);
  const [N, C, H, W] = x.shape;
  const t = tf.reshape(x, [N, C, H / b, b, W / b, b]);
  return [tf.reshape(tf.transpose(t, [0, 3, 5, 1, 2, 4]), [N, C * b * b, H / b, W / b])];
}

/**
 * ScatterND (reduction none or add) as data ⊙ (1 − written) + S · updates, S the one-hot [slots, updates] matrix:
 * differentiable in data and updates. Swin builds its shifted-window attention mask this way (folded at load).
 */
function scatterND(c: OpCtx): tf.Tensor[] {
  const data = req(c, 0);
  const indices = req(c, 1);
  const updates = req(c, 2);
  const reduction = c.attrs.str('reduction', 'none');
  if (reduction !== 'none' && reduction !== 'add') throw new OnnxVariantError('ScatterND', `reduction="${reduction}"`);
  const k = indices.shape[indices.rank - 1];
  const slots = prod(data.shape.slice(0, k));
  const sliceSize = prod(data.shape.slice(k));
  const idx = intValues(indices);
  const u = idx.length / k;
  const strides = data.shape.slice(0, k).map((_, i) => prod(data.shape.slice(i + 1, k)));
  const S = new Float32Array(slots * u);
  const written = new Float32Array(slots);
  for (let j = 0; j < u; j++) {
    let slot = 0;
    for (let i = 0; i < k; i++) {
      const v = idx[j * k + i];
      slot += (v < 0 ? v + data.shape[i] : v) * strides[i];
    }
    if (reduction === 'none') for (let jj = 0; jj < j; jj++) S[slot * u + jj] = 0; // the last write wins
    S[slot * u + j] = 1;
    written[slot] = 1;
  }
  const f = (t: tf.Tensor) => (t.dtype === 'float32' ? t : tf.cast(t, 'float32'));
  const d2 = tf.reshape(f(data), [slots, sliceSize]);
  const scattered = tf.matMul(tf.tensor2d(S, [slots, u]), tf.reshape(f(updates), [u, sliceSize]));
  const kept = reduction === 'none' ? tf.mul(d2, tf.tensor2d(written.map((w) => 1 - w), [slots, 1])) : d2;
  const y = tf.reshape(tf.add(kept, scattered), data.shape);
  return [data.dtype === 'float32' ? y : tf.cast(tf.round(y), data.dtype)];
}

// ---- Resize ----

type Taps = { idx: number[][]; w: number[][] };

/** Source indices and weights per output coordinate along one axis, by the ONNX Resize formulas. */
function resizeTaps(c: OpCtx, mode: string, coord: string, nearestMode: string, inSize: number, outSize: number, scale: number): Taps {
  const a = c.attrs.float('cubic_coeff_a', -0.75);
  const exclude = c.attrs.int('exclude_outside', 0) === 1;
  const clampI = (i: number) => Math.min(Math.max(i, 0), inSize - 1);
  const idx: number[][] = [];
  const w: number[][] = [];
  for (let o = 0; o < outSize; o++) {
    let x: number;
    switch (coord) {
      case 'half_pixel': x = (o + 0.5) / scale - 0.5; break;
      case 'pytorch_half_pixel': x = outSize > 1 ? (o + 0.5) / scale - 0.5 : 0; break;
      // The resized length is in·scale, unrounded, when the output size comes from scales (as onnxruntime does).
      case 'align_corners': x = inSize * scale === 1 ? 0 : (o * (inSize - 1)) / (inSize * scale - 1); break;
      case 'asymmetric': x = o / scale; break;
      case 'tf_half_pixel_for_nn': x = (o + 0.5) / scale; break;
      default: throw new OnnxVariantError('Resize', `coordinate_transformation_mode="${coord}"`);
    }
    if (mode === 'nearest') {
      let i: number;
      switch (nearestMode) {
        case 'round_prefer_floor': i = x - Math.floor(x) === 0.5 ? Math.floor(x) : Math.round(x); break;
        case 'round_prefer_ceil': i = x - Math.floor(x) === 0.5 ? Math.ceil(x) : Math.round(x); break;
        case 'floor': i = Math.floor(x); break;
        case 'ceil': i = Math.ceil(x); break;
        default: throw new OnnxVariantError('Resize', `nearest_mode="${nearestMode}"`);
      }
      idx.push([clampI(i)]);
      w.push([1]);
    } else if (mode === 'linear') {
      const xc = Math.min(Math.max(x, 0), inSize - 1);
      const i0 = Math.floor(xc);
      const f = xc - i0;
      idx.push([i0, clampI(i0 + 1)]);
      w.push([1 - f, f]);
    } else if (mode === 'cubic') {
      const i0 = Math.floor(x);
      const t = x - i0;
      const k = (d: number) => {
        const ad = Math.abs(d);
        if (ad <= 1) return (a + 2) * ad ** 3 - (a + 3) * ad ** 2 + 1;
        if (ad < 2) return a * ad ** 3 - 5 * a * ad ** 2 + 8 * a * ad - 4 * a;
        return 0;
      };
      const taps = [-1, 0, 1, 2].map((j) => i0 + j);
      let ws = taps.map((_, j) => k(t - (j - 1)));
      if (exclude) {
        ws = ws.map((v, j) => (taps[j] < 0 || taps[j] >= inSize ? 0 : v));
        const s = ws.reduce((p, q) => p + q, 0);
        ws = ws.map((v) => v / s);
      }
      idx.push(taps.map(clampI));
      w.push(ws);
    } else throw new OnnxVariantError('Resize', `mode="${mode}"`);
  }
  return { idx, w };
}

function resizeAxis(x: tf.Tensor, axis: number, taps: Taps): tf.Tensor {
  return mixAxis(x, axis, taps.idx.map((idx, j) => ({ idx, w: taps.w[j] })));
}

function resizeWith(c: OpCtx, x: tf.Tensor, mode: string, coord: string, scales: number[] | null, sizes: number[] | null, nearestMode = c.attrs.str('nearest_mode', 'round_prefer_floor')): tf.Tensor {
  const rank = x.rank;
  if (c.attrs.has('axes')) throw new OnnxVariantError(c.op, 'the axes attribute');
  if (c.attrs.str('keep_aspect_ratio_policy', 'stretch') !== 'stretch') throw new OnnxVariantError(c.op, 'keep_aspect_ratio_policy');
  const outSizes = sizes ?? x.shape.map((d, i) => Math.floor(d * scales![i]));
  const sc = scales ?? outSizes.map((o, i) => o / x.shape[i]);
  let y = x.dtype === 'float32' ? x : tf.cast(x, 'float32');
  for (let axis = 0; axis < rank; axis++) {
    if (outSizes[axis] === x.shape[axis] && sc[axis] === 1) continue;
    y = resizeAxis(y, axis, resizeTaps(c, mode, coord, nearestMode, x.shape[axis], outSizes[axis], sc[axis]));
  }
  if (y === x) y = tf.clone(x);
  return x.dtype === 'float32' ? y : tf.cast(tf.round(y), x.dtype);
}

function resize(c: OpCtx): tf.Tensor[] {
  const x = req(c, 0);
  const mode = c.attrs.str('mode', 'nearest');
  if (c.opset < 11) {
    const scales = intOrFloat(req(c, 1));
    return [resizeWith(c, x, mode, 'asymmetric', scales, null, 'floor')];
  }
  const coord = c.attrs.str('coordinate_transformation_mode', 'half_pixel');
  if (coord === 'tf_crop_and_resize') throw new OnnxVariantError('Resize', 'coordinate_transformation_mode="tf_crop_and_resize"');
  const scales = present(c.inputs[2]) ? intOrFloat(c.inputs[2]!) : null;
  const sizes = present(c.inputs[3]) ? intValues(c.inputs[3]!) : null;
  if (!scales && !sizes) throw new Error('Resize: neither scales nor sizes is given');
  return [resizeWith(c, x, mode, coord, scales, sizes)];
}

function upsample(c: OpCtx): tf.Tensor[] {
  const x = req(c, 0);
  const mode = c.attrs.str('mode', 'nearest');
  const scales = c.opset >= 9 ? intOrFloat(req(c, 1)) : c.attrs.floats('scales')!;
  // Upsample's nearest takes the floor of the asymmetric source coordinate.
  return [resizeWith(c, x, mode, 'asymmetric', scales, null, 'floor')];
}

const intOrFloat = (t: tf.Tensor): number[] => Array.from(t.dataSync() as ArrayLike<number>, Number);

// ---- normalisation ----

function layerNorm(c: OpCtx): tf.Tensor[] {
  if (c.outputs > 1) throw new OnnxVariantError('LayerNormalization', 'the Mean and InvStdDev outputs');
  const x = req(c, 0);
  const axis = normAxis(c.attrs.int('axis', -1), x.rank);
  const eps = c.attrs.float('epsilon', 1e-5);
  const axes = [...Array(x.rank).keys()].slice(axis);
  const mean = tf.mean(x, axes, true);
  const d = tf.sub(x, mean);
  let y = tf.mul(d, tf.rsqrt(tf.add(tf.mean(tf.square(d), axes, true), eps)));
  y = tf.mul(y, req(c, 1));
  if (c.inputs[2]) y = tf.add(y, c.inputs[2]);
  return [y];
}

function instanceNorm(c: OpCtx): tf.Tensor[] {
  const x = req(c, 0);
  const eps = c.attrs.float('epsilon', 1e-5);
  const axes = [...Array(x.rank).keys()].slice(2);
  const shape = [-1, ...new Array(x.rank - 2).fill(1)];
  const mean = tf.mean(x, axes, true);
  const d = tf.sub(x, mean);
  const y = tf.mul(d, tf.rsqrt(tf.add(tf.mean(tf.square(d), axes, true), eps)));
  return [tf.add(tf.mul(y, tf.reshape(req(c, 1), shape)), tf.reshape(req(c, 2), shape))];
}

function groupNorm(c: OpCtx): tf.Tensor[] {
  const x = req(c, 0);
  const eps = c.attrs.float('epsilon', 1e-5);
  const g = c.attrs.int('num_groups', 1);
  const [N, C] = x.shape;
  const xr = tf.reshape(x, [N, g, -1]);
  const mean = tf.mean(xr, [2], true);
  const d = tf.sub(xr, mean);
  const y = tf.reshape(tf.mul(d, tf.rsqrt(tf.add(tf.mean(tf.square(d), [2], true), eps))), x.shape);
  const perChannel = (t: tf.Tensor) => {
    // Opset 18 gives one scale per group, opset 21 one per channel.
    const v = t.size === C ? t : tf.reshape(tf.tile(tf.reshape(t, [g, 1]), [1, C / g]), [C]);
    return tf.reshape(v, [C, ...new Array(x.rank - 2).fill(1)]);
  };
  return [tf.add(tf.mul(y, perChannel(req(c, 1))), perChannel(req(c, 2)))];
}

function lrn(c: OpCtx): tf.Tensor[] {
  const x = req(c, 0);
  const size = c.attrs.int('size', 1);
  const alpha = c.attrs.float('alpha', 1e-4);
  const beta = c.attrs.float('beta', 0.75);
  const bias = c.attrs.float('bias', 1);
  // Sum of squares over a window of channels: a 1-D average pool over C in NHWC order, done as a padded sum.
  const sq = tf.square(x);
  const C = x.shape[1] as number;
  const lo = Math.floor((size - 1) / 2);
  const hi = Math.ceil((size - 1) / 2);
  const padded = tf.pad(sq, x.shape.map((_, i) => (i === 1 ? [lo, hi] : [0, 0]) as [number, number]));
  let sum: tf.Tensor | null = null;
  for (let k = 0; k < size; k++) {
    const part = tf.slice(padded, x.shape.map((_, i) => (i === 1 ? k : 0)), x.shape.map((d, i) => (i === 1 ? C : (d as number))));
    sum = sum ? tf.add(sum, part) : part;
  }
  return [tf.div(x, tf.pow(tf.add(bias, tf.mul(alpha / size, sum!)), beta))];
}

// ---- Einsum ----

/** Einsum as pairwise contractions: per-operand sums, then transposes and one batched matmul per pair. */
function einsum(c: OpCtx): tf.Tensor[] {
  const eq = c.attrs.str('equation', '').replace(/\s/g, '');
  const xs = c.inputs.filter((t): t is tf.Tensor => !!t);
  const [lhs, rhsGiven] = eq.split('->');
  const terms = lhs.split(',');
  if (terms.length !== xs.length) throw new Error(`Einsum "${eq}": ${terms.length} terms for ${xs.length} inputs`);
  // Ellipses become private letters, right-aligned across operands.
  const ellRank = Math.max(0, ...terms.map((t, i) => (t.includes('...') ? xs[i].rank - (t.length - 3) : 0)));
  const ell = Array.from({ length: ellRank }, (_, k) => String.fromCharCode(0x100 + k));
  const expandEll = (t: string, rank: number) => (t.includes('...') ? t.replace('...', ell.slice(ellRank - (rank - (t.length - 3))).join('')) : t);
  const ops = terms.map((t, i) => [...expandEll(t, xs[i].rank)]);
  let out: string[];
  if (rhsGiven !== undefined) out = [...rhsGiven.replace('...', ell.join(''))];
  else {
    const count = new Map<string, number>();
    for (const o of ops) for (const l of o) count.set(l, (count.get(l) ?? 0) + 1);
    out = [...ell, ...[...count.keys()].filter((l) => count.get(l) === 1 && !ell.includes(l)).sort()];
  }
  const size = new Map<string, number>();
  ops.forEach((o, i) => {
    if (new Set(o).size !== o.length) throw new OnnxVariantError('Einsum', `a repeated index in "${terms[i]}" (a diagonal)`);
    o.forEach((l, k) => size.set(l, Math.max(size.get(l) ?? 1, xs[i].shape[k])));
  });
  // Sums out the letters of operand i that neither the output nor another operand needs.
  const sumUnused = (t: tf.Tensor, o: string[], others: string[][]) => {
    const needed = new Set([...out, ...others.flat()]);
    const drop = o.map((l, k) => (needed.has(l) ? -1 : k)).filter((k) => k >= 0);
    return { t: drop.length ? tf.sum(t, drop) : t, o: o.filter((l) => needed.has(l)) };
  };
  let cur = sumUnused(xs[0], ops[0], ops.slice(1));
  for (let i = 1; i < xs.length; i++) {
    const rest = ops.slice(i + 1);
    const other = sumUnused(xs[i], ops[i], [cur.o, ...rest]);
    const keep = new Set([...out, ...rest.flat()]);
    const a = cur.o;
    const b = other.o;
    const batch = a.filter((l) => b.includes(l) && keep.has(l));
    const contr = a.filter((l) => b.includes(l) && !keep.has(l));
    const aFree = a.filter((l) => !b.includes(l));
    const bFree = b.filter((l) => !a.includes(l));
    const dims = (ls: string[]) => ls.map((l) => size.get(l)!);
    const arrange = (t: tf.Tensor, o: string[], order: string[]) => {
      const tt = tf.transpose(t, order.map((l) => o.indexOf(l)));
      return expandTo(tt, dims(order));
    };
    const A = tf.reshape(arrange(cur.t, a, [...batch, ...aFree, ...contr]), [prod(dims(batch)), prod(dims(aFree)), prod(dims(contr))]) as tf.Tensor3D;
    const B = tf.reshape(arrange(other.t, b, [...batch, ...contr, ...bFree]), [prod(dims(batch)), prod(dims(contr)), prod(dims(bFree))]) as tf.Tensor3D;
    const y = tf.reshape(tf.matMul(A, B), [...dims(batch), ...dims(aFree), ...dims(bFree)]);
    cur = { t: y, o: [...batch, ...aFree, ...bFree] };
  }
  const missing = cur.o.filter((l) => !out.includes(l));
  if (missing.length) cur = { t: tf.sum(cur.t, missing.map((l) => cur.o.indexOf(l))), o: cur.o.filter((l) => out.includes(l)) };
  const perm = out.map((l) => cur.o.indexOf(l));
  if (perm.some((p) => p < 0)) throw new Error(`Einsum "${eq}": an output index is not in any input`);
  return [perm.every((p, i) => p === i) ? (cur.t === xs[0] ? tf.clone(cur.t) : cur.t) : tf.transpose(cur.t, perm)];
}

/**
 * Softmax or LogSoftmax (`fn` over the last axis) as ONNX defines it: before opset 13 over the input flattened to 2-D
 * at `axis` (default 1); from 13 over the one axis `axis` (default −1), moved last and back.
 */
export function softmaxOp(fn: (x: tf.Tensor) => tf.Tensor): OpFn {
  return (c) => {
    const x = req(c, 0);
    if (c.opset < 13) {
      const axis = normAxis(c.attrs.int('axis', 1), x.rank);
      const outer = x.shape.slice(0, axis).reduce((a, b) => a * b, 1);
      return [tf.reshape(fn(tf.reshape(x, [outer, -1])), x.shape)];
    }
    const axis = normAxis(c.attrs.int('axis', -1), x.rank);
    if (axis === x.rank - 1) return [fn(x)];
    const perm = [...Array(x.rank).keys()];
    perm[axis] = x.rank - 1;
    perm[x.rank - 1] = axis;
    return [tf.transpose(fn(tf.transpose(x, perm)), perm)];
  };
}

export const MODERN_OPS: Record<string, OpFn> = {
  ReduceMean: reduce('mean'),
  ReduceSum: reduce('sum'),
  ReduceMax: reduce('max'),
  ReduceMin: reduce('min'),
  ReduceProd: reduce('prod'),
  ReduceL1: reduce('l1'),
  ReduceL2: reduce('l2'),
  ReduceSumSquare: reduce('sumSquare'),
  ReduceLogSum: reduce('logSum'),
  ReduceLogSumExp: reduce('logSumExp'),
  ArgMax: argExtreme(true),
  ArgMin: argExtreme(false),
  Pow: pow,
  Sqrt: unary(tf.sqrt),
  Reciprocal: unary(tf.reciprocal),
  Exp: unary(tf.exp),
  Log: unary(tf.log),
  Neg: unary(tf.neg),
  Abs: unary(tf.abs),
  Sign: unary(tf.sign),
  Floor: unary(tf.floor),
  Ceil: unary(tf.ceil),
  Round: unary(tf.round),
  Erf: unary(tf.erf),
  Sin: unary(tf.sin),
  Cos: unary(tf.cos),
  Gelu: gelu,
  HardSigmoid: (c) => [hardSigmoid(req(c, 0), c.attrs.float('alpha', 0.2), c.attrs.float('beta', 0.5))],
  HardSwish: (c) => [tf.mul(req(c, 0), hardSigmoid(req(c, 0), 1 / 6, 0.5))],
  PRelu: prelu,
  Elu: (c) => {
    const x = req(c, 0);
    return [tf.add(tf.relu(x), tf.mul(c.attrs.float('alpha', 1), expm1Neg(x)))];
  },
  Selu: (c) => {
    const x = req(c, 0);
    const alpha = c.attrs.float('alpha', 1.67326319217681884765625);
    const gamma = c.attrs.float('gamma', 1.05070102214813232421875);
    return [tf.mul(gamma, tf.add(tf.relu(x), tf.mul(alpha, expm1Neg(x))))];
  },
  Celu: (c) => {
    const x = req(c, 0);
    const alpha = c.attrs.float('alpha', 1);
    return [tf.add(tf.relu(x), tf.mul(alpha, expm1Neg(tf.div(x, alpha))))];
  },
  ThresholdedRelu: (c) => {
    const x = req(c, 0);
    return [tf.mul(x, tf.step(tf.sub(x, c.attrs.float('alpha', 1))))];
  },
  Softplus: unary(tf.softplus),
  Softsign: unary((x) => tf.div(x, tf.add(1, tf.abs(x)))),
  Mish: unary((x) => tf.mul(x, tf.tanh(tf.softplus(x)))),
  LogSoftmax: softmaxOp((x) => tf.logSoftmax(x)),
  Max: variadic(tf.maximum),
  Min: variadic(tf.minimum),
  Sum: variadic(tf.add),
  Mean: (c) => {
    const xs = c.inputs.filter((t): t is tf.Tensor => !!t);
    return [tf.div(variadic(tf.add)(c)[0], xs.length)];
  },
  Mod: modOp,
  Equal: compare(tf.equal),
  Less: compare(tf.less),
  LessOrEqual: compare(tf.lessEqual),
  Greater: compare(tf.greater),
  GreaterOrEqual: compare(tf.greaterEqual),
  Not: unary(tf.logicalNot),
  And: (c) => [tf.logicalAnd(req(c, 0), req(c, 1))],
  Or: (c) => [tf.logicalOr(req(c, 0), req(c, 1))],
  Xor: (c) => [tf.logicalXor(req(c, 0), req(c, 1))],
  Where: where,
  ConstantOfShape: constantOfShape,
  Expand: expand,
  Tile: tile,
  Slice: slice,
  Split: split,
  Range: range,
  Size: (c) => [tf.scalar(req(c, 0).size, 'int32')],
  CastLike: (c) => {
    const x = req(c, 0);
    const to = req(c, 1).dtype;
    if (to === x.dtype) return [tf.clone(x)];
    if (to === 'int32' && x.dtype === 'float32') return [tf.cast(tf.mul(tf.sign(x), tf.floor(tf.abs(x))), 'int32')];
    return [tf.cast(x, to)];
  },
  DepthToSpace: depthToSpace,
  SpaceToDepth: spaceToDepth,
  Resize: resize,
  ScatterND: scatterND,
  Upsample: upsample,
  LayerNormalization: layerNorm,
  InstanceNormalization: instanceNorm,
  GroupNormalization: groupNorm,
  LRN: lrn,
  Einsum: einsum,
};

