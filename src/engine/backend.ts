/**
 * Chooses the TensorFlow.js backend. tfjs-node ('tensorflow') is the fastest but optional: it is used when it
 * loads. Otherwise wasm (SIMD), with our registered kernels for input gradients. The pure-JS cpu backend is
 * only used when asked for: it is two orders of magnitude slower.
 */
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
// tfjs-core's CommonJS build registers no gradient functions; tfjs-layers' build registers all of them in the
// global gradient registry when it loads (tfjs-core's own register_all_gradients is ESM-only).
import '@tensorflow/tfjs-layers';
import { setWasmPaths } from '@tensorflow/tfjs-backend-wasm';
import path from 'node:path';
import { UserError } from './errors';
import type { BackendName } from './report';
import { registerWasmKernels } from './kernels';

export type BackendChoice = 'auto' | BackendName;
export const BACKEND_CHOICES: readonly BackendChoice[] = ['auto', 'tensorflow', 'wasm', 'cpu'];

let tfjsNodeError: string | null = null;
let tfjsNodeTried = false;

/** Loads @tensorflow/tfjs-node if it is installed and works; returns why not otherwise. */
function tryLoadTfjsNode(): boolean {
  if (!tfjsNodeTried) {
    tfjsNodeTried = true;
    try {
      // Synchronous and inside try: a missing or broken install is a catchable error (the bundle keeps it external).
      require('@tensorflow/tfjs-node');
    } catch (e) {
      tfjsNodeError = (e as Error).message.split('\n')[0];
    }
  }
  return tfjsNodeError === null && tf.findBackend('tensorflow') !== null;
}

function wasmDir(): string {
  return path.join(path.dirname(require.resolve('@tensorflow/tfjs-backend-wasm/package.json')), 'dist') + path.sep;
}

export async function selectBackend(choice: BackendChoice): Promise<BackendName> {
  if (!BACKEND_CHOICES.includes(choice)) {
    throw new UserError(`unknown backend "${choice}"; use one of ${BACKEND_CHOICES.join(', ')}`, '--backend');
  }
  let name: BackendName;
  if (choice === 'tensorflow' || choice === 'auto') {
    if (tryLoadTfjsNode()) {
      name = 'tensorflow';
    } else if (choice === 'tensorflow') {
      throw new UserError(
        `@tensorflow/tfjs-node is not available (${tfjsNodeError ?? 'backend not registered'}); install it with "npm install @tensorflow/tfjs-node" or use --backend wasm`,
        '--backend',
      );
    } else {
      name = 'wasm';
    }
  } else {
    name = choice;
  }
  if (name === 'wasm') setWasmPaths(wasmDir());
  const ok = await tf.setBackend(name);
  if (!ok) throw new UserError(`backend "${name}" failed to initialise; try --backend cpu`, '--backend');
  await tf.ready();
  if (name === 'wasm') registerWasmKernels();
  return name;
}

/** Why tfjs-node is not in use, for logs (null when it is, or was never tried). */
export function tfjsNodeUnavailableReason(): string | null {
  return tfjsNodeError;
}
