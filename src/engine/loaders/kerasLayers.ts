/**
 * Keras layers that TensorFlow.js lacks or gets wrong, as custom tfjs layers registered for deserialisation
 * (importing this file registers them). Each follows Keras' own call():
 *  - Normalization: (x - mean) / max(sqrt(variance), 1e-7) (or the inverse), mean/variance from the config or from
 *    the adapted weights (mean, variance, count).
 *  - Identity: returns its input. Its Keras name clashes with tfjs' Identity *initializer*, so the config's layer
 *    class is renamed to KERAS_IDENTITY before deserialising (keras.ts).
 *  - Resizing: tf.image.resize as Keras calls it (half-pixel centres; crop_to_aspect_ratio, pad_to_aspect_ratio).
 *    tfjs' own Resizing aligns corners and ignores crop_to_aspect_ratio, so it is replaced.
 *  - EinsumDense: einsum(equation, x, kernel) + bias as one matMul between transposes and reshapes.
 *  - MultiHeadAttention (self- or cross-attention without masks; see the class).
 * Layers that are still missing are named by keras.ts's error ("unsupported Keras layer …").
 */
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';

type Kwargs = Record<string, unknown>;
type Shape = (number | null)[];
const EPSILON = 1e-7;

function one(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
  return Array.isArray(inputs) ? inputs[0] : inputs;
}
function oneShape(s: Shape | Shape[]): Shape {
  return (Array.isArray(s[0]) ? s[0] : s) as Shape;
}

interface NormalizationArgs {
  name?: string;
  axis?: number | number[] | null;
  mean?: number | number[] | null;
  variance?: number | number[] | null;
  invert?: boolean;
}

export class KerasNormalization extends tfl.layers.Layer {
  static className = 'Normalization';
  private readonly axisArg: number | number[] | null;
  private readonly meanArg: number | number[] | null;
  private readonly varianceArg: number | number[] | null;
  private readonly invert: boolean;
  private broadcastShape: number[] = [];
  private meanW?: tfl.LayerVariable;
  private varianceW?: tfl.LayerVariable;

  constructor(args: NormalizationArgs) {
    super(args as unknown as ConstructorParameters<typeof tfl.layers.Layer>[0]);
    this.axisArg = args.axis === undefined ? -1 : args.axis;
    this.meanArg = args.mean ?? null;
    this.varianceArg = args.variance ?? null;
    this.invert = !!args.invert;
    if ((this.meanArg === null) !== (this.varianceArg === null)) throw new Error('Normalization needs both mean and variance, or neither');
  }

  override build(inputShape: Shape | Shape[]): void {
    const shape = oneShape(inputShape);
    const rank = shape.length;
    const axes = this.axisArg === null ? [] : (Array.isArray(this.axisArg) ? this.axisArg : [this.axisArg]).map((a) => (a < 0 ? a + rank : a));
    this.broadcastShape = shape.map((d, i) => (axes.includes(i) ? (d ?? 1) : 1));
    const keep = axes.map((a) => shape[a] ?? 1);
    if (this.meanArg === null) {
      const init = (v: number) => tfl.initializers.constant({ value: v });
      this.meanW = this.addWeight('mean', keep, 'float32', init(0), undefined, false);
      this.varianceW = this.addWeight('variance', keep, 'float32', init(1), undefined, false);
      this.addWeight('count', [], 'float32', init(0), undefined, false);
    }
    this.built = true;
  }

  override computeOutputShape(inputShape: Shape | Shape[]): Shape | Shape[] {
    return inputShape;
  }

  override call(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
    return tf.tidy(() => {
      const x = one(inputs);
      const mean = this.meanW ? tf.reshape(this.meanW.read(), this.broadcastShape) : tf.reshape(tf.tensor(this.meanArg as number | number[]), Array.isArray(this.meanArg) ? this.broadcastShape : []);
      const variance = this.varianceW ? tf.reshape(this.varianceW.read(), this.broadcastShape) : tf.reshape(tf.tensor(this.varianceArg as number | number[]), Array.isArray(this.varianceArg) ? this.broadcastShape : []);
      const std = tf.maximum(tf.sqrt(variance), EPSILON);
      return this.invert ? tf.add(mean, tf.mul(x, std)) : tf.div(tf.sub(x, mean), std);
    });
  }

  override getConfig(): tf.serialization.ConfigDict {
    return { ...super.getConfig(), axis: this.axisArg, mean: this.meanArg, variance: this.varianceArg, invert: this.invert };
  }
}

/** The class name Keras' Identity layer is deserialised under (see the file comment). */
export const KERAS_IDENTITY = 'KerasIdentityLayer';

export class KerasIdentity extends tfl.layers.Layer {
  static className = KERAS_IDENTITY;
  override getClassName(): string {
    return 'Identity';
  }
  override computeOutputShape(inputShape: Shape | Shape[]): Shape | Shape[] {
    return inputShape;
  }
  override call(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
    return tf.clone(one(inputs));
  }
}

interface ResizingArgs {
  name?: string;
  height: number;
  width: number;
  interpolation?: string;
  cropToAspectRatio?: boolean;
  padToAspectRatio?: boolean;
  fillValue?: number;
  dataFormat?: string;
  antialias?: boolean;
}

export class KerasResizing extends tfl.layers.Layer {
  static className = 'Resizing';
  private readonly height: number;
  private readonly width: number;
  private readonly interpolation: 'bilinear' | 'nearest';
  private readonly crop: boolean;
  private readonly pad: boolean;
  private readonly fillValue: number;

  constructor(args: ResizingArgs) {
    super(args as unknown as ConstructorParameters<typeof tfl.layers.Layer>[0]);
    this.height = args.height;
    this.width = args.width;
    const interp = args.interpolation ?? 'bilinear';
    if (interp !== 'bilinear' && interp !== 'nearest') throw new Error(`Resizing with interpolation "${interp}" is not supported (bilinear and nearest are)`);
    if (args.antialias) throw new Error('Resizing with antialias=True is not supported');
    // (tfjs camel-cases string values while deserialising: "channels_first" arrives as "channelsFirst")
    if (args.dataFormat === 'channels_first' || args.dataFormat === 'channelsFirst') throw new Error('Resizing with data_format "channels_first" is not supported');
    this.interpolation = interp;
    this.crop = !!args.cropToAspectRatio;
    this.pad = !!args.padToAspectRatio;
    this.fillValue = args.fillValue ?? 0;
  }

  override computeOutputShape(inputShape: Shape | Shape[]): Shape | Shape[] {
    const s = oneShape(inputShape);
    return s.length === 4 ? [s[0], this.height, this.width, s[3]] : [this.height, this.width, s[2]];
  }

  override call(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
    return tf.tidy(() => {
      let x = one(inputs);
      const batched = x.rank === 4;
      let x4 = (batched ? x : tf.expandDims(x, 0)) as tf.Tensor4D;
      const [, h, w] = x4.shape;
      if (this.crop) {
        // keras.src.ops.image: the largest centred box of the target's aspect ratio
        const cropH = Math.max(Math.min(h, Math.floor((w * this.height) / this.width)), 1);
        const cropW = Math.max(Math.min(w, Math.floor((h * this.width) / this.height)), 1);
        const top = Math.floor((h - cropH) / 2);
        const left = Math.floor((w - cropW) / 2);
        x4 = tf.slice(x4, [0, top, left, 0], [-1, cropH, cropW, -1]);
      } else if (this.pad) {
        const padH = Math.max(h, Math.floor((w * this.height) / this.width));
        const padW = Math.max(w, Math.floor((h * this.width) / this.height));
        const top = Math.floor((padH - h) / 2);
        const left = Math.floor((padW - w) / 2);
        x4 = tf.pad(x4, [[0, 0], [top, padH - h - top], [left, padW - w - left], [0, 0]], this.fillValue);
      }
      const size: [number, number] = [this.height, this.width];
      const y = this.interpolation === 'bilinear' ? tf.image.resizeBilinear(x4, size, false, true) : tf.image.resizeNearestNeighbor(x4, size, false, true);
      x = batched ? y : tf.squeeze(y, [0]);
      return x;
    });
  }

  override getConfig(): tf.serialization.ConfigDict {
    return { ...super.getConfig(), height: this.height, width: this.width, interpolation: this.interpolation, cropToAspectRatio: this.crop, padToAspectRatio: this.pad, fillValue: this.fillValue };
  }
}

interface EinsumDenseArgs {
  name?: string;
  equation: string;
  outputShape: number | (number | null)[];
  activation?: string | null;
  biasAxes?: string | null;
}

/** The parts of an EinsumDense equation "ab,bc->ac": input, kernel and output letters (a leading "..." expanded). */
function parseEinsum(equation: string, inputRank: number): { input: string; kernel: string; output: string } {
  const m = /^([a-zA-Z.]+),([a-zA-Z]+)->([a-zA-Z.]+)$/.exec(equation.replace(/\s+/g, ''));
  if (!m) throw new Error(`EinsumDense equation "${equation}" is not of the form "ab,bc->ac"`);
  let [, input, kernel, output] = m;
  if (input.includes('...') || output.includes('...')) {
    if (!input.startsWith('...') || !output.startsWith('...')) throw new Error(`EinsumDense equation "${equation}": only a leading "..." is supported`);
    const free = [...'ABCDEFGHIJKLMNOPQRSTUVWXYZ'].filter((c) => !equation.includes(c));
    const n = inputRank - (input.length - 3);
    const elided = free.slice(0, n).join('');
    input = elided + input.slice(3);
    output = elided + output.slice(3);
  }
  return { input, kernel, output };
}

/**
 * Keras' EinsumDense: y = einsum(equation, x, kernel) + bias, computed as transpose, reshape and one matMul (so
 * gradients flow): the input's letters split into kept ones (also in the output) and contracted ones (in the kernel).
 * The kernel's shape follows from the equation, the input shape and output_shape as in Keras' _analyze_einsum_string.
 */
export class KerasEinsumDense extends tfl.layers.Layer {
  static className = 'EinsumDense';
  private readonly equation: string;
  private readonly outputShapeArg: (number | null)[];
  private readonly activationName: string;
  private readonly biasAxes: string | null;
  private spec?: { input: string; kernel: string; output: string; fullOutput: number[]; kernelShape: number[]; biasShape?: number[] };
  private kernel?: tfl.LayerVariable;
  private bias?: tfl.LayerVariable;

  constructor(args: EinsumDenseArgs) {
    super(args as unknown as ConstructorParameters<typeof tfl.layers.Layer>[0]);
    this.equation = args.equation;
    this.outputShapeArg = typeof args.outputShape === 'number' ? [args.outputShape] : [...args.outputShape];
    this.activationName = args.activation ?? 'linear';
    if (this.activationName !== 'linear' && !['relu', 'gelu', 'sigmoid', 'tanh', 'softmax', 'swish', 'silu'].includes(this.activationName)) {
      throw new Error(`EinsumDense activation "${this.activationName}" is not supported`);
    }
    this.biasAxes = args.biasAxes ?? null;
  }

  private analyse(inputShape: Shape) {
    const { input, kernel, output } = parseEinsum(this.equation, inputShape.length);
    if (input.length !== inputShape.length) throw new Error(`EinsumDense equation "${this.equation}" does not fit an input of rank ${inputShape.length}`);
    // output_shape leaves out the batch axis (and the axes a leading "..." stands for), as Keras does
    const given = [...Array(Math.max(0, output.length - this.outputShapeArg.length)).fill(null), ...this.outputShapeArg] as (number | null)[];
    if (given.length !== output.length) throw new Error(`EinsumDense output_shape [${this.outputShapeArg}] does not fit "${this.equation}"`);
    const fullOutput = [...output].map((c, i) => {
      const j = input.indexOf(c);
      if (j >= 0) return inputShape[j] ?? -1;
      const d = given[i];
      if (d == null) throw new Error(`EinsumDense output_shape leaves "${c}" unknown`);
      return d;
    });
    const kernelShape = [...kernel].map((c) => {
      const j = input.indexOf(c);
      if (j >= 0) {
        const d = inputShape[j];
        if (d == null) throw new Error(`EinsumDense contracts an axis of unknown size ("${c}")`);
        return d;
      }
      const k = output.indexOf(c);
      if (k < 0) throw new Error(`EinsumDense kernel letter "${c}" is neither in the input nor in the output`);
      return fullOutput[k];
    });
    for (const c of kernel) if (input.includes(c) && output.includes(c)) throw new Error(`EinsumDense letter "${c}" in input, kernel and output is not supported`);
    let biasShape: number[] | undefined;
    if (this.biasAxes) {
      const first = Math.min(...[...this.biasAxes].map((c) => output.indexOf(c)));
      if (first < 0) throw new Error(`EinsumDense bias_axes "${this.biasAxes}" not in the output`);
      biasShape = [...output.slice(first)].map((c, i) => (this.biasAxes!.includes(c) ? fullOutput[first + i] : 1));
    }
    return { input, kernel, output, fullOutput, kernelShape, biasShape };
  }

  override build(inputShape: Shape | Shape[]): void {
    this.spec = this.analyse(oneShape(inputShape));
    const zeros = tfl.initializers.zeros();
    this.kernel = this.addWeight('kernel', this.spec.kernelShape, 'float32', tfl.initializers.glorotUniform({}), undefined, true);
    if (this.spec.biasShape) this.bias = this.addWeight('bias', this.spec.biasShape, 'float32', zeros, undefined, true);
    this.built = true;
  }

  override computeOutputShape(inputShape: Shape | Shape[]): Shape | Shape[] {
    const s = oneShape(inputShape);
    const spec = this.spec ?? this.analyse(s);
    return [...spec.output].map((c, i) => (spec.input.includes(c) ? s[spec.input.indexOf(c)] : spec.fullOutput[i]));
  }

  override call(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
    return tf.tidy(() => {
      const x = one(inputs);
      const spec = this.spec!;
      const { input, kernel, output } = spec;
      const kept = [...input].filter((c) => output.includes(c));
      const contracted = [...input].filter((c) => kernel.includes(c));
      const dropped = [...input].filter((c) => !output.includes(c) && !kernel.includes(c));
      const outK = [...kernel].filter((c) => !input.includes(c));
      const xs = x.shape;
      let xt = tf.transpose(x, [...kept, ...contracted, ...dropped].map((c) => input.indexOf(c)));
      // a letter only in the input is summed over (einsum semantics)
      if (dropped.length) xt = tf.sum(xt, dropped.map((_, i) => kept.length + contracted.length + i));
      const keptDims = kept.map((c) => xs[input.indexOf(c)]);
      const cSize = contracted.reduce((a, c) => a * xs[input.indexOf(c)], 1);
      const x2 = tf.reshape(xt, [-1, cSize]);
      const w = this.kernel!.read();
      const wt = tf.transpose(w, [...contracted, ...outK].map((c) => kernel.indexOf(c)));
      const oDims = outK.map((c) => spec.kernelShape[kernel.indexOf(c)]);
      const w2 = tf.reshape(wt, [cSize, oDims.reduce((a, b) => a * b, 1)]);
      const y2 = tf.matMul(x2, w2);
      const order = [...kept, ...outK];
      let y = tf.reshape(y2, [...keptDims, ...oDims]);
      y = tf.transpose(y, [...output].map((c) => order.indexOf(c)));
      if (this.bias) y = tf.add(y, this.bias.read());
      switch (this.activationName) {
        case 'relu': return tf.relu(y);
        case 'sigmoid': return tf.sigmoid(y);
        case 'tanh': return tf.tanh(y);
        case 'softmax': return tf.softmax(y);
        case 'swish':
        case 'silu': return tf.mul(y, tf.sigmoid(y));
        case 'gelu': return tf.mul(tf.mul(y, 0.5), tf.add(1, tf.erf(tf.div(y, Math.SQRT2))));
        default: return y;
      }
    });
  }

  override getConfig(): tf.serialization.ConfigDict {
    return { ...super.getConfig(), equation: this.equation, outputShape: this.outputShapeArg, activation: this.activationName, biasAxes: this.biasAxes };
  }
}

interface MultiHeadAttentionArgs {
  name?: string;
  numHeads: number;
  keyDim: number;
  valueDim?: number | null;
  useBias?: boolean;
  outputShape?: number | number[] | null;
  attentionAxes?: number | number[] | null;
}

/**
 * Keras' MultiHeadAttention at inference (no mask, no dropout), called as mha(query, value) with key = value:
 * softmax(q k^T / sqrt(key_dim)) v per head, then the output projection. Attention runs over every axis between
 * the batch and the features (attention_axes=None), flattened. Weights in Keras' order: query kernel [D, H, K] and
 * bias [H, K], key, value, then the output kernel [H, V, D'] and bias [D'] (keras.ts finds Keras 3's
 * query_dense/key_dense/value_dense/output_dense groups).
 */
export class KerasMultiHeadAttention extends tfl.layers.Layer {
  static className = 'MultiHeadAttention';
  /** The sub-layer groups of a Keras 3 weights file, in weight order. */
  static readonly KERAS3_SUBLAYERS = ['query_dense', 'key_dense', 'value_dense', 'output_dense'];
  private readonly heads: number;
  private readonly keyDim: number;
  private readonly valueDim: number;
  private readonly useBias: boolean;
  private readonly outputShapeArg: number | number[] | null;
  private w: tfl.LayerVariable[] = [];
  private outDim = 0;

  constructor(args: MultiHeadAttentionArgs) {
    super(args as unknown as ConstructorParameters<typeof tfl.layers.Layer>[0]);
    this.heads = args.numHeads;
    this.keyDim = args.keyDim;
    this.valueDim = args.valueDim ?? args.keyDim;
    this.useBias = args.useBias ?? true;
    this.outputShapeArg = args.outputShape ?? null;
    if (Array.isArray(this.outputShapeArg) && this.outputShapeArg.length !== 1) throw new Error('MultiHeadAttention with a multi-axis output_shape is not supported');
    if (args.attentionAxes != null) throw new Error('MultiHeadAttention with attention_axes set is not supported (the default, every axis between batch and features, is)');
  }

  private shapes(inputShape: Shape | Shape[]): { query: Shape; value: Shape } {
    const list = (Array.isArray(inputShape[0]) ? inputShape : [inputShape]) as Shape[];
    return { query: list[0], value: list[1] ?? list[0] };
  }

  override build(inputShape: Shape | Shape[]): void {
    const { query, value } = this.shapes(inputShape);
    const dq = query[query.length - 1]!;
    const dv = value[value.length - 1]!;
    this.outDim = this.outputShapeArg == null ? dq : Array.isArray(this.outputShapeArg) ? this.outputShapeArg[0] : this.outputShapeArg;
    const glorot = tfl.initializers.glorotUniform({});
    const zeros = tfl.initializers.zeros();
    const add = (name: string, shape: number[], bias: boolean) => this.addWeight(name, shape, 'float32', bias ? zeros : glorot, undefined, true);
    const [H, K, V] = [this.heads, this.keyDim, this.valueDim];
    this.w = [];
    for (const [name, d, k] of [['query', dq, K], ['key', dv, K], ['value', dv, V]] as const) {
      this.w.push(add(`${name}/kernel`, [d, H, k], false));
      if (this.useBias) this.w.push(add(`${name}/bias`, [H, k], true));
    }
    this.w.push(add('attention_output/kernel', [H, V, this.outDim], false));
    if (this.useBias) this.w.push(add('attention_output/bias', [this.outDim], true));
    this.built = true;
  }

  override computeOutputShape(inputShape: Shape | Shape[]): Shape | Shape[] {
    const { query } = this.shapes(inputShape);
    const out = this.outputShapeArg == null ? query[query.length - 1] : Array.isArray(this.outputShapeArg) ? this.outputShapeArg[0] : this.outputShapeArg;
    return [...query.slice(0, -1), out];
  }

  override call(inputs: tf.Tensor | tf.Tensor[]): tf.Tensor {
    return tf.tidy(() => {
      const list = Array.isArray(inputs) ? inputs : [inputs];
      const query = list[0];
      const value = list[1] ?? list[0];
      const [H, K, V] = [this.heads, this.keyDim, this.valueDim];
      const b = query.shape[0];
      const qShape = query.shape;
      const flat = (t: tf.Tensor) => tf.reshape(t, [b, -1, t.shape[t.shape.length - 1]]) as tf.Tensor3D;
      const [q3, v3] = [flat(query), flat(value)];
      let i = 0;
      const next = () => this.w[i++].read();
      // x [B, T, D] -> [B, H, T, k]
      const project = (x: tf.Tensor3D, k: number) => {
        const kernel = next();
        let y = tf.reshape(tf.matMul(tf.reshape(x, [-1, x.shape[2]]), tf.reshape(kernel, [x.shape[2], H * k])), [b, x.shape[1], H, k]);
        if (this.useBias) y = tf.add(y, next());
        return tf.transpose(y, [0, 2, 1, 3]) as tf.Tensor4D;
      };
      const q = tf.mul(project(q3, K), 1 / Math.sqrt(K));
      const k = project(v3, K);
      const v = project(v3, V);
      const scores = tf.softmax(tf.matMul(q, k, false, true)); // [B, H, T, S], over S
      const ctx = tf.transpose(tf.matMul(scores, v), [0, 2, 1, 3]); // [B, T, H, V]
      const wo = next();
      let out = tf.matMul(tf.reshape(ctx, [-1, H * V]), tf.reshape(wo, [H * V, this.outDim]));
      if (this.useBias) out = tf.add(out, next());
      return tf.reshape(out, [...qShape.slice(0, -1), this.outDim]);
    });
  }

  override getConfig(): tf.serialization.ConfigDict {
    return { ...super.getConfig(), numHeads: this.heads, keyDim: this.keyDim, valueDim: this.valueDim, useBias: this.useBias, outputShape: this.outputShapeArg };
  }
}

for (const cls of [KerasNormalization, KerasIdentity, KerasResizing, KerasEinsumDense, KerasMultiHeadAttention]) tf.serialization.registerClass(cls as unknown as tf.serialization.SerializableConstructor<tf.serialization.Serializable>);

/**
 * Keras 3 layers still not implemented, with what they are: named in the error so the user knows it is the layer,
 * not the file, that is the problem.
 */
export const KNOWN_MISSING: Record<string, string> = {
  GroupQueryAttention: 'attention',
  Attention: 'attention',
  AdditiveAttention: 'attention',
  GroupNormalization: 'a normalisation',
  UnitNormalization: 'a normalisation',
  SpectralNormalization: 'a weight wrapper',
  TorchModuleWrapper: 'a wrapped PyTorch module',
  TFSMLayer: 'a wrapped SavedModel',
  Lambda: 'arbitrary Python code',
};
