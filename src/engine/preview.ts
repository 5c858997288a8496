/**
 * First-order SID preview: the closed-form optimum of the linearised problem, in a few backward passes.
 *
 * For small noise, E ||h(x + s∘delta) - f||^2 ≈ sum_i s_i^2 c_i with c_i = ||J_{:,i}||^2 (J = dh/dx at x, i over
 * input units, s in model units = sigma * mapping.scale). Sigma is shared by the channels of a pixel, so per pixel
 * c_p = sum_ch c_{p,ch} scale_ch^2 and the constraint reads sum_p sigma_p^2 c_p = B = alpha * delta_f^2.
 *
 *  - c is estimated by Hutchinson's identity c_i = E_v[(Jᵀv)_i^2], v ~ N(0, I) over the feature: M vector-Jacobian
 *    products, batched (one backward pass over a batch of copies of x, each with its own v).
 *  - Maximising sum_j e_j log sigma_j (e = the entropy weights: 1/P per pixel) subject to sum_j sigma_j^2 d_j = B and
 *    sigma_j <= sigmaMax has the KKT solution sigma_j^2 = min(kappa e_j / d_j, sigmaMax^2), with kappa set by the
 *    budget left over by the clamped parameters: kappa = (B - sigmaMax^2 sum_clamped d_j) / sum_free e_j. Clamping
 *    a parameter frees budget, so kappa only grows as the clamped set grows; the fixed point (clamp every j with
 *    kappa e_j / d_j >= sigmaMax^2, recompute kappa, repeat) is reached in at most P rounds ("water filling").
 *    d_j = 0 (the layer cannot see the pixel to first order) is clamped from the start. Per pixel that is
 *    sigma_p^2 = alpha delta_f^2 / (P c_p) when nothing saturates.
 *  - With a sigma grid (vFull = A v Bᵀ, rows of A and B convex weights), exp(2 (A v Bᵀ)_p) <= sum_j w_pj exp(2 v_j)
 *    (Jensen), so sum_j sigma_j^2 d_j with d_j = sum_p w_pj c_p bounds the first-order change from above: the same
 *    closed form with d_j, i.e. c averaged over each grid point's support with the interpolation weights. The
 *    bound is then made tight by a common shift of the upsampled log sigma (the same level search as learnSid's
 *    calibration, here on the first-order model, so it costs nothing).
 *
 * delta_f^2 is measured exactly as learnSid measures it (same seed stream and precision), so a preview and a full
 * run of the same problem share delta_f^2. The returned constraint ratio is measured on fresh noise: it is how
 * far the linearisation is from the layer at the preview's noise level (1 ± Monte-Carlo error for a linear layer).
 */
import { NATIVE_PASS } from './native/ortProbe';
import * as tf from '@tensorflow/tfjs-core';
import { CancelledError, UserError, SkipLayerError, ZERO_RESPONSE_REASON, NON_FINITE_REASON } from './errors';
import { solveLevel } from './calibrate';
import { estimateFeatureChange } from './featureChange';
import { readMade, readValues } from './reads';
import { toModelUnits } from './inputMapping';
import { GAUSSIAN_ENTROPY_CONSTANT } from './report';
import { mixSeed, Rng } from './rng';
import { tightSampleCount, type SidInput } from './sid';
import { interpolationMatrix, makeSigmaGrid } from './sigmaGrid';

export interface PreviewOptions {
  alpha: number;
  tau: number;
  sigmaMax: number;
  sigmaGrid: number | null;
  /** Seed of this (layer, image) problem, as given to learnSid (delta_f^2 then comes out identical). */
  seed: number;
  /** Noise samples per forward batch of the feature-change estimates (learnSid's K). */
  samples: number;
  /** Hutchinson probes M (default 64: per-pixel log-sigma standard error <= 1/sqrt(2M) = 0.09 nats). */
  vjpSamples?: number;
  /** Probes per backward pass (default min(M, 16)). */
  vjpBatch?: number;
  /** Relative standard error targeted by delta_f^2 and the constraint check (default 1 %, as learnSid). */
  targetRelSe?: number;
  /**
   * Where the Jacobian is taken: 'flat' (default) at x + sigma∘delta for noise at the cold start's level
   * sqrt(alpha*tau), then at the previous pass's sigma; 'none' at x itself (the plain local linearisation).
   */
  linearisationNoise?: 'flat' | 'none';
  /** Linearise, solve, re-linearise at the solution ...: this many passes of M probes each (default 3). */
  passes?: number;
  /** Measure the constraint ratio of the preview on fresh noise (default true). */
  measure?: boolean;
  /**
   * Set the level of the first-order solution on measured feature changes, exactly as learnSid's final
   * calibration does (default true; needs measure). The shape stays first order; only a common shift is fitted.
   */
  calibrate?: boolean;
  /**
   * After the calibration, re-measure the constraint ratio on fresh noise for the report (default true; needs
   * measure). A warm start does not need it: constraintRatio is then NaN.
   */
  check?: boolean;
  signal?: AbortSignal;
}

export interface PreviewResult {
  /** Sigma per pixel ([0,1]-pixel units, H*W row-major): usable as learnSid's initialLogSigma (after log). */
  sigma: Float32Array;
  /** Pixel SID H_i = log sigma_i + C (nats), H*W row-major. */
  map: Float32Array;
  sidMean: number;
  /** Measured E||h(x + sigma∘delta) - f||^2 / delta_f^2 on fresh noise (NaN when measure or check is false); alpha if exact. */
  constraintRatio: number;
  constraintRatioSe: number;
  /** The same ratio under the first-order model (alpha unless every pixel saturates). */
  firstOrderRatio: number;
  /** The measured ratio of the first-order solution before calibration: how good the linearisation is (NaN unless measured). */
  linearisedRatio: number;
  /** The common log-sigma shift of the calibration (0 without it). */
  levelShift: number;
  deltaF2: number;
  deltaF2RelSe: number;
  /** First-order sensitivity c_p per pixel (model-unit Jacobian column norms^2 times scale^2, summed over channels). */
  sensitivity: Float32Array;
  /** Pixels at sigmaMax. */
  saturated: number;
  vjpSamples: number;
  seconds: number;
}

export const DEFAULT_VJP_SAMPLES = 64;

export async function previewSigma(input: SidInput, opts: PreviewOptions): Promise<PreviewResult> {
  const t0 = performance.now();
  const { height: H, width: W, channels: C, probe } = input;
  const K = opts.samples;
  const M = Math.max(1, Math.round(opts.vjpSamples ?? DEFAULT_VJP_SAMPLES));
  const batch = Math.max(1, Math.min(M, opts.vjpBatch ?? 16));
  const targetRelSe = opts.targetRelSe ?? 0.01;
  const checkCancel = () => {
    if (opts.signal?.aborted) throw new CancelledError();
  };

  const x = tf.keep(tf.tensor4d(toModelUnits(input.pixels, input.mapping), [1, H, W, C]));
  const scale = tf.keep(tf.tensor4d(input.mapping.scale, [1, 1, 1, C]));
  const native = input.native;
  // With a native runtime every pass runs there (the feature changes against its own f, the products Jᵀv).
  const f = tf.keep(native ? tf.zeros([1]) : tf.tidy(() => probe(x)));
  try {
    const estimate = async (std: tf.Tensor4D, seed: number) => {
      try {
        return await estimateFeatureChange(probe, x, f, std, {
          batch: K, seed, targetRelSe, minSamples: Math.max(32, 2 * K), maxSamples: 4096, tightSamples: tightSampleCount(K), signal: opts.signal,
          ...(native ? { native } : {}),
        });
      } finally {
        std.dispose();
      }
    };
    // delta_f^2 exactly as learnSid draws it (same stream, same stopping rule).
    const df = await estimate(tf.tidy(() => tf.mul(scale, Math.sqrt(opts.tau))) as tf.Tensor4D, mixSeed(opts.seed, 1));
    if (!Number.isFinite(df.mean)) throw new SkipLayerError(NON_FINITE_REASON);
    if (!(df.mean > 0)) throw new SkipLayerError(ZERO_RESPONSE_REASON);
    const deltaF2 = df.mean;
    const budget = opts.alpha * deltaF2;

    // The probes v are i.i.d. normal over the layer's units, so only their number matters on the native path.
    const featureShape = native ? [native.featureSize] : f.shape.slice(1);
    const featureSize = featureShape.reduce((a, b) => a * b, 1);
    const rng = new Rng(mixSeed(opts.seed, 5));
    const vjpOf = (vT: tf.Tensor) => tf.grad((xb: tf.Tensor) => tf.sum(tf.mul(probe(xb as tf.Tensor4D), vT)));
    /**
     * Hutchinson: c_p = E_v sum_ch scale_ch^2 (Jᵀv)_{p,ch}^2 per pixel, with J taken at x + noiseSigma∘delta (one
     * independent delta per probe; noiseSigma 0: at x itself).
     */
    const sensitivity = async (noiseSigma: Float32Array | null): Promise<Float32Array> => {
      const cUnit = new Float64Array(H * W * C);
      const noiseStd = noiseSigma ? tf.keep(tf.tidy(() => tf.mul(tf.tensor4d(noiseSigma, [1, H, W, 1]), scale))) : null;
      try {
        for (let done = 0; done < M; ) {
          await new Promise((resolve) => setImmediate(resolve));
          checkCancel();
          const b = Math.min(batch, M - done);
          const buf = new Float32Array(b * featureSize);
          rng.fillNormal(buf);
          const xNoise = noiseStd ? new Float32Array(b * H * W * C) : null;
          if (xNoise) rng.fillNormal(xNoise);
          const inputs = () => {
            const xb = tf.tile(x, [b, 1, 1, 1]) as tf.Tensor4D;
            return noiseStd && xNoise ? (tf.add(xb, tf.mul(noiseStd, tf.tensor4d(xNoise, [b, H, W, C]))) as tf.Tensor4D) : xb;
          };
          if (native) {
            const xb = await readMade(inputs);
            const unit = H * W * C;
            // The same draws as the tfjs path, run NATIVE_PASS at a time (memory).
            for (let from = 0; from < b; from += NATIVE_PASS) {
              const n = Math.min(NATIVE_PASS, b - from);
              const dx = await native.vjp(xb.subarray(from * unit, (from + n) * unit), buf.subarray(from * featureSize, (from + n) * featureSize), n);
              for (let k = 0; k < n; k++) for (let i = 0; i < unit; i++) cUnit[i] += dx[k * unit + i] ** 2;
            }
          } else {
            const sq = tf.tidy(() => tf.sum(tf.square(vjpOf(tf.tensor(buf, [b, ...featureShape]))(inputs())), 0));
            const s = await readValues(sq);
            sq.dispose();
            for (let i = 0; i < s.length; i++) cUnit[i] += s[i];
          }
          done += b;
        }
      } finally {
        noiseStd?.dispose();
      }
      const out = new Float32Array(H * W);
      for (let p = 0; p < H * W; p++) {
        let sum = 0;
        for (let ch = 0; ch < C; ch++) sum += cUnit[p * C + ch] * input.mapping.scale[ch] ** 2;
        out[p] = sum / M;
      }
      return out;
    };

    const passes = Math.max(1, Math.round(opts.passes ?? 3));
    let noiseSigma: Float32Array | null =
      opts.linearisationNoise === 'none' ? null : new Float32Array(H * W).fill(Math.min(Math.sqrt(opts.alpha * opts.tau), opts.sigmaMax));
    let sens: Float32Array = new Float32Array(H * W);
    let sigma: Float32Array = new Float32Array(H * W);
    let firstOrderRatio = NaN;
    // Re-linearising at the last solution alone oscillates on ReLU nets (more noise switches more units, which
    // raises c, which lowers sigma ...): each pass solves with c averaged over every pass so far.
    const sensSum = new Float64Array(H * W);
    for (let pass = 0; pass < passes; pass++) {
      const latest = await sensitivity(noiseSigma);
      for (let p = 0; p < H * W; p++) sensSum[p] += latest[p];
      sens = Float32Array.from(sensSum, (c) => c / (pass + 1));
      const solved = solveFirstOrder(sens, H, W, opts.sigmaGrid, budget, opts.sigmaMax);
      sigma = solved.sigma;
      firstOrderRatio = solved.used / deltaF2;
      noiseSigma = sigma;
    }
    // The level and the check need only the forward session.
    await native?.releaseVjp();
    const logSigmaMax = Math.log(opts.sigmaMax);
    let constraintRatio = NaN;
    let constraintRatioSe = NaN;
    let linearisedRatio = NaN;
    let levelShift = 0;
    const stdOf = (sg: Float32Array) => tf.tidy(() => tf.mul(tf.tensor4d(sg, [1, H, W, 1]), scale)) as tf.Tensor4D;
    if (opts.measure ?? true) {
      checkCancel();
      // The first-order solution's measured ratio, on learnSid's calibration noise (common random numbers) ...
      const calSeed = mixSeed(opts.seed, 3);
      const first = await estimate(stdOf(sigma), calSeed);
      linearisedRatio = first.mean / deltaF2;
      if (opts.calibrate ?? true) {
        // ... then its level set as learnSid sets it: a common log-sigma shift solved on those samples.
        const base = Float32Array.from(sigma, Math.log);
        let minFree = Infinity;
        for (const b of base) minFree = Math.min(minFree, b);
        const at = (c: number) => Float32Array.from(base, (b) => Math.exp(Math.min(b + c, logSigmaMax)));
        const level = await solveLevel(
          async (c) => {
            checkCancel();
            const std = stdOf(at(c));
            try {
              return (await estimateFeatureChange(probe, x, f, std, {
                batch: K, seed: calSeed, targetRelSe: 0, minSamples: first.samples, maxSamples: first.samples, signal: opts.signal,
                ...(native ? { native } : {}),
              })).mean / deltaF2;
            } finally {
              std.dispose();
            }
          },
          linearisedRatio,
          { alpha: opts.alpha, tolerance: 0.01, maxEvaluations: 24, maxUsefulShift: logSigmaMax - minFree },
        );
        levelShift = level.shift;
        sigma = at(levelShift);
      }
      if (opts.check ?? true) {
        const check = await estimate(stdOf(sigma), mixSeed(opts.seed, 6));
        constraintRatio = check.mean / deltaF2;
        constraintRatioSe = (check.relSe * check.mean) / deltaF2;
      }
    }
    const map = new Float32Array(H * W);
    let sum = 0;
    let saturated = 0;
    for (let p = 0; p < H * W; p++) {
      const ls = Math.log(sigma[p]);
      map[p] = ls + GAUSSIAN_ENTROPY_CONSTANT;
      sum += map[p];
      if (ls >= logSigmaMax - 1e-3) saturated++;
    }
    return {
      sigma,
      map,
      sidMean: sum / (H * W),
      constraintRatio,
      constraintRatioSe,
      firstOrderRatio,
      linearisedRatio,
      levelShift,
      deltaF2,
      deltaF2RelSe: df.relSe,
      sensitivity: sens,
      saturated,
      vjpSamples: M,
      seconds: (performance.now() - t0) / 1000,
    };
  } finally {
    x.dispose();
    scale.dispose();
    f.dispose();
  }
}

/**
 * argmax sum_j e_j log sigma_j  s.t.  sum_j sigma_j^2 d_j = budget, sigma_j <= sigmaMax; returns sigma_j^2.
 * Free parameters take sigma_j^2 = kappa e_j / d_j; the clamped set grows to its fixed point (see the header).
 * When even all-clamped stays under the budget, everything sits at sigmaMax.
 */
export function waterFill(e: ArrayLike<number>, d: ArrayLike<number>, budget: number, sigmaMax: number): Float64Array {
  const n = e.length;
  const max2 = sigmaMax * sigmaMax;
  const clamped = new Uint8Array(n);
  for (let j = 0; j < n; j++) if (!(d[j] > 0) || !(e[j] > 0)) clamped[j] = 1;
  let kappa = 0;
  for (;;) {
    let used = 0;
    let free = 0;
    for (let j = 0; j < n; j++) {
      if (clamped[j]) used += max2 * Math.max(0, d[j]);
      else free += e[j];
    }
    if (free === 0) break;
    kappa = Math.max(0, budget - used) / free;
    let changed = false;
    for (let j = 0; j < n; j++) {
      if (!clamped[j] && (kappa * e[j]) / d[j] >= max2) {
        clamped[j] = 1;
        changed = true;
      }
    }
    if (!changed) break;
  }
  const out = new Float64Array(n);
  for (let j = 0; j < n; j++) out[j] = clamped[j] ? max2 : Math.max((kappa * e[j]) / d[j], 1e-300);
  return out;
}

/**
 * The closed form for sensitivities c_p (see the header): water filling over the sigma parameters, then a common
 * shift of the upsampled log sigma so that the first-order change sum_p sigma_p^2 c_p meets the budget.
 */
function solveFirstOrder(sens: Float32Array, H: number, W: number, sigmaGrid: number | null, budget: number, sigmaMax: number): { sigma: Float32Array; used: number } {
  const logSigmaMax = Math.log(sigmaMax);
  const grid = makeSigmaGrid(H, W, sigmaGrid);
  let vFull: Float32Array;
  try {
    const P = grid.rows * grid.cols;
    let d: Float64Array;
    if (P === H * W) d = Float64Array.from(sens);
    else {
      const a = interpolationMatrix(H, grid.rows);
      const bm = interpolationMatrix(W, grid.cols);
      d = new Float64Array(P);
      for (let i = 0; i < H; i++)
        for (let r = 0; r < grid.rows; r++) {
          const ar = a[i * grid.rows + r];
          if (ar === 0) continue;
          for (let j = 0; j < W; j++)
            for (let c = 0; c < grid.cols; c++) {
              const w = ar * bm[j * grid.cols + c];
              if (w !== 0) d[r * grid.cols + c] += w * sens[i * W + j];
            }
        }
    }
    const v = waterFill(grid.entropyWeights, d, budget, sigmaMax);
    vFull = grid.upsampleArray(Float32Array.from(v, (s2) => 0.5 * Math.log(s2)));
  } finally {
    grid.dispose();
  }
  // Tighten to the budget with a common shift (a no-op per pixel; the Jensen slack on a grid).
  const used = (shift: number) => {
    let s = 0;
    for (let p = 0; p < H * W; p++) s += Math.exp(2 * Math.min(vFull[p] + shift, logSigmaMax)) * sens[p];
    return s;
  };
  let minV = Infinity;
  for (const vi of vFull) minV = Math.min(minV, vi);
  let shift = 0;
  if (used(logSigmaMax - minV) <= budget) shift = logSigmaMax - minV;
  else if (Math.abs(used(0) / budget - 1) > 1e-6) {
    let lo = -20;
    let hi = logSigmaMax - minV;
    for (let it = 0; it < 60; it++) {
      const mid = (lo + hi) / 2;
      if (used(mid) < budget) lo = mid;
      else hi = mid;
    }
    shift = lo;
  }
  const sigma = Float32Array.from(vFull, (vi) => Math.exp(Math.min(vi + shift, logSigmaMax)));
  return { sigma, used: used(shift) };
}
