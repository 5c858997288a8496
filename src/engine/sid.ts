/**
 * Strict Information Discarding for one layer and one image (paper Sec. 3.1).
 *
 * We learn per-pixel log-sigma v (sigma in [0,1]-pixel units, shared across channels) maximising the entropy
 * mean_i v_i subject to  r(v) = E ||h(x + sigma∘delta) - f||^2 / delta_f^2 = alpha.
 *
 * How the constraint is held (instead of guessing lambda):
 *  - Each step draws K noise samples and back-propagates r to v (input gradients only; weights are constants).
 *  - The Lagrange multiplier is read off the stationarity condition dr/dv_j = lambda * e_j (e = d mean(v)/dv):
 *    lambda = <g, e> / <e, e> over unsaturated parameters. Adam then follows g - lambda*e, which changes the
 *    *shape* of sigma without drifting its overall level.
 *  - The level is a projection: r scales like exp(2c) when every log-sigma moves by c, so after each step v is
 *    shifted by c = log(alpha / R) / 2, with R a running (exponentially averaged, shift-corrected) estimate of r.
 *  - At the end, the Polyak-averaged v is calibrated by Newton steps on c against a fixed set of noise samples
 *    (common random numbers, so r(c) is smooth), and the ratio is re-measured on fresh noise for the report; when
 *    that misses alpha ± 5 % beyond its standard error (heavy-tailed features), the level is calibrated again on
 *    a larger common-random set and re-measured with more samples.
 * Stops early once the constraint holds and the averaged entropy has stopped moving.
 */
import * as tf from '@tensorflow/tfjs-core';
import { CancelledError, SkipLayerError, ZERO_RESPONSE_REASON, NON_FINITE_REASON } from './errors';
import { solveLevel } from './calibrate';
import { RATIO_TOLERANCE } from './quality';
import { estimateFeatureChange, type FeatureChangeEstimate } from './featureChange';
import { toModelUnits } from './inputMapping';
import { GAUSSIAN_ENTROPY_CONSTANT, type InputMapping } from './report';
import { mixSeed, Rng } from './rng';
import type { NativeProbe } from './native/ortProbe';
import type { SampleShare } from './sampleShare';
import { makeSigmaGrid, type SigmaGrid } from './sigmaGrid';
import { noisePasses, type NoisePasses } from './sidPasses';
import { adamLevelStep, initialState, searchConverged, sidMapOf, stationaryMultiplier, type SearchState } from './sidStep';

export interface SidInput {
  probe: (x: tf.Tensor4D) => tf.Tensor;
  /** Image pixels in [0,1], H x W x C. */
  pixels: Float32Array;
  height: number;
  width: number;
  channels: number;
  mapping: InputMapping;
  /**
   * The same layer on a native runtime (native/ortProbe.ts, ONNX models on onnxruntime), for this image: the
   * search's noisy passes and feature-change estimates run there instead of through `probe` (same noise, same
   * steps; the answer equal up to float rounding).
   */
  native?: NativeProbe;
}

export interface SidOptions {
  alpha: number;
  tau: number;
  samples: number;
  maxSteps: number;
  sigmaMax: number;
  sigmaGrid: number | null;
  learningRate: number;
  /** Seed of this (layer, image) problem; every random stream derives from it. */
  seed: number;
  /** Steps before early stopping may trigger (default 30; WARM_MIN_STEPS when initialLogSigma is given). */
  minSteps?: number;
  /** Early stop when the averaged entropy moved less than this (nats per pixel) over the last `window` steps. */
  entropyTolerance?: number;
  window?: number;
  /** Relative standard error targeted by delta_f^2, the calibration and the final constraint check (default 1 %). */
  targetRelSe?: number;
  /**
   * Noise samples per forward/backward pass (default all `samples` at once). Smaller bounds the memory of large
   * inputs: a step's ratio and gradient are summed over passes, so the result is the same up to rounding. RU's
   * entropy term (`entropy`) still sees the whole batch.
   */
  sampleBatch?: number;
  signal?: AbortSignal;
  onStep?: (step: number, ratio: number, entropy: number) => void;
  /**
   * A different entropy to maximise under the same constraint (RU, paper Eq. 12): given the batch of noisy
   * inputs x' (model units), its estimate in nats per input unit without the constant C. Its gradient replaces
   * the constant d mean(v)/dv of SID in the multiplier and the step direction.
   */
  entropy?: (noisyInput: tf.Tensor4D) => tf.Scalar;
  /**
   * Warm start: log sigma per pixel ([0,1]-pixel units, H*W row-major), e.g. from previewSigma, used instead of
   * the flat start ½ log(alpha*tau). Fitted to the grid parameters in least squares when sigmaGrid is set, and
   * capped at log sigmaMax. The level projection of the first step corrects its overall level.
   */
  initialLogSigma?: Float32Array;
  /**
   * delta_f^2 already measured on this problem's stream (e.g. previewSigma's deltaF2 and deltaF2RelSe with the
   * same seed, samples and targetRelSe: the same number), used instead of estimating it again.
   */
  deltaF2?: { mean: number; relSe: number };
  /**
   * This process's share when the layer's K samples are split over a team of processes (sampleShare.ts): every
   * pass (the steps, the pinned-pixel check, the feature-change estimates) runs only this member's samples and
   * the sums are added up over the team. Not with `entropy` (RU's entropy sees the whole batch at once).
   */
  share?: SampleShare;
}

export interface SidResult {
  /** Pixel SID H_i (nats), H*W row-major. */
  map: Float32Array;
  /** The learnt sigma per pixel ([0,1]-pixel units), H*W row-major. */
  sigma: Float32Array;
  sidMean: number;
  constraintRatio: number;
  constraintRatioSe: number;
  lambda: number;
  steps: number;
  saturated: number;
  deltaF2: number;
  deltaF2RelSe: number;
  stopReason: 'converged' | 'maxSteps';
  seconds: number;
}

/** Running ratio estimate: weight of the past. */
const RATIO_EMA = 0.9;
/**
 * Default minSteps of a warm start. The stopping rule needs 2 * window (20) steps anyway; fewer (window 5,
 * minSteps 10) returns little more than the preview, as the Polyak average still remembers the start
 * (bench/warmStart.ts on ResNet-20: map Pearson with the cold run 0.85-0.91 against 0.96-0.97 at 20 steps).
 */
export const WARM_MIN_STEPS = 20;
/** Samples at most of one feature-change estimate (delta_f^2, a calibration set, the final check). */
const MAX_CHECK_SAMPLES = 4096;
/** Calibrations on a larger common-random set when the final check misses the band (heavy-tailed features). */
const RECALIBRATIONS = 2;
/** Largest common-random set of such a recalibration, its level evaluations, and its cost bound (see below). */
const RECAL_MAX_SAMPLES = 16384;
const RECAL_EVALUATIONS = 8;
const RECAL_BUDGET = 4;

/**
 * Samples after which a feature-change estimate may stop when it is already twice as tight as asked (one
 * batch of K, at least 16): large inputs' estimates are (delta_f^2, the calibration set, the final check). Shared with
 * the preview, whose delta_f^2 must come out identical.
 */
export const tightSampleCount = (K: number): number => Math.max(16, K);

/** A feature-change estimate at σ (per pixel, or one number), on a seeded stream: δ_f², a calibration set, a check. */
type Estimate = (sigma: Float32Array | number, seed: number, fixedSamples?: number, atLeast?: number) => Promise<FeatureChangeEstimate>;

export async function learnSid(input: SidInput, opts: SidOptions): Promise<SidResult> {
  const t0 = performance.now();
  if (opts.share && opts.share.members > 1 && opts.entropy) throw new Error('sample share: the RU search computes its entropy over the whole batch and cannot be split');
  const { height: H, width: W, channels: C, probe } = input;
  const K = opts.samples;
  const B = Math.max(1, Math.min(opts.sampleBatch ?? K, K));
  const logSigmaMax = Math.log(opts.sigmaMax);
  const grid = makeSigmaGrid(H, W, opts.sigmaGrid);

  const x = tf.keep(tf.tensor4d(toModelUnits(input.pixels, input.mapping), [1, H, W, C]));
  const scale = tf.keep(tf.tensor4d(input.mapping.scale, [1, 1, 1, C]));
  // With a native runtime every pass measures the change there (against its own f): no tfjs forward pass.
  const f = tf.keep(input.native ? tf.zeros([1]) : tf.tidy(() => probe(x)));
  const checkCancel = () => {
    if (opts.signal?.aborted) throw new CancelledError();
  };

  try {
    const targetRelSe = opts.targetRelSe ?? 0.01;
    const estimate: Estimate = async (sigmaFull, seed, fixedSamples, atLeast) => {
      const std = tf.tidy(() =>
        typeof sigmaFull === 'number'
          ? tf.mul(scale, sigmaFull)
          : tf.mul(tf.tensor4d(sigmaFull, [1, H, W, 1]), scale),
      ) as tf.Tensor4D;
      try {
        return await estimateFeatureChange(probe, x, f, std, {
          batch: K,
          passBatch: B,
          seed,
          targetRelSe: fixedSamples ? 0 : targetRelSe,
          minSamples: fixedSamples ?? Math.max(32, 2 * K, atLeast ?? 0),
          maxSamples: fixedSamples ?? Math.max(MAX_CHECK_SAMPLES, atLeast ?? 0),
          ...(fixedSamples === undefined && atLeast === undefined ? { tightSamples: tightSampleCount(K) } : {}),
          signal: opts.signal,
          ...(opts.share ? { share: opts.share } : {}),
          ...(input.native ? { native: input.native } : {}),
        });
      } finally {
        std.dispose();
      }
    };
    // delta_f^2: the feature's change under small isotropic pixel noise of variance tau.
    const df = opts.deltaF2 ?? (await estimate(Math.sqrt(opts.tau), mixSeed(opts.seed, 1)));
    if (!Number.isFinite(df.mean)) throw new SkipLayerError(NON_FINITE_REASON);
    if (!(df.mean > 0)) throw new SkipLayerError(ZERO_RESPONSE_REASON);
    const deltaF2 = df.mean;

    const state = initialState(grid, opts.alpha, opts.tau, logSigmaMax, H * W, opts.initialLogSigma);
    const passes = noisePasses({
      probe, x, f, scale, height: H, width: W, channels: C, samples: K, passBatch: B, deltaF2, grid,
      rng: new Rng(mixSeed(opts.seed, 2)), entropy: opts.entropy, share: opts.share, native: input.native,
    });
    const search = await searchLevelSet(state, passes, grid, opts, checkCancel);

    // Pixels the layer cannot see at all (exactly zero gradient over a batch of noise, e.g. cropped away) take
    // the largest noise allowed: they cannot move the feature, so they take no part in the level search.
    checkCancel();
    const vFull = grid.upsampleArray(state.vAvg);
    const pinned = await invisiblePixels(vFull, passes, logSigmaMax, checkCancel);
    const sigmaAt = (cShift: number) => {
      const out = new Float32Array(H * W);
      for (let i = 0; i < out.length; i++) out[i] = pinned[i] ? opts.sigmaMax : Math.exp(Math.min(vFull[i] + cShift, logSigmaMax));
      return out;
    };
    let minFree = Infinity;
    for (let i = 0; i < vFull.length; i++) if (!pinned[i]) minFree = Math.min(minFree, vFull[i]);
    const maxUsefulShift = Number.isFinite(minFree) ? logSigmaMax - minFree : 0;
    // A step's forward and backward pass counted as 3 forward passes.
    const searchCost = 3 * search.steps * K + ((df as { samples?: number }).samples ?? 0);
    const { shift, finalCheck } = await calibrateLevel(estimate, sigmaAt, deltaF2, maxUsefulShift, searchCost, opts, checkCancel);

    const sigmaFinal = sigmaAt(shift);
    const { map, sum, saturated } = sidMapOf(sigmaFinal, logSigmaMax);
    return {
      map,
      sigma: sigmaFinal,
      sidMean: sum / map.length,
      constraintRatio: finalCheck.mean / deltaF2,
      constraintRatioSe: (finalCheck.relSe * finalCheck.mean) / deltaF2,
      // Paper convention: Loss = r - lambda * sum over all n = H*W*C input units of H_i (SID: every unit of a
      // pixel shares its sigma; RU: the entropy is already a mean over the n units).
      lambda: search.lambda / (H * W * C),
      steps: search.steps,
      saturated,
      deltaF2,
      deltaF2RelSe: df.relSe,
      stopReason: search.stopReason,
      seconds: (performance.now() - t0) / 1000,
    };
  } finally {
    x.dispose();
    scale.dispose();
    f.dispose();
    grid.dispose();
  }
}

/**
 * The search: per step a fresh noise batch, the ratio and its gradient, the multiplier, an Adam step with the level
 * projection; stops when the constraint holds and the averaged entropy has settled (after minSteps), or at maxSteps.
 * Leaves the Polyak-averaged v in `state.vAvg`.
 */
async function searchLevelSet(
  state: SearchState,
  passes: NoisePasses,
  grid: SigmaGrid,
  opts: SidOptions,
  checkCancel: () => void,
): Promise<{ steps: number; lambda: number; stopReason: SidResult['stopReason'] }> {
  const minSteps = opts.minSteps ?? (opts.initialLogSigma ? WARM_MIN_STEPS : 30);
  const window = opts.window ?? 10;
  const tol = opts.entropyTolerance ?? 0.003;
  const logSigmaMax = Math.log(opts.sigmaMax);
  const e = grid.entropyWeights;
  const entropyHistory: number[] = [];
  let ratioEst = NaN;
  let lambda = NaN;
  /** RU: running estimate of the (noisy) batch entropy, for the stopping rule and progress. */
  let entropyEst = NaN;
  let step = 0;
  while (step < opts.maxSteps) {
    // Let the event loop run (cancel requests, IPC, Ctrl-C) between steps; costs microseconds.
    await yieldToEventLoop();
    checkCancel();
    passes.draw();
    const { value: ratio, grad: g } = await passes.ratioAndGrad(state.v);
    step++;
    if (!Number.isFinite(ratio)) throw new Error(`the feature change became ${ratio} at step ${step}`);
    ratioEst = Number.isNaN(ratioEst) ? ratio : RATIO_EMA * ratioEst + (1 - RATIO_EMA) * ratio;

    // The entropy's gradient: constant for SID (d mean(v)/dv), estimated on the same noise batch for RU.
    let dH: Float32Array = e;
    if (passes.entropyAndGrad) {
      const { value: h, grad } = await passes.entropyAndGrad(state.v);
      dH = grad;
      if (!Number.isFinite(h)) throw new Error(`the reconstruction entropy became ${h} at step ${step}`);
      entropyEst = Number.isNaN(entropyEst) ? h : RATIO_EMA * entropyEst + (1 - RATIO_EMA) * h;
    }

    const lam = stationaryMultiplier(g, dH, state.v, logSigmaMax);
    lambda = Number.isNaN(lambda) ? lam : 0.9 * lambda + 0.1 * lam;
    const shift = 0.5 * Math.log(opts.alpha / ratioEst);
    adamLevelStep(state, g, dH, lam, step, opts.learningRate, shift, logSigmaMax);
    ratioEst *= Math.exp(2 * shift);

    let entropy = 0;
    if (passes.entropyAndGrad) entropy = entropyEst;
    else for (let j = 0; j < e.length; j++) entropy += state.vAvg[j] * e[j];
    entropy += GAUSSIAN_ENTROPY_CONSTANT;
    entropyHistory.push(entropy);
    opts.onStep?.(step, ratio, entropy);

    if (step >= Math.max(minSteps, 2 * window) && searchConverged(entropyHistory, window, tol, ratioEst, opts.alpha)) {
      return { steps: step, lambda, stopReason: 'converged' };
    }
  }
  return { steps: step, lambda, stopReason: 'maxSteps' };
}

/**
 * Pixels whose gradient is exactly zero, both at the learnt sigma and again with themselves at sigma_max (a
 * pixel behind a max-pool can lose every comparison at small noise yet win at large noise: it is not pinned).
 */
async function invisiblePixels(vFull: Float32Array, passes: NoisePasses, logSigmaMax: number, checkCancel: () => void): Promise<Uint8Array> {
  const zeroGradient = async (vAt: Float32Array) => {
    await yieldToEventLoop();
    checkCancel();
    passes.draw();
    return (await passes.gradFull(vAt)).map((gi) => (gi === 0 ? 1 : 0));
  };
  const candidates = await zeroGradient(vFull);
  if (!candidates.some((c) => c === 1)) return new Uint8Array(vFull.length);
  const raised = vFull.map((vi, i) => (candidates[i] ? logSigmaMax : vi));
  const still = await zeroGradient(raised);
  return Uint8Array.from(candidates, (c, i) => (c && still[i] ? 1 : 0));
}

/**
 * The level of the averaged σ: calibrated on common random numbers (Newton steps on a shift c of every log σ),
 * then the ratio measured on fresh noise. Heavy-tailed features (softmax probabilities: a rare flip of the
 * prediction dominates the mean) can pass the calibration on its fixed set and miss alpha on fresh noise by more
 * than the ratio's standard error. Then the level is calibrated again, on common random numbers over a set up to
 * four times as large (at least as large as the check, at most RECAL_MAX_SAMPLES), and checked on fresh noise with
 * at least as many samples; up to RECALIBRATIONS times, and only when the set can grow within the budget below.
 * Layers whose first check holds (nearly all) are untouched. When every free sigma is at sigmaMax, nothing can be
 * raised. The cost is bounded, deterministically, in forward passes: a recalibration may spend at most RECAL_BUDGET
 * times what the layer has cost so far (`searchCost` before the calibration).
 */
async function calibrateLevel(
  estimate: Estimate,
  sigmaAt: (shift: number) => Float32Array,
  deltaF2: number,
  maxUsefulShift: number,
  searchCost: number,
  opts: SidOptions,
  checkCancel: () => void,
): Promise<{ shift: number; finalCheck: FeatureChangeEstimate }> {
  const calSeed = mixSeed(opts.seed, 3);
  const first = await estimate(sigmaAt(0), calSeed);
  const level = await solveLevel(
    async (c) => {
      checkCancel();
      return (await estimate(sigmaAt(c), calSeed, first.samples)).mean / deltaF2;
    },
    first.mean / deltaF2,
    { alpha: opts.alpha, tolerance: 0.01, maxEvaluations: 24, maxUsefulShift },
  );
  let cShift = level.shift;
  checkCancel();
  let finalCheck = await estimate(sigmaAt(cShift), mixSeed(opts.seed, 4));
  let spent = searchCost + first.samples * (1 + level.evaluations) + finalCheck.samples;
  let calSamples = first.samples;
  for (let round = 0; round < RECALIBRATIONS; round++) {
    const r = finalCheck.mean / deltaF2;
    if (Math.abs(r - opts.alpha) <= RATIO_TOLERANCE * opts.alpha + finalCheck.relSe * r) break;
    if (r < opts.alpha && cShift >= maxUsefulShift - 1e-6) break;
    const affordable = Math.floor((RECAL_BUDGET * spent) / (RECAL_EVALUATIONS + 2));
    const size = Math.min(RECAL_MAX_SAMPLES, Math.max(4 * calSamples, finalCheck.samples), affordable);
    if (size <= calSamples) break;
    checkCancel();
    calSamples = size;
    const seedR = mixSeed(opts.seed, 5, round);
    const base = cShift;
    const again = await solveLevel(
      async (c) => {
        checkCancel();
        return (await estimate(sigmaAt(base + c), seedR, calSamples)).mean / deltaF2;
      },
      (await estimate(sigmaAt(base), seedR, calSamples)).mean / deltaF2,
      { alpha: opts.alpha, tolerance: 0.01, maxEvaluations: RECAL_EVALUATIONS, maxUsefulShift: maxUsefulShift - base },
    );
    cShift = base + again.shift;
    finalCheck = await estimate(sigmaAt(cShift), mixSeed(opts.seed, 6, round), undefined, calSamples);
    spent += calSamples * (1 + again.evaluations) + finalCheck.samples;
  }
  return { shift: cShift, finalCheck };
}

function yieldToEventLoop(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}
