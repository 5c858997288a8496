/**
 * Monte-Carlo estimates of E ||h(x + s∘eps) - f||^2 for a per-unit noise std s (model units), drawn K at a time,
 * until the relative standard error reaches a target. Used for delta_f^2 (s = sqrt(tau) * scale) and to check
 * the constraint at the end of an optimisation (s = sigma * scale).
 */
import * as tf from '@tensorflow/tfjs-core';
import { CancelledError } from './errors';
import type { NativeProbe } from './native/ortProbe';
import { readMade, readValues } from './reads';
import { Rng } from './rng';
import { shareRange, type SampleShare } from './sampleShare';

export interface FeatureChangeEstimate {
  mean: number;
  /** Relative standard error of the mean. */
  relSe: number;
  samples: number;
}

export interface EstimateOptions {
  /** Samples drawn at a time (the random stream depends on it). */
  batch: number;
  /** Samples per forward pass, to bound memory (default `batch`); the samples and the estimate do not change. */
  passBatch?: number;
  seed: number;
  /** Stop once the relative standard error is below this ... */
  targetRelSe: number;
  /** ... and at least this many samples were drawn; never more than maxSamples. */
  minSamples: number;
  maxSamples: number;
  /**
   * Stop already after this many samples (fewer than minSamples) when the relative standard error is then at most
   * half of targetRelSe: at 224x224 a feature map has 10^5 units and 16 samples give 0.2-0.45 % against the 1 %
   * asked for, so the second batch only costs time (a quarter was measured too strict: the 16-sample error
   * estimate scatters around 0.25 %). The margin keeps a rough standard error (16 samples) from stopping a
   * heavy-tailed estimate. The random stream is unchanged (the same first samples).
   */
  tightSamples?: number;
  /** Checked between batches, so a cancel takes effect within one forward pass. */
  signal?: AbortSignal;
  /**
   * A team splitting the samples (sampleShare.ts): this process runs its share of each batch, and the per-sample
   * changes are summed over the team (each sample is computed by one member), so every member sees the whole batch.
   */
  share?: SampleShare;
  /** The layer on a native runtime (native/ortProbe.ts): the noisy inputs are made here, their changes measured there. */
  native?: NativeProbe;
}

export async function estimateFeatureChange(
  probe: (x: tf.Tensor4D) => tf.Tensor,
  x: tf.Tensor4D,
  f: tf.Tensor,
  noiseStd: tf.Tensor4D,
  opts: EstimateOptions,
): Promise<FeatureChangeEstimate> {
  const [, h, w, c] = x.shape;
  const rng = new Rng(opts.seed);
  const buf = new Float32Array(opts.batch * h * w * c);
  const values: number[] = [];
  let sum = 0;
  let sumSq = 0;
  for (;;) {
    await new Promise((resolve) => setImmediate(resolve));
    if (opts.signal?.aborted) throw new CancelledError();
    let d: Float32Array | Float64Array = new Float32Array(opts.batch);
    const pass = Math.max(1, Math.min(opts.passBatch ?? opts.batch, opts.batch));
    const mine = shareRange(opts.batch, opts.share);
    if (opts.share && opts.share.members > 1) rng.fillNormalRange(buf, mine.from * h * w * c, mine.to * h * w * c);
    else rng.fillNormal(buf);
    for (let from = mine.from; from < mine.to; from += pass) {
      const n = Math.min(pass, mine.to - from);
      const noisyOf = () => tf.add(x, tf.mul(noiseStd, tf.tensor4d(buf.subarray(from * h * w * c, (from + n) * h * w * c), [n, h, w, c]))) as tf.Tensor4D;
      if (opts.native) {
        d.set(await opts.native.squaredChange(await readMade(noisyOf), n), from);
        continue;
      }
      const sq = tf.tidy(() => tf.sum(tf.square(tf.reshape(tf.sub(probe(noisyOf()), f), [n, -1])), 1));
      d.set(await readValues(sq), from);
      sq.dispose();
    }
    if (opts.share && opts.share.members > 1) d = await opts.share.allReduce(Float64Array.from(d));
    for (const v of d) {
      values.push(v);
      sum += v;
      sumSq += v * v;
    }
    const n = values.length;
    const mean = sum / n;
    const variance = Math.max(0, (sumSq - n * mean * mean) / Math.max(1, n - 1));
    const relSe = mean > 0 ? Math.sqrt(variance / n) / mean : Infinity;
    const tight = opts.tightSamples !== undefined && n >= opts.tightSamples && relSe <= opts.targetRelSe / 2;
    if (n >= opts.maxSamples || (n >= opts.minSamples && relSe <= opts.targetRelSe) || tight) {
      return { mean, relSe, samples: n };
    }
  }
}
