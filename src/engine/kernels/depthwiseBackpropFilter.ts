/**
 * DepthwiseConv2dNativeBackpropFilter (ADDED: missing on wasm). Like Conv2DBackpropFilter, input gradients
 * only reach it through tfjs's fused depthwise conv (graph-model FusedDepthwiseConv2dNative with a linear
 * activation), whose custom gradient computes the filter gradient eagerly. fusedGradMode.ts normally avoids
 * that path; this kernel keeps it (and weight gradients) working. A plain JS loop over the heap: it is a
 * fallback, not a hot path.
 *
 * dW[i, j, c, m] = sum_{b, oy, ox} x[b, oy*sh + i*dh - pt, ox*sw + j*dw - pl, c] * dy[b, oy, ox, c*M + m]
 */
import * as tf from '@tensorflow/tfjs-core';
import { type Info, type KernelArgs, heap, pair, replaceKernel } from './util';

export function depthwiseBackpropFilterWasm(args: KernelArgs): Info {
  const { inputs, backend, attrs } = args;
  const { x, dy } = inputs as { x: Info; dy: Info };
  const { strides, dilations, pad, dimRoundingMode, filterShape } = attrs as unknown as tf.DepthwiseConv2dNativeBackpropFilterAttrs;
  const [dh, dw] = pair(dilations as number | [number, number]);
  const info = tf.backend_util.computeConv2DInfo(x.shape as [number, number, number, number], filterShape, strides, [dh, dw], pad, dimRoundingMode, true);
  const { strideHeight: sh, strideWidth: sw, padInfo, inHeight: H, inWidth: W, outHeight: oh, outWidth: ow, batchSize: B } = info;
  const [kh, kw, C, M] = filterShape;
  const CM = C * M;
  const out = backend.makeOutput([kh, kw, C, M], 'float32');
  const dW = heap(backend, out);
  const xv = heap(backend, x);
  const dyv = heap(backend, dy);
  dW.fill(0);
  for (let b = 0; b < B; b++) {
    for (let oy = 0; oy < oh; oy++) {
      for (let ox = 0; ox < ow; ox++) {
        const dyBase = ((b * oh + oy) * ow + ox) * CM;
        for (let i = 0; i < kh; i++) {
          const iy = oy * sh + i * dh - padInfo.top;
          if (iy < 0 || iy >= H) continue;
          for (let j = 0; j < kw; j++) {
            const ix = ox * sw + j * dw - padInfo.left;
            if (ix < 0 || ix >= W) continue;
            const xBase = ((b * H + iy) * W + ix) * C;
            const wBase = (i * kw + j) * CM;
            for (let c = 0; c < C; c++) {
              const xval = xv[xBase + c];
              for (let m = 0; m < M; m++) dW[wBase + c * M + m] += xval * dyv[dyBase + c * M + m];
            }
          }
        }
      }
    }
  }
  return out;
}

export function registerDepthwiseBackpropFilter(): void {
  replaceKernel(tf.DepthwiseConv2dNativeBackpropFilter, depthwiseBackpropFilterWasm);
}
