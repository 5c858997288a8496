/**
 * Keras layers that TensorFlow.js lacks or gets wrong, as custom tfjs layers registered for deserialisation
 * (importing this file registers them). Each follows Keras' own call():
 *  - Normalization: (x - mean) / max(sqrt(variance), 1e-7) (or the inverse), mean/variance from the config or from
 *    the adapted weights (mean, variance, count).
 *  - Identity: returns its input. Its Keras name clashes with tfjs' Identity *initializer*, so the config's layer
 *    class is renamed to KERAS_IDENTITY before deserialising (keras.ts).
 *  - Resizing: tf.image.resize as Keras calls it (half-pixel centres; crop_to_aspect_ratio, pad_to_aspect_ratio).
 *    tfjs' own Resizing aligns corners and ignores crop_to_aspect_ratio, so it is replaced.
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
    if (args.dataFormat === 'channels_first') throw new Error('Resizing with data_format "channels_first" is not supported');
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

for (const cls of [KerasNormalization, KerasIdentity, KerasResizing]) tf.serialization.registerClass(cls as unknown as tf.serialization.SerializableConstructor<tf.serialization.Serializable>);

/**
 * Keras 3 layers still not implemented, with what they are: named in the error so the user knows it is the layer,
 * not the file, that is the problem.
 */
export const KNOWN_MISSING: Record<string, string> = {
  MultiHeadAttention: 'attention',
  EinsumDense: 'an einsum projection',
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
