/**
 * BatchMatMul and _FusedMatMul with transposeA / transposeB (WRAPS the stock wasm kernels). Only the
 * untransposed case reaches XNNPACK; a transposed operand falls to a scalar loop 10-20x slower. That is the
 * input gradient of every Dense layer (dx = dy * W^T) and part of the sigma-grid upsampling gradient. Here the
 * operand is transposed explicitly (a blocked JS transpose) and the fast path runs. An operand seen
 * transposed before (a frozen weight, used every step) keeps its transposed copy in derivedCache.
 */
import * as tf from '@tensorflow/tfjs-core';
import { derived } from './derivedCache';
import { type BackendWasm, type Info, type KernelArgs, free, heap, replaceKernel, runStock } from './util';

const seen = new WeakSet<object>();

/** [..., r, c] -> [..., c, r], in 32x32 tiles. */
function transposeLast2(backend: BackendWasm, x: Info): Info {
  const shape = x.shape;
  const r = shape[shape.length - 2];
  const c = shape[shape.length - 1];
  const batch = tf.util.sizeFromShape(shape.slice(0, -2));
  const out = backend.makeOutput([...shape.slice(0, -2), c, r], 'float32');
  const src = heap(backend, x);
  const dst = heap(backend, out);
  const B = 32;
  for (let b = 0; b < batch; b++) {
    const o = b * r * c;
    for (let i0 = 0; i0 < r; i0 += B) {
      const i1 = Math.min(r, i0 + B);
      for (let j0 = 0; j0 < c; j0 += B) {
        const j1 = Math.min(c, j0 + B);
        for (let i = i0; i < i1; i++) {
          const s = o + i * c;
          for (let j = j0; j < j1; j++) dst[o + j * r + i] = src[s + j];
        }
      }
    }
  }
  return out;
}

/** The transposed operand, and whether the caller must free it. */
function transposed(backend: BackendWasm, x: Info): [Info, boolean] {
  if (seen.has(x.dataId)) return [derived(backend, x, `T:${x.shape}`, () => transposeLast2(backend, x)), false];
  seen.add(x.dataId);
  return [transposeLast2(backend, x), true];
}

function wrap(kernelName: string) {
  return (args: KernelArgs): Info => {
    const { inputs, backend, attrs } = args;
    const { a, b } = inputs as { a: Info; b: Info };
    const { transposeA, transposeB } = attrs as unknown as tf.BatchMatMulAttrs;
    const call = (i: tf.NamedTensorInfoMap, at: tf.NamedAttrMap) => runStock(kernelName, { inputs: i, backend, attrs: at });
    if ((!transposeA && !transposeB) || a.dtype !== 'float32' || b.dtype !== 'float32') return call(inputs, attrs);
    const [a2, freeA] = transposeA ? transposed(backend, a) : [a, false];
    const [b2, freeB] = transposeB ? transposed(backend, b) : [b, false];
    try {
      return call({ ...inputs, a: a2, b: b2 }, { ...attrs, transposeA: false, transposeB: false });
    } finally {
      if (freeA) free(backend, a2);
      if (freeB) free(backend, b2);
    }
  };
}

const batchMatMul = wrap(tf.BatchMatMul);
const fusedMatMul = wrap(tf._FusedMatMul);

export function registerBatchMatMul(): void {
  replaceKernel(tf.BatchMatMul, batchMatMul);
  replaceKernel(tf._FusedMatMul, fusedMatMul);
}
