/**
 * The ONNX ops infodiscard evaluates, each written with differentiable tfjs ops on tensors in ONNX's own layout
 * (NCHW). Convolutions and pools transpose to NHWC around the tfjs call. Integer tensors (shape arithmetic) are
 * int32; ops whose attributes select a variant we do not implement throw OnnxVariantError.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { onnx } from 'onnx-proto';
import { decodeTensor, toInt, toIntSat, DT, OnnxVariantError } from './tensor';
import { gatherAxis, MODERN_OPS, softmaxOp } from './ops2';

export { OnnxVariantError };

export class Attrs {
  private map = new Map<string, onnx.IAttributeProto>();
  constructor(list: onnx.IAttributeProto[] | null | undefined) {
    for (const a of list ?? []) if (a.name) this.map.set(a.name, a);
  }
  has(name: string): boolean {
    return this.map.has(name);
  }
  int(name: string, def: number): number {
    const a = this.map.get(name);
    return a && a.i !== undefined && a.i !== null ? toInt(a.i, name) : def;
  }
  float(name: string, def: number): number {
    const a = this.map.get(name);
    return a && a.f !== undefined && a.f !== null ? a.f : def;
  }
  ints(name: string): number[] | undefined {
    const a = this.map.get(name);
    return a && (a.ints?.length || a.type === 7) ? (a.ints ?? []).map((v) => toIntSat(v)) : undefined;
  }
  floats(name: string): number[] | undefined {
    const a = this.map.get(name);
    return a && (a.floats?.length || a.type === 6) ? [...(a.floats ?? [])] : undefined;
  }
  str(name: string, def: string): string {
    const a = this.map.get(name);
    return a && a.s && a.s.length ? Buffer.from(a.s).toString('utf8') : def;
  }
  tensor(name: string): onnx.ITensorProto | undefined {
    return this.map.get(name)?.t ?? undefined;
  }
}

export interface OpCtx {
  op: string;
  inputs: (tf.Tensor | undefined)[];
  attrs: Attrs;
  opset: number;
  /** How many outputs the node names (some ops only support the first). */
  outputs: number;
}

type OpFn = (c: OpCtx) => tf.Tensor[];

const intValues = (t: tf.Tensor): number[] => Array.from(t.dataSync() as ArrayLike<number>, Number);
const normAxis = (a: number, rank: number) => (a < 0 ? a + rank : a);
function req(c: OpCtx, i: number): tf.Tensor {
  const t = c.inputs[i];
  if (!t) throw new Error(`${c.op}: input ${i} is missing`);
  return t;
}

// ---- convolution and pooling helpers (spatial rank 1 or 2) ----

interface Spatial {
  pads: number[]; // [b0, b1, e0, e1]
  strides: number[];
  dilations: number[];
  kernel: number[];
}

function spatialParams(c: OpCtx, inSpatial: number[], kernel: number[], ceil = false): Spatial {
  const n = kernel.length;
  const strides = c.attrs.ints('strides') ?? new Array(n).fill(1);
  const dilations = c.attrs.ints('dilations') ?? new Array(n).fill(1);
  let pads = c.attrs.ints('pads') ?? new Array(2 * n).fill(0);
  const autoPad = c.attrs.str('auto_pad', 'NOTSET');
  if (autoPad === 'SAME_UPPER' || autoPad === 'SAME_LOWER') {
    pads = new Array(2 * n).fill(0);
    for (let i = 0; i < n; i++) {
      const out = Math.ceil(inSpatial[i] / strides[i]);
      const total = Math.max(0, (out - 1) * strides[i] + (kernel[i] - 1) * dilations[i] + 1 - inSpatial[i]);
      const small = Math.floor(total / 2);
      pads[i] = autoPad === 'SAME_UPPER' ? small : total - small;
      pads[i + n] = total - pads[i];
    }
  } else if (autoPad === 'VALID') pads = new Array(2 * n).fill(0);
  if (ceil) {
    pads = [...pads];
    for (let i = 0; i < n; i++) {
      const span = inSpatial[i] + pads[i] + pads[i + n] - ((kernel[i] - 1) * dilations[i] + 1);
      const outCeil = Math.ceil(span / strides[i]) + 1;
      // The last window must start inside the input or the begin padding.
      const outs = (outCeil - 1) * strides[i] >= inSpatial[i] + pads[i] ? outCeil - 1 : outCeil;
      const need = (outs - 1) * strides[i] + (kernel[i] - 1) * dilations[i] + 1 - (inSpatial[i] + pads[i] + pads[i + n]);
      if (need > 0) pads[i + n] += need;
    }
  }
  return { pads, strides, dilations, kernel };
}

/** NC(H)W → NHWC with 2 spatial dims (1-D inputs get a unit height). */
function toNhwc(x: tf.Tensor): tf.Tensor4D {
  if (x.rank === 3) return tf.transpose(tf.expandDims(x, 2), [0, 2, 3, 1]) as tf.Tensor4D;
  if (x.rank === 4) return tf.transpose(x, [0, 2, 3, 1]) as tf.Tensor4D;
  throw new OnnxVariantError('Conv/Pool', `${x.rank - 2}-D spatial input`);
}
function fromNhwc(y: tf.Tensor4D, rank: number): tf.Tensor {
  const t = tf.transpose(y, [0, 3, 1, 2]);
  return rank === 3 ? tf.squeeze(t, [2]) : t;
}
/** Pads (or crops, for negative pads) the NHWC tensor's spatial dims; s has 1 or 2 spatial dims in ONNX order. */
function padSpatial(x: tf.Tensor4D, s: Spatial, value: number): tf.Tensor4D {
  const n = s.kernel.length;
  const p = n === 1 ? [[0, 0], [s.pads[0], s.pads[1]]] : [[s.pads[0], s.pads[2]], [s.pads[1], s.pads[3]]];
  if (p.every(([a, b]) => a === 0 && b === 0)) return x;
  let y = x;
  const crop = p.map(([a, b]) => [Math.max(0, -a), Math.max(0, -b)]);
  if (crop.some(([a, b]) => a || b)) {
    const [, h, w] = y.shape;
    y = tf.slice(y, [0, crop[0][0], crop[1][0], 0], [-1, h - crop[0][0] - crop[0][1], w - crop[1][0] - crop[1][1], -1]);
  }
  const pos = p.map(([a, b]) => [Math.max(0, a), Math.max(0, b)] as [number, number]);
  return tf.pad(y, [[0, 0], pos[0], pos[1], [0, 0]], value);
}
const hw = (v: number[]): [number, number] => (v.length === 1 ? [1, v[0]] : [v[0], v[1]]);

/** Grouped 2-D convolution in NHWC, valid padding, on an already padded input. w is ONNX [M, C/g, kh, kw]. */
function convCore(x: tf.Tensor4D, w: tf.Tensor, group: number, strides: [number, number], dil: [number, number]): tf.Tensor4D {
  const w4 = (w.rank === 3 ? tf.expandDims(w, 2) : w) as tf.Tensor4D; // [M, Cg, kh, kw]
  const [M, Cg] = w4.shape;
  const C = x.shape[3];
  if ((strides[0] > 1 || strides[1] > 1) && (dil[0] > 1 || dil[1] > 1)) {
    // tfjs needs strides or dilations to be 1: dilate the kernel explicitly.
    const [kh, kw] = [w4.shape[2], w4.shape[3]];
    const k6 = tf.reshape(w4, [M, Cg, kh, 1, kw, 1]);
    const padded = tf.pad(k6, [[0, 0], [0, 0], [0, 0], [0, dil[0] - 1], [0, 0], [0, dil[1] - 1]]);
    const big = tf.reshape(padded, [M, Cg, kh * dil[0], kw * dil[1]]);
    const cut = tf.slice(big, [0, 0, 0, 0], [M, Cg, (kh - 1) * dil[0] + 1, (kw - 1) * dil[1] + 1]);
    return convCore(x, cut, group, strides, [1, 1]);
  }
  if (group === 1) {
    return tf.conv2d(x, tf.transpose(w4, [2, 3, 1, 0]) as tf.Tensor4D, strides, 'valid', 'NHWC', dil);
  }
  if (group === C && Cg === 1 && M % C === 0) {
    const f = tf.transpose(tf.reshape(w4, [C, M / C, w4.shape[2], w4.shape[3]]), [2, 3, 0, 1]) as tf.Tensor4D;
    return tf.depthwiseConv2d(x, f, strides, 'valid', 'NHWC', dil);
  }
  const xs = tf.split(x, group, 3);
  const ws = tf.split(w4, group, 0);
  return tf.concat(xs.map((xi, i) => tf.conv2d(xi as tf.Tensor4D, tf.transpose(ws[i], [2, 3, 1, 0]) as tf.Tensor4D, strides, 'valid', 'NHWC', dil)), 3) as tf.Tensor4D;
}

function conv(c: OpCtx): tf.Tensor[] {
  const x = req(c, 0);
  if (x.rank !== 3 && x.rank !== 4) throw new OnnxVariantError('Conv', `${x.rank - 2}-D convolution`);
  return [fromNhwc(convNhwc(c, toNhwc(x), x.shape.slice(2)), x.rank)];
}

/** Conv on a channels-last input (inSpatial: the input's spatial dims in ONNX order); the result is NHWC. */
export function convNhwc(c: OpCtx, xn: tf.Tensor4D, inSpatial: number[]): tf.Tensor4D {
  const w = req(c, 1);
  const b = c.inputs[2];
  const s = spatialParams(c, inSpatial, w.shape.slice(2));
  const y = convCore(padSpatial(xn, s, 0), w, c.attrs.int('group', 1), hw(s.strides), hw(s.dilations));
  return b ? tf.add(y, b) : y;
}

function convTranspose(c: OpCtx): tf.Tensor[] {
  const x = req(c, 0);
  if (x.rank !== 3 && x.rank !== 4) throw new OnnxVariantError('ConvTranspose', `${x.rank - 2}-D convolution`);
  return [fromNhwc(convTransposeNhwc(c, toNhwc(x), x.shape.slice(2)), x.rank)];
}

/** ConvTranspose on a channels-last input (inSpatial: the input's spatial dims in ONNX order); the result is NHWC. */
export function convTransposeNhwc(c: OpCtx, input: tf.Tensor4D, inSp: number[]): tf.Tensor4D {
  const w = req(c, 1); // [C, M/g, k...]
  const b = c.inputs[2];
  const n = inSp.length;
  const group = c.attrs.int('group', 1);
  const kernel = w.shape.slice(2);
  const strides = c.attrs.ints('strides') ?? new Array(n).fill(1);
  const dil = c.attrs.ints('dilations') ?? new Array(n).fill(1);
  const outPad = c.attrs.ints('output_padding') ?? new Array(n).fill(0);
  let pads = c.attrs.ints('pads') ?? new Array(2 * n).fill(0);
  const outputShape = c.attrs.ints('output_shape');
  const autoPad = c.attrs.str('auto_pad', 'NOTSET');
  if (outputShape || autoPad === 'SAME_UPPER' || autoPad === 'SAME_LOWER') {
    const target = outputShape ? outputShape.slice(-n) : inSp.map((d, i) => d * strides[i]);
    pads = new Array(2 * n).fill(0);
    for (let i = 0; i < n; i++) {
      const total = strides[i] * (inSp[i] - 1) + outPad[i] + (kernel[i] - 1) * dil[i] + 1 - target[i];
      const half = Math.floor(total / 2);
      if (autoPad === 'SAME_UPPER') { pads[i] = half; pads[i + n] = total - half; }
      else { pads[i] = total - half; pads[i + n] = half; }
    }
  } else if (autoPad === 'VALID') pads = new Array(2 * n).fill(0);
  // Transposed conv = conv over the stride-dilated input with the flipped, in/out-swapped kernel.
  let xn = input;
  const [st0, st1] = hw(strides);
  if (st0 > 1 || st1 > 1) {
    const [N, H, W, C] = xn.shape;
    const six = tf.pad(tf.reshape(xn, [N, H, 1, W, 1, C]), [[0, 0], [0, 0], [0, st0 - 1], [0, 0], [0, st1 - 1], [0, 0]]);
    xn = tf.slice(tf.reshape(six, [N, H * st0, W * st1, C]), [0, 0, 0, 0], [N, (H - 1) * st0 + 1, (W - 1) * st1 + 1, C]) as tf.Tensor4D;
  }
  const C = w.shape[0];
  const Mg = w.shape[1] as number;
  const Cg = C / group;
  const kdims: number[] = kernel.length === 1 ? [1, kernel[0]] : kernel;
  let wf = tf.reshape(w, [group, Cg, Mg, kdims[0], kdims[1]]);
  wf = tf.reshape(tf.transpose(wf, [0, 2, 1, 3, 4]), [group * Mg, Cg, kdims[0], kdims[1]]);
  wf = tf.reverse(wf, [2, 3]);
  const convPads = new Array(2 * n);
  for (let i = 0; i < n; i++) {
    const k = (kernel[i] - 1) * dil[i];
    convPads[i] = k - pads[i];
    convPads[i + n] = k - pads[i + n] + outPad[i];
  }
  const s: Spatial = { pads: convPads, strides: new Array(n).fill(1), dilations: dil, kernel };
  const y = convCore(padSpatial(xn, s, 0), wf, group, [1, 1], hw(dil));
  return b ? tf.add(y, b) : y;
}

function pool(kind: 'max' | 'avg'): OpFn {
  return (c) => {
    const x = req(c, 0);
    if (x.rank !== 3 && x.rank !== 4) throw new OnnxVariantError(c.op, `${x.rank - 2}-D pooling`);
    // tfjs pools (wasm) take float32 only; integer inputs (uint8 images) round-trip exactly through float32.
    const xn = toNhwc(x.dtype === 'float32' ? x : tf.cast(x, 'float32'));
    const out = fromNhwc(poolNhwc(kind, c, xn, x.shape.slice(2)), x.rank);
    return [x.dtype === 'float32' ? out : tf.cast(tf.round(out), x.dtype)];
  };
}

/** MaxPool / AveragePool on a channels-last float32 input (inSpatial in ONNX order); the result is NHWC. */
export function poolNhwc(kind: 'max' | 'avg', c: OpCtx, xn: tf.Tensor4D, inSpatial: number[]): tf.Tensor4D {
  if (c.outputs > 1) throw new OnnxVariantError(c.op, 'the Indices output');
  if (c.attrs.int('storage_order', 0) !== 0) throw new OnnxVariantError(c.op, 'storage_order=1');
  const kernel = c.attrs.ints('kernel_shape')!;
  const ceil = c.attrs.int('ceil_mode', 0) === 1;
  const s = spatialParams(c, inSpatial, kernel, ceil);
  const dil = hw(s.dilations);
  if (dil[0] !== 1 || dil[1] !== 1) throw new OnnxVariantError(c.op, 'dilations');
  const k = hw(kernel);
  const st = hw(s.strides);
  if (kind === 'max') return tf.maxPool(padSpatial(xn, s, -3.4e38), k, st, 'valid');
  const includePad = c.attrs.int('count_include_pad', 0) === 1;
  const sum = tf.mul(tf.avgPool(padSpatial(xn, s, 0), k, st, 'valid'), k[0] * k[1]);
  const ones = tf.ones([1, xn.shape[1], xn.shape[2], 1]) as tf.Tensor4D;
  let count: tf.Tensor;
  if (includePad) {
    // Windows count the explicit padding, but not the extra ceil_mode padding.
    const base = spatialParams(c, inSpatial, kernel, false);
    const inPad = padSpatial(ones, base, 1);
    const extra: Spatial = { ...s, pads: s.pads.map((p, i) => p - base.pads[i]) };
    count = tf.mul(tf.avgPool(padSpatial(inPad, extra, 0), k, st, 'valid'), k[0] * k[1]);
  } else {
    count = tf.mul(tf.avgPool(padSpatial(ones, s, 0), k, st, 'valid'), k[0] * k[1]);
  }
  return tf.div(sum, count) as tf.Tensor4D;
}

// ---- element-wise and shape ops ----

function binary(f: (a: tf.Tensor, b: tf.Tensor) => tf.Tensor): OpFn {
  return (c) => [f(req(c, 0), req(c, 1))];
}

function div(a: tf.Tensor, b: tf.Tensor): tf.Tensor {
  if (a.dtype === 'int32' && b.dtype === 'int32') {
    // ONNX integer division truncates toward zero.
    const q = tf.div(tf.cast(a, 'float32'), tf.cast(b, 'float32'));
    return tf.cast(tf.mul(tf.sign(q), tf.floor(tf.abs(q))), 'int32');
  }
  return tf.div(a, b);
}

function axesFrom(c: OpCtx, inputIndex: number): number[] | undefined {
  if (c.opset >= 13) {
    const t = c.inputs[inputIndex];
    return t ? intValues(t) : undefined;
  }
  return c.attrs.ints('axes');
}

function clipBound(c: OpCtx, i: number, attr: string, def: number): number {
  if (c.opset < 11) return c.attrs.float(attr, def);
  const t = c.inputs[i];
  return t ? Number(t.dataSync()[0]) : def;
}

function constantOf(c: OpCtx): tf.Tensor {
  const t = c.attrs.tensor('value');
  if (t) return decodeTensor(t);
  if (c.attrs.has('value_float')) return tf.scalar(c.attrs.float('value_float', 0));
  if (c.attrs.has('value_int')) return tf.scalar(c.attrs.int('value_int', 0), 'int32');
  const fl = c.attrs.floats('value_floats');
  if (fl) return tf.tensor1d(fl);
  const il = c.attrs.ints('value_ints');
  if (il) return tf.tensor1d(il, 'int32');
  throw new OnnxVariantError('Constant', 'this value kind (sparse or string)');
}

function castTo(x: tf.Tensor, to: number): tf.Tensor {
  switch (to) {
    case DT.FLOAT: case DT.DOUBLE: return x.dtype === 'float32' ? tf.clone(x) : tf.cast(x, 'float32');
    case DT.BOOL: return tf.cast(x, 'bool');
    case DT.INT8: case DT.UINT8: case DT.INT16: case DT.UINT16: case DT.INT32: case DT.INT64: case DT.UINT32: case DT.UINT64:
      if (x.dtype === 'float32') return tf.cast(tf.mul(tf.sign(x), tf.floor(tf.abs(x))), 'int32');
      return tf.cast(x, 'int32');
    default: throw new OnnxVariantError('Cast', `target type ${to}`);
  }
}

function gemm(c: OpCtx): tf.Tensor[] {
  let a = req(c, 0);
  let b = req(c, 1);
  if (c.attrs.int('transA', 0)) a = tf.transpose(a);
  if (c.attrs.int('transB', 0)) b = tf.transpose(b);
  let y = tf.matMul(a as tf.Tensor2D, b as tf.Tensor2D);
  const alpha = c.attrs.float('alpha', 1);
  if (alpha !== 1) y = tf.mul(y, alpha);
  const cc = c.inputs[2];
  if (cc) {
    const beta = c.attrs.float('beta', 1);
    y = tf.add(y, beta === 1 ? cc : tf.mul(cc, beta));
  }
  return [y];
}

function matMul(c: OpCtx): tf.Tensor[] {
  let a = req(c, 0);
  let b = req(c, 1);
  const aVec = a.rank === 1;
  const bVec = b.rank === 1;
  if (aVec) a = tf.expandDims(a, 0);
  if (bVec) b = tf.expandDims(b, 1);
  // Broadcast batch dims explicitly.
  const batchA = a.shape.slice(0, -2);
  const batchB = b.shape.slice(0, -2);
  const rank = Math.max(batchA.length, batchB.length);
  const pad = (s: number[]) => [...new Array(rank - s.length).fill(1), ...s];
  const ba = pad(batchA);
  const bb = pad(batchB);
  const batch = ba.map((d, i) => Math.max(d, bb[i]));
  let y: tf.Tensor;
  const m = a.shape[a.rank - 2];
  const k = a.shape[a.rank - 1];
  const nOut = b.shape[b.rank - 1];
  const count = (s: number[]) => s.reduce((p, q) => p * q, 1);
  if (rank === 0) y = tf.matMul(a as tf.Tensor2D, b as tf.Tensor2D);
  else if (count(bb) === 1) {
    // A weight matrix applied to a batch (every Linear of a transformer: [tokens, 1, d] x [d, 3d]): one GEMM over
    // the batch's rows. Broadcasting the matrix instead materialises one copy per row (ViT-B/16's attention input
    // projection: 197 x 768 x 2304 floats, 1.4 GB per block), which exhausts tfjs-wasm's 4 GB heap.
    const rows = tf.matMul(tf.reshape(a, [count(ba) * m, k]) as tf.Tensor2D, tf.reshape(b, [k, nOut]) as tf.Tensor2D);
    y = tf.reshape(rows, [...batch, m, nOut]);
  } else if (count(ba) === 1) {
    // A matrix times a batch of matrices: a [m, k] x b [n, k, N] = (a x b') with b' = b as [k, n * N] columns.
    const nb = count(bb);
    const cols = tf.reshape(tf.transpose(tf.reshape(b, [nb, k, nOut]), [1, 0, 2]), [k, nb * nOut]);
    const prod = tf.matMul(tf.reshape(a, [m, k]) as tf.Tensor2D, cols as tf.Tensor2D);
    y = tf.reshape(tf.transpose(tf.reshape(prod, [m, nb, nOut]), [1, 0, 2]), [...batch, m, nOut]);
  } else {
    const full = (t: tf.Tensor, bs: number[]) => {
      const r = tf.reshape(t, [...bs, ...t.shape.slice(-2)]);
      const target = [...batch, ...t.shape.slice(-2)];
      return bs.every((d, i) => d === batch[i]) ? r : tf.broadcastTo(r, target);
    };
    const n = batch.reduce((p, q) => p * q, 1);
    const a3 = tf.reshape(full(a, ba), [n, ...a.shape.slice(-2)] as number[] as [number, number, number]) as tf.Tensor3D;
    const b3 = tf.reshape(full(b, bb), [n, ...b.shape.slice(-2)] as number[] as [number, number, number]) as tf.Tensor3D;
    y = tf.reshape(tf.matMul(a3, b3), [...batch, a.shape[a.rank - 2], b.shape[b.rank - 1]]);
  }
  if (aVec) y = tf.squeeze(y, [y.rank - 2]);
  if (bVec) y = tf.squeeze(y, [y.rank - 1]);
  return [y];
}

function reshape(c: OpCtx): tf.Tensor[] {
  const x = req(c, 0);
  const shape = c.opset >= 5 ? intValues(req(c, 1)) : c.attrs.ints('shape')!;
  const allowZero = c.attrs.int('allowzero', 0) === 1;
  const out = shape.map((d, i) => (d === 0 && !allowZero ? x.shape[i] : d));
  return [tf.reshape(x, out)];
}

function pad(c: OpCtx): tf.Tensor[] {
  const x = req(c, 0);
  const mode = c.attrs.str('mode', 'constant');
  if (mode !== 'constant' && mode !== 'reflect' && mode !== 'edge') throw new OnnxVariantError('Pad', `mode "${mode}"`);
  let pads: number[];
  let value: number;
  if (c.opset < 11) {
    pads = c.attrs.ints('pads') ?? c.attrs.ints('paddings')!;
    value = c.attrs.float('value', 0);
  } else {
    pads = intValues(req(c, 1));
    const v = c.inputs[2];
    value = v ? Number(v.dataSync()[0]) : 0;
    if (c.inputs[3]) throw new OnnxVariantError('Pad', 'the axes input');
  }
  const r = x.rank;
  let y = x;
  if (pads.some((p) => p < 0)) {
    const begin = x.shape.map((_, i) => Math.max(0, -pads[i]));
    const size = x.shape.map((d, i) => d - begin[i] - Math.max(0, -pads[i + r]));
    y = tf.slice(y, begin, size);
  }
  const widths = x.shape.map((_, i) => [Math.max(0, pads[i]), Math.max(0, pads[i + r])] as [number, number]);
  if (mode === 'constant') return [tf.pad(y, widths, value)];
  // reflect / edge: a gather per padded axis of the reflected or clamped source indices (gather has gradients).
  for (let a = 0; a < r; a++) {
    const [lo, hi] = widths[a];
    if (!lo && !hi) continue;
    const d = y.shape[a];
    const idx: number[] = [];
    for (let i = -lo; i < d + hi; i++) {
      if (mode === 'edge') idx.push(Math.min(Math.max(i, 0), d - 1));
      else {
        if (d === 1) idx.push(0);
        else {
          const period = 2 * (d - 1);
          const m = ((i % period) + period) % period;
          idx.push(m < d ? m : period - m);
        }
      }
    }
    y = gatherAxis(y, idx, a);
  }
  return [y === x ? tf.clone(x) : y];
}

function gather(c: OpCtx): tf.Tensor[] {
  const x = req(c, 0);
  const idx = req(c, 1);
  const axis = normAxis(c.attrs.int('axis', 0), x.rank);
  const n = x.shape[axis];
  const vals = intValues(idx).map((i) => (i < 0 ? i + n : i));
  const y = gatherAxis(x, vals, axis);
  return [tf.reshape(y, [...x.shape.slice(0, axis), ...idx.shape, ...x.shape.slice(axis + 1)])];
}

function unsqueeze(c: OpCtx): tf.Tensor[] {
  const x = req(c, 0);
  const axes = axesFrom(c, 1)!;
  const rank = x.rank + axes.length;
  const sorted = axes.map((a) => normAxis(a, rank)).sort((a, b) => a - b);
  const shape = [...x.shape];
  for (const a of sorted) shape.splice(a, 0, 1);
  return [tf.reshape(x, shape)];
}

function squeeze(c: OpCtx): tf.Tensor[] {
  const x = req(c, 0);
  const axes = axesFrom(c, 1);
  if (!axes) return [tf.reshape(x, x.shape.filter((d) => d !== 1))];
  const set = new Set(axes.map((a) => normAxis(a, x.rank)));
  return [tf.reshape(x, x.shape.filter((_, i) => !set.has(i)))];
}

function batchNorm(c: OpCtx): tf.Tensor[] {
  const x = req(c, 0);
  return [batchNormOn(c, x, [-1, ...new Array(Math.max(0, x.rank - 2)).fill(1)])];
}

/** Inference BatchNormalization of x, its per-channel parameters reshaped to paramShape ([-1] for channels last). */
export function batchNormOn(c: OpCtx, x: tf.Tensor, paramShape: number[]): tf.Tensor {
  if (c.attrs.int('training_mode', 0) === 1 || (c.opset < 9 && c.attrs.int('is_test', 1) === 0) || c.outputs > 1) {
    throw new OnnxVariantError('BatchNormalization', 'training mode');
  }
  const eps = c.attrs.float('epsilon', 1e-5);
  const [scale, bias, mean, variance] = [1, 2, 3, 4].map((i) => tf.reshape(req(c, i), paramShape));
  const mult = tf.mul(scale, tf.rsqrt(tf.add(variance, eps)));
  return tf.add(tf.mul(tf.sub(x, mean), mult), bias);
}

export const OPS: Record<string, OpFn> = {
  Conv: conv,
  ConvTranspose: convTranspose,
  BatchNormalization: batchNorm,
  Relu: (c) => [tf.relu(req(c, 0))],
  LeakyRelu: (c) => [tf.leakyRelu(req(c, 0), c.attrs.float('alpha', 0.01))],
  Sigmoid: (c) => [tf.sigmoid(req(c, 0))],
  Tanh: (c) => [tf.tanh(req(c, 0))],
  Clip: (c) => {
    const x = req(c, 0);
    const big = x.dtype === 'int32' ? 2147483647 : 3.4028234663852886e38;
    const lo = Math.max(clipBound(c, 1, 'min', -big), -big);
    const hi = Math.min(clipBound(c, 2, 'max', big), big);
    return [tf.minimum(tf.maximum(x, tf.scalar(lo, x.dtype)), tf.scalar(hi, x.dtype))];
  },
  MaxPool: pool('max'),
  AveragePool: pool('avg'),
  GlobalAveragePool: (c) => {
    const x = req(c, 0);
    return [tf.mean(x, [...Array(x.rank).keys()].slice(2), true)];
  },
  GlobalMaxPool: (c) => {
    const x = req(c, 0);
    return [tf.max(x, [...Array(x.rank).keys()].slice(2), true)];
  },
  Gemm: gemm,
  MatMul: matMul,
  Add: binary(tf.add),
  Sub: binary(tf.sub),
  Mul: binary(tf.mul),
  Div: binary(div),
  Concat: (c) => {
    const xs = c.inputs.filter((t): t is tf.Tensor => !!t);
    const axis = normAxis(c.attrs.int('axis', 0), xs[0].rank);
    const nonEmpty = xs.filter((t) => t.size > 0);
    return [nonEmpty.length === 0 ? tf.clone(xs[0]) : nonEmpty.length === 1 ? tf.clone(nonEmpty[0]) : tf.concat(nonEmpty, axis)];
  },
  Flatten: (c) => {
    const x = req(c, 0);
    const axis = normAxis(c.attrs.int('axis', 1), x.rank);
    const outer = x.shape.slice(0, axis).reduce((a, b) => a * b, 1);
    const inner = x.shape.slice(axis).reduce((a, b) => a * b, 1);
    return [tf.reshape(x, [outer, inner])];
  },
  Reshape: reshape,
  Transpose: (c) => {
    const x = req(c, 0);
    return [tf.transpose(x, c.attrs.ints('perm') ?? [...Array(x.rank).keys()].reverse())];
  },
  Pad: pad,
  Softmax: softmaxOp((x) => tf.softmax(x)),
  Identity: (c) => [tf.clone(req(c, 0))],
  Dropout: (c) => {
    // Training mode with a ratio of 0 is an identity (torchvision's Swin exports its attention dropout this way,
    // mask output included); the mask keeps every element.
    const ratio = c.opset >= 12 ? (c.inputs[1] ? Number(c.inputs[1].dataSync()[0]) : 0.5) : c.attrs.float('ratio', 0.5);
    if (c.inputs[2] && c.inputs[2].dataSync()[0] && ratio !== 0) throw new OnnxVariantError('Dropout', 'training mode');
    const x = req(c, 0);
    return c.outputs > 1 ? [tf.clone(x), tf.cast(tf.onesLike(x), 'bool')] : [tf.clone(x)];
  },
  Constant: (c) => [constantOf(c)],
  Shape: (c) => {
    const x = req(c, 0);
    const r = x.rank;
    let start = c.attrs.int('start', 0);
    let end = c.attrs.int('end', r);
    start = Math.min(Math.max(normAxis(start, r), 0), r);
    end = Math.min(Math.max(normAxis(end, r), 0), r);
    return [tf.tensor1d(x.shape.slice(start, Math.max(start, end)), 'int32')];
  },
  Gather: gather,
  Unsqueeze: unsqueeze,
  Squeeze: squeeze,
  Cast: (c) => [castTo(req(c, 0), c.attrs.int('to', DT.FLOAT))],
  ...MODERN_OPS,
};

export const SUPPORTED_OPS = new Set(Object.keys(OPS));
