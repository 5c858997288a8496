/**
 * Reconstruction Uncertainty for one layer and one image (paper Sec. 3.2, Eq. 9-12).
 *
 * The same search as SID (src/engine/sid.ts: same alpha constraint on the feature, same multiplier read off
 * stationarity, same level projection and calibration), with a different entropy: the reconstruction
 * x̂' = g(h(x + sigma∘delta)) of the layer's decoder g is taken as Gaussian around mu_rec = x (the paper's
 * choice), so the entropy of unit i is  Ĥ_i = ½·log E[(x_i − x̂'_i)²] + C. A unit the feature cannot
 * reconstruct keeps a large error however small the noise (high RU); one it reconstructs well has an error that
 * grows only as much as the noise the layer lets through.
 *
 * Errors are in [0,1]-pixel units, so RU and SID share units (nats) and compare across models. E is floored at
 * RU_FLOOR, the variance of 8-bit quantisation ((1/255)²/12, Ĥ ≥ −5.35 nats): an image pixel is only known to
 * within its quantisation step, so no reconstruction is more certain than that. (It was 1e-8, −7.8 nats; with the
 * decoder clamped to the pixel range, a black background pixel is reconstructed as exactly 0 under any noise, and at
 * the sample's deep layers 15–21 % of the pixels sat at that arbitrary floor, 1.3 nats of their layer's mean RU.) The decoder's output is
 * clamped to [0,1] (decoder.ts), so E ≤ max(x_i, 1 − x_i)² and Ĥ_i ≤ log max(x_i, 1 − x_i) + C ≤ C ≈ 1.42 nats:
 * units at that bound are counted (atBound) and flagged by the caller.
 */
import * as tf from '@tensorflow/tfjs-core';
import { CancelledError } from '../errors';
import { readValues } from '../reads';
import { GAUSSIAN_ENTROPY_CONSTANT } from '../report';
import { mixSeed, Rng } from '../rng';
import { learnSid, type SidInput, type SidOptions } from '../sid';
import { toModelUnits } from '../inputMapping';

export const RU_FLOOR = 1 / (255 * 255 * 12);

export interface RuInput extends SidInput {
  /** The layer's decoder: feature batch → reconstruction [B, H, W, C] in [0,1]-pixel units. */
  decoder: (feature: tf.Tensor) => tf.Tensor4D;
}

export interface RuOptions extends Omit<SidOptions, 'entropy'> {
  /** Noise samples for the final RU map (default max(256, 8K)). */
  finalSamples?: number;
}

export interface RuResult {
  /** Pixel RU (nats): the mean over a pixel's channels of Ĥ_i, H*W row-major. */
  map: Float32Array;
  /** Mean of Ĥ_i over all n = H*W*C input units. */
  ruMean: number;
  sigma: Float32Array;
  constraintRatio: number;
  constraintRatioSe: number;
  lambda: number;
  steps: number;
  stopReason: 'converged' | 'maxSteps';
  seconds: number;
  /** Share of input units whose reconstruction error is at its bound (see reconstructionEntropy). */
  atBound: number;
}

/**
 * A unit's reconstruction error counts as at its bound when its RMS error is at least this share of the largest a
 * [0,1] reconstruction allows, max(x_i, 1 − x_i): the decoder puts that pixel at the far end of the range, and the
 * layer may discard even more than the value says (a lower bound, like a saturated SID).
 */
export const RU_AT_BOUND = 0.9;

export async function learnRu(input: RuInput, opts: RuOptions): Promise<RuResult> {
  const t0 = performance.now();
  const { height: H, width: W, channels: C, probe, decoder } = input;
  const target = tf.keep(tf.tensor4d(input.pixels, [1, H, W, C]));
  try {
    /** Mean over units of ½·log of the batch's mean squared reconstruction error, per unit. */
    const entropy = (noisy: tf.Tensor4D): tf.Scalar => {
      const err = tf.mean(tf.square(tf.sub(decoder(probe(noisy)), target)), 0);
      return tf.mul(0.5, tf.mean(tf.log(tf.add(err, RU_FLOOR)))) as tf.Scalar;
    };
    // The reconstruction entropy is estimated from K samples per step, so it is noisier than SID's: the
    // stopping rule allows more movement. Its entropy sees the whole batch, so a team's members each run all of it.
    const learnt = await learnSid(input, { ...opts, share: undefined, entropy, entropyTolerance: opts.entropyTolerance ?? 0.01 });
    const map = await reconstructionEntropy(input, target, learnt.sigma, {
      batch: opts.samples,
      samples: opts.finalSamples ?? Math.max(256, 8 * opts.samples),
      seed: mixSeed(opts.seed, 5),
      signal: opts.signal,
    });
    return {
      map: map.perPixel,
      ruMean: map.mean,
      sigma: learnt.sigma,
      constraintRatio: learnt.constraintRatio,
      constraintRatioSe: learnt.constraintRatioSe,
      lambda: learnt.lambda,
      steps: learnt.steps,
      stopReason: learnt.stopReason,
      seconds: (performance.now() - t0) / 1000,
      atBound: map.atBound,
    };
  } finally {
    target.dispose();
  }
}

/** Ĥ_i = ½·log E[(x_i − g(h(x + sigma∘delta))_i)²] + C on fresh noise, per unit; averaged per pixel and overall. */
export async function reconstructionEntropy(
  input: RuInput,
  target: tf.Tensor4D,
  sigma: Float32Array,
  opts: { batch: number; samples: number; seed: number; signal?: AbortSignal },
): Promise<{ perPixel: Float32Array; mean: number; atBound: number }> {
  const { height: H, width: W, channels: C, probe, decoder } = input;
  const x = tf.tensor4d(toModelUnits(input.pixels, input.mapping), [1, H, W, C]);
  const std = tf.tidy(() => tf.mul(tf.tensor4d(sigma, [1, H, W, 1]), tf.tensor4d(input.mapping.scale, [1, 1, 1, C])));
  const rng = new Rng(opts.seed);
  const noise = new Float32Array(opts.batch * H * W * C);
  let sum = tf.zeros([H, W, C]);
  let drawn = 0;
  try {
    while (drawn < opts.samples) {
      await new Promise((resolve) => setImmediate(resolve));
      if (opts.signal?.aborted) throw new CancelledError();
      rng.fillNormal(noise);
      const next = tf.tidy(() => {
        const noisy = tf.add(x, tf.mul(std, tf.tensor4d(noise, [opts.batch, H, W, C]))) as tf.Tensor4D;
        return tf.add(sum, tf.sum(tf.square(tf.sub(decoder(probe(noisy)), target)), 0));
      });
      sum.dispose();
      sum = next;
      drawn += opts.batch;
    }
    const meanSq = tf.div(sum, drawn);
    const units = tf.tidy(() => tf.add(tf.mul(0.5, tf.log(tf.add(meanSq, RU_FLOOR))), GAUSSIAN_ENTROPY_CONSTANT));
    const values = await readValues(units);
    const errors = await readValues(meanSq);
    tf.dispose([units, meanSq]);
    let atBound = 0;
    for (let i = 0; i < errors.length; i++) {
      const far = Math.max(input.pixels[i], 1 - input.pixels[i]);
      if (errors[i] >= (RU_AT_BOUND * far) ** 2) atBound++;
    }
    const perPixel = new Float32Array(H * W);
    let total = 0;
    for (let p = 0; p < H * W; p++) {
      let s = 0;
      for (let c = 0; c < C; c++) s += values[p * C + c];
      perPixel[p] = s / C;
      total += s;
    }
    return { perPixel, mean: total / (H * W * C), atBound: atBound / errors.length };
  } finally {
    tf.dispose([x, std, sum]);
  }
}
