/**
 * The sigma parametrisation: one log-sigma per pixel, or an N x N grid bilinearly upsampled to the image
 * (vFull = A * v * B^T, plain matrix products so gradients work on every backend).
 */
import * as tf from '@tensorflow/tfjs-core';

export interface SigmaGrid {
  rows: number;
  cols: number;
  /** Upsamples grid parameters [rows, cols] to the full image [H, W] (identity when per pixel). */
  upsample(v: tf.Tensor2D): tf.Tensor2D;
  /** d mean(vFull) / d v_j: the entropy term's gradient per parameter. */
  entropyWeights: Float32Array;
  /** vFull in plain JS, for the reported map. */
  upsampleArray(v: Float32Array): Float32Array;
  /**
   * The grid parameters whose upsampling is nearest a full-resolution [H, W] array in least squares
   * (v = A⁺ V (B⁺)ᵀ; a copy when per pixel). Recovers v exactly from upsampleArray(v).
   */
  downsampleArray(vFull: Float32Array): Float32Array;
  dispose(): void;
}

/** Linear interpolation matrix [out, n] mapping n grid points onto out pixel centres (align corners). */
export function interpolationMatrix(out: number, n: number): Float32Array {
  const m = new Float32Array(out * n);
  for (let i = 0; i < out; i++) {
    const pos = out === 1 || n === 1 ? 0 : (i * (n - 1)) / (out - 1);
    const lo = Math.min(Math.floor(pos), n - 1);
    const hi = Math.min(lo + 1, n - 1);
    const t = pos - lo;
    m[i * n + lo] += 1 - t;
    m[i * n + hi] += t;
  }
  return m;
}

export function makeSigmaGrid(height: number, width: number, grid: number | null): SigmaGrid {
  if (grid === null || (grid >= height && grid >= width)) {
    const weights = new Float32Array(height * width).fill(1 / (height * width));
    return {
      rows: height,
      cols: width,
      upsample: (v) => v,
      entropyWeights: weights,
      upsampleArray: (v) => v,
      downsampleArray: (vFull) => Float32Array.from(vFull),
      dispose() {},
    };
  }
  const rows = Math.min(grid, height);
  const cols = Math.min(grid, width);
  const aArr = interpolationMatrix(height, rows);
  const bArr = interpolationMatrix(width, cols);
  const a = tf.keep(tf.tensor2d(aArr, [height, rows]));
  const b = tf.keep(tf.tensor2d(bArr, [width, cols]));
  const colSum = (m: Float32Array, out: number, n: number) => {
    const s = new Float32Array(n);
    for (let i = 0; i < out; i++) for (let j = 0; j < n; j++) s[j] += m[i * n + j];
    return s;
  };
  const ca = colSum(aArr, height, rows);
  const cb = colSum(bArr, width, cols);
  const weights = new Float32Array(rows * cols);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) weights[r * cols + c] = (ca[r] * cb[c]) / (height * width);
  return {
    rows,
    cols,
    upsample: (v) => tf.matMul(tf.matMul(a, v), b, false, true),
    entropyWeights: weights,
    upsampleArray(v) {
      const full = new Float32Array(height * width);
      for (let i = 0; i < height; i++)
        for (let j = 0; j < width; j++) {
          let s = 0;
          for (let r = 0; r < rows; r++) {
            const ar = aArr[i * rows + r];
            if (ar === 0) continue;
            for (let c = 0; c < cols; c++) s += ar * v[r * cols + c] * bArr[j * cols + c];
          }
          full[i * width + j] = s;
        }
      return full;
    },
    downsampleArray(vFull) {
      // Rows first: T = A⁺ V  [rows, W], then X = T (B⁺)ᵀ  [rows, cols].
      const aPinv = pseudoInverse(aArr, height, rows);
      const bPinv = pseudoInverse(bArr, width, cols);
      const t = new Float64Array(rows * width);
      for (let r = 0; r < rows; r++)
        for (let i = 0; i < height; i++) {
          const p = aPinv[r * height + i];
          if (p === 0) continue;
          for (let j = 0; j < width; j++) t[r * width + j] += p * vFull[i * width + j];
        }
      const out = new Float32Array(rows * cols);
      for (let r = 0; r < rows; r++)
        for (let c = 0; c < cols; c++) {
          let s = 0;
          for (let j = 0; j < width; j++) s += t[r * width + j] * bPinv[c * width + j];
          out[r * cols + c] = s;
        }
      return out;
    },
    dispose() {
      a.dispose();
      b.dispose();
    },
  };
}

/** (MᵀM)⁻¹ Mᵀ for a full-column-rank [out, n] matrix (n small), as an [n, out] array. Gauss-Jordan on MᵀM. */
function pseudoInverse(m: Float32Array, out: number, n: number): Float64Array {
  const g = new Float64Array(n * n);
  for (let i = 0; i < out; i++)
    for (let a = 0; a < n; a++) {
      const ma = m[i * n + a];
      if (ma === 0) continue;
      for (let b = 0; b < n; b++) g[a * n + b] += ma * m[i * n + b];
    }
  const inv = new Float64Array(n * n);
  for (let a = 0; a < n; a++) inv[a * n + a] = 1;
  for (let col = 0; col < n; col++) {
    let piv = col;
    for (let r = col + 1; r < n; r++) if (Math.abs(g[r * n + col]) > Math.abs(g[piv * n + col])) piv = r;
    if (piv !== col)
      for (let k = 0; k < n; k++) {
        [g[col * n + k], g[piv * n + k]] = [g[piv * n + k], g[col * n + k]];
        [inv[col * n + k], inv[piv * n + k]] = [inv[piv * n + k], inv[col * n + k]];
      }
    const d = g[col * n + col];
    for (let k = 0; k < n; k++) {
      g[col * n + k] /= d;
      inv[col * n + k] /= d;
    }
    for (let r = 0; r < n; r++) {
      if (r === col) continue;
      const f = g[r * n + col];
      if (f === 0) continue;
      for (let k = 0; k < n; k++) {
        g[r * n + k] -= f * g[col * n + k];
        inv[r * n + k] -= f * inv[col * n + k];
      }
    }
  }
  const p = new Float64Array(n * out);
  for (let a = 0; a < n; a++)
    for (let i = 0; i < out; i++) {
      let s = 0;
      for (let b = 0; b < n; b++) s += inv[a * n + b] * m[i * n + b];
      p[a * out + i] = s;
    }
  return p;
}
