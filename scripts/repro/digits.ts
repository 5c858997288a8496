/**
 * How many of the rendered digits (charts.ts renderDigits) each Keras MNIST checkpoint classifies correctly:
 * the check that they are in distribution for those models, and how to find the input scaling they expect.
 * Uses the engine's own loader on the wasm backend (as the CLI), in this process.
 */
import * as tf from '@tensorflow/tfjs-core';
import { selectBackend } from '../../src/engine/backend';
import { loadModel } from '../../src/engine/loaders';
import type { DigitImage } from './charts';

/** Top-1 predictions of `outputLayer` for each image, per model file; model input = `hi` · pixel (pixels in [0,1]). */
export async function classifyDigits(files: string[], images: DigitImage[], outputLayer: string, hi = 1): Promise<number[][]> {
  await selectBackend('wasm');
  const out: number[][] = [];
  for (const file of files) {
    const model = await loadModel(file);
    const run = model.probe(outputLayer);
    const preds = tf.tidy(() => {
      const x = tf.tensor4d(images.flatMap((i) => i.pixels.map((v) => v * hi)), [images.length, 28, 28, 1]);
      return tf.argMax(run(x), -1);
    });
    out.push(Array.from(await preds.data()));
    preds.dispose();
    model.dispose();
  }
  return out;
}
