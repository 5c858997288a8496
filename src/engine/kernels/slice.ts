/**
 * Slice (REPLACES the stock wasm kernel, which first copies the WHOLE input out of the wasm heap into JS,
 * then slices the copy). Slice is the gradient of Pad (ZeroPadding2D, 'same'-padded graph convs) and of
 * Concat (via split), and the forward of Cropping2D. Same row copies, straight from the heap.
 */
import * as tf from '@tensorflow/tfjs-core';
import { type Info, type KernelArgs, replaceKernel, runStock } from './util';

export function sliceWasm(args: KernelArgs): Info {
  const { inputs, backend, attrs } = args;
  const { x } = inputs as { x: Info };
  const { begin, size } = attrs as unknown as tf.SliceAttrs;
  if (x.dtype === 'string') return runStock(tf.Slice, args);
  const [b, s] = tf.slice_util.parseSliceParams(x as tf.TensorInfo as tf.Tensor, begin, size);
  const out = backend.makeOutput(s, x.dtype);
  if (tf.util.sizeFromShape(s) === 0) return out;
  // Views after makeOutput: an allocation may grow (and detach) the heap.
  const src = backend.typedArrayFromHeap(x);
  const dst = backend.typedArrayFromHeap(out);
  const rank = x.shape.length;
  const xStrides = [...tf.util.computeStrides(x.shape), 1];
  // Collapse the trailing dims that are taken whole into one contiguous run.
  let inner = rank - 1;
  while (inner > 0 && b[inner] === 0 && s[inner] === x.shape[inner]) inner--;
  const run = s[inner] * xStrides[inner];
  let o = 0;
  const walk = (dim: number, off: number): void => {
    if (dim === inner) {
      const start = off + b[dim] * xStrides[dim];
      dst.set(src.subarray(start, start + run), o);
      o += run;
      return;
    }
    for (let i = 0; i < s[dim]; i++) walk(dim + 1, off + (b[dim] + i) * xStrides[dim]);
  };
  walk(0, 0);
  return out;
}

export function registerSlice(): void {
  replaceKernel(tf.Slice, sliceWasm);
}
