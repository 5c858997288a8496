/**
 * Trains the bundled sample model that `npm run demo` analyses and writes the
 * sample images next to it.
 *
 *   node --import tsx scripts/train-sample-model.ts            # train + images + verify
 *   node --import tsx scripts/train-sample-model.ts --verify   # only reload and check (stock kernels, full test set)
 *
 * Data: Fashion-MNIST (MIT, Zalando SE) as shipped by Debian's
 * `dataset-fashion-mnist` package in /usr/share/datasets/fashion-mnist/
 * (override with FASHION_MNIST_DIR). Training runs on the tfjs `cpu` backend
 * (the wasm backend has no Conv2DBackpropFilter kernel, so it cannot train).
 *
 * Everything is reproducible: every kernel initialiser is seeded, and the
 * training subset and the per-epoch shuffles come from a small seeded PRNG
 * (mulberry32) defined below, so no Math.random is used anywhere. A rerun
 * writes byte-identical files.
 *
 * The stock tfjs-backend-cpu training kernels are far too slow for this (more
 * than 10 s per batch), so the script registers faster equivalents for its own
 * run; see "faster cpu kernels" below. About 5 minutes on one core.
 *
 * Outputs:
 *   media/sample/fashion-cnn/{model.json,weights.bin}        final model
 *   media/sample/fashion-cnn-early/{model.json,weights.bin}  same run, after epoch 1
 *   media/sample/images/<class>-<name>.png                   6 test-set images
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import type { MathBackendCPU } from '@tensorflow/tfjs-backend-cpu';
import * as tfl from '@tensorflow/tfjs-layers';
import { PNG } from 'pngjs';
import { CLASS_NAMES, readIdxImages, readIdxLabels, type IdxImages } from './fashion-mnist';

// ---------------------------------------------------------------- settings
const SEED = 20240611;
const TRAIN_SUBSET = Number(process.env.TRAIN_SUBSET ?? 20000);
const EPOCHS = Number(process.env.EPOCHS ?? 3);
const BATCH_SIZE = Number(process.env.BATCH_SIZE ?? 64);
// Adam, learning rate decayed linearly per batch from LR_START to LR_END.
const LR_START = Number(process.env.LR_START ?? 0.01);
const LR_END = Number(process.env.LR_END ?? 0.0005);
const EARLY_EPOCH = 1; // checkpoint saved as fashion-cnn-early

const ROOT = path.resolve(__dirname, '..');
// SAMPLE_OUT_DIR only exists to test reproducibility without touching the bundled files.
const OUT_DIR = process.env.SAMPLE_OUT_DIR ?? path.join(ROOT, 'media', 'sample');
const FINAL_DIR = path.join(OUT_DIR, 'fashion-cnn');
const EARLY_DIR = path.join(OUT_DIR, 'fashion-cnn-early');
const IMAGES_DIR = path.join(OUT_DIR, 'images');

const SAMPLE_CLASSES = [0, 1, 2, 5, 7, 9];

// ---------------------------------------------------------------- PRNG
/** mulberry32: tiny, fast, good enough for shuffling. Returns floats in [0,1). */
function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Fisher-Yates permutation of 0..n-1 driven by `rand`. */
function permutation(n: number, rand: () => number): Int32Array {
  const p = new Int32Array(n);
  for (let i = 0; i < n; i++) p[i] = i;
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    const t = p[i]; p[i] = p[j]; p[j] = t;
  }
  return p;
}


/** Images selected by `idx` as a [n,28,28,1] float tensor in [0,1]. */
function toTensor(images: IdxImages, idx: ArrayLike<number>): tf.Tensor4D {
  const size = images.rows * images.cols;
  const out = new Float32Array(idx.length * size);
  for (let k = 0; k < idx.length; k++) {
    const src = idx[k] * size;
    for (let p = 0; p < size; p++) out[k * size + p] = images.pixels[src + p] / 255;
  }
  return tf.tensor4d(out, [idx.length, images.rows, images.cols, 1]);
}

function oneHot(labels: Uint8Array, idx: ArrayLike<number>): tf.Tensor2D {
  const out = new Float32Array(idx.length * 10);
  for (let k = 0; k < idx.length; k++) out[k * 10 + labels[idx[k]]] = 1;
  return tf.tensor2d(out, [idx.length, 10]);
}

// ---------------------------------------------------------------- faster cpu kernels (training only)
/*
 * tfjs-backend-cpu 4.22 is a reference implementation: Conv2DBackpropFilter and
 * MaxPoolGrad go through TensorBuffer.get() for every element (>10 s per batch
 * of 64 for this tiny CNN), broadcasting Add/Mul compute an index vector per
 * element, and Conv2D / Conv2DBackpropInput / Sum are several times slower than
 * blocked typed-array loops. The kernels below are the same maths for the only
 * case this script needs (NHWC, float32, dilation 1) and defer to the stock
 * kernel for anything else. They are registered by this script only; nothing
 * in src/ is affected. Each was checked against the stock kernel (identical up
 * to float rounding, ~1e-7 relative, from a different summation order).
 */
type Shape4 = [number, number, number, number];

function cpuValues(backend: MathBackendCPU, t: tf.TensorInfo): Float32Array {
  return backend.data.get(t.dataId).values as Float32Array;
}

function replaceCpuKernel(kernelName: string, fast: (args: Parameters<tf.KernelFunc>[0]) => tf.TensorInfo | null): void {
  const stock = tf.getKernel(kernelName, 'cpu');
  tf.unregisterKernel(kernelName, 'cpu');
  tf.registerKernel({
    kernelName,
    backendName: 'cpu',
    kernelFunc: (args) => fast(args) ?? stock.kernelFunc(args),
  });
}

function isNhwcFloat(dataFormat: string | undefined, dilations: number | [number, number] | undefined, ...ts: tf.TensorInfo[]): boolean {
  const d = dilations ?? 1;
  const dilOk = typeof d === 'number' ? d === 1 : d[0] === 1 && d[1] === 1;
  return (dataFormat ?? 'NHWC') === 'NHWC' && dilOk && ts.every((t) => t.dtype === 'float32');
}

interface ConvDims {
  batchSize: number; inHeight: number; inWidth: number; inChannels: number;
  outHeight: number; outWidth: number; outChannels: number;
  filterHeight: number; filterWidth: number; strideHeight: number; strideWidth: number;
  padInfo: { top: number; left: number };
}

/**
 * Copies the zero-padded receptive field of every output pixel into `cols`:
 * [P, K] (P = batch*outH*outW, K = fh*fw*inC), or its transpose [K, P].
 */
function im2col(xv: Float32Array, d: ConvDims, transposed: boolean): Float32Array {
  const { batchSize, inHeight, inWidth, inChannels, outHeight, outWidth, filterHeight, filterWidth, strideHeight, strideWidth } = d;
  const top = d.padInfo.top;
  const left = d.padInfo.left;
  const K = filterHeight * filterWidth * inChannels;
  const P = batchSize * outHeight * outWidth;
  const cols = new Float32Array(K * P); // zero-filled: padding needs no writes
  if (!transposed) {
    let p = 0;
    for (let b = 0; b < batchSize; b++) {
      for (let yR = 0; yR < outHeight; yR++) {
        for (let yC = 0; yC < outWidth; yC++, p++) {
          const c0 = yC * strideWidth - left;
          const wC0 = Math.max(0, -c0);
          const wC1 = Math.min(filterWidth, inWidth - c0);
          const run = (wC1 - wC0) * inChannels; // (wC, c) is contiguous in x
          for (let wR = 0; wR < filterHeight; wR++) {
            const xR = yR * strideHeight + wR - top;
            if (xR < 0 || xR >= inHeight) continue;
            const src = ((b * inHeight + xR) * inWidth + c0 + wC0) * inChannels;
            const dst = p * K + (wR * filterWidth + wC0) * inChannels;
            for (let k = 0; k < run; k++) cols[dst + k] = xv[src + k];
          }
        }
      }
    }
    return cols;
  }
  // transposed: write each row k = (wR, wC, c) sequentially
  for (let wR = 0; wR < filterHeight; wR++) {
    for (let wC = 0; wC < filterWidth; wC++) {
      for (let c = 0; c < inChannels; c++) {
        const row = ((wR * filterWidth + wC) * inChannels + c) * P;
        let p = row;
        for (let b = 0; b < batchSize; b++) {
          for (let yR = 0; yR < outHeight; yR++, p += outWidth) {
            const xR = yR * strideHeight + wR - top;
            if (xR < 0 || xR >= inHeight) continue;
            const base = (b * inHeight + xR) * inWidth;
            for (let yC = 0; yC < outWidth; yC++) {
              const xC = yC * strideWidth + wC - left;
              if (xC >= 0 && xC < inWidth) cols[p + yC] = xv[(base + xC) * inChannels + c];
            }
          }
        }
      }
    }
  }
  return cols;
}

/**
 * out[i, j] = sum_k A[i, k] * B[j, k] (+ bias[j]) (relu), A: [M, K], B: [N, K],
 * both row-major with contiguous K, out: [M, N]. Register-blocked 2 x 4.
 */
function matMulABt(A: Float32Array, B: Float32Array, M: number, N: number, K: number,
  bias: Float32Array | null = null, relu = false): Float32Array {
  const out = new Float32Array(M * N);
  const N4 = N - (N % 4);
  const M2 = M - (M % 2);
  for (let i = 0; i < M; i += 2) {
    const two = i < M2;
    const a0 = i * K;
    const a1 = two ? a0 + K : a0;
    for (let j = 0; j < N; j += 4) {
      const cols = j < N4 ? 4 : N - j;
      const b0 = j * K;
      const b1 = cols > 1 ? b0 + K : b0;
      const b2 = cols > 2 ? b0 + 2 * K : b0;
      const b3 = cols > 3 ? b0 + 3 * K : b0;
      let s00 = 0, s01 = 0, s02 = 0, s03 = 0, s10 = 0, s11 = 0, s12 = 0, s13 = 0;
      for (let k = 0; k < K; k++) {
        const x0 = A[a0 + k];
        const x1 = A[a1 + k];
        const w0 = B[b0 + k], w1 = B[b1 + k], w2 = B[b2 + k], w3 = B[b3 + k];
        s00 += x0 * w0; s01 += x0 * w1; s02 += x0 * w2; s03 += x0 * w3;
        s10 += x1 * w0; s11 += x1 * w1; s12 += x1 * w2; s13 += x1 * w3;
      }
      store(out, i * N + j, cols, s00, s01, s02, s03, bias, j, relu);
      if (two) store(out, (i + 1) * N + j, cols, s10, s11, s12, s13, bias, j, relu);
    }
  }
  return out;
}

function store(out: Float32Array, o: number, cols: number, v0: number, v1: number, v2: number, v3: number,
  bias: Float32Array | null, j: number, relu: boolean): void {
  for (let c = 0; c < cols; c++) {
    let y = c === 0 ? v0 : c === 1 ? v1 : c === 2 ? v2 : v3;
    if (bias !== null) y += bias[j + c];
    out[o + c] = relu && y < 0 ? 0 : y;
  }
}

/** [rows, cols] -> [cols, rows] */
function transpose2d(v: Float32Array, rows: number, cols: number): Float32Array {
  const out = new Float32Array(v.length);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) out[c * rows + r] = v[r * cols + c];
  return out;
}

/** y = conv2d(x, w) [+ bias] [relu], NHWC, dilation 1: im2col + blocked matmul. */
function conv2dForward(xv: Float32Array, wv: Float32Array, d: ConvDims, bias: Float32Array | null, relu: boolean): Float32Array {
  const K = d.filterHeight * d.filterWidth * d.inChannels;
  const P = d.batchSize * d.outHeight * d.outWidth;
  // filter [fh, fw, inC, outC] = [K, outC] -> [outC, K]
  return matMulABt(im2col(xv, d, false), transpose2d(wv, K, d.outChannels), P, d.outChannels, K, bias, relu);
}

function registerFastCpuKernels(): void {
  replaceCpuKernel(tf.Conv2D, ({ inputs, attrs, backend }) => {
    const { x, filter } = inputs as Record<string, tf.TensorInfo>;
    const a = attrs as unknown as tf.Conv2DAttrs;
    if (!isNhwcFloat(a.dataFormat, a.dilations, x, filter)) return null;
    const info = tf.backend_util.computeConv2DInfo(x.shape as Shape4, filter.shape as Shape4, a.strides, 1, a.pad, a.dimRoundingMode);
    const be = backend as MathBackendCPU;
    return be.makeTensorInfo(info.outShape, 'float32', conv2dForward(cpuValues(be, x), cpuValues(be, filter), info, null, false));
  });

  replaceCpuKernel(tf.FusedConv2D, ({ inputs, attrs, backend }) => {
    const { x, filter, bias, preluActivationWeights } = inputs as Record<string, tf.TensorInfo | undefined>;
    if (x == null || filter == null) return null;
    const a = attrs as unknown as tf.FusedConv2DAttrs;
    const act = a.activation ?? 'linear';
    if ((act !== 'linear' && act !== 'relu') || preluActivationWeights != null) return null;
    if (!isNhwcFloat(a.dataFormat, a.dilations, x, filter)) return null;
    const info = tf.backend_util.computeConv2DInfo(x.shape as Shape4, filter.shape as Shape4, a.strides, 1, a.pad, a.dimRoundingMode);
    if (bias != null && (bias.dtype !== 'float32' || bias.shape.length !== 1 || bias.shape[0] !== info.outChannels)) return null;
    const be = backend as MathBackendCPU;
    const y = conv2dForward(cpuValues(be, x), cpuValues(be, filter), info, bias == null ? null : cpuValues(be, bias), act === 'relu');
    return be.makeTensorInfo(info.outShape, 'float32', y);
  });

  // dx = conv2d(dy, filter rotated 180 degrees with in/out swapped): a forward
  // conv for stride 1 (the only stride this model uses); others use the stock kernel.
  replaceCpuKernel(tf.Conv2DBackpropInput, ({ inputs, attrs, backend }) => {
    const { dy, filter } = inputs as Record<string, tf.TensorInfo>;
    const a = attrs as unknown as tf.Conv2DBackpropInputAttrs;
    if (!isNhwcFloat(a.dataFormat, 1, dy, filter)) return null;
    const info = tf.backend_util.computeConv2DInfo(a.inputShape, filter.shape as Shape4, a.strides, 1, a.pad, a.dimRoundingMode);
    if (info.strideHeight !== 1 || info.strideWidth !== 1) return null;
    const { filterHeight: fh, filterWidth: fw, inChannels, outChannels } = info;
    const be = backend as MathBackendCPU;
    const wv = cpuValues(be, filter);
    // wr[outC][fh][fw][inC] (= B operand [N=inC... see below]) built directly as [inC, K'] with K' = fh*fw*outC
    const Kp = fh * fw * outChannels;
    const wr = new Float32Array(inChannels * Kp);
    for (let r = 0; r < fh; r++) for (let c = 0; c < fw; c++) for (let d1 = 0; d1 < inChannels; d1++) for (let d2 = 0; d2 < outChannels; d2++) {
      wr[d1 * Kp + ((fh - 1 - r) * fw + (fw - 1 - c)) * outChannels + d2] = wv[((r * fw + c) * inChannels + d1) * outChannels + d2];
    }
    const dims: ConvDims = {
      batchSize: info.batchSize, inHeight: info.outHeight, inWidth: info.outWidth, inChannels: outChannels,
      outHeight: info.inHeight, outWidth: info.inWidth, outChannels: inChannels,
      filterHeight: fh, filterWidth: fw, strideHeight: 1, strideWidth: 1,
      padInfo: { top: fh - 1 - info.padInfo.top, left: fw - 1 - info.padInfo.left },
    };
    const P = info.batchSize * info.inHeight * info.inWidth;
    const dx = matMulABt(im2col(cpuValues(be, dy), dims, false), wr, P, inChannels, Kp);
    return be.makeTensorInfo(info.inShape, 'float32', dx);
  });

  // dW[k, d2] = sum_p cols[p, k] * dy[p, d2]  ->  (dy^T [outC, P]) x (cols^T [K, P])^T
  replaceCpuKernel(tf.Conv2DBackpropFilter, ({ inputs, attrs, backend }) => {
    const { x, dy } = inputs as Record<string, tf.TensorInfo>;
    const a = attrs as unknown as tf.Conv2DBackpropFilterAttrs;
    if (!isNhwcFloat(a.dataFormat, 1, x, dy)) return null;
    const info = tf.backend_util.computeConv2DInfo(x.shape as Shape4, a.filterShape, a.strides, 1, a.pad, a.dimRoundingMode);
    const be = backend as MathBackendCPU;
    const K = info.filterHeight * info.filterWidth * info.inChannels;
    const P = info.batchSize * info.outHeight * info.outWidth;
    const colsT = im2col(cpuValues(be, x), info, true); // [K, P]
    const dyT = transpose2d(cpuValues(be, dy), P, info.outChannels); // [outC, P]
    const dwT = matMulABt(dyT, colsT, info.outChannels, K, P); // [outC, K]
    return be.makeTensorInfo(info.filterShape, 'float32', transpose2d(dwT, info.outChannels, K));
  });

  // Gradient goes to the first maximum of each window in row-major order,
  // exactly as tfjs' maxPoolPositions picks it; overlapping windows add up.
  replaceCpuKernel(tf.MaxPoolGrad, ({ inputs, attrs, backend }) => {
    const { dy, input } = inputs as Record<string, tf.TensorInfo>;
    const a = attrs as unknown as tf.MaxPoolGradAttrs;
    if (!isNhwcFloat('NHWC', 1, dy, input)) return null;
    const info = tf.backend_util.computePool2DInfo(input.shape as Shape4, a.filterSize, a.strides, 1, a.pad, a.dimRoundingMode);
    const { batchSize, inHeight, inWidth, inChannels, outHeight, outWidth,
      filterHeight, filterWidth, strideHeight, strideWidth } = info;
    const top = info.padInfo.top;
    const left = info.padInfo.left;
    const be = backend as MathBackendCPU;
    const xv = cpuValues(be, input);
    const dyv = cpuValues(be, dy);
    const dx = new Float32Array(xv.length);
    for (let b = 0; b < batchSize; b++) {
      for (let yR = 0; yR < outHeight; yR++) {
        const r0 = Math.max(0, yR * strideHeight - top);
        const r1 = Math.min(inHeight, yR * strideHeight - top + filterHeight);
        for (let yC = 0; yC < outWidth; yC++) {
          const c0 = Math.max(0, yC * strideWidth - left);
          const c1 = Math.min(inWidth, yC * strideWidth - left + filterWidth);
          const dyOff = ((b * outHeight + yR) * outWidth + yC) * inChannels;
          for (let d = 0; d < inChannels; d++) {
            let best = Number.NEGATIVE_INFINITY;
            let pos = -1;
            for (let r = r0; r < r1; r++) {
              for (let c = c0; c < c1; c++) {
                const i = ((b * inHeight + r) * inWidth + c) * inChannels + d;
                if (xv[i] > best) { best = xv[i]; pos = i; }
              }
            }
            if (pos >= 0) dx[pos] += dyv[dyOff + d];
          }
        }
      }
    }
    return be.makeTensorInfo(input.shape, 'float32', dx);
  });

  // Sum over leading axes (bias gradients: [N,H,W,C] -> [C]) without the stock transpose.
  replaceCpuKernel(tf.Sum, ({ inputs, attrs, backend }) => {
    const { x } = inputs as Record<string, tf.TensorInfo>;
    const a = attrs as unknown as tf.SumAttrs;
    if (x.dtype !== 'float32' || x.shape.length < 2) return null;
    const axes = tf.util.parseAxisParam(a.axis, x.shape).sort((p, q) => p - q);
    if (axes.length === 0 || axes.length === x.shape.length || !axes.every((ax, i) => ax === i)) return null;
    const be = backend as MathBackendCPU;
    const xv = cpuValues(be, x);
    const inner = x.shape.slice(axes.length).reduce((p, q) => p * q, 1);
    const outer = xv.length / inner;
    const acc = new Float64Array(inner);
    for (let i = 0; i < outer; i++) {
      const off = i * inner;
      for (let j = 0; j < inner; j++) acc[j] += xv[off + j];
    }
    const shape = a.keepDims ? x.shape.map((d, i) => (i < axes.length ? 1 : d)) : x.shape.slice(axes.length);
    return be.makeTensorInfo(shape, 'float32', Float32Array.from(acc));
  });

  // Broadcasting binary ops (bias add [N,H,W,C] + [C], the GAP gradient
  // [N,1,1,C] * [N,H,W,C], ...) with strided offsets instead of the stock
  // per-element index vectors. Same-shape operands take a plain loop.
  const OPS = { add: 0, sub: 1, mul: 2, div: 3 } as const;
  // One loop per op (a shared op callback would go megamorphic and not inline).
  const run = (code: number, y: Float32Array, o: number, len: number,
    av: Float32Array, ao: number, la: number, bv: Float32Array, bo: number, lb: number): void => {
    switch (code) {
      case OPS.add: for (let j = 0; j < len; j++) y[o + j] = av[ao + j * la] + bv[bo + j * lb]; break;
      case OPS.sub: for (let j = 0; j < len; j++) y[o + j] = av[ao + j * la] - bv[bo + j * lb]; break;
      case OPS.mul: for (let j = 0; j < len; j++) y[o + j] = av[ao + j * la] * bv[bo + j * lb]; break;
      default: for (let j = 0; j < len; j++) y[o + j] = av[ao + j * la] / bv[bo + j * lb]; break;
    }
  };
  const broadcastBinary = (name: string, code: number) =>
    replaceCpuKernel(name, ({ inputs, backend }) => {
      const { a, b } = inputs as Record<string, tf.TensorInfo>;
      if (a.dtype !== 'float32' || b.dtype !== 'float32') return null;
      const out = tf.backend_util.assertAndGetBroadcastShape(a.shape, b.shape);
      const rank = out.length;
      const be = backend as MathBackendCPU;
      const av = cpuValues(be, a);
      const bv = cpuValues(be, b);
      const n = out.reduce((p, q) => p * q, 1);
      const y = new Float32Array(n);
      if (av.length === n && bv.length === n) {
        run(code, y, 0, n, av, 0, 1, bv, 0, 1);
        return be.makeTensorInfo(out, 'float32', y);
      }
      if (rank === 0 || n === 0) return null;
      // element strides of a and b along each output dim (0 where broadcast)
      const strides = (shape: number[]) => {
        const st = new Array<number>(rank).fill(0);
        let acc = 1;
        for (let i = shape.length - 1; i >= 0; i--) {
          st[rank - shape.length + i] = shape[i] === 1 ? 0 : acc;
          acc *= shape[i];
        }
        return st;
      };
      const sa = strides(a.shape);
      const sb = strides(b.shape);
      const last = rank - 1;
      const len = out[last];
      const idx = new Array<number>(rank).fill(0);
      let ao = 0;
      let bo = 0;
      for (let o = 0; o < n; o += len) {
        run(code, y, o, len, av, ao, sa[last], bv, bo, sb[last]);
        // odometer over the outer dims
        for (let d = last - 1; d >= 0; d--) {
          idx[d]++;
          ao += sa[d];
          bo += sb[d];
          if (idx[d] < out[d]) break;
          ao -= sa[d] * out[d];
          bo -= sb[d] * out[d];
          idx[d] = 0;
        }
      }
      return be.makeTensorInfo(out, 'float32', y);
    });
  broadcastBinary(tf.Add, OPS.add);
  broadcastBinary(tf.Sub, OPS.sub);
  broadcastBinary(tf.Multiply, OPS.mul);
  broadcastBinary(tf.RealDiv, OPS.div);

  // Relu and Step (used by the relu gradient) without a closure call per element.
  replaceCpuKernel(tf.Relu, ({ inputs, backend }) => {
    const { x } = inputs as Record<string, tf.TensorInfo>;
    if (x.dtype !== 'float32') return null;
    const be = backend as MathBackendCPU;
    const xv = cpuValues(be, x);
    const y = new Float32Array(xv.length);
    for (let i = 0; i < xv.length; i++) { const v = xv[i]; y[i] = v > 0 ? v : v !== v ? NaN : 0; }
    return be.makeTensorInfo(x.shape, 'float32', y);
  });
  replaceCpuKernel(tf.Step, ({ inputs, attrs, backend }) => {
    const { x } = inputs as Record<string, tf.TensorInfo>;
    if (x.dtype !== 'float32') return null;
    const alpha = (attrs as unknown as tf.StepAttrs).alpha;
    const be = backend as MathBackendCPU;
    const xv = cpuValues(be, x);
    const y = new Float32Array(xv.length);
    for (let i = 0; i < xv.length; i++) { const v = xv[i]; y[i] = v > 0 ? 1 : v !== v ? NaN : alpha; }
    return be.makeTensorInfo(x.shape, 'float32', y);
  });
}

// ---------------------------------------------------------------- model
function buildModel(): tfl.LayersModel {
  let s = SEED;
  const init = () => tfl.initializers.heNormal({ seed: ++s });
  const model = tfl.sequential({ name: 'fashion_cnn' });
  model.add(tfl.layers.conv2d({
    name: 'block1_conv', inputShape: [28, 28, 1], filters: 8, kernelSize: 3,
    padding: 'same', activation: 'relu', kernelInitializer: init(),
  }));
  model.add(tfl.layers.maxPooling2d({ name: 'block1_pool', poolSize: 2 }));
  model.add(tfl.layers.conv2d({
    name: 'block2_conv', filters: 16, kernelSize: 3,
    padding: 'same', activation: 'relu', kernelInitializer: init(),
  }));
  model.add(tfl.layers.maxPooling2d({ name: 'block2_pool', poolSize: 2 }));
  model.add(tfl.layers.conv2d({
    name: 'block3_conv', filters: 32, kernelSize: 3,
    padding: 'same', activation: 'relu', kernelInitializer: init(),
  }));
  model.add(tfl.layers.globalAveragePooling2d({ name: 'gap' }));
  model.add(tfl.layers.dense({
    name: 'predictions', units: 10, activation: 'softmax', kernelInitializer: init(),
  }));
  return model;
}

// ---------------------------------------------------------------- save / load
/** Writes tfjs Layers format: model.json (modelTopology + weightsManifest) + one shard weights.bin. */
async function saveModel(model: tfl.LayersModel, dir: string, metadata: Record<string, unknown>): Promise<void> {
  fs.mkdirSync(dir, { recursive: true });
  await model.save(tf.io.withSaveHandler(async (artifacts) => {
    if (artifacts.weightData == null || artifacts.weightSpecs == null) throw new Error('no weights to save');
    const weights = new Uint8Array(tf.io.CompositeArrayBuffer.join(artifacts.weightData));
    const modelJSON = {
      format: artifacts.format ?? 'layers-model',
      generatedBy: artifacts.generatedBy,
      convertedBy: artifacts.convertedBy ?? null,
      modelTopology: artifacts.modelTopology,
      weightsManifest: [{ paths: ['weights.bin'], weights: artifacts.weightSpecs }],
      userDefinedMetadata: metadata,
    };
    fs.writeFileSync(path.join(dir, 'model.json'), JSON.stringify(modelJSON, null, 1) + '\n');
    fs.writeFileSync(path.join(dir, 'weights.bin'), weights);
    return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON', weightDataBytes: weights.byteLength } };
  }));
}

/** Custom IOHandler: reads model.json and concatenates its weight shards from disk. */
function fileHandler(modelJsonPath: string): tf.io.IOHandler {
  return {
    load: async () => {
      const json = JSON.parse(fs.readFileSync(modelJsonPath, 'utf8')) as tf.io.ModelJSON;
      const dir = path.dirname(modelJsonPath);
      return tf.io.getModelArtifactsForJSON(json, async (manifest) => {
        const specs = manifest.flatMap((g) => g.weights);
        const shards = manifest.flatMap((g) => g.paths).map((p) => {
          const b = fs.readFileSync(path.join(dir, p));
          return b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength) as ArrayBuffer;
        });
        return [specs, tf.io.concatenateArrayBuffers(shards)];
      });
    },
  };
}

// ---------------------------------------------------------------- evaluation
/** Top-1 accuracy on the first `limit` images (default: all). */
function accuracy(model: tfl.LayersModel, images: IdxImages, labels: Uint8Array, limit = images.count): number {
  let correct = 0;
  const chunk = 500;
  for (let start = 0; start < limit; start += chunk) {
    const idx = Array.from({ length: Math.min(chunk, limit - start) }, (_, i) => start + i);
    const pred = tf.tidy(() => {
      const x = toTensor(images, idx);
      return tf.argMax(model.predict(x) as tf.Tensor, -1);
    });
    const p = pred.dataSync();
    pred.dispose();
    for (let k = 0; k < idx.length; k++) if (p[k] === labels[idx[k]]) correct++;
  }
  return correct / limit;
}

// ---------------------------------------------------------------- sample images
function firstIndexOfClass(labels: Uint8Array, cls: number): number {
  for (let i = 0; i < labels.length; i++) if (labels[i] === cls) return i;
  throw new Error(`class ${cls} not in test set`);
}

function writeSampleImages(images: IdxImages, labels: Uint8Array): Array<{ file: string; label: number; testIndex: number }> {
  fs.mkdirSync(IMAGES_DIR, { recursive: true });
  const out: Array<{ file: string; label: number; testIndex: number }> = [];
  const size = images.rows * images.cols;
  for (const cls of SAMPLE_CLASSES) {
    const i = firstIndexOfClass(labels, cls);
    const png = new PNG({ width: images.cols, height: images.rows });
    for (let p = 0; p < size; p++) {
      const v = images.pixels[i * size + p];
      png.data[p * 4] = v; png.data[p * 4 + 1] = v; png.data[p * 4 + 2] = v; png.data[p * 4 + 3] = 255;
    }
    const file = `${cls}-${CLASS_NAMES[cls]}.png`;
    // colorType 0 = 8-bit grayscale, no alpha.
    fs.writeFileSync(path.join(IMAGES_DIR, file), PNG.sync.write(png, { colorType: 0 }));
    out.push({ file, label: cls, testIndex: i });
  }
  return out;
}

/** Reads a PNG back (any colour type) as a [1,28,28,1] tensor in [0,1]. */
function readPng(file: string): tf.Tensor4D {
  const png = PNG.sync.read(fs.readFileSync(file));
  const px = new Float32Array(png.width * png.height);
  for (let p = 0; p < px.length; p++) px[p] = png.data[p * 4] / 255;
  return tf.tensor4d(px, [1, png.height, png.width, 1]);
}

// ---------------------------------------------------------------- verify
/** Reload both saved models through a file IOHandler, print summaries, accuracy and sample predictions. */
async function verify(testImages: IdxImages, testLabels: Uint8Array, evalCount: number): Promise<void> {
  for (const dir of [FINAL_DIR, EARLY_DIR]) {
    const jsonPath = path.join(dir, 'model.json');
    const model = await tfl.loadLayersModel(fileHandler(jsonPath));
    console.log(`\n== ${path.relative(ROOT, jsonPath)} (model.json ${fs.statSync(jsonPath).size} B, weights.bin ${fs.statSync(path.join(dir, 'weights.bin')).size} B)`);
    model.summary();
    const acc = accuracy(model, testImages, testLabels, evalCount);
    const meta = (JSON.parse(fs.readFileSync(jsonPath, 'utf8')) as { userDefinedMetadata?: { testAccuracy?: number } }).userDefinedMetadata;
    console.log(`reloaded: accuracy ${(acc * 100).toFixed(2)}% on ${evalCount === testImages.count ? 'all' : 'the first'} ${evalCount} test images `
      + `(recorded on all ${testImages.count}: ${meta?.testAccuracy != null ? (meta.testAccuracy * 100).toFixed(2) + '%' : 'n/a'})`);
    let hits = 0;
    const files = fs.readdirSync(IMAGES_DIR).filter((f) => f.endsWith('.png')).sort();
    for (const f of files) {
      const label = Number(f.split('-')[0]);
      const probs = tf.tidy(() => (model.predict(readPng(path.join(IMAGES_DIR, f))) as tf.Tensor).dataSync());
      let best = 0;
      for (let c = 1; c < probs.length; c++) if (probs[c] > probs[best]) best = c;
      if (best === label) hits++;
      console.log(`  ${f.padEnd(18)} -> ${CLASS_NAMES[best].padEnd(10)} p=${probs[best].toFixed(3)} ${best === label ? 'ok' : 'MISS'}`);
    }
    console.log(`  ${hits}/${files.length} sample images classified correctly`);
    model.dispose();
  }
}

// ---------------------------------------------------------------- main
async function main(): Promise<void> {
  await tf.setBackend('cpu');
  await tf.ready();

  const testImages = readIdxImages('t10k-images-idx3-ubyte');
  const testLabels = readIdxLabels('t10k-labels-idx1-ubyte');
  if (process.argv.includes('--verify')) {
    // stock tfjs kernels only: proves the files work with plain tfjs
    await verify(testImages, testLabels, testImages.count);
    return;
  }
  registerFastCpuKernels();

  const trainImages = readIdxImages('train-images-idx3-ubyte');
  const trainLabels = readIdxLabels('train-labels-idx1-ubyte');
  console.log(`train ${trainImages.count}, test ${testImages.count} images of ${trainImages.rows}x${trainImages.cols}`);

  const rand = mulberry32(SEED);
  const subset = permutation(trainImages.count, rand).slice(0, TRAIN_SUBSET);
  const xAll = toTensor(trainImages, subset);
  const yAll = oneHot(trainLabels, subset);

  const model = buildModel();
  const optimizer = tf.train.adam(LR_START);
  model.compile({ optimizer, loss: 'categoricalCrossentropy', metrics: ['accuracy'] });
  model.summary();
  const stepsPerEpoch = Math.ceil(TRAIN_SUBSET / BATCH_SIZE);
  const totalSteps = stepsPerEpoch * EPOCHS;
  const setLearningRate = (step: number) => {
    // learningRate is read on every Adam step; it is only `protected` in the typings
    (optimizer as unknown as { learningRate: number }).learningRate = LR_START + (LR_END - LR_START) * (step / Math.max(1, totalSteps - 1));
  };

  const settings = {
    dataset: 'Fashion-MNIST (Zalando SE, MIT licence), from Debian package dataset-fashion-mnist',
    trainImages: TRAIN_SUBSET,
    testImages: testImages.count,
    batchSize: BATCH_SIZE,
    optimizer: 'adam',
    learningRate: `linear decay per batch from ${LR_START} to ${LR_END}`,
    kernelInitializer: 'heNormal (seeded)',
    loss: 'categoricalCrossentropy',
    seed: SEED,
    backend: 'cpu',
    input: '28x28x1 grayscale, pixel/255 in [0,1]',
    classNames: [...CLASS_NAMES],
    generatedBy: 'node --import tsx scripts/train-sample-model.ts',
  };

  const t0 = Date.now();
  let trainMs = 0;
  for (let epoch = 1; epoch <= EPOCHS; epoch++) {
    const tEpoch = Date.now();
    const order = tf.tensor1d(permutation(TRAIN_SUBSET, rand), 'int32');
    const xs = tf.gather(xAll, order);
    const ys = tf.gather(yAll, order);
    order.dispose();
    const h = await model.fit(xs, ys, {
      batchSize: BATCH_SIZE, epochs: 1, shuffle: false, verbose: 0,
      callbacks: {
        onBatchBegin: async (batch) => setLearningRate((epoch - 1) * stepsPerEpoch + batch),
        onBatchEnd: async (batch, logs) => {
          if ((batch + 1) % 100 === 0) {
            console.log(`  epoch ${epoch} batch ${batch + 1}/${stepsPerEpoch} loss ${logs?.loss?.toFixed(4)} (${((Date.now() - tEpoch) / 1000).toFixed(0)} s)`);
          }
        },
      },
    });
    xs.dispose(); ys.dispose();
    trainMs += Date.now() - tEpoch;
    const loss = Number(h.history.loss[0]);
    const trainAcc = Number((h.history.acc ?? h.history.accuracy)[0]);
    const checkpoint = epoch === EARLY_EPOCH || epoch === EPOCHS;
    // Full test set only where a model is saved; a 1000-image peek otherwise.
    const evalCount = checkpoint ? testImages.count : 1000;
    const testAcc = accuracy(model, testImages, testLabels, evalCount);
    console.log(`epoch ${epoch}/${EPOCHS}: loss ${loss.toFixed(4)} train acc ${(trainAcc * 100).toFixed(2)}% `
      + `test acc ${(testAcc * 100).toFixed(2)}% (${evalCount} images) (${((Date.now() - tEpoch) / 1000).toFixed(1)} s)`);
    if (checkpoint) {
      const dir = epoch === EPOCHS ? FINAL_DIR : EARLY_DIR;
      await saveModel(model, dir, {
        ...settings,
        checkpoint: epoch === EPOCHS ? 'final' : 'early',
        epochs: epoch,
        testAccuracy: Number(testAcc.toFixed(4)),
        trainLoss: Number(loss.toFixed(4)),
        // no timings here, so that a rerun reproduces model.json byte for byte
      });
      console.log(`saved ${path.relative(ROOT, dir)}`);
    }
  }
  console.log(`training ${(trainMs / 1000).toFixed(1)} s, total ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  xAll.dispose(); yAll.dispose(); model.dispose();

  const samples = writeSampleImages(testImages, testLabels);
  for (const s of samples) console.log(`wrote images/${s.file} (test index ${s.testIndex})`);

  // Reload check on 1000 test images (run with --verify for the full test set).
  await verify(testImages, testLabels, 1000);
  console.log(`\nall done in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
