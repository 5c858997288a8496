/**
 * Identity (REPLACES the stock wasm kernel, which copies the whole tensor). Under tf.grad the engine clones
 * (= runs Identity on) every tensor a gradient needs to keep, so a ResNet step did ~80 full copies. Tensors
 * are immutable, so, like the cpu backend, we share the data and bump its refcount (exactly what wasm's own
 * Reshape does).
 */
import * as tf from '@tensorflow/tfjs-core';
import { type Info, type KernelArgs, replaceKernel, runStock } from './util';

export function identityWasm(args: KernelArgs): Info {
  const { x } = args.inputs as { x: Info };
  if (x.dtype === 'string') return runStock(tf.Identity, args);
  args.backend.incRef(x.dataId);
  return { dataId: x.dataId, shape: x.shape, dtype: x.dtype };
}

export function registerIdentity(): void {
  replaceKernel(tf.Identity, identityWasm);
}
