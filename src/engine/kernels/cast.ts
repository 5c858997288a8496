/**
 * Cast (REPLACES the stock wasm kernel). Stock copies the data with a typed-array set, which (1) copies even
 * when the dtype does not change (every ReLU gradient does cast(step(x), 'float32')), and (2) is WRONG for
 * casts to bool: 0.5 becomes false and -1 becomes 255. Same dtype now shares the data (as the cpu backend
 * does); to bool is x != 0.
 */
import * as tf from '@tensorflow/tfjs-core';
import { type Info, type KernelArgs, replaceKernel, runStock } from './util';

export function castWasm(args: KernelArgs): Info {
  const { inputs, backend, attrs } = args;
  const { x } = inputs as { x: Info };
  const { dtype } = attrs as unknown as tf.CastAttrs;
  if (dtype === x.dtype && dtype !== 'string') {
    backend.incRef(x.dataId);
    return { dataId: x.dataId, shape: x.shape, dtype };
  }
  if (dtype === 'bool' && (x.dtype === 'float32' || x.dtype === 'int32')) {
    const out = backend.makeOutput(x.shape, 'bool');
    const src = backend.typedArrayFromHeap(x);
    const dst = backend.typedArrayFromHeap(out);
    for (let i = 0; i < src.length; i++) dst[i] = src[i] !== 0 ? 1 : 0;
    return out;
  }
  return runStock(tf.Cast, args);
}

export function registerCast(): void {
  replaceKernel(tf.Cast, castWasm);
}
