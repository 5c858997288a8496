/**
 * ResizeBilinearGrad with half_pixel_centers (WRAPS the stock wasm kernel, which ignores half_pixel_centers,
 * as cpu's does: TF2's tf.image.resize sets it, so graph-model ResizeBilinear gradients were wrong). This
 * is the exact adjoint of the forward interpolation (same source rows/columns and weights): each output
 * pixel's dy goes back to its 4 source pixels. Without half_pixel_centers the (correct, faster) stock
 * kernel runs.
 */
import * as tf from '@tensorflow/tfjs-core';
import { type Info, type KernelArgs, heap, replaceKernel, runStock } from './util';

interface Axis { lo: Int32Array; hi: Int32Array; frac: Float32Array }

/** Per output index: the two source indices and the weight of the second, as the forward computes them. */
export function bilinearAxis(inSize: number, outSize: number, alignCorners: boolean, halfPixelCenters: boolean): Axis {
  const effIn = alignCorners && outSize > 1 ? inSize - 1 : inSize;
  const effOut = alignCorners && outSize > 1 ? outSize - 1 : outSize;
  const ratio = effIn / effOut;
  const a: Axis = { lo: new Int32Array(outSize), hi: new Int32Array(outSize), frac: new Float32Array(outSize) };
  for (let o = 0; o < outSize; o++) {
    const src = halfPixelCenters ? ratio * (o + 0.5) - 0.5 : ratio * o;
    const lo = Math.max(0, Math.floor(src));
    a.lo[o] = lo;
    a.hi[o] = Math.min(inSize - 1, Math.ceil(src));
    a.frac[o] = src - lo;
  }
  return a;
}

export function resizeBilinearGradWasm(args: KernelArgs): Info {
  const { inputs, backend, attrs } = args;
  const { images, dy } = inputs as { images: Info; dy: Info };
  const { alignCorners, halfPixelCenters } = attrs as unknown as tf.ResizeBilinearGradAttrs;
  if (!halfPixelCenters || images.dtype !== 'float32') return runStock(tf.ResizeBilinearGrad, args);
  const [B, H, W, C] = images.shape;
  const [, oh, ow] = dy.shape;
  const rows = bilinearAxis(H, oh, alignCorners, halfPixelCenters);
  const cols = bilinearAxis(W, ow, alignCorners, halfPixelCenters);
  const out = backend.makeOutput(images.shape, 'float32');
  const dx = heap(backend, out);
  const dyv = heap(backend, dy);
  dx.fill(0);
  for (let b = 0; b < B; b++) {
    for (let y = 0; y < oh; y++) {
      const rf = rows.frac[y];
      const top = (b * H + rows.lo[y]) * W;
      const bot = (b * H + rows.hi[y]) * W;
      for (let x = 0; x < ow; x++) {
        const cf = cols.frac[x];
        const w11 = rf * cf;
        const w10 = rf - w11; // rf * (1 - cf)
        const w01 = cf - w11; // (1 - rf) * cf
        const w00 = 1 - rf - cf + w11;
        const tl = (top + cols.lo[x]) * C;
        const tr = (top + cols.hi[x]) * C;
        const bl = (bot + cols.lo[x]) * C;
        const br = (bot + cols.hi[x]) * C;
        const s = ((b * oh + y) * ow + x) * C;
        for (let c = 0; c < C; c++) {
          const g = dyv[s + c];
          dx[tl + c] += g * w00;
          dx[tr + c] += g * w01;
          dx[bl + c] += g * w10;
          dx[br + c] += g * w11;
        }
      }
    }
  }
  return out;
}

export function registerResizeBilinearGrad(): void {
  replaceKernel(tf.ResizeBilinearGrad, resizeBilinearGradWasm);
}
