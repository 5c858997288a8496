/**
 * Gradients tfjs does not define at all (on any backend), for ops that converted graph models use on the
 * path from the image to the features: StridedSlice (Keras Cropping2D, channel slicing, x[..., ::-1] for
 * RGB->BGR) and DepthToSpace (sub-pixel upsampling). Without them tf.grad threw "gradient function not found
 * for StridedSlice". Registered only when tfjs has none, built from public ops (any backend).
 */
import * as tf from '@tensorflow/tfjs-core';

/** Flat indices into x of the elements a strided slice reads, in output order. */
function stridedIndices(xShape: number[], begin: number[], end: number[], strides: number[]): Int32Array {
  const perDim = xShape.map((_, i) => {
    const out: number[] = [];
    const s = strides[i];
    for (let v = begin[i]; s > 0 ? v < end[i] : v > end[i]; v += s) out.push(v);
    return out;
  });
  const total = perDim.reduce((a, d) => a * d.length, 1);
  const idx = new Int32Array(total);
  const xStrides = tf.util.computeStrides(xShape);
  const rank = xShape.length;
  let n = 0;
  const walk = (dim: number, offset: number): void => {
    if (dim === rank) {
      idx[n++] = offset;
      return;
    }
    const stride = dim === rank - 1 ? 1 : xStrides[dim];
    for (const v of perDim[dim]) walk(dim + 1, offset + v * stride);
  };
  walk(0, 0);
  return idx;
}

const stridedSliceGrad: tf.GradConfig = {
  kernelName: tf.StridedSlice,
  inputsToSave: ['x'],
  gradFunc: (dy: tf.Tensor | tf.Tensor[], saved: tf.Tensor[], attrs: tf.NamedAttrMap) => {
    const [x] = saved;
    const { begin, end, strides, beginMask, endMask, ellipsisMask, newAxisMask, shrinkAxisMask } = attrs as unknown as tf.StridedSliceAttrs;
    return {
      x: () => {
        const info = tf.slice_util.sliceInfo(x.shape, begin, end, strides, beginMask, endMask, ellipsisMask, newAxisMask, shrinkAxisMask);
        const size = tf.util.sizeFromShape(x.shape);
        const d = dy as tf.Tensor;
        if (info.isIdentity) return tf.reshape(d, x.shape);
        const idx = stridedIndices(x.shape, info.begin, info.end, info.strides);
        if (idx.length === 0) return tf.zeros(x.shape);
        const indices = tf.tensor2d(idx, [idx.length, 1], 'int32');
        return tf.reshape(tf.scatterND(indices, tf.reshape(d, [idx.length]), [size]), x.shape);
      },
    };
  },
};

const depthToSpaceGrad: tf.GradConfig = {
  kernelName: tf.DepthToSpace,
  gradFunc: (dy: tf.Tensor | tf.Tensor[], _saved: tf.Tensor[], attrs: tf.NamedAttrMap) => {
    const { blockSize: bs, dataFormat } = attrs as unknown as tf.DepthToSpaceAttrs;
    const d = dy as tf.Tensor4D;
    return {
      x: () => {
        if (dataFormat === 'NCHW') {
          const [B, C, HH, WW] = d.shape;
          const [H, W] = [HH / bs, WW / bs];
          return tf.reshape(tf.transpose(tf.reshape(d, [B, C, H, bs, W, bs]), [0, 3, 5, 1, 2, 4]), [B, bs * bs * C, H, W]);
        }
        const [B, HH, WW, C] = d.shape;
        const [H, W] = [HH / bs, WW / bs];
        return tf.reshape(tf.transpose(tf.reshape(d, [B, H, bs, W, bs, C]), [0, 1, 3, 2, 4, 5]), [B, H, W, bs * bs * C]);
      },
    };
  },
};

export function installMissingGrads(): void {
  for (const g of [stridedSliceGrad, depthToSpaceGrad]) {
    if (!tf.getGradient(g.kernelName)) tf.registerGradient(g);
  }
}
