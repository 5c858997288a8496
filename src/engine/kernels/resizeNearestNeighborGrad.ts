/**
 * ResizeNearestNeighborGrad (REPLACES the stock wasm kernel, which is WRONG for batch > 1: the gradient of
 * every image after the first comes out wrong, so UpSampling2D(nearest) and graph-model
 * ResizeNearestNeighbor input gradients were garbage with K > 1 noise samples). This is the exact adjoint of
 * the forward resize: the same source-pixel mapping as the forward kernel (align_corners,
 * half_pixel_centers), with dy scattered back onto it.
 */
import * as tf from '@tensorflow/tfjs-core';
import { type Info, type KernelArgs, heap, replaceKernel } from './util';

/** Source index of every output index along one axis (as the forward ResizeNearestNeighbor computes it). */
export function nearestSourceMap(inSize: number, outSize: number, alignCorners: boolean, halfPixelCenters: boolean): Int32Array {
  const effIn = alignCorners && outSize > 1 ? inSize - 1 : inSize;
  const effOut = alignCorners && outSize > 1 ? outSize - 1 : outSize;
  const ratio = effIn / effOut;
  const map = new Int32Array(outSize);
  for (let o = 0; o < outSize; o++) {
    const frac = halfPixelCenters ? ratio * (o + 0.5) : ratio * o;
    let src = Math.min(inSize - 1, alignCorners ? Math.round(frac) : Math.floor(frac));
    if (halfPixelCenters) src = Math.max(0, src);
    map[o] = src;
  }
  return map;
}

export function resizeNearestNeighborGradWasm(args: KernelArgs): Info {
  const { inputs, backend, attrs } = args;
  const { images, dy } = inputs as { images: Info; dy: Info };
  const { alignCorners, halfPixelCenters } = attrs as unknown as tf.ResizeNearestNeighborGradAttrs;
  const [B, H, W, C] = images.shape;
  const [, oh, ow] = dy.shape;
  const rows = nearestSourceMap(H, oh, alignCorners, halfPixelCenters);
  const cols = nearestSourceMap(W, ow, alignCorners, halfPixelCenters);
  const out = backend.makeOutput(images.shape, 'float32');
  const dx = heap(backend, out);
  const dyv = heap(backend, dy);
  dx.fill(0);
  for (let b = 0; b < B; b++) {
    for (let y = 0; y < oh; y++) {
      const rowBase = (b * H + rows[y]) * W;
      for (let x = 0; x < ow; x++) {
        const d = (rowBase + cols[x]) * C;
        const s = ((b * oh + y) * ow + x) * C;
        for (let c = 0; c < C; c++) dx[d + c] += dyv[s + c];
      }
    }
  }
  return out;
}

export function registerResizeNearestNeighborGrad(): void {
  replaceKernel(tf.ResizeNearestNeighborGrad, resizeNearestNeighborGradWasm);
}
