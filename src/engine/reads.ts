/**
 * Reading tensors on every backend. The webgpu backend cannot read GPU memory synchronously in Node (its readSync
 * needs OffscreenCanvas), so the engine reads asynchronously; on wasm, cpu and tensorflow that is the same read as
 * dataSync.
 */
import * as tf from '@tensorflow/tfjs-core';

/**
 * `t`'s values, read asynchronously: the webgpu backend cannot read GPU memory synchronously in Node (its readSync
 * needs OffscreenCanvas), and on wasm, cpu and tensorflow this is the same read as dataSync.
 */
export async function readValues(t: tf.Tensor): Promise<Float32Array> {
  return (await t.data()) as Float32Array;
}

/**
 * A copy of the values of the tensor `make` returns (made inside a tidy, read, disposed): tfjs values handed to
 * code outside tfjs, such as the native runtime (src/engine/native/).
 */
export async function readMade(make: () => tf.Tensor): Promise<Float32Array> {
  const t = tf.tidy(make);
  try {
    return Float32Array.from(await readValues(t));
  } finally {
    t.dispose();
  }
}

/**
 * Runs `f` on the cpu backend when the current one is webgpu (for code that reads tensors synchronously, e.g. image
 * resizing), else as it is; the backend is restored afterwards.
 */
export async function withSyncReads<T>(f: () => T): Promise<T> {
  const current = tf.getBackend();
  if (current !== 'webgpu') return f();
  await tf.setBackend('cpu');
  try {
    return f();
  } finally {
    await tf.setBackend(current);
  }
}
