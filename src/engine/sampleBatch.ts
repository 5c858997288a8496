/**
 * How many of a step's K noise samples go through the network in one pass. All K at once is fastest, but a
 * worker's memory is the activations of K noisy copies kept for the backward pass: on ResNet-20 at 224×224 with
 * K = 16 that is 3.9 GB per worker (docs/performance.md, scaling). Once per layer, the tensor memory of one
 * sample's forward and backward pass is measured (tf.profile's peak), and passes take as many samples as fit in
 * a budget. The sums over passes give the same ratio and gradient (up to rounding), so the answer is unchanged,
 * and small inputs, whose K samples fit, run exactly as before.
 */
import * as tf from '@tensorflow/tfjs-core';

/** Tensor memory one pass may use (MB), by default; `settings.sampleBatch` (--sample-batch) overrides the choice. */
export const PASS_BUDGET_MB = 768;

/** Peak tensor bytes of one sample's forward and input-gradient pass through `probe` (beyond what was allocated before). */
export async function bytesPerSample(probe: (x: tf.Tensor4D) => tf.Tensor, height: number, width: number, channels: number): Promise<number> {
  const before = tf.memory().numBytes;
  const info = await tf.profile(async () => {
    const g = tf.tidy(() => {
      const x = tf.randomUniform([1, height, width, channels], 0, 1, 'float32', 1) as tf.Tensor4D;
      return tf.grad((input: tf.Tensor) => tf.sum(tf.square(probe(input as tf.Tensor4D))))(x);
    });
    // Read (asynchronously: webgpu has no synchronous read in Node) so that every kernel has run.
    await g.data();
    g.dispose();
  });
  return Math.max(0, info.peakBytes - before);
}

/** Samples per pass: all `samples` when they fit in `budgetBytes`, else as many as fit (at least one). */
export function passSize(samples: number, perSample: number, budgetBytes = PASS_BUDGET_MB * 2 ** 20): number {
  if (!(perSample > 0)) return samples;
  return Math.max(1, Math.min(samples, Math.floor(budgetBytes / perSample)));
}
