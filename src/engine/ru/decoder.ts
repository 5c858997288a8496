/**
 * The decoder g of Reconstruction Uncertainty (paper Sec. 3.2 and the experiments paragraph of Sec. 4): it maps a
 * layer's feature back to the input image, x̂ = g(f), and is trained with the MSE in [0,1]-pixel units.
 *
 *   feature ─ standardize ─┬─ (vector only) dense ─ reshape to a small map ─┐
 *                          └──────────────────────────────────────────────┴─ u upsampling blocks
 *           ─ (blocks − u) residual blocks ─ 1×1 conv to the image channels ─ crop or resize to H×W
 *           (─ + a linear map of the standardised vector, for a vector feature small enough)  ─ clamp to [0,1]
 *
 * The clamp keeps x̂ inside the [0,1] pixel range: no pixel's RU can exceed ½·log(max(x, 1 − x)²) + C, whatever
 * noise the RU search puts into the feature. An unbounded linear head (format 3) let the search find the
 * off-manifold features where g extrapolates and put the noise there (RU of an identity layer at +3.3 nats/pixel).
 * The clamp is applied outside the tfjs model (boundDecoderOutput), so the saved model stays stock tfjs Layers:
 * with its true gradient (0 outside the range) in the RU search, with a straight-through one in training so an
 * output outside the range is still pulled back.
 *
 * The linear map of a vector feature lets g represent a linear inverse exactly (an identity or orthogonal layer,
 * a linear bottleneck), which the conv tracks, starting from a 1×1 map, learn only approximately; it is there when
 * its weights (vector length × H·W·C) fit MAX_TO_MAP_WEIGHTS, and starts at zero. Only with noisy training: fitted
 * to the clean features of a low-dimensional image set, a full linear map is free in every direction off it and
 * amplifies exactly the noise the RU search injects (measured: an identity layer's RU at +0.31 nats with it, trained
 * clean, against −0.79 trained noisy; the closed form is −0.68).
 *
 * Upsampling block (the paper's "two transposed conv-layers on two parallel tracks of the residual block"):
 *   main:     conv2dTranspose 3×3 stride 2 → ReLU → conv 3×3
 *   shortcut: conv2dTranspose 2×2 stride 2 (2×2, not 1×1: a 1×1 stride-2 transposed conv writes only every
 *             other pixel, a checkerboard the main track would have to fill in)
 *   sum → ReLU.
 * Residual block: conv 3×3 → ReLU → conv 3×3, plus the identity (a 1×1 conv when the channel count changes,
 * which only happens when the very first block does not upsample), sum → ReLU.
 *
 * The standardisation is a BatchNormalization layer frozen in inference mode (trainable: false, never called
 * with training: true): y = (f − mean) · gamma + beta with movingVariance = 1, epsilon = 0, gamma = 1/std, beta = 0, so it is
 * saved and loaded with the model's own weights and any tfjs Layers loader reproduces g exactly.
 *
 * Weights are initialised from the engine's seeded Rng (not tfjs initialisers), so a seed gives the same
 * decoder on every backend.
 */
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';
import { UserError } from '../errors';
import type { DecoderInfo, DecoderSettings } from '../report';
import { Rng, mixSeed } from '../rng';

/**
 * Bumped whenever the architecture, initialisation, training procedure or cache layout changes: part of the
 * cache key, so decoders cached by an older engine are not reused.
 */
export const DECODER_FORMAT_VERSION = 4;

export interface ImageGeometry {
  height: number;
  width: number;
  channels: number;
}

/** What the decoder looks like for a feature shape and an image size (also used by the tests and the report). */
export interface DecoderGeometry {
  kind: 'map' | 'vector';
  /** Spatial size of the map the blocks start from (the feature itself, or the dense layer's reshaped output). */
  base: [number, number];
  /** Channels of that map: the feature's, or for a vector as many as keep its length (at least the width). */
  baseChannels: number;
  /** x2 upsampling stages, one per upsampling block. */
  upsamplingBlocks: number;
  /** Plain residual blocks after the upsampling ones. */
  plainBlocks: number;
  /** Spatial size after the upsampling blocks. */
  upsampled: [number, number];
  /**
   * How the upsampled map is brought to exactly H×W: none (already that size); crop (keep the top-left H×W: the
   * map is ceil(H / 2^u) like a chain of 'same'-padded stride-2 layers, so feature pixel i sits at 2^u·i); resize
   * (bilinear: any other ratio, e.g. 5×5 from a 28×28 image, where a crop would shift content position-dependently).
   */
  fit: 'none' | 'crop' | 'resize';
}

/** The trained (or loaded) decoder, as trainDecoder returns it and the cache stores it. */
export interface TrainedDecoder {
  /**
   * x̂ = g(f): a batch of features [B, ...featureShape] (the layer's raw output) to NHWC pixels in [0,1] (the model's
   * output clamped: boundDecoderOutput); differentiable in f.
   */
  decoder: (f: tf.Tensor) => tf.Tensor4D;
  /** The tfjs Layers model (standardisation included). Owned by this object: freed by dispose(). */
  model: tfl.LayersModel;
  info: DecoderTrainingInfo;
  /** The frozen per-channel standardisation (also inside the model, as the layer "standardize"). */
  standardization: { mean: number[]; std: number[] };
  featureShape: number[];
  image: ImageGeometry;
  dispose(): void;
}

/** DecoderInfo without what the caller knows (the cache key and whether it came from the cache). */
export type DecoderTrainingInfo = Omit<DecoderInfo, 'key' | 'cached'>;

const STANDARDIZE = 'standardize';
const TO_PIXELS = 'to_pixels';
const LINEAR_SKIP = 'linear_skip';
const RESIZE_ROWS = 'resize_rows';
const RESIZE_COLS = 'resize_cols';

function checkFeatureShape(featureShape: readonly (number | null)[]): number[] {
  const shape = featureShape.map((d) => (d === null ? NaN : d));
  if (shape.length !== 1 && shape.length !== 3) {
    throw new UserError(
      `RU needs a feature map or a vector, and this layer's output is [${featureShape.join(', ')}] (rank ${featureShape.length}; ` +
        'a decoder takes rank 3, height x width x channels, or rank 1); analyse RU at another layer',
    );
  }
  if (!shape.every((d) => Number.isInteger(d) && d > 0)) {
    throw new UserError(`RU needs a layer output of known size, got [${featureShape.join(', ')}]`);
  }
  return shape;
}

function checkImage(image: ImageGeometry): void {
  const { height, width, channels } = image;
  if (![height, width, channels].every((d) => Number.isInteger(d) && d > 0)) {
    throw new Error(`decoder: bad image size ${height}x${width}x${channels}`);
  }
}

/** Smallest u with side·2^u >= target for both sides. */
function stagesFor(h: number, w: number, H: number, W: number): number {
  let u = 0;
  while (h * 2 ** u < H || w * 2 ** u < W) u++;
  return u;
}

export function decoderGeometry(featureShape: readonly (number | null)[], image: ImageGeometry, blocks: number, width = 16): DecoderGeometry {
  const shape = checkFeatureShape(featureShape);
  checkImage(image);
  const { height: H, width: W } = image;
  let kind: 'map' | 'vector';
  let base: [number, number];
  let u: number;
  if (shape.length === 3) {
    kind = 'map';
    base = [shape[0], shape[1]];
    u = stagesFor(shape[0], shape[1], H, W);
  } else {
    // A vector becomes a map of about 8×8 at most (H/8 for images up to 64 pixels, fewer cells for tiny images):
    // the dense layer's size is vector length × cells × width, which must stay small for 1000-class logits.
    kind = 'vector';
    u = Math.max(3, Math.ceil(Math.log2(Math.max(H, W) / 8)));
    base = [Math.ceil(H / 2 ** u), Math.ceil(W / 2 ** u)];
  }
  // When the layer's stride needs more x2 stages than there are blocks, extra upsampling blocks are added (the
  // architecture then has u blocks, all upsampling): a decoder that cannot reach the image size is no decoder.
  const upsampled: [number, number] = [base[0] * 2 ** u, base[1] * 2 ** u];
  let fit: DecoderGeometry['fit'];
  if (upsampled[0] === H && upsampled[1] === W) fit = 'none';
  else if (upsampled[0] >= H && upsampled[1] >= W && base[0] === Math.ceil(H / 2 ** u) && base[1] === Math.ceil(W / 2 ** u)) fit = 'crop';
  else fit = 'resize';
  return { kind, base, baseChannels: kind === 'map' ? shape[2] : vectorMapChannels(shape[0], base[0] * base[1], width), upsamplingBlocks: u, plainBlocks: Math.max(0, blocks - u), upsampled, fit };
}

/** Dense weights allowed for a vector's first layer (vector length x cells x channels): 32 MB of floats. */
const MAX_TO_MAP_WEIGHTS = 2 ** 23;

/** Whether a vector feature of length d gets the linear map to the image (see the top of this file). */
export function hasLinearSkip(d: number, image: ImageGeometry): boolean {
  return d * image.height * image.width * image.channels <= MAX_TO_MAP_WEIGHTS;
}

/** x̂ = clip(z, 0, 1) with its true gradient (0 outside the range): what the RU search differentiates. */
export function boundDecoderOutput(z: tf.Tensor): tf.Tensor {
  return tf.clipByValue(z, 0, 1);
}

/**
 * The same clamp with a straight-through gradient (the identity), for training: an output outside the range still
 * gets the gradient that pulls it back towards its target.
 */
export const boundDecoderOutputForTraining = tf.customGrad(((z: tf.Tensor) => ({
  value: tf.clipByValue(z, 0, 1),
  gradFunc: (dy: tf.Tensor) => dy,
})) as unknown as Parameters<typeof tf.customGrad>[0]) as (z: tf.Tensor) => tf.Tensor;

/**
 * Channels of the map a vector of length d is first mapped to: enough that the map holds the whole vector
 * (d / cells, so a 64-vector on a 1x1 map is not squeezed through `width` numbers), at least `width`, at most 256,
 * and small enough that the dense layer stays under MAX_TO_MAP_WEIGHTS.
 */
export function vectorMapChannels(d: number, cells: number, width: number): number {
  const wanted = Math.min(256, Math.max(width, Math.ceil(d / cells)));
  const affordable = Math.floor(MAX_TO_MAP_WEIGHTS / (d * cells));
  return Math.max(width, Math.min(wanted, affordable));
}

const apply = (layer: tfl.layers.Layer, x: tfl.SymbolicTensor | tfl.SymbolicTensor[]): tfl.SymbolicTensor => layer.apply(x) as tfl.SymbolicTensor;

/**
 * Builds g for a layer output of shape `featureShape` (without the batch: [h, w, c] or [d]) and an image of
 * `image` size. The standardisation starts as the identity (setStandardization sets it from training features)
 * and the output bias at 0.5 (setOutputBias sets the mean pixel).
 */
export function buildDecoder(featureShape: (number | null)[], image: ImageGeometry, s: DecoderSettings, seed: number): tfl.LayersModel {
  const geo = decoderGeometry(featureShape, image, s.blocks, s.width);
  const shape = checkFeatureShape(featureShape);
  const width = s.width;
  const conv = (name: string, filters: number, k: number) =>
    tfl.layers.conv2d({ name, filters, kernelSize: k, padding: 'same', kernelInitializer: 'zeros', biasInitializer: 'zeros' });
  const convT = (name: string, k: number) =>
    tfl.layers.conv2dTranspose({ name, filters: width, kernelSize: k, strides: 2, padding: 'same', kernelInitializer: 'zeros', biasInitializer: 'zeros' });
  const relu = (name: string) => tfl.layers.reLU({ name });

  const input = tfl.input({ shape, name: 'feature' });
  const standardized = apply(
    tfl.layers.batchNormalization({ name: STANDARDIZE, axis: -1, center: true, scale: true, epsilon: 0, trainable: false }),
    input,
  );
  let x = standardized;
  if (geo.kind === 'vector') {
    const [bh, bw] = geo.base;
    x = apply(tfl.layers.dense({ name: 'to_map', units: bh * bw * geo.baseChannels, kernelInitializer: 'zeros', biasInitializer: 'zeros' }), x);
    x = apply(tfl.layers.reshape({ name: 'to_map_reshape', targetShape: [bh, bw, geo.baseChannels] }), x);
  }
  let channels = geo.baseChannels;
  for (let i = 0; i < geo.upsamplingBlocks; i++) {
    const p = `up${i + 1}`;
    let m = apply(convT(`${p}_main_t`, 3), x);
    m = apply(relu(`${p}_main_relu`), m);
    m = apply(conv(`${p}_main_conv`, width, 3), m);
    const skip = apply(convT(`${p}_skip_t`, 2), x);
    x = apply(relu(`${p}_relu`), apply(tfl.layers.add({ name: `${p}_add` }), [m, skip]));
    channels = width;
  }
  for (let i = 0; i < geo.plainBlocks; i++) {
    const p = `res${i + 1}`;
    let m = apply(conv(`${p}_conv1`, width, 3), x);
    m = apply(relu(`${p}_relu1`), m);
    m = apply(conv(`${p}_conv2`, width, 3), m);
    const skip = channels === width ? x : apply(conv(`${p}_proj`, width, 1), x);
    x = apply(relu(`${p}_relu`), apply(tfl.layers.add({ name: `${p}_add` }), [m, skip]));
    channels = width;
  }
  // The 1x1 output conv comes before the crop or resize: both are linear and spatial, so they commute with it
  // (the resize weights of each output pixel sum to 1), and they then move image channels instead of `width`.
  x = apply(conv(TO_PIXELS, image.channels, 1), x);
  const { height: H, width: W } = image;
  if (geo.fit === 'crop') {
    x = apply(tfl.layers.cropping2D({ name: 'crop', cropping: [[0, geo.upsampled[0] - H], [0, geo.upsampled[1] - W]] }), x);
  } else if (geo.fit === 'resize') {
    // tfjs-layers' Resizing layer cannot be used in a functional model (its computeOutputShape drops the batch
    // axis), so the resize is two fixed linear maps along the rows and the columns: stock Permute and Dense layers,
    // loadable by any tfjs Layers loader. initWeights fills them with resizeMatrix; they are not trainable.
    x = apply(tfl.layers.permute({ name: 'resize_perm1', dims: [2, 3, 1] }), x); // [Sw, C, Sh]
    x = apply(tfl.layers.dense({ name: RESIZE_ROWS, units: H, useBias: false, trainable: false, kernelInitializer: 'zeros' }), x);
    x = apply(tfl.layers.permute({ name: 'resize_perm2', dims: [3, 2, 1] }), x); // [H, C, Sw]
    x = apply(tfl.layers.dense({ name: RESIZE_COLS, units: W, useBias: false, trainable: false, kernelInitializer: 'zeros' }), x);
    x = apply(tfl.layers.permute({ name: 'resize_perm3', dims: [1, 3, 2] }), x); // [H, W, C]
  }
  if (geo.kind === 'vector' && s.training === 'noisy' && hasLinearSkip(shape[0], image)) {
    let lin = apply(tfl.layers.dense({ name: LINEAR_SKIP, units: H * W * image.channels, kernelInitializer: 'zeros', biasInitializer: 'zeros', useBias: false }), standardized);
    lin = apply(tfl.layers.reshape({ name: `${LINEAR_SKIP}_reshape`, targetShape: [H, W, image.channels] }), lin);
    x = apply(tfl.layers.add({ name: `${LINEAR_SKIP}_add` }), [x, lin]);
  }
  const out = x;
  const model = tfl.model({ inputs: input, outputs: out, name: 'infodiscard_decoder' });
  initWeights(model, seed);
  return model;
}

/**
 * He-uniform kernels for layers followed by ReLU; the residual branch's last conv at half that (so the sum of
 * the two tracks starts near the He variance); LeCun for the linear dense layer; a small output layer (so g starts
 * near the mean image); zero biases except the output's 0.5.
 */
function initWeights(model: tfl.LayersModel, seed: number): void {
  const rng = new Rng(mixSeed(seed, 0xdec0de));
  for (const layer of model.layers) {
    const cls = layer.getClassName();
    if (cls !== 'Conv2D' && cls !== 'Conv2DTranspose' && cls !== 'Dense') continue;
    const ws = layer.getWeights();
    if (layer.name === RESIZE_ROWS || layer.name === RESIZE_COLS) {
      const [from, to] = ws[0].shape;
      const k = tf.tensor2d(resizeMatrix(from, to), [from, to]);
      layer.setWeights([k]);
      k.dispose();
      continue;
    }
    const values = ws.map((w, i) => {
      const n = w.size;
      const a = new Float32Array(n);
      if (i === 1) {
        a.fill(layer.name === TO_PIXELS ? 0.5 : 0);
        return tf.tensor(a, w.shape);
      }
      const sh = w.shape as number[];
      let fanIn: number;
      let gain = 2; // He
      if (cls === 'Conv2D') fanIn = sh[0] * sh[1] * sh[2];
      else if (cls === 'Conv2DTranspose') fanIn = (sh[0] * sh[1] * sh[3]) / 4; // stride 2: a quarter of the taps per output
      else {
        fanIn = sh[0];
        gain = 1;
      }
      if (/_conv2$|_main_conv$/.test(layer.name)) gain /= 2;
      if (layer.name === TO_PIXELS) gain = 0.01;
      const limit = Math.sqrt((3 * gain) / Math.max(1, fanIn));
      for (let j = 0; j < n; j++) a[j] = (2 * rng.uniform() - 1) * limit;
      return tf.tensor(a, w.shape);
    });
    layer.setWeights(values); // copies; getWeights() returned the variables themselves: not ours to dispose
    tf.dispose(values);
  }
}

/**
 * The [from, to] matrix of a 1-D linear resize: half-pixel centres like TF2's resize; when shrinking, the triangle
 * filter is widened to the scale (as PIL's bilinear), so every input row contributes. Every column sums to 1.
 */
export function resizeMatrix(from: number, to: number): Float32Array {
  const m = new Float32Array(from * to);
  const scale = from / to;
  const support = Math.max(1, scale);
  for (let i = 0; i < to; i++) {
    const c = Math.min(from - 1, Math.max(0, (i + 0.5) * scale - 0.5));
    let total = 0;
    for (let j = 0; j < from; j++) total += Math.max(0, 1 - Math.abs(j - c) / support);
    for (let j = 0; j < from; j++) m[j * to + i] = Math.max(0, 1 - Math.abs(j - c) / support) / total;
  }
  return m;
}

/** Sets the frozen standardisation y = (f − mean) / std (per channel: the last axis). */
export function setStandardization(model: tfl.LayersModel, mean: ArrayLike<number>, std: ArrayLike<number>): void {
  const layer = model.getLayer(STANDARDIZE);
  const n = mean.length;
  const gamma = new Float32Array(n);
  for (let i = 0; i < n; i++) gamma[i] = 1 / std[i];
  // Weight order of BatchNormalization: gamma, beta, movingMean, movingVariance. (center: false would leave
  // beta out, and tfjs's tape then records an undefined input of FusedBatchNorm, which breaks tf.grad.)
  const values = [tf.tensor1d(gamma), tf.zeros([n]), tf.tensor1d(Float32Array.from(mean)), tf.ones([n])];
  layer.setWeights(values);
  tf.dispose(values);
}

/** Sets the output layer's bias (per image channel), e.g. to the mean training pixel. */
export function setOutputBias(model: tfl.LayersModel, bias: ArrayLike<number>): void {
  const layer = model.getLayer(TO_PIXELS);
  const [kernel] = layer.getWeights(); // the variable itself (setWeights copies it onto itself)
  const b = tf.tensor1d(Float32Array.from(bias));
  layer.setWeights([kernel, b]);
  b.dispose();
}

/** Wraps a model into the TrainedDecoder shape (training and cache loading both end here). */
export function wrapDecoder(
  model: tfl.LayersModel,
  info: DecoderTrainingInfo,
  standardization: { mean: number[]; std: number[] },
  featureShape: number[],
  image: ImageGeometry,
): TrainedDecoder {
  let disposed = false;
  return {
    decoder: (f: tf.Tensor) => {
      if (disposed) throw new Error('decoder used after dispose()');
      if (f.rank !== featureShape.length + 1) {
        throw new Error(`decoder expects a batch of features [B, ${featureShape.join(', ')}], got [${f.shape.join(', ')}]`);
      }
      return tf.tidy(() => boundDecoderOutput(model.apply(f) as tf.Tensor) as tf.Tensor4D);
    },
    model,
    info,
    standardization,
    featureShape,
    image,
    dispose: () => {
      if (disposed) return;
      disposed = true;
      model.dispose();
    },
  };
}
