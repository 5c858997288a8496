/**
 * FusedBatchNorm gradient (REPLACES tfjs's, on every backend; same formulas). tfjs's version computes
 * x - mean and dy * scale on the full activation eagerly, even when only dx is wanted, and builds dx by
 * tiling rsqrt(variance) to the full activation shape (slow on wasm). Here every derivative is computed only
 * when asked for, and dx = dy * (scale * rsqrt(variance + eps)) is one broadcast multiply by a per-channel
 * vector.
 */
import * as tf from '@tensorflow/tfjs-core';

type Saved = tf.Tensor[];

function reduceTo(t: tf.Tensor, like: tf.Tensor, xShape: number[]): tf.Tensor {
  const axes = tf.broadcast_util.getReductionAxes(like.shape, xShape);
  return tf.reshape(axes.length > 0 ? tf.sum(t, axes) : t, like.shape);
}

const batchNormGrad: tf.GradConfig = {
  kernelName: tf.FusedBatchNorm,
  inputsToSave: ['x', 'mean', 'variance', 'scale'],
  gradFunc: (dyIn: tf.Tensor | tf.Tensor[], saved: Saved, attrs: tf.NamedAttrMap) => {
    const dy = dyIn as tf.Tensor;
    const { varianceEpsilon } = attrs as unknown as tf.FusedBatchNormAttrs;
    const [x, mean, variance, scale] = saved;
    const scaleValue = scale == null ? tf.scalar(1) : scale;
    const rstd = () => tf.rsqrt(tf.add(variance, tf.scalar(varianceEpsilon)));
    // Reduces a full-size product back to a parameter's shape (only for mean.rank 1, like tfjs).
    const toParam = (t: tf.Tensor) => (mean.rank === 1 ? reduceTo(t, mean, x.shape) : tf.reshape(t, mean.shape));
    return {
      x: () => tf.reshape(tf.mul(dy, tf.mul(rstd(), scaleValue)), x.shape),
      mean: () => toParam(tf.mul(tf.mul(rstd(), tf.scalar(-1)), tf.mul(dy, scaleValue))),
      variance: () => {
        const r = rstd();
        const minusHalfRCube = tf.mul(tf.mul(tf.mul(r, r), r), tf.scalar(-0.5));
        return toParam(tf.mul(tf.mul(minusHalfRCube, tf.sub(x, mean)), tf.mul(dy, scaleValue)));
      },
      scale: () => toParam(tf.mul(dy, tf.mul(tf.sub(x, mean), rstd()))),
      offset: () => toParam(dy),
    };
  },
};

const ours = new Set<tf.GradConfig>([batchNormGrad]);

export function installBatchNormGrad(): void {
  const current = tf.getGradient(tf.FusedBatchNorm);
  if (current && ours.has(current)) return;
  if (current) tf.unregisterGradient(tf.FusedBatchNorm); // avoid tfjs's override warning
  tf.registerGradient(batchNormGrad);
}
