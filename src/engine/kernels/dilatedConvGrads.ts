/**
 * Gradients of dilated Conv2D and DepthwiseConv2dNative (tfjs rejects them on every backend: "dilation rates
 * greater than 1 are not yet supported in gradients"). Dilated convs appear in tfjs-layers Conv2D /
 * SeparableConv2D with dilationRate and in segmentation graph models.
 *
 * Registered as replacement gradient functions that delegate to the stock ones when dilations are 1, so
 * ordinary convs are untouched. For dilation d (stride is then 1, which tfjs enforces), the input gradient is
 * the forward conv of dy with the flipped, in/out-swapped filter at dilation d, padded by d*(k-1) - pad; the
 * filter gradient is the forward conv of x (as [Cin, H, W, B]) with dy (as [oh, ow, B, Cout]) at stride d.
 * Built from public ops, so this works on any backend.
 */
import * as tf from '@tensorflow/tfjs-core';
// tfjs-layers registers tfjs's gradients when it loads (and would overwrite ours if it loaded later): load it first.
import '@tensorflow/tfjs-layers';
import { pair } from './util';

type Saved = tf.Tensor[];
type Pad = 'valid' | 'same' | number | tf.backend_util.ExplicitPadding;

/** Pads dy for the flipped conv; returns pads >= 0 and the crop that makes up for any negative one. */
function flippedPads(info: tf.backend_util.Conv2DInfo, oh: number, ow: number) {
  const effH = info.effectiveFilterHeight - 1;
  const effW = info.effectiveFilterWidth - 1;
  const top = effH - info.padInfo.top;
  const left = effW - info.padInfo.left;
  const bottom = info.inHeight + effH - oh - top;
  const right = info.inWidth + effW - ow - left;
  const pads = [[0, 0], [Math.max(0, top), Math.max(0, bottom)], [Math.max(0, left), Math.max(0, right)], [0, 0]];
  return { pads: pads as tf.backend_util.ExplicitPadding, cropTop: Math.max(0, -top), cropLeft: Math.max(0, -left) };
}

function cropTo(y: tf.Tensor4D, top: number, left: number, H: number, W: number): tf.Tensor4D {
  if (top === 0 && left === 0 && y.shape[1] === H && y.shape[2] === W) return y;
  return tf.slice(y, [0, top, left, 0], [y.shape[0], H, W, y.shape[3]]);
}

function conv2dInputGrad(dy: tf.Tensor4D, filter: tf.Tensor4D, info: tf.backend_util.Conv2DInfo, dil: [number, number]): tf.Tensor4D {
  const g = tf.transpose(tf.reverse(filter, [0, 1]), [0, 1, 3, 2]) as tf.Tensor4D;
  const { pads, cropTop, cropLeft } = flippedPads(info, dy.shape[1], dy.shape[2]);
  const y = tf.conv2d(dy, g, 1, pads, 'NHWC', dil);
  return cropTo(y, cropTop, cropLeft, info.inHeight, info.inWidth);
}

function conv2dFilterGrad(x: tf.Tensor4D, dy: tf.Tensor4D, info: tf.backend_util.Conv2DInfo, dil: [number, number]): tf.Tensor4D {
  const { filterHeight: kh, filterWidth: kw, inHeight: H, inWidth: W, padInfo } = info;
  const [, oh, ow] = dy.shape;
  const xt = tf.transpose(x, [3, 1, 2, 0]) as tf.Tensor4D;
  const dyt = tf.transpose(dy, [1, 2, 0, 3]) as tf.Tensor4D;
  const pb = Math.max(0, (kh - 1) * dil[0] + oh - H - padInfo.top);
  const pr = Math.max(0, (kw - 1) * dil[1] + ow - W - padInfo.left);
  const pads = [[0, 0], [padInfo.top, pb], [padInfo.left, pr], [0, 0]] as tf.backend_util.ExplicitPadding;
  const y = tf.conv2d(xt, dyt, dil, pads, 'NHWC', 1);
  return tf.transpose(cropTo(y, 0, 0, kh, kw), [1, 2, 0, 3]) as tf.Tensor4D;
}

function conv2DGrad(stock: tf.GradConfig): tf.GradConfig {
  return {
    kernelName: tf.Conv2D,
    inputsToSave: ['x', 'filter'],
    gradFunc: (dy: tf.Tensor | tf.Tensor[], saved: Saved, attrs: tf.NamedAttrMap) => {
      const { dilations, strides, pad, dataFormat, dimRoundingMode } = attrs as unknown as tf.Conv2DAttrs;
      const dil = pair(dilations as number | [number, number]);
      if (dil[0] === 1 && dil[1] === 1) return stock.gradFunc(dy, saved, attrs);
      if (dataFormat === 'NCHW') throw new Error('gradient of dilated conv2d: only NHWC is supported');
      const [x, filter] = saved as [tf.Tensor4D, tf.Tensor4D];
      const info = tf.backend_util.computeConv2DInfo(x.shape, filter.shape, strides, dil, pad as Pad, dimRoundingMode);
      if (info.strideHeight !== 1 || info.strideWidth !== 1) throw new Error('gradient of dilated conv2d: strides must be 1');
      return {
        x: () => conv2dInputGrad(dy as tf.Tensor4D, filter, info, dil),
        filter: () => conv2dFilterGrad(x, dy as tf.Tensor4D, info, dil),
      };
    },
  };
}

function depthwiseGrad(stock: tf.GradConfig): tf.GradConfig {
  return {
    kernelName: tf.DepthwiseConv2dNative,
    inputsToSave: ['x', 'filter'],
    gradFunc: (dy: tf.Tensor | tf.Tensor[], saved: Saved, attrs: tf.NamedAttrMap) => {
      const { dilations, strides, pad, dimRoundingMode } = attrs as unknown as tf.DepthwiseConv2dNativeAttrs;
      const dil = pair(dilations as number | [number, number]);
      if (dil[0] === 1 && dil[1] === 1) return stock.gradFunc(dy, saved, attrs);
      const [x, filter] = saved as [tf.Tensor4D, tf.Tensor4D];
      const info = tf.backend_util.computeConv2DInfo(x.shape, filter.shape, strides, dil, pad as Pad, dimRoundingMode, true);
      if (info.strideHeight !== 1 || info.strideWidth !== 1) throw new Error('gradient of dilated depthwiseConv2d: strides must be 1');
      const [kh, kw, C, M] = filter.shape;
      const [B] = x.shape;
      return {
        x: () => {
          const g = tf.reshape(tf.reverse(filter, [0, 1]), [kh, kw, C * M, 1]) as tf.Tensor4D;
          const dy4 = dy as tf.Tensor4D;
          const { pads, cropTop, cropLeft } = flippedPads(info, dy4.shape[1], dy4.shape[2]);
          const y = cropTo(tf.depthwiseConv2d(dy4, g, 1, pads, 'NHWC', dil), cropTop, cropLeft, info.inHeight, info.inWidth);
          return M === 1 ? y : tf.sum(tf.reshape(y, [B, info.inHeight, info.inWidth, C, M]), 4);
        },
        // The gradient w.r.t. the zero-inserted (undilated) filter, at its original taps: backends' own
        // DepthwiseConv2dNativeBackpropFilter kernels ignore dilations (cpu) or lack them.
        filter: () => {
          const { top, bottom, left, right } = info.padInfo;
          const eff = [info.effectiveFilterHeight, info.effectiveFilterWidth, C, M];
          const g = tf.engine().runKernel(tf.DepthwiseConv2dNativeBackpropFilter, { x, dy: dy as tf.Tensor }, {
            strides: 1, pad: [[0, 0], [top, bottom], [left, right], [0, 0]], dilations: 1, dimRoundingMode, filterShape: eff,
          } as unknown as tf.NamedAttrMap) as tf.Tensor;
          return tf.stridedSlice(g, [0, 0, 0, 0], eff, [dil[0], dil[1], 1, 1]);
        },
      };
    },
  };
}

const ours = new Set<tf.GradConfig>();

/** Wraps the current gradient of `kernelName` unless it is already ours (idempotent, survives re-registration). */
function wrap(kernelName: string, make: (stock: tf.GradConfig) => tf.GradConfig): void {
  const current = tf.getGradient(kernelName);
  if (!current) throw new Error(`tfjs gradient for ${kernelName} is not registered`);
  if (ours.has(current)) return;
  const mine = make(current);
  ours.add(mine);
  tf.unregisterGradient(kernelName); // so that tfjs does not warn about overriding
  tf.registerGradient(mine);
}

export function installDilatedConvGrads(): void {
  wrap(tf.Conv2D, conv2DGrad);
  wrap(tf.DepthwiseConv2dNative, depthwiseGrad);
}
