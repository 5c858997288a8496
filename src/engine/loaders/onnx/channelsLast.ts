/**
 * Channels-last evaluation for OnnxGraph.run. ONNX values are NCHW while the tfjs convolutions and pools take NHWC,
 * so an op-by-op interpreter transposes around every conv and pool, forward and (under the gradient tape) backward:
 * 6–8 % of a ResNet-18 step at 224² (docs/performance.md). Here a rank-4 value may be held in either layout or
 * both; conv, transposed conv, pools, batch norm, channel concat, element-wise activations and broadcasting arithmetic work on the
 * NHWC form when their input has one, and a value is transposed back to NCHW only when an op that needs ONNX's
 * layout, or the caller, reads it. The same kernels run on the same numbers: only the transposes go.
 */
import * as tf from '@tensorflow/tfjs-core';
import { batchNormOn, convNhwc, convTransposeNhwc, OPS, poolNhwc, type Attrs, type OpCtx } from './ops';

/** The graph's values during one run: ONNX (NCHW) form, channels-last form of rank-4 values, or both. */
export class LayoutValues {
  private readonly nchw: Map<string, tf.Tensor>;
  private readonly nhwc = new Map<string, tf.Tensor4D>();

  constructor(consts: Map<string, tf.Tensor>, feeds: Record<string, tf.Tensor>, channelsLastFeeds: Record<string, tf.Tensor4D> = {}) {
    this.nchw = new Map(consts);
    for (const [k, v] of Object.entries(feeds)) this.nchw.set(k, v);
    for (const [k, v] of Object.entries(channelsLastFeeds)) this.nhwc.set(k, v);
  }

  has(name: string): boolean {
    return this.nchw.has(name) || this.nhwc.has(name);
  }

  hasNhwc(name: string): boolean {
    return this.nhwc.has(name);
  }

  /** The value in ONNX's layout; one held only channels-last is transposed once. */
  get(name: string): tf.Tensor | undefined {
    let t = this.nchw.get(name);
    if (!t) {
      const y = this.nhwc.get(name);
      if (!y) return undefined;
      t = tf.transpose(y, [0, 3, 1, 2]);
      this.nchw.set(name, t);
    }
    return t;
  }

  /** The rank-4 value channels-last; one held only in ONNX's layout is transposed once. */
  getNhwc(name: string): tf.Tensor4D | undefined {
    let y = this.nhwc.get(name);
    if (!y) {
      const t = this.nchw.get(name);
      if (!t || t.rank !== 4) return undefined;
      y = tf.transpose(t, [0, 2, 3, 1]) as tf.Tensor4D;
      this.nhwc.set(name, y);
    }
    return y;
  }

  /** The value's ONNX shape and dtype without converting it. */
  info(name: string): { shape: number[]; dtype: tf.DataType } | undefined {
    const t = this.nchw.get(name);
    if (t) return { shape: t.shape, dtype: t.dtype };
    const y = this.nhwc.get(name);
    return y ? { shape: [y.shape[0], y.shape[3], y.shape[1], y.shape[2]], dtype: y.dtype } : undefined;
  }

  set(name: string, t: tf.Tensor): void {
    this.nchw.set(name, t);
  }

  setNhwc(name: string, y: tf.Tensor4D): void {
    this.nhwc.set(name, y);
  }
}

/** A node's single output, in the layout it was computed in. */
export type LayoutResult = { layout: 'nchw' | 'nhwc'; value: tf.Tensor };

/** Element-wise ops of one tensor input (other inputs, if any, are scalars such as Clip's bounds). */
const ELEMENTWISE = new Set([
  'Relu', 'LeakyRelu', 'Sigmoid', 'Tanh', 'Clip', 'HardSigmoid', 'HardSwish', 'Elu', 'Selu', 'Celu', 'Softplus',
  'Softsign', 'Mish', 'Gelu', 'Identity', 'Neg', 'Abs', 'Exp', 'Sqrt', 'Reciprocal', 'Erf',
]);
/** Element-wise ops of several tensors with numpy broadcasting. */
const BROADCASTING = new Set(['Add', 'Sub', 'Mul', 'Div', 'Sum', 'Max', 'Min']);

interface NodeLike {
  op: string;
  domain: string;
  inputs: string[];
  outputs: string[];
  attrs: Attrs;
}

/**
 * Evaluates the node channels-last when that saves a transpose, or returns null to leave it to the plain op (on
 * NCHW inputs). `ctx` builds the op context from the given input tensors.
 */
export function runChannelsLast(n: NodeLike, values: LayoutValues, ctx: (inputs: (tf.Tensor | undefined)[]) => OpCtx): LayoutResult | null {
  if (n.domain || n.outputs.filter((o) => o).length !== 1) return null;
  const x = n.inputs[0] ? values.info(n.inputs[0]) : undefined;
  if (!x) return null;
  const rank4f = x.shape.length === 4 && x.dtype === 'float32';
  const rest = () => n.inputs.slice(1).map((name) => (name ? values.get(name) : undefined));
  const spatial = x.shape.slice(2);
  switch (n.op) {
    case 'Conv': {
      if (!rank4f) return null;
      const xn = values.getNhwc(n.inputs[0])!;
      return nhwc(convNhwc(ctx([xn, ...rest()]), xn, spatial));
    }
    case 'ConvTranspose': {
      if (!rank4f) return null;
      const xn = values.getNhwc(n.inputs[0])!;
      return nhwc(convTransposeNhwc(ctx([xn, ...rest()]), xn, spatial));
    }
    case 'MaxPool':
    case 'AveragePool': {
      if (!rank4f) return null;
      const xn = values.getNhwc(n.inputs[0])!;
      return nhwc(poolNhwc(n.op === 'MaxPool' ? 'max' : 'avg', ctx([xn, ...rest()]), xn, spatial));
    }
    case 'Transpose': {
      // tf2onnx's NHWC → NCHW at the input (and back at the end): the transposed value is the other form.
      if (x.shape.length !== 4) return null;
      const perm = n.attrs.ints('perm')?.join(',');
      if (perm === '0,3,1,2') return nhwc(values.get(n.inputs[0]) as tf.Tensor4D);
      if (perm === '0,2,3,1') return { layout: 'nchw', value: values.getNhwc(n.inputs[0])! };
      return null;
    }
  }
  // Arithmetic goes channels-last when any of its inputs is held so (broadcasting() checks).
  if (BROADCASTING.has(n.op)) return broadcasting(n, values, ctx);
  // The rest only when their (first) input already is.
  if (!rank4f || !values.hasNhwc(n.inputs[0])) return null;
  const xn = values.getNhwc(n.inputs[0])!;
  if (ELEMENTWISE.has(n.op)) return nhwc(OPS[n.op](ctx([xn, ...rest()]))[0] as tf.Tensor4D);
  switch (n.op) {
    case 'BatchNormalization':
      return nhwc(batchNormOn(ctx([xn, ...rest()]), xn, [-1]) as tf.Tensor4D);
    case 'GlobalAveragePool':
      return nhwc(tf.mean(xn, [1, 2], true) as tf.Tensor4D);
    case 'GlobalMaxPool':
      return nhwc(tf.max(xn, [1, 2], true) as tf.Tensor4D);
    case 'Concat': {
      const axis = n.attrs.int('axis', 0);
      if (axis !== 1 && axis !== -3) return null;
      const parts = n.inputs.filter((i) => i).map((i) => values.info(i));
      if (parts.some((p) => !p || p.shape.length !== 4 || p.dtype !== 'float32')) return null;
      const xs = n.inputs.filter((i) => i).map((i) => values.getNhwc(i)!).filter((t) => t.size > 0);
      if (xs.length < 2) return null;
      return nhwc(tf.concat(xs, 3) as tf.Tensor4D);
    }
  }
  return null;
}

const nhwc = (value: tf.Tensor4D): LayoutResult => ({ layout: 'nhwc', value });

/**
 * Add/Sub/Mul/Div/Sum/Max/Min whose result is rank 4 and one of whose inputs is held channels-last: every input
 * is brought to the NHWC axis order (a [N,C,1,1] or [C,1,1] operand by a reshape, a scalar as it is).
 */
function broadcasting(n: NodeLike, values: LayoutValues, ctx: (inputs: (tf.Tensor | undefined)[]) => OpCtx): LayoutResult | null {
  const names = n.inputs;
  if (names.some((i) => !i) || !names.some((i) => values.hasNhwc(i))) return null;
  const infos = names.map((i) => values.info(i)!);
  if (infos.some((p) => p.dtype !== 'float32' || p.shape.length > 4) || Math.max(...infos.map((p) => p.shape.length)) !== 4) return null;
  const ins = names.map((name, k) => {
    const { shape } = infos[k];
    if (values.hasNhwc(name)) return values.getNhwc(name)!;
    const t = values.get(name)!;
    if (shape.length === 0 || t.size === 1) return t;
    const [a, b, h, w] = [...new Array(4 - shape.length).fill(1), ...shape];
    if (h === 1 && w === 1) return tf.reshape(t, [a, 1, 1, b]);
    return shape.length === 4 ? values.getNhwc(name)! : tf.transpose(tf.reshape(t, [a, b, h, w]), [0, 2, 3, 1]);
  });
  return nhwc(OPS[n.op](ctx(ins))[0] as tf.Tensor4D);
}
