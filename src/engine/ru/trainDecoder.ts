/**
 * Trains the RU decoder g of one layer (paper Sec. 3.2: "pre-trained using the MSE loss ||x' − x̂'||²").
 *
 *   1. Features f = h(x) of every image, once, through the model's probe (batched, in model units).
 *   2. A seeded split into training and held-out images (at least one held out when there are two or more).
 *   3. The frozen per-channel standardisation from the training features (mean, std), and the output bias from
 *      the mean training pixel, so training starts at the mean-image predictor whatever the feature's scale.
 *   4. Adam on the MSE in [0,1]-pixel units, mini-batches shuffled per epoch with the seed. With training 'noisy'
 *      (the default) every mini-batch also holds a noisy copy x' = x + s·δ of each image, s drawn per copy
 *      log-uniformly in [¼, 2]·noiseStd (noiseStd = √(α·τ), the scale at which the RU search's feature change sits),
 *      with the target clip(x', 0, 1): the paper's decoder loss ||x' − g(h(x'))||², so g learns to reconstruct the
 *      input behind a perturbed feature instead of extrapolating from features it never saw. Stops at maxEpochs
 *      or when the held-out loss has not improved by more than 0.5 % for `patience` epochs; the weights of the
 *      best held-out epoch are kept.
 *
 * Deterministic for a seed on one backend. Yields to the event loop between batches (cancel and IPC stay
 * responsive) and checks the AbortSignal there (CancelledError).
 *
 * info: psnr = mean over held-out images of 10·log10(1 / MSE_image) (capped at 100 dB); heldOutLoss = their mean
 * MSE; trainLoss = the mean mini-batch MSE during the epoch whose weights were kept; epochs = epochs run;
 * seconds = wall time including the feature pass.
 *
 * With a single image nothing can be held out: it is trained on, and psnr / heldOutLoss are measured on that same
 * training image; info.heldOutImages = 0 says so (the report should show such a PSNR as a training fit).
 */
import * as tf from '@tensorflow/tfjs-core';
import type * as tfl from '@tensorflow/tfjs-layers';
import { CancelledError, UserError } from '../errors';
import { readValues } from '../reads';
import { toModelUnits } from '../inputMapping';
import type { DecoderSettings, InputMapping } from '../report';
import { Rng, mixSeed } from '../rng';
import { validateDecoderSettings } from '../settings';
import { boundDecoderOutput, boundDecoderOutputForTraining, buildDecoder, decoderGeometry, setOutputBias, setStandardization, wrapDecoder, type TrainedDecoder } from './decoder';

export type { TrainedDecoder } from './decoder';

export interface TrainDecoderOptions {
  /** The model up to the layer: NHWC inputs in model units to the layer's output (tfjs-owned, not disposed here). */
  probe: (x: tf.Tensor4D) => tf.Tensor;
  mapping: InputMapping;
  /** Training images, each H*W*C pixels in [0,1], row-major HWC. */
  images: Float32Array[];
  height: number;
  width: number;
  channels: number;
  /** For messages only. */
  layerName: string;
  /** Training 'noisy': the typical noise std in [0,1] pixels (√(α·τ)). Required then. */
  noiseStd?: number;
  /** The layer's output without the batch: [h, w, c] or [d]. */
  featureShape: number[];
  settings: DecoderSettings;
  seed: number;
  signal?: AbortSignal;
  onEpoch?: (epoch: number, maxEpochs: number, trainLoss: number, heldOutLoss: number) => void;
  /**
   * Feature values kept in memory at most (default 2^26 floats, 256 MB). Beyond that the features are recomputed
   * through the probe for every batch instead (slower, same result).
   */
  featureBudget?: number;
}

/** Relative held-out improvement that resets the patience counter. */
const MIN_IMPROVEMENT = 0.005;
/** PSNR of a perfect reconstruction is infinite; per-image MSE is floored here (100 dB). */
const MSE_FLOOR = 1e-10;

const nextTick = () => new Promise<void>((resolve) => setImmediate(resolve));

function shuffle(a: number[], rng: Rng): number[] {
  for (let i = a.length - 1; i > 0; i--) {
    const j = rng.nextU32() % (i + 1);
    [a[i], a[j]] = [a[j], a[i]];
  }
  return a;
}

/** Seeded split: [train, heldOut] index lists in ascending order. A single image is both (heldOut = []). */
export function splitImages(n: number, holdout: number, seed: number): { train: number[]; heldOut: number[] } {
  if (n < 2) return { train: n === 1 ? [0] : [], heldOut: [] };
  const nHeld = Math.min(n - 1, Math.max(1, Math.round(n * holdout)));
  const perm = shuffle(Array.from({ length: n }, (_, i) => i), new Rng(mixSeed(seed, 0x5b117)));
  const asc = (a: number, b: number) => a - b;
  return { heldOut: perm.slice(0, nHeld).sort(asc), train: perm.slice(nHeld).sort(asc) };
}

export async function trainDecoder(opts: TrainDecoderOptions): Promise<TrainedDecoder> {
  const t0 = performance.now();
  const s = validateDecoderSettings(opts.settings);
  const { images, height: H, width: W, channels: C, signal, featureShape } = opts;
  const checkCancel = () => {
    if (signal?.aborted) throw new CancelledError();
  };
  if (images.length === 0) throw new UserError(`layer "${opts.layerName}": RU needs at least one training image for its decoder`);
  const pixelsPerImage = H * W * C;
  images.forEach((im, i) => {
    if (im.length !== pixelsPerImage) throw new Error(`decoder training image ${i} has ${im.length} values, expected ${H}x${W}x${C}`);
  });
  decoderGeometry(featureShape, { height: H, width: W, channels: C }, s.blocks); // shape errors before any work
  const featSize = featureShape.reduce((a, b) => a * b, 1);
  const featureChannels = featureShape[featureShape.length - 1];

  const split = splitImages(images.length, s.holdout, opts.seed);
  const train = split.train;
  const heldOut = split.heldOut.length > 0 ? split.heldOut : split.train;

  const pixelBatch = (idx: number[]): tf.Tensor4D => {
    const buf = new Float32Array(idx.length * pixelsPerImage);
    idx.forEach((k, j) => buf.set(images[k], j * pixelsPerImage));
    return tf.tensor4d(buf, [idx.length, H, W, C]);
  };
  const probeBatch = (idx: number[]): tf.Tensor =>
    tf.tidy(() => {
      const buf = new Float32Array(idx.length * pixelsPerImage);
      idx.forEach((k, j) => buf.set(toModelUnits(images[k], opts.mapping), j * pixelsPerImage));
      const f = opts.probe(tf.tensor4d(buf, [idx.length, H, W, C]));
      const want = [idx.length, ...featureShape];
      if (f.shape.length !== want.length || f.shape.some((d, i) => d !== want[i])) {
        throw new Error(`layer "${opts.layerName}" gave features of shape [${f.shape.join(', ')}], expected [${want.join(', ')}]`);
      }
      return f.dtype === 'float32' ? f : tf.cast(f, 'float32');
    });
  const noisy = (s.training ?? 'clean') === 'noisy';
  if (noisy && !(Number.isFinite(opts.noiseStd) && opts.noiseStd! > 0)) throw new Error('decoder training "noisy" needs noiseStd > 0');
  const noiseRng = new Rng(mixSeed(opts.seed, 0x9015e));
  /** Noisy copies of a batch: features h(x') in model units and targets clip(x', 0, 1) in pixels. */
  const noisyBatch = (idx: number[]): { f: tf.Tensor; x: tf.Tensor4D } => {
    const noisyPixels = new Float32Array(idx.length * pixelsPerImage);
    const target = new Float32Array(idx.length * pixelsPerImage);
    const modelUnits = new Float32Array(idx.length * pixelsPerImage);
    idx.forEach((k, j) => {
      const scale = opts.noiseStd! * 2 ** (noiseRng.uniform() * 3 - 2);
      const base = j * pixelsPerImage;
      const im = images[k];
      for (let i = 0; i < pixelsPerImage; i++) {
        const v = im[i] + scale * noiseRng.normal();
        noisyPixels[base + i] = v;
        target[base + i] = v < 0 ? 0 : v > 1 ? 1 : v;
      }
      modelUnits.set(toModelUnits(noisyPixels.subarray(base, base + pixelsPerImage), opts.mapping), base);
    });
    return tf.tidy(() => {
      const f = opts.probe(tf.tensor4d(modelUnits, [idx.length, H, W, C]));
      return { f: f.dtype === 'float32' ? f : tf.cast(f, 'float32'), x: tf.tensor4d(target, [idx.length, H, W, C]) };
    });
  };
  const batches = (idx: number[]): number[][] => {
    const out: number[][] = [];
    for (let i = 0; i < idx.length; i += s.batchSize) out.push(idx.slice(i, i + s.batchSize));
    return out;
  };

  // 1. Features, once (or streamed when they would not fit the budget), with the training split's statistics.
  const all = images.map((_, i) => i);
  const inMemory = images.length * featSize <= (opts.featureBudget ?? 2 ** 26);
  const features = inMemory ? new Float32Array(images.length * featSize) : null;
  const isTrain = new Uint8Array(images.length);
  for (const k of train) isTrain[k] = 1;
  const sum = new Float64Array(featureChannels);
  const sumSq = new Float64Array(featureChannels);
  const shift = new Float64Array(featureChannels); // sums of (v - shift): no cancellation for large means
  let shiftSet = false;
  let count = 0;
  for (const idx of batches(all)) {
    checkCancel();
    const f = probeBatch(idx);
    const data = await readValues(f);
    f.dispose();
    if (features) features.set(data, idx[0] * featSize); // `all` is 0..n-1 in order: batches are contiguous
    idx.forEach((k, j) => {
      if (!isTrain[k]) return;
      if (!shiftSet) {
        for (let c = 0; c < featureChannels; c++) shift[c] = data[j * featSize + c];
        shiftSet = true;
      }
      for (let i = j * featSize, end = i + featSize; i < end; i++) {
        const c = i % featureChannels;
        const v = data[i] - shift[c];
        sum[c] += v;
        sumSq[c] += v * v;
      }
      count += featSize / featureChannels;
    });
    await nextTick();
  }
  const mean: number[] = [];
  const stdRaw: number[] = [];
  for (let c = 0; c < featureChannels; c++) {
    const m = sum[c] / count;
    mean.push(shift[c] + m);
    stdRaw.push(Math.sqrt(Math.max(0, sumSq[c] / count - m * m)));
  }
  if (!mean.every(Number.isFinite) || !stdRaw.every(Number.isFinite)) {
    throw new UserError(`layer "${opts.layerName}" gives non-finite values on the training images; RU cannot decode it`);
  }
  // Channels that never vary (dead ReLUs, a constant layer) have std 0: they are only centred (floored at 1 % of
  // the typical channel's std, or 1 when nothing varies) so feature noise in them is not blown up by 1/0.
  const typical = stdRaw.reduce((a, b) => a + b, 0) / featureChannels;
  const floor = typical > 0 ? 0.01 * typical : 1;
  const std = stdRaw.map((v) => Math.max(v, floor));

  const featureBatch = (idx: number[]): tf.Tensor => {
    if (!features) return probeBatch(idx);
    const buf = new Float32Array(idx.length * featSize);
    idx.forEach((k, j) => buf.set(features.subarray(k * featSize, (k + 1) * featSize), j * featSize));
    return tf.tensor(buf, [idx.length, ...featureShape]);
  };

  // 2. The model, its standardisation and its starting output (the mean training pixel per channel).
  const model = buildDecoder(featureShape, { height: H, width: W, channels: C }, s, opts.seed);
  let optimizer: tf.Optimizer | null = null;
  let best: tf.Tensor[] | null = null;
  try {
    setStandardization(model, mean, std);
    const meanPixel = new Float64Array(C);
    for (const k of train) for (let i = 0; i < pixelsPerImage; i++) meanPixel[i % C] += images[k][i];
    setOutputBias(model, Array.from(meanPixel, (v) => v / (train.length * H * W)));

    // 3. Training.
    const vars = model.trainableWeights.map((w) => w.read() as tf.Variable);
    optimizer = tf.train.adam(s.learningRate);
    const rng = new Rng(mixSeed(opts.seed, 0xe90c4));
    const evaluate = async (): Promise<number[]> => {
      const mses: number[] = [];
      for (const idx of batches(heldOut)) {
        checkCancel();
        const m = tf.tidy(() => {
          const f = featureBatch(idx);
          const x = pixelBatch(idx);
          return tf.mean(tf.squaredDifference(boundDecoderOutput(model.apply(f) as tf.Tensor), x), [1, 2, 3]);
        });
        mses.push(...(await readValues(m)));
        m.dispose();
        await nextTick();
      }
      return mses;
    };

    let bestLoss = Infinity;
    let bestTrain = NaN;
    let bestMses: number[] = [];
    let reference = Infinity;
    let stale = 0;
    let epochs = 0;
    for (let epoch = 1; epoch <= s.maxEpochs; epoch++) {
      const order = shuffle([...train], rng);
      let lossSum = 0;
      for (const idx of batches(order)) {
        checkCancel();
        const cost = tf.tidy(() => {
          let f = featureBatch(idx);
          let x: tf.Tensor = pixelBatch(idx);
          if (noisy) {
            const extra = noisyBatch(idx);
            f = tf.concat([f, extra.f], 0);
            x = tf.concat([x, extra.x], 0);
          }
          return optimizer!.minimize(() => tf.mean(tf.squaredDifference(boundDecoderOutputForTraining(model.apply(f) as tf.Tensor), x)) as tf.Scalar, true, vars)!;
        });
        lossSum += (await readValues(cost))[0] * idx.length;
        cost.dispose();
        await nextTick();
      }
      epochs = epoch;
      const trainLoss = lossSum / train.length;
      const mses = await evaluate();
      const heldOutLoss = mses.reduce((a, b) => a + b, 0) / mses.length;
      opts.onEpoch?.(epoch, s.maxEpochs, trainLoss, heldOutLoss);
      if (heldOutLoss < bestLoss) {
        bestLoss = heldOutLoss;
        bestTrain = trainLoss;
        bestMses = mses;
        if (best) tf.dispose(best);
        best = vars.map((v) => tf.keep(v.clone()));
      }
      if (heldOutLoss < reference * (1 - MIN_IMPROVEMENT)) {
        reference = heldOutLoss;
        stale = 0;
      } else if (++stale >= s.patience || !Number.isFinite(heldOutLoss)) {
        break;
      }
    }
    if (!best) {
      throw new UserError(
        `layer "${opts.layerName}": the RU decoder's training diverged (loss ${bestLoss}); lower the decoder learning rate (--decoder-learning-rate)`,
      );
    }
    model.trainableWeights.forEach((w: tfl.LayerVariable, i: number) => w.write(best![i]));
    const psnr = bestMses.reduce((a, m) => a + 10 * Math.log10(1 / Math.max(m, MSE_FLOOR)), 0) / bestMses.length;
    const info = {
      psnr,
      trainLoss: bestTrain,
      heldOutLoss: bestLoss,
      epochs,
      trainImages: train.length,
      heldOutImages: split.heldOut.length,
      seconds: (performance.now() - t0) / 1000,
      output: 'clamp' as const,
      training: noisy ? ('noisy' as const) : ('clean' as const),
    };
    return wrapDecoder(model, info, { mean, std }, [...featureShape], { height: H, width: W, channels: C });
  } catch (e) {
    model.dispose();
    throw e;
  } finally {
    if (best) tf.dispose(best);
    optimizer?.dispose();
  }
}
