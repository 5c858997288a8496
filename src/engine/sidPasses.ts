/**
 * The SID search's noise batch and the passes over it (sid.ts): K noise samples δ drawn per step from the
 * problem's random stream, x' = x + σ∘δ (model units), the constraint ratio r = mean ||h(x') − f||² / δ_f² and its
 * gradient, computed in passes of at most B samples whose values and gradients add up (one pass when B = K).
 */
import * as tf from '@tensorflow/tfjs-core';
import type { NativeProbe } from './native/ortProbe';
import { readMade, readValues } from './reads';
import type { Rng } from './rng';
import { shareRange, type SampleShare } from './sampleShare';
import type { SigmaGrid } from './sigmaGrid';

export interface NoisePassesInput {
  probe: (x: tf.Tensor4D) => tf.Tensor;
  /** The image (model units), [1, H, W, C]; its feature f = probe(x). */
  x: tf.Tensor4D;
  f: tf.Tensor;
  /** Pixel units to model units per channel, [1, 1, 1, C]. */
  scale: tf.Tensor4D;
  height: number;
  width: number;
  channels: number;
  /** K, and the samples per pass B. */
  samples: number;
  passBatch: number;
  deltaF2: number;
  grid: SigmaGrid;
  /** The stream every batch is drawn from (the step loop's, then the pinned-pixel check's). */
  rng: Rng;
  /** RU's entropy of the noisy batch (sid.ts SidOptions.entropy). */
  entropy?: (noisyInput: tf.Tensor4D) => tf.Scalar;
  /** This process's share of every batch when the layer's samples are split over a team (sampleShare.ts; SID only). */
  share?: SampleShare;
  /**
   * The layer's passes on a native runtime (native/ortProbe.ts): the noisy inputs are made here as before, and
   * ||h(x') − f||² and its input gradient come from it; the chain to log σ stays in tfjs.
   */
  native?: NativeProbe;
}

export interface NoisePasses {
  /** Draws the next batch of K noise samples. */
  draw(): void;
  /** The ratio and its gradient over the grid parameters v, on the current batch. */
  ratioAndGrad(v: Float32Array): Promise<{ value: number; grad: Float32Array }>;
  /** The ratio's gradient over full-resolution log-σ (H·W), on the current batch. */
  gradFull(vFull: Float32Array): Promise<Float32Array>;
  /** RU: the entropy of the current batch and its gradient over v (the whole batch at once); null for SID. */
  entropyAndGrad: ((v: Float32Array) => Promise<{ value: number; grad: Float32Array }>) | null;
}

export function noisePasses(p: NoisePassesInput): NoisePasses {
  const { height: H, width: W, channels: C, samples: K, passBatch: B, grid, x, f, scale, probe, deltaF2, share } = p;
  const mine = shareRange(K, share);
  const noise = new Float32Array(K * H * W * C);
  const unit = H * W * C;

  /** Samples [from, from + n) of the current batch with full-resolution log-σ: x' = x + σ∘δ (model units). */
  const noisyInput = (vFullT: tf.Tensor2D, from = 0, n = K) => {
    const sigma = tf.reshape(tf.exp(vFullT), [1, H, W, 1]);
    const delta = tf.tensor4d(n === K ? noise : noise.subarray(from * unit, (from + n) * unit), [n, H, W, C]);
    return tf.add(x, tf.mul(tf.mul(sigma, scale), delta)) as tf.Tensor4D;
  };
  /**
   * The constraint ratio over the current batch as a function of full-resolution log-σ: the mean over all K
   * samples, or, for a pass over samples [from, from + n), their share of it (sum / K), so passes add up.
   */
  const ratioOfFull = (vFullT: tf.Tensor2D, from = 0, n = K) => {
    const diff = tf.reshape(tf.sub(probe(noisyInput(vFullT, from, n)), f), [n, -1]);
    const sq = tf.sum(tf.square(diff), 1);
    return tf.div(n === K ? tf.mean(sq) : tf.div(tf.sum(sq), K), deltaF2) as tf.Scalar;
  };
  /**
   * Runs `pass` on each run of at most B samples (of this process's share); returns the summed value and gradient
   * (over `size` parameters), summed over the team when there is one.
   */
  const overPasses = async (size: number, pass: (from: number, n: number) => Promise<{ value: number; grad: Float32Array }>) => {
    let value = 0;
    const grad = new Float32Array(size);
    for (let from = mine.from; from < mine.to; from += B) {
      const r = await pass(from, Math.min(B, mine.to - from));
      value += r.value;
      for (let j = 0; j < size; j++) grad[j] += r.grad[j];
    }
    if (!share || share.members <= 1) return { value, grad };
    const part = new Float64Array(size + 1);
    part[0] = value;
    part.set(grad, 1);
    const total = await share.allReduce(part);
    return { value: total[0], grad: Float32Array.from(total.subarray(1)) };
  };
  /** A pass on tfjs: the value and gradient of `ratio` over the parameters `params` ([rows, cols]). */
  const tfjsPass = async (f: () => { value?: tf.Scalar; grad: tf.Tensor }) => {
    // Tensors out of tidy, data read after: tidy walks a returned typed array element by element. Read
    // asynchronously: webgpu has no synchronous read in Node.
    const r = tf.tidy(f);
    const value = r.value ? (await readValues(r.value))[0] : 0;
    const grad = Float32Array.from(await readValues(r.grad));
    tf.dispose(r);
    return { value, grad };
  };
  const native = p.native;
  /**
   * A pass on the native runtime, over parameters `params` of shape `dims` that `toFull` maps to full-resolution
   * log σ: the noisy inputs, then the runtime's ratio share and input gradient dx, then the gradient over the
   * parameters as that of Σ x'(params) · dx (dx held constant), which is the chain rule through x' = x + σ∘δ.
   */
  const nativePass = async (params: Float32Array, dims: [number, number], toFull: (t: tf.Tensor2D) => tf.Tensor2D, from: number, n: number) => {
    const noisy = await readMade(() => noisyInput(toFull(tf.tensor2d(params, dims)), from, n));
    const coef = 1 / (K * deltaF2);
    const { sq, grad: dx } = await native!.squaredChangeAndGrad(noisy, n, coef);
    let value = 0;
    for (const v of sq) value += v * coef;
    const r = await tfjsPass(() => {
      const dxT = tf.tensor4d(dx, [n, H, W, C]);
      return { grad: tf.grad((vT: tf.Tensor) => tf.sum(tf.mul(noisyInput(toFull(vT as tf.Tensor2D), from, n), dxT)))(tf.tensor2d(params, dims)) };
    });
    return { value, grad: r.grad };
  };

  const entropy = p.entropy;
  const entropyGradOf = entropy ? tf.valueAndGrad((vT: tf.Tensor2D) => entropy(noisyInput(grid.upsample(vT)))) : null;
  return {
    // A team member draws the whole batch's stream but only computes its own samples' noise.
    draw: () => (share && share.members > 1 ? p.rng.fillNormalRange(noise, mine.from * unit, mine.to * unit) : p.rng.fillNormal(noise)),
    ratioAndGrad: (v) =>
      overPasses(grid.rows * grid.cols, (from, n) =>
        native
          ? nativePass(v, [grid.rows, grid.cols], (t) => grid.upsample(t), from, n)
          : tfjsPass(() => tf.valueAndGrad((vT: tf.Tensor2D) => ratioOfFull(grid.upsample(vT), from, n))(tf.tensor2d(v, [grid.rows, grid.cols])))),
    gradFull: async (vFull) =>
      (await overPasses(H * W, (from, n) =>
        native
          ? nativePass(vFull, [H, W], (t) => t, from, n)
          : tfjsPass(() => ({ grad: tf.grad((vFullT: tf.Tensor) => ratioOfFull(vFullT as tf.Tensor2D, from, n))(tf.tensor2d(vFull, [H, W])) })))).grad,
    entropyAndGrad: entropyGradOf
      ? async (v) => {
        const { value: hT, grad: hG } = tf.tidy(() => entropyGradOf(tf.tensor2d(v, [grid.rows, grid.cols])));
        const value = (await readValues(hT))[0];
        const grad = Float32Array.from(await readValues(hG));
        tf.dispose([hT, hG]);
        return { value, grad };
      }
      : null,
  };
}
