/**
 * Conv2DBackpropFilter (ADDED: missing on wasm). Input gradients do not need it, but tfjs's fused conv2d
 * (used by every tfjs-layers Conv2D, and by graph-model FusedConv2D, whenever the fused activation is linear)
 * computes the filter gradient eagerly inside its custom gradient, so without this kernel even an input
 * gradient threw "Kernel 'Conv2DBackpropFilter' not registered for backend 'wasm'". fusedGradMode.ts avoids
 * that wasted work altogether; this kernel keeps the stock path (and weight gradients) working.
 *
 * dW[i, j, ci, co] = sum_{b, oy, ox} x[b, oy*sh + i - pt, ox*sw + j - pl, ci] * dy[b, oy, ox, co] is itself a
 * forward conv: input x laid out [Cin, H, W, B] (channels become the batch, the batch becomes the channels),
 * filter dy laid out [oh, ow, B, Cout], dilation = forward stride. It runs on the XNNPACK conv.
 */
import * as tf from '@tensorflow/tfjs-core';
import { type Info, type KernelArgs, cropNHWC, explicitPad, free, replaceKernel, run } from './util';

export function conv2DBackpropFilterWasm(args: KernelArgs): Info {
  const { inputs, backend, attrs } = args;
  const { x, dy } = inputs as { x: Info; dy: Info };
  const { strides, pad, dataFormat, dimRoundingMode, filterShape } = attrs as unknown as tf.Conv2DBackpropFilterAttrs;
  const fmt = tf.backend_util.convertConv2DDataFormat(dataFormat);
  if (fmt !== 'channelsLast') throw new Error(`wasm Conv2DBackpropFilter supports only NHWC, got ${dataFormat}`);
  const info = tf.backend_util.computeConv2DInfo(x.shape as [number, number, number, number], filterShape, strides, 1, pad, dimRoundingMode, false, fmt);
  const { strideHeight: sh, strideWidth: sw, padInfo, inHeight: H, inWidth: W, outHeight: oh, outWidth: ow } = info;
  const [kh, kw] = filterShape;
  const xt = run(backend, 'Transpose', { x }, { perm: [3, 1, 2, 0] });
  const dyt = run(backend, 'Transpose', { x: dy }, { perm: [1, 2, 0, 3] });
  const pb = Math.max(0, kh + (oh - 1) * sh - H - padInfo.top);
  const pr = Math.max(0, kw + (ow - 1) * sw - W - padInfo.left);
  const y = run(backend, 'Conv2D', { x: xt, filter: dyt }, {
    strides: [1, 1], pad: explicitPad(padInfo.top, pb, padInfo.left, pr), dataFormat: 'NHWC', dilations: [sh, sw],
  });
  free(backend, xt, dyt);
  let c = y;
  if (y.shape[1] !== kh || y.shape[2] !== kw) {
    c = cropNHWC(backend, y, 0, 0, kh, kw);
    free(backend, y);
  }
  const out = run(backend, 'Transpose', { x: c }, { perm: [1, 2, 0, 3] });
  free(backend, c);
  return out;
}

export function registerConv2DBackpropFilter(): void {
  replaceKernel(tf.Conv2DBackpropFilter, conv2DBackpropFilterWasm);
}
