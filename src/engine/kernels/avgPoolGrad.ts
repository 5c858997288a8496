/**
 * AvgPoolGrad (REPLACES the stock wasm kernel, a scalar loop ~15x slower than the forward pool, and WRONG
 * with 'same' padding: the forward averages over the pixels inside the image, but the stock gradient
 * divides by the full window size at the borders; cpu's kernel has the same bug).
 *
 * The exact adjoint of the forward: dy is divided by each window's in-image pixel count, then spread back
 * over the window, which is the input gradient of a depthwise conv with an all-ones filter; that runs on
 * our XNNPACK-based DepthwiseConv2dNativeBackpropInput.
 */
import * as tf from '@tensorflow/tfjs-core';
import { depthwiseBackpropInputWasm } from './depthwiseBackpropInput';
import { type Info, type KernelArgs, explicitPad, free, heap, replaceKernel, run } from './util';

export function avgPoolGradWasm(args: KernelArgs): Info {
  const { inputs, backend, attrs } = args;
  const { dy, input } = inputs as { dy: Info; input: Info };
  const { filterSize, strides, pad, dimRoundingMode } = attrs as unknown as tf.AvgPoolGradAttrs & { dimRoundingMode?: 'floor' | 'round' | 'ceil' };
  const info = tf.backend_util.computePool2DInfo(input.shape as [number, number, number, number], filterSize, strides, 1, pad, dimRoundingMode);
  const { inHeight: H, inWidth: W, inChannels: C, outHeight: oh, outWidth: ow, strideHeight: sh, strideWidth: sw, filterHeight: fh, filterWidth: fw, padInfo } = info;
  // 1 / (in-image pixels of each window), broadcast over batch and channels.
  const inv = backend.makeOutput([1, oh, ow, 1], 'float32');
  const invV = heap(backend, inv);
  for (let oy = 0; oy < oh; oy++) {
    const y0 = oy * sh - padInfo.top;
    const rows = Math.min(H, y0 + fh) - Math.max(0, y0);
    for (let ox = 0; ox < ow; ox++) {
      const x0 = ox * sw - padInfo.left;
      const n = rows * (Math.min(W, x0 + fw) - Math.max(0, x0));
      invV[oy * ow + ox] = n > 0 ? 1 / n : 0;
    }
  }
  const scaled = run(backend, 'Multiply', { a: dy, b: inv }, {});
  const ones = backend.makeOutput([fh, fw, C, 1], 'float32');
  heap(backend, ones).fill(1);
  const out = depthwiseBackpropInputWasm({
    inputs: { dy: scaled, filter: ones },
    backend,
    attrs: { strides: [sh, sw], dilations: [1, 1], pad: explicitPad(padInfo.top, padInfo.bottom, padInfo.left, padInfo.right), inputShape: input.shape } as unknown as tf.NamedAttrMap,
  });
  free(backend, inv, scaled, ones);
  return out;
}

export function registerAvgPoolGrad(): void {
  replaceKernel(tf.AvgPoolGrad, avgPoolGradWasm);
}
