/**
 * DepthwiseConv2dNativeBackpropInput (ADDED: the wasm backend has no such kernel, so the input gradient of
 * any DepthwiseConv2D / SeparableConv2D layer, and of graph-model depthwise convs, threw
 * "Kernel 'DepthwiseConv2dNativeBackpropInput' not registered for backend 'wasm'").
 *
 * dx = depthwise conv of dy with the spatially flipped filter, through the wasm (XNNPACK) depthwise kernel:
 * the filter [kh, kw, C, M] becomes [kh, kw, C*M, 1] (one flipped tap set per dy channel), and for a channel
 * multiplier M > 1 the M contributions of each input channel are summed. For stride > 1 (or padding larger
 * than the filter) dy is first spread onto the stride grid with zeros, padded, in one JS pass; depthwise
 * convs are memory-bound, so the zeros cost little. Dilations are supported too (cpu's kernel ignores them;
 * tfjs's own gradient never passes any, dilatedConvGrads.ts handles dilated convs with public ops).
 */
import * as tf from '@tensorflow/tfjs-core';
import { derived } from './derivedCache';
import { type BackendWasm, type Info, type KernelArgs, explicitPad, free, heap, pair, replaceKernel, run, view } from './util';

/** G[i, j, c*M + m, 0] = W[kh-1-i, kw-1-j, c, m]. */
function makeFlipped(backend: BackendWasm, filter: Info): Info {
  const [kh, kw, C, M] = filter.shape;
  const g = backend.makeOutput([kh, kw, C * M, 1], 'float32');
  const G = heap(backend, g);
  const Wv = heap(backend, filter);
  const cm = C * M;
  for (let i = 0; i < kh; i++) {
    for (let j = 0; j < kw; j++) {
      const src = ((kh - 1 - i) * kw + (kw - 1 - j)) * cm;
      G.set(Wv.subarray(src, src + cm), (i * kw + j) * cm);
    }
  }
  return g;
}

/**
 * dy [B, oh, ow, C] spread to [B, (oh-1)*sh+1 + top + bottom, ..., C]: dy[o] lands at o*s + top. Negative
 * top/bottom crop.
 */
function spread(backend: BackendWasm, dy: Info, sh: number, sw: number, top: number, left: number, outH: number, outW: number): Info {
  const [B, oh, ow, C] = dy.shape;
  const out = backend.makeOutput([B, outH, outW, C], 'float32');
  const dst = heap(backend, out);
  const src = heap(backend, dy);
  dst.fill(0);
  for (let b = 0; b < B; b++) {
    for (let y = 0; y < oh; y++) {
      const ty = y * sh + top;
      if (ty < 0 || ty >= outH) continue;
      for (let x = 0; x < ow; x++) {
        const tx = x * sw + left;
        if (tx < 0 || tx >= outW) continue;
        const s = ((b * oh + y) * ow + x) * C;
        dst.set(src.subarray(s, s + C), ((b * outH + ty) * outW + tx) * C);
      }
    }
  }
  return out;
}

export function depthwiseBackpropInputWasm(args: KernelArgs): Info {
  const { inputs, backend, attrs } = args;
  const { dy, filter } = inputs as { dy: Info; filter: Info };
  const { strides, dilations, pad, dimRoundingMode, inputShape } = attrs as unknown as tf.DepthwiseConv2dNativeBackpropInputAttrs;
  const [dh, dw] = pair(dilations as number | [number, number]);
  const info = tf.backend_util.computeConv2DInfo(inputShape, filter.shape as [number, number, number, number], strides, [dh, dw], pad, dimRoundingMode, true);
  const { strideHeight: sh, strideWidth: sw, padInfo, inHeight: H, inWidth: W, batchSize: B, inChannels: C } = info;
  const [kh, kw, , M] = filter.shape;
  const effH = (kh - 1) * dh;
  const effW = (kw - 1) * dw;
  // In the flipped conv, dy[o] sits at o*s + (eff - padBefore) of a canvas H + eff tall.
  const top = effH - padInfo.top;
  const left = effW - padInfo.left;
  const g = derived(backend, filter, `dw-bpi:${filter.shape}`, () => makeFlipped(backend, filter));
  const [, oh, ow] = dy.shape;
  const bottom = H + effH - oh - top;
  const right = W + effW - ow - left;
  let src = dy;
  let convPad: tf.backend_util.ExplicitPadding | 'valid';
  if (sh === 1 && sw === 1 && Math.min(top, left, bottom, right) >= 0) {
    convPad = explicitPad(top, bottom, left, right);
  } else {
    src = spread(backend, dy, sh, sw, top, left, H + effH, W + effW);
    convPad = 'valid';
  }
  const y = run(backend, 'DepthwiseConv2dNative', { x: src, filter: g }, {
    strides: [1, 1], pad: convPad, dilations: [dh, dw], dataFormat: 'NHWC',
  });
  if (src !== dy) free(backend, src);
  if (M === 1) return y;
  const out = run(backend, 'Sum', { x: view(y, [B, H, W, C, M]) }, { axis: [4], keepDims: false });
  free(backend, y);
  return out;
}

export function registerDepthwiseBackpropInput(): void {
  replaceKernel(tf.DepthwiseConv2dNativeBackpropInput, depthwiseBackpropInputWasm);
}
