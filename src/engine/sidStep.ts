/**
 * The arithmetic of one step of the SID search (sid.ts), on the grid parameters v = log σ in plain arrays: the
 * start, the Lagrange multiplier, the Adam step with the level projection, the stopping rule and the final map.
 */
import { GAUSSIAN_ENTROPY_CONSTANT } from './report';
import type { SigmaGrid } from './sigmaGrid';

const ADAM_B1 = 0.9;
const ADAM_B2 = 0.999;
const ADAM_EPS = 1e-8;
/** Polyak averaging of v: weight of the past. */
const AVERAGE_EMA = 0.9;

/** v, the Adam moments m and s, and the Polyak-averaged v. */
export interface SearchState {
  v: Float32Array;
  m: Float32Array;
  s: Float32Array;
  vAvg: Float32Array;
}

/**
 * The start: ½ log(ατ) everywhere (capped at log σ_max), or a warm start's log σ per pixel fitted to the grid.
 */
export function initialState(grid: SigmaGrid, alpha: number, tau: number, logSigmaMax: number, pixels: number, initialLogSigma?: Float32Array): SearchState {
  const P = grid.rows * grid.cols;
  const v = new Float32Array(P).fill(Math.min(0.5 * Math.log(alpha * tau), logSigmaMax));
  if (initialLogSigma) {
    if (initialLogSigma.length !== pixels) {
      throw new Error(`initialLogSigma has ${initialLogSigma.length} values, the image ${pixels} pixels`);
    }
    const init = grid.downsampleArray(initialLogSigma);
    for (let j = 0; j < P; j++) {
      if (!Number.isFinite(init[j])) throw new Error(`initialLogSigma is not finite (${init[j]}) at parameter ${j}`);
      v[j] = Math.min(init[j], logSigmaMax);
    }
  }
  return { v, m: new Float32Array(P), s: new Float32Array(P), vAvg: Float32Array.from(v) };
}

/**
 * The Lagrange multiplier from the stationarity condition dr/dv_j = λ·dH_j, over the parameters that are free to
 * move (below log σ_max): λ = <g, dH> / <dH, dH>.
 */
export function stationaryMultiplier(g: Float32Array, dH: Float32Array, v: Float32Array, logSigmaMax: number): number {
  let ge = 0;
  let ee = 0;
  for (let j = 0; j < v.length; j++) {
    if (v[j] < logSigmaMax - 1e-3) {
      ge += g[j] * dH[j];
      ee += dH[j] * dH[j];
    }
  }
  return ee > 0 ? ge / ee : 0;
}

/**
 * Adam (bias-corrected, step ≥ 1) on g − λ·dH, then the level projection (every v moved by `shift`) and the σ_max
 * bound; the Polyak average follows. Updates `state` in place.
 */
export function adamLevelStep(state: SearchState, g: Float32Array, dH: Float32Array, lam: number, step: number, lr: number, shift: number, logSigmaMax: number): void {
  const { v, m, s, vAvg } = state;
  const c1 = 1 - ADAM_B1 ** step;
  const c2 = 1 - ADAM_B2 ** step;
  for (let j = 0; j < v.length; j++) {
    const gj = g[j] - lam * dH[j];
    m[j] = ADAM_B1 * m[j] + (1 - ADAM_B1) * gj;
    s[j] = ADAM_B2 * s[j] + (1 - ADAM_B2) * gj * gj;
    const next = v[j] - (lr * (m[j] / c1)) / (Math.sqrt(s[j] / c2) + ADAM_EPS) + shift;
    v[j] = next > logSigmaMax ? logSigmaMax : next;
    vAvg[j] = Math.min(AVERAGE_EMA * (vAvg[j] + shift) + (1 - AVERAGE_EMA) * v[j], logSigmaMax);
  }
}

/**
 * The stopping rule: the constraint holds (running ratio within 5 % of α) and the averaged entropy moved less
 * than `tolerance` between the last two windows of steps.
 */
export function searchConverged(entropyHistory: readonly number[], window: number, tolerance: number, ratioEst: number, alpha: number): boolean {
  const n = entropyHistory.length;
  const recent = avg(entropyHistory, n - window, n);
  const before = avg(entropyHistory, n - 2 * window, n - window);
  return Math.abs(recent - before) < tolerance && Math.abs(ratioEst / alpha - 1) < 0.05;
}

/** The pixel SID map H_i = log σ_i + C, its sum, and the pixels at σ_max. */
export function sidMapOf(sigma: Float32Array, logSigmaMax: number): { map: Float32Array; sum: number; saturated: number } {
  const map = new Float32Array(sigma.length);
  let sum = 0;
  let saturated = 0;
  for (let i = 0; i < map.length; i++) {
    const logSigma = Math.log(sigma[i]);
    map[i] = logSigma + GAUSSIAN_ENTROPY_CONSTANT;
    sum += map[i];
    if (logSigma >= logSigmaMax - 1e-3) saturated++;
  }
  return { map, sum, saturated };
}

function avg(a: readonly number[], from: number, to: number): number {
  let s = 0;
  for (let i = from; i < to; i++) s += a[i];
  return s / (to - from);
}
